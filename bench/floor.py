"""The floor: the cheapest possible Temporal round trip like a casework command (one update that
runs one activity), on the same server and worker settings. casework is measured against it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="floor_noop")
def floor_noop(n: int) -> int:
    return n + 1


@workflow.defn(name="FloorWorkflow")
class FloorWorkflow:
    def __init__(self) -> None:
        self.count = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done and workflow.all_handlers_finished())
        return self.count

    @workflow.update
    async def ping(self, n: int) -> int:
        self.count = await workflow.execute_activity(floor_noop, n, start_to_close_timeout=timedelta(seconds=30))
        return self.count

    @workflow.signal
    def finish(self) -> None:
        self.done = True
