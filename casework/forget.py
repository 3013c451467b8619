"""Forgetting a customer (crypto-shredding): their personal data unreadable everywhere, history kept.

`forget_customer` is the one way to do it; the `casework forget-customer` command and the HTTP API
(`POST /customers/{customer_id}/forget`, casework/web/api.py) call it. In order:

1. the keyring destroys the customer's data keys: every sealed field of theirs, in the event store
   (and its backups), the outbox, reads "[forgotten]" from this instant on;
2. the privacy audit stream of the event store records who forgot whom, when, and which cases and
   keys it reached (append-only, like every stream);
3. each running case workflow of the customer drops their fields from its state and continues as new,
   so the case's current Temporal history no longer carries them; closed runs keep what Temporal holds
   until the namespace's retention removes them (docs/security-data.md);
4. the customer's return-visit plan, if one runs, is terminated (it holds their name and would keep
   opening cases with it).

The reporting tables hold no personal field in the clear; the one they keep sealed (the subjects, for
the HTTP API's search) is unreadable once the key is gone, and the projection deletes its rows when it
reaches the audit entry of step 2 (projections/subjects.py). Forgetting again is harmless: it destroys
nothing more and is audited again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import structlog
from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError

from casework.config import Settings
from casework.stores import open_case_store
from domain.ids import workflow_id_for
from domain.model import Actor, Role
from domain.store import CaseStore, Forgotten
from workflows.contract import FORGET_UPDATE, ForgetPersonalData
from workflows.return_visits import return_visits_id

log = structlog.get_logger("casework.forget")
ALLOWED = (Role.supervisor, Role.system)


class ForgetRefused(Exception):
    """The customer cannot be forgotten as asked; the message says why."""


class ForgetReport(BaseModel):
    customer_id: str
    at: datetime
    key_ids: list[str]  # data keys destroyed by this call
    case_ids: list[str]  # the cases that held the customer's sealed fields
    continued: list[str]  # running cases whose workflow dropped the fields and continued as new
    closed: list[str]  # cases whose workflow had ended (their runs keep what Temporal holds until retention)
    not_confirmed: list[str]  # running cases that did not confirm a new run in time (they will on their next task)
    return_visits_terminated: bool


async def forget_customer(settings: Settings, client: Client | None, customer_id: str, actor: Actor,
                          reason: str = "", store: CaseStore | None = None,
                          wait_seconds: float = 60.0) -> ForgetReport:
    """Forget the customer (see the module's doc); `client` None skips Temporal (no engine reachable:
    run it again with one, it is idempotent)."""
    if actor.role not in ALLOWED:
        raise ForgetRefused(f"forgetting a customer is for supervisors (and the engine), not role '{actor.role.value}'")
    if not customer_id.strip():
        raise ForgetRefused("a customer id is needed")
    if not settings.store_encryption:
        raise ForgetRefused("the event store is not encrypted (store_encryption is false): personal fields are "
                            "stored as they are and cannot be forgotten by destroying a key")
    store = store or open_case_store(settings)
    keyring = store.sealer
    if keyring is None or not hasattr(keyring, "forget"):
        raise ForgetRefused("this store has no keyring: it was opened without field sealing")
    result = keyring.forget(customer_id, actor.id)
    at = datetime.now(UTC)
    store.record_forgotten(Forgotten(customer_id=customer_id, actor=actor, at=at, key_ids=result.key_ids,
                                     case_ids=result.case_ids, reason=reason))
    log.info("customer_forgotten", customer_id=customer_id, actor=actor.id, keys=len(result.key_ids),
             cases=len(result.case_ids))
    report = ForgetReport(customer_id=customer_id, at=at, key_ids=result.key_ids, case_ids=result.case_ids,
                          continued=[], closed=[], not_confirmed=[], return_visits_terminated=False)
    if client is not None:
        await _tell_workflows(client, report, actor, wait_seconds)
    return report


async def _tell_workflows(client: Client, report: ForgetReport, actor: Actor, wait_seconds: float) -> None:
    request = ForgetPersonalData(customer_id=report.customer_id, actor=actor)
    runs: dict[str, str] = {}
    for case_id in report.case_ids:
        handle = client.get_workflow_handle(workflow_id_for(case_id))
        try:
            runs[case_id] = await handle.execute_update(FORGET_UPDATE, request, result_type=str)
        except (RPCError, WorkflowUpdateFailedError) as err:
            # Completed (a closed case), never started (an opening that lost a race), or gone.
            log.info("forget_case_not_running", case_id=case_id, error=type(err).__name__)
            report.closed.append(case_id)
    deadline = time.monotonic() + wait_seconds
    for case_id, old_run in runs.items():
        handle = client.get_workflow_handle(workflow_id_for(case_id))
        while True:
            info = await handle.describe()
            if info.run_id != old_run:
                report.continued.append(case_id)
                break
            if info.status != WorkflowExecutionStatus.RUNNING:
                report.closed.append(case_id)  # closed in the meantime: its runs wait for retention
                break
            if time.monotonic() > deadline:
                report.not_confirmed.append(case_id)
                break
            await asyncio.sleep(0.2)
    plan = client.get_workflow_handle(return_visits_id(report.customer_id))
    try:
        if (await plan.describe()).status == WorkflowExecutionStatus.RUNNING:
            await plan.terminate(reason=f"customer forgotten by {actor.role.value}:{actor.id}")
            report.return_visits_terminated = True
    except RPCError:
        pass  # no plan for this customer
