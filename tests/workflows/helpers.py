"""Reading what Temporal and the store hold for a case, the way an operator would."""

from __future__ import annotations

from temporalio.client import Client

from domain.ids import workflow_id_for
from domain.store import CaseStore


async def history_length(temporal: Client, case_id: str) -> int:
    history = await temporal.get_workflow_handle(workflow_id_for(case_id)).fetch_history()
    return len(history.events)


def stored_types(store: CaseStore, case_id: str) -> list[str]:
    return [e.type for e in store.history(case_id)]


def stored_command_ids(store: CaseStore, case_id: str) -> list[str]:
    return [e.command_id for e in store.history(case_id)]
