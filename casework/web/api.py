"""The HTTP API's routes: the Temporal contract (docs/contract.md) as REST, and the case listing.

- `POST /cases` opens a case; `POST /cases/{case_id}/commands/{kind}` sends one lifecycle command
  (one route per command, its body the command's own fields); the `Idempotency-Key` header is the
  command id, so a retry gets the command's one outcome and a key reused for another command is
  refused (`command_id_reused`, 409).
- `GET /cases/{case_id}`, `/timeline`, `/clocks`: the contract's queries.
- `GET /cases`: the read models, filtered, newest first, with a cursor.
- `GET/POST /return-visits...`: key accounts' return-visit plans.

The credential decides the actor (casework/http_auth.py); the command is then signed with this
process's own credential (a service in the registry) and checked again by the engine.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations, built per command here.

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from casework.access import MAY, Person, person_in
from casework.client import CaseworkClient
from casework.forget import ForgetRefused, ForgetReport, forget_customer
from casework.http_auth import HttpAuthenticator, Identity, Unauthenticated
from casework.web.problems import RESPONSES, ProblemError
from casework.web.signin_limits import SignInLimiter, TooManyFailures, claimed_principal
from domain.clocks import ClockView
from domain.commands import COMMAND_ADAPTER, COMMAND_TYPES, TIMER_COMMANDS, Command, OpenCase
from domain.model import Actor, CaseState, Category, Channel, Instant, Priority, Role, Stage
from domain.refusal import CommandRefused
from domain.return_visits import PlanChange, ReturnVisitPlan, SchedulePlan
from projections import subjects
from projections.queries import AT_RISK_MAX_HOURS, BadCursor, CaseFilter, list_cases
from projections.schema import CLOCK_NAMES
from workflows.contract import TimelineEntry
from workflows.return_visits import PlanStatus

# Fields a sender never writes in a body: the header carries the id, the route the kind, this process signs.
NOT_IN_BODY = ("kind", "command_id", "principal", "signature")
T = TypeVar("T")


@dataclass
class Api:
    """What the routes need; kept on `app.state.api` (casework/web/app.py)."""

    cases: CaseworkClient
    auth: HttpAuthenticator | None  # None: open mode (no registry), the payload names its actor
    view: Any = None  # the reporting view (projections/view.py), for the listing
    sealer: Any = None  # the keyring, to open the subjects the listing shows and searches
    namespace: str = "default"
    timeout: float = 15.0
    page_max: int = 200
    settings: Any = None  # casework.config.Settings, for forgetting a customer
    store: Callable[[], Any] | None = None  # the case store (opened on first use), for forgetting
    sign_ins: SignInLimiter | None = None  # failed credentials counted per address and principal
    managers: frozenset[str] = frozenset()  # the console_managers setting: staff who read every case


def body_model(model: type[Command]) -> type[BaseModel]:
    """The HTTP body of a command: its own fields, the actor optional (the credential's by default)."""
    fields: dict[str, Any] = {name: (f.annotation, f) for name, f in model.model_fields.items()
                              if name not in (*NOT_IN_BODY, "actor")}
    fields["actor"] = (Actor | None, Field(default=None, description=(
        "who acts; default: the credential's own person. A staff or customer credential may name only "
        "itself (`actor_mismatch` otherwise); a service names the actor it reports for")))
    return create_model(f"{model.__name__}Body", __config__=ConfigDict(extra="forbid"), __doc__=model.__doc__,
                        **fields)


# --- credentials ---------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="a JWT from the identity provider (sub, casework_role)")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key listed in the principal registry")


def _api(request: Request) -> Api:
    return request.app.state.api


async def identity(request: Request, bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
                   api_key: str | None = Depends(_api_key)) -> Identity | None:
    """Who calls; None in open mode. 401 without a credential that verifies."""
    api = _api(request)
    if api.auth is None:
        return None
    header = f"Bearer {bearer.credentials}" if bearer else request.headers.get("authorization")
    presented = bool(api_key or (header or "").strip())  # no credential at all is not a sign-in attempt
    address = request.client.host if request.client else ""
    principal = claimed_principal(header or "") if presented else None
    if presented and api.sign_ins is not None:
        try:
            api.sign_ins.check(address, principal)
        except TooManyFailures as err:
            raise ProblemError("too_many_failed_sign_ins", 429, str(err),
                               headers={"Retry-After": str(err.retry_after)}) from None
    try:
        return await asyncio.to_thread(api.auth.authenticate, header, api_key)  # a JWKS fetch may block
    except Unauthenticated as err:
        if presented and api.sign_ins is not None:
            api.sign_ins.failed(address, principal)
        raise ProblemError("unauthenticated", 401, str(err), headers={"WWW-Authenticate": "Bearer"}) from None


Caller = Annotated[Identity | None, Depends(identity)]
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200, description=(
    "the command id: send the same key to retry safely (the command applies once, the answer is its "
    "outcome); a key reused for another command is refused with `command_id_reused`"))]


def actor_of(api: Api, who: Identity | None, claimed: Actor | None) -> Actor:
    if api.auth is None:
        if claimed is None:
            raise ProblemError("actor_required", 422, "open mode (no principal registry): the body must name "
                               "its actor")
        return claimed
    assert who is not None
    try:
        return api.auth.actor_for(who, claimed)
    except CommandRefused as err:
        raise ProblemError.refused(err) from None


def _customer_only(who: Identity | None) -> str | None:
    """A customer's credential sees their own cases only: their id, else None."""
    if who is not None and who.person and who.acts_as == frozenset({Role.customer}):
        return who.principal
    return None


def _staff(api: Api, who: Identity | None) -> Person | None:
    """The staff member behind a person's credential, with the roles it presents, as the console sees
    them (casework/access.py); None for open mode, services and customers, who keep their own rules."""
    if api.auth is None or who is None or not who.person or Role.customer in who.acts_as:
        return None
    person = person_in(api.auth.registry, who.principal, api.managers, presented=who.acts_as)
    if person is None:
        raise ProblemError("no_role", 403, f"'{who.principal}' holds no role that may read or act on cases "
                           "(agent or supervisor in the principal registry, or a console manager)")
    return person


def _within_reach(api: Api, who: Identity | None, state: CaseState) -> bool:
    """A customer reaches their own cases, an agent their own and their teams' (casework/access.py)."""
    customer = _customer_only(who)
    if customer is not None:
        return state.customer.id == customer
    person = _staff(api, who)
    return person is None or person.may_open(state.assignee, state.team)


# --- the engine, with a time limit ---------------------------------------------------------------

async def engine(api: Api, call: Awaitable[T]) -> T:
    """The engine's answer, its refusal as a problem, and a clear 503/504 instead of waiting for ever."""
    try:
        return await asyncio.wait_for(call, api.timeout)
    except CommandRefused as err:
        raise ProblemError.refused(err) from None
    except ValidationError as err:
        raise ProblemError.invalid(err) from None
    # Cancelled at the time limit, an update's wait ends as the SDK's own timeout error.
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        if not await _worker_polls(api):
            raise ProblemError("no_worker", 503, f"no casework worker polls the task queue "
                               f"'{api.cases.task_queue}': start one (casework run). A command sent may still be "
                               "applied when one starts; send it again with the same Idempotency-Key to learn "
                               "its outcome", headers={"Retry-After": "5"}) from None
        raise ProblemError("engine_timeout", 504, f"the engine did not answer within {api.timeout:g} s; a command "
                           "sent may still be applied: send it again with the same Idempotency-Key to learn "
                           "its outcome") from None
    except RPCError as err:
        status = err.status.name if err.status else "error"
        raise ProblemError("engine_unavailable", 503, f"Temporal did not take the request ({status}): {err.message}",
                           headers={"Retry-After": "5"}) from None


async def _worker_polls(api: Api) -> bool:
    request = DescribeTaskQueueRequest(namespace=api.namespace, task_queue=TaskQueue(name=api.cases.task_queue),
                                       task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
    try:
        described = await asyncio.wait_for(api.cases.client.workflow_service.describe_task_queue(request), 5)
    except (RPCError, TimeoutError):
        return True  # unknown: say timeout, not "no worker"
    return bool(described.pollers)


async def _readable_state(api: Api, who: Identity | None, case_id: str) -> CaseState:
    _staff(api, who)  # a staff credential with no role is refused before the engine is asked
    state = await engine(api, api.cases.state(case_id))
    if not _within_reach(api, who, state):  # as if it did not exist: the answer does not say it does
        raise ProblemError("unknown_case", 404, f"no case with id {case_id}")
    return state


# --- routes --------------------------------------------------------------------------------------

class CaseSummary(BaseModel):
    """One case as the read models have it (a moment behind the engine)."""

    case_id: str
    stage: Stage
    priority: Priority
    category: Category
    channel: Channel
    tier: str
    customer_id: str
    team: str | None
    assignee: str | None
    subject: str | None = Field(description="null once the customer is forgotten")
    opened_at: datetime
    first_response_at: datetime | None
    closed_at: datetime | None
    closure_reason: str | None
    escalation_level: int
    breached_clocks: list[str]
    next_due: datetime | None = Field(description="the earliest due of a running, unbreached SLA clock")
    updated_at: datetime


class CaseList(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


def _summary(row: dict[str, Any]) -> CaseSummary:
    return CaseSummary.model_validate({**row, "breached_clocks": [n for n in CLOCK_NAMES if row[f"{n}_breached"]]})


def build_router() -> APIRouter:
    router = APIRouter(responses=RESPONSES)

    open_body = body_model(OpenCase)

    async def open_case(request: Request, response: Response, body: open_body,  # type: ignore[valid-type]
                        key: IdempotencyKey, who: Caller) -> CaseState:
        api = _api(request)
        cmd = _command(api, who, "open", key, body)
        state = await engine(api, api.cases.open_case(cmd))
        timeline = await engine(api, api.cases.timeline(state.case_id))
        # 201 when this key opened it (first time or retried); 200 for a case another opening made.
        response.status_code = 201 if timeline and timeline[0].command_id == key else 200
        if response.status_code == 200 and not _within_reach(api, who, state):  # found, but not theirs to read
            raise ProblemError("already_open", 409, "a case with this source reference or case id is already "
                               "open, outside the cases this credential may read")
        response.headers["Location"] = f"/cases/{state.case_id}"
        return state

    router.add_api_route("/cases", open_case, methods=["POST"], response_model=CaseState, status_code=201,
                         operation_id="open", tags=["commands"], summary="Open a case (or find it again)",
                         description=(OpenCase.__doc__ or "") + " 201 when this Idempotency-Key opened it, 200 "
                         "when the source reference (or case id) names a case opened before.")

    for kind, model in COMMAND_TYPES.items():
        if kind in TIMER_COMMANDS or kind == "open":
            continue
        router.add_api_route(f"/cases/{{case_id}}/commands/{kind}", _command_route(kind, model), methods=["POST"],
                             response_model=CaseState, operation_id=kind, tags=["commands"],
                             summary=(model.__doc__ or kind).strip().splitlines()[0],
                             description=f"The `{kind}` update of the Temporal contract; allowed in "
                             f"{', '.join(sorted(s.value for s in model.STAGES))}; roles "
                             f"{', '.join(sorted(r.value for r in model.ROLES))}.")

    @router.get("/cases/{case_id}", response_model=CaseState, operation_id="state", tags=["queries"],
                summary="The case's state")
    async def state(request: Request, case_id: str, who: Caller) -> CaseState:
        return await _readable_state(_api(request), who, case_id)

    @router.get("/cases/{case_id}/timeline", response_model=list[TimelineEntry], operation_id="timeline",
                tags=["queries"], summary="The case's timeline (the last 500 entries)")
    async def timeline(request: Request, case_id: str, who: Caller) -> list[TimelineEntry]:
        api = _api(request)
        await _readable_state(api, who, case_id)
        return await engine(api, api.cases.timeline(case_id))

    @router.get("/cases/{case_id}/clocks", response_model=list[ClockView], operation_id="clocks", tags=["queries"],
                summary="Each SLA clock: target, elapsed business time, paused time, due, state")
    async def clocks(request: Request, case_id: str, who: Caller,
                     at: Annotated[Instant | None, Query(description=(
                         "RFC 3339 instant with its offset, in 1990-2099 (as every instant of a case); "
                         "default now"))] = None,
                     ) -> list[ClockView]:
        api = _api(request)
        await _readable_state(api, who, case_id)
        return await engine(api, api.cases.clocks(case_id, at))

    @router.get("/cases", response_model=CaseList, operation_id="list_cases", tags=["queries"],
                summary="Cases from the read models, newest first, filtered, a page at a time")
    async def cases(
        request: Request, who: Caller,
        stage: Annotated[list[Stage], Query(description="any of these stages")] = [],  # noqa: B006
        team: str | None = None, assignee: str | None = None,
        priority: Annotated[list[Priority], Query()] = [],  # noqa: B006
        category: Annotated[list[Category], Query()] = [],  # noqa: B006
        breached: Annotated[bool | None, Query(description="some SLA clock breached (true) or none (false)")] = None,
        at_risk_within_hours: Annotated[float | None, Query(gt=0, le=AT_RISK_MAX_HOURS, allow_inf_nan=False,
                                                            description=(
            "open cases with a running, unbreached SLA clock due within this many hours (or overdue); "
            f"at most {AT_RISK_MAX_HOURS} (a year)"))] = None,
        text: Annotated[str | None, Query(min_length=1, max_length=200, description=(
            "in the subject, case-insensitive"))] = None,
        cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 50,
    ) -> CaseList:
        api = _api(request)
        if api.view is None:
            raise ProblemError("no_read_models", 503, "this HTTP API has no reporting tables to list from")
        if text is not None and api.sealer is None:
            raise ProblemError("subject_search_unavailable", 422, "the subjects are kept sealed with the keyring; "
                               "this engine has none (store_encryption is false), so it cannot search them")
        person = _staff(api, who)
        reach = person if person is not None and not person.sees_every_case else None
        filters = CaseFilter(stage=[s.value for s in stage], team=team, assignee=assignee,
                             priority=[p.value for p in priority], category=[c.value for c in category],
                             customer_id=_customer_only(who), breached=breached,
                             at_risk_within_hours=at_risk_within_hours, text=text,
                             reach_assignee=reach.name if reach else None,
                             reach_teams=list(reach.teams) if reach else [])
        sealer = api.sealer
        try:
            page = await asyncio.to_thread(
                list_cases, api.view, filters, limit=min(limit, api.page_max), cursor=cursor, now=datetime.now(UTC),
                subject_of=lambda case_id, token: subjects.unseal(sealer, case_id, token))
        except BadCursor as err:
            raise ProblemError("bad_cursor", 422, str(err)) from None
        return CaseList(items=[_summary(r) for r in page.rows], next_cursor=page.next_cursor)

    _return_visit_routes(router)
    _privacy_routes(router)
    return router


def _command(api: Api, who: Identity | None, kind: str, key: str, body: BaseModel) -> Any:
    actor = actor_of(api, who, getattr(body, "actor", None))
    fields = body.model_dump(exclude={"actor"}, exclude_unset=True)
    try:
        return COMMAND_ADAPTER.validate_python({**fields, "kind": kind, "command_id": key, "actor": actor})
    except ValidationError as err:  # the command's own rules (retriage needs a change, ...)
        raise ProblemError.invalid(err) from None


def _command_route(kind: str, model: type[Command]):
    body_type = body_model(model)

    async def send(request: Request, case_id: str, body: body_type,  # type: ignore[valid-type]
                   key: IdempotencyKey, who: Caller) -> CaseState:
        api = _api(request)
        person = _staff(api, who)
        if person is not None and kind in MAY and not person.may(kind):  # as in the console
            raise ProblemError("role_not_allowed", 403, f"'{kind}' is for "
                               f"{' and '.join(sorted(MAY[kind]))}s; '{person.name}' is "
                               f"{' and '.join(sorted(person.roles))}")
        if person is not None or _customer_only(who) is not None:  # their own cases only (as they read them)
            await _readable_state(api, who, case_id)
        return await engine(api, api.cases.send(case_id, _command(api, who, kind, key, body)))

    send.__name__ = f"send_{kind}"
    return send


class ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: ReturnVisitPlan
    actor: Actor | None = None


class PlanChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2_000)
    actor: Actor | None = None


def _return_visit_routes(router: APIRouter) -> None:
    @router.get("/return-visits", response_model=list[PlanStatus], operation_id="return_visit_plans",
                tags=["return visits"], summary="Every running return-visit plan")
    async def plans(request: Request, who: Caller) -> list[PlanStatus]:
        if _customer_only(who) is not None:
            raise ProblemError("forbidden", 403, "return-visit plans are for staff and services")
        api = _api(request)
        return await engine(api, api.cases.return_visit_plans())

    @router.post("/return-visits", response_model=PlanStatus, operation_id="schedule_return_visits",
                 tags=["return visits"], summary="Start (or find) a key account's return-visit plan")
    async def schedule(request: Request, body: ScheduleBody, key: IdempotencyKey, who: Caller) -> PlanStatus:
        api = _api(request)
        cmd = SchedulePlan(command_id=key, actor=actor_of(api, who, body.actor), plan=body.plan)
        return await engine(api, api.cases.schedule_return_visits(cmd))

    @router.post("/return-visits/{customer_id}/{action}", response_model=PlanStatus,
                 operation_id="change_return_visits", tags=["return visits"], summary="Pause or resume a plan")
    async def change(request: Request, customer_id: str, action: Literal["pause", "resume"], body: PlanChangeBody,
                     key: IdempotencyKey, who: Caller) -> PlanStatus:
        api = _api(request)
        change = PlanChange(command_id=key, actor=actor_of(api, who, body.actor), reason=body.reason)
        return await engine(api, api.cases.change_return_visits(customer_id, action, change))


class ForgetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2_000, description="why (recorded in the privacy audit)")
    actor: Actor | None = None


def _privacy_routes(router: APIRouter) -> None:
    @router.post("/customers/{customer_id}/forget", response_model=ForgetReport, operation_id="forget_customer",
                 tags=["privacy"], summary="Forget a customer: their personal data unreadable everywhere, audited",
                 description="As `casework forget-customer` (docs/security-data.md): supervisors only. Idempotent: "
                 "forgetting again destroys nothing more and is audited again.")
    async def forget(request: Request, customer_id: str, body: ForgetBody, who: Caller) -> ForgetReport:
        api = _api(request)
        actor = actor_of(api, who, body.actor)
        if api.store is None or api.settings is None:
            raise ProblemError("forget_unavailable", 503, "this HTTP API has no access to the event store")
        try:
            store = await asyncio.to_thread(api.store)
            return await forget_customer(api.settings, api.cases.client, customer_id, actor, body.reason, store=store)
        except ForgetRefused as err:
            raise ProblemError("forget_refused", 403, str(err)) from None
