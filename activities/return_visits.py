"""Opening a return visit's case: through the Temporal client, so the case is a workflow of its own
(not a child), and idempotent, because the visit's case id follows from its source reference."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from domain.commands import OpenCase


class ReturnVisitActivities:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    @activity.defn(name="open_return_visit")
    async def open_return_visit(self, opening: OpenCase) -> str:
        from casework.client import CaseworkClient  # the client module imports the workflows

        state = await CaseworkClient(self.client, self.task_queue).open_case(opening)
        return state.case_id
