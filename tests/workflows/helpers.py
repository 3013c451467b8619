"""Reading what Temporal and the store hold for a case, the way an operator would."""

from __future__ import annotations

from temporalio.client import Client

from domain.ids import workflow_id_for
from domain.store import CaseStore


async def history_length(temporal: Client, case_id: str) -> int:
    history = await temporal.get_workflow_handle(workflow_id_for(case_id)).fetch_history()
    return len(history.events)


SLA_TYPES = ("Sla", "CaseEscalated", "EscalationAcknowledged", "CaseDeEscalated")


def stored_types(store: CaseStore, case_id: str, sla: bool = False) -> list[str]:
    """The case's stored event types; the lifecycle ones only, unless `sla` asks for the clocks too."""
    return [e.type for e in store.history(case_id) if sla or not e.type.startswith(SLA_TYPES)]

