"""`casework`: run the engine, open cases, send lifecycle commands, list and show cases, from a shell.

Every lifecycle command is a subcommand named after its kind (dashes for underscores), generated from
its pydantic model in domain/commands.py: its options are the command's fields. Every command takes
`--json`. Exit codes are in casework/cli_support.py and README.md ("Exit codes").
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import click
from pydantic import BaseModel, ValidationError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from casework import history_cli, notify_cli, report_cli
from casework.case_list import CaseFilter, list_cases
from casework.cli_support import (
    CliError, ExitCode, NotFound, Refused, Unreachable, Usage, describe_validation, print_json, print_table,
)
from casework.client import CaseNotFound, CaseworkClient, CommandRefused, connect
from casework.codec import PayloadDecryptionError
from casework.config import ConfigError, Settings, load_settings
from casework.devserver import EngineRefused
from casework.local_data import case_store_for_reading, reporting_view
from casework.policy import PolicyError
from domain.commands import COMMAND_ADAPTER, COMMAND_TYPES, TIMER_COMMANDS, OpenCase, SurveyAnswer
from domain.events import PERSONAL_PATHS
from domain.ids import workflow_id_for
from domain.model import Actor, CaseState, Category, Channel, Priority, Role, Stage, Tier

T = TypeVar("T")
INTERNAL = TIMER_COMMANDS | {"open"}
NOT_OPTIONS = {"kind", "command_id", "actor", "occurred_at", "principal", "signature"}
CONNECTION_OPTIONS = ("tls", "tls_cert_path", "tls_key_path", "tls_ca_path", "tls_server_name", "api_key",
                      "api_key_file")
DEFAULT_TIMEOUT = 60.0  # seconds a command waits for the engine's answer before saying none came


def _version() -> str:
    try:
        return version("casework")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


@dataclass
class Context:
    """The global options, and the connection they make (at most one per command)."""

    address: str | None = None
    task_queue: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    traceback: bool = False
    connection: dict[str, Any] = field(default_factory=dict)
    served_queue: str | None = None  # the queue whose worker the command waits for
    _settings: Settings | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Context:
        """From the group's parsed options (`cli.make_context(...).params`)."""
        return cls(address=params.get("address"), task_queue=params.get("task_queue"),
                   timeout=params.get("timeout") or DEFAULT_TIMEOUT, traceback=bool(params.get("show_traceback")),
                   connection={n: params.get(n) for n in CONNECTION_OPTIONS})

    def settings(self) -> Settings:
        """The settings, with the connection options given on the command line over them."""
        if self._settings is None:
            settings = load_settings()
            given = {n: v for n, v in self.connection.items() if v is not None}
            if given.get("api_key") and settings.api_key_file and "api_key_file" not in given:
                given["api_key_file"] = ""  # the command line's key replaces the configured file's
            if given.get("api_key_file") and settings.api_key.get_secret_value() and "api_key" not in given:
                given["api_key"] = ""
            self._settings = Settings.model_validate({**settings.model_dump(), **given}) if given else settings
        return self._settings

    def embedded(self) -> bool:
        return not (self.address or self.settings().temporal_address)

    def target(self) -> str:
        settings = self.settings()
        return self.address or settings.temporal_address or f"localhost:{settings.embedded_port}"

    def queue(self) -> str:
        return self.task_queue or self.settings().task_queue

    async def client(self) -> Client:
        """A connected Temporal client; Unreachable when no server answers at the address."""
        settings, embedded = self.settings(), self.embedded()
        if embedded and any(v is not None for v in self.connection.values()):
            raise Usage("the --tls*/--api-key* options are for a Temporal server at --address (or "
                        "TEMPORAL_ADDRESS / CASEWORK_TEMPORAL_ADDRESS); the engine's embedded server serves "
                        "plaintext on 127.0.0.1")
        address = self.target()
        try:
            return await asyncio.wait_for(
                connect(address, settings.temporal_namespace, settings=settings, embedded=embedded), self.timeout)
        except (RuntimeError, TimeoutError) as err:
            raise Unreachable(
                f"no Temporal server answers at {address} ({_one_line(err) or 'timed out'}); start the engine "
                "(casework run), or name the server with --address, TEMPORAL_ADDRESS or "
                "CASEWORK_TEMPORAL_ADDRESS") from None

    async def cases(self, workflow_id: str | None = None) -> CaseworkClient:
        """The casework client, once a worker is known to serve the queue the command goes to: the
        queue of the workflow `workflow_id` names when it exists (a case is served on the queue it was
        opened on), else this command's queue (a new case or plan starts there)."""
        from casework.principals import credential_for

        client = await self.client()
        queue = self.queue()
        if workflow_id is not None:
            try:
                described = await asyncio.wait_for(client.get_workflow_handle(workflow_id).describe(), self.timeout)
                queue = described.task_queue
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise
                queue = None  # no such workflow: the command itself says not found
        if queue is not None:
            await self._require_worker(client, queue)
            self.served_queue = queue
        return CaseworkClient(client, self.queue(), credential=credential_for(self.settings()))

    async def _require_worker(self, client: Client, queue: str) -> None:
        """Unreachable, before anything is sent, when no worker has polled the task queue lately: with
        none, Temporal would hold the command and this command would wait for ever."""
        answer = await asyncio.wait_for(client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=self.settings().temporal_namespace, task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)), self.timeout)
        if not answer.pollers:
            raise Unreachable(
                f"no casework worker polls task queue '{queue}' on {self.target()}; start the engine "
                "(casework run), or name its queue with --task-queue or CASEWORK_TASK_QUEUE. Nothing was sent")

    async def answer(self, call: Awaitable[T], command_id: str | None = None) -> T:
        """The engine's answer, or Unreachable after the timeout (the worker stopped, or is stuck)."""
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            retry = (f"; send it again with --command-id {command_id}: the engine applies a command id once"
                     if command_id else "")
            raise Unreachable(
                f"no answer from a casework worker on task queue '{self.served_queue or self.queue()}' at "
                f"{self.target()} within "
                f"{self.timeout:g} s (is the engine running? raise the wait with --timeout){retry}") from None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    # The Rust core's connect errors nest the OS's reason deep in a debug dump: say the reason.
    reason = re.search(r'message: "([^"]+)"', text)
    return reason.group(1) if reason and text.startswith("Failed client connect") else text


def _run(ctx: click.Context, work: Callable[[Context], Awaitable[int | None]]) -> None:
    """Run an async command; its exit code, or 0."""
    code = asyncio.run(work(ctx.obj))
    ctx.exit(int(code or 0))


def parse_actor(text: str) -> Actor:
    role, _, actor_id = text.partition(":")
    if not actor_id or role not in Role.__members__:
        raise click.BadParameter(f"must be ROLE:ID with ROLE one of {', '.join(Role.__members__)} "
                                 f"(e.g. agent:alice), got {text!r}")
    try:
        return Actor(id=actor_id, role=role)
    except ValidationError as err:
        raise click.BadParameter(describe_validation(err, option_names=False)) from None


class ActorType(click.ParamType):
    name = "ROLE:ID"

    def convert(self, value: Any, param: Any, ctx: Any) -> Actor:
        return value if isinstance(value, Actor) else parse_actor(str(value))


ACTOR = ActorType()


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="machine-readable JSON on stdout")(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(_version(), "--version", prog_name="casework", message="%(prog)s %(version)s")
@click.option("--address", help="Temporal server host:port (default: TEMPORAL_ADDRESS or "
                                "CASEWORK_TEMPORAL_ADDRESS; none: the embedded server on localhost:7233)")
@click.option("--task-queue", help="task queue of the casework worker (default: CASEWORK_TASK_QUEUE, casework)")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
              help="seconds to wait for the engine's answer")
@click.option("--tls/--no-tls", default=None, help="TLS on or off (default: on when a certificate, CA, server "
                                                    "name or API key is set)")
@click.option("--tls-cert-path", help="client certificate (PEM) for mTLS")
@click.option("--tls-key-path", help="private key (PEM) of the client certificate")
@click.option("--tls-ca-path", help="CA certificate (PEM) the server's certificate must chain to")
@click.option("--tls-server-name", help="name the server's certificate must carry")
@click.option("--api-key", help="API key, sent as 'authorization: Bearer'; prefer --api-key-file or "
                                "CASEWORK_API_KEY (a command line is visible to other users)")
@click.option("--api-key-file", help="file whose first line is the API key")
@click.option("--traceback", "show_traceback", is_flag=True, hidden=True, help="show the Python traceback of a failure")
@click.pass_context
def cli(ctx: click.Context, address: str | None, task_queue: str | None, timeout: float, show_traceback: bool,
        **connection: Any) -> None:
    """casework: customer-service cases on Temporal, from a shell.

    Exit codes: 0 done, 1 failed, 2 usage (bad option, input or setting), 3 refused by the engine's
    rules, 4 not found, 5 engine unreachable (no server, or no worker answered in time)."""
    ctx.obj = Context.from_params(ctx.params)


# --- the engine and its servers ------------------------------------------------------------------

@cli.command()
@click.pass_obj
def run(obj: Context) -> None:
    """Run the engine: the worker, the HTTP API (unless CASEWORK_HTTP_ENABLED=false), and the embedded
    Temporal server unless an address is set."""
    import worker

    worker.main(obj.settings())


@cli.command()
@click.pass_obj
def serve(obj: Context) -> None:
    """Serve the HTTP API alone (casework.web), against the engine's Temporal server."""
    from casework.logs import configure_logging

    try:
        from casework import web  # imported here: every other command works without its dependencies
    except ImportError as err:
        raise CliError(f"the HTTP API is not part of this installation ({err})") from None
    settings = obj.settings()
    configure_logging(settings.log_format, settings.log_level)
    web.serve(settings)


@cli.command("codec-server")
@click.option("--host", help="address to listen on (default: settings, 127.0.0.1)")
@click.option("--port", type=click.IntRange(1, 65535), help="port to listen on (default: settings, 8234)")
@click.pass_obj
def codec_server(obj: Context, host: str | None, port: int | None) -> None:
    """Serve Temporal's codec protocol (decode encrypted payloads for the UI and CLI, to holders of a
    codec token)."""
    from casework import codec_server as server
    from casework.logs import configure_logging

    settings = obj.settings()
    configure_logging(settings.log_format, settings.log_level)
    server.serve(settings, host, port)


# --- opening a case and the lifecycle commands ---------------------------------------------------

def _common(f: Callable) -> Callable:
    f = json_option(f)
    f = click.option("--command-id", help="idempotency key; send again with the same one to retry safely "
                                         "(default: a new one)")(f)
    return click.option("--actor", type=ACTOR, default="agent:cli", show_default=True,
                        help="who sends it, ROLE:ID (agent, customer, supervisor, system)")(f)


def _print_state(state: CaseState, as_json: bool, command_id: str | None = None) -> None:
    if as_json:
        out = state.model_dump(mode="json")
        if command_id:
            out["command_id"] = command_id
        print_json(out)
        return
    print(f"case {state.case_id}  stage={state.stage.value}  priority={state.priority.value}  "
          f"assignee={state.assignee or '-'}  team={state.team or '-'}")
    print(f"  {state.subject}  (customer {state.customer.name}, tier {state.customer.tier.value})")
    if state.closure_reason:
        print(f"  closed: {state.closure_reason.value} at {state.closed_at:%Y-%m-%d %H:%M}")


def _choice(enum: type[Enum]) -> click.Choice:
    return click.Choice([e.value for e in enum])


@cli.command("open")
@click.option("--customer-id", required=True)
@click.option("--customer-name", required=True)
@click.option("--customer-contact")
@click.option("--tier", type=_choice(Tier), default="C", show_default=True)
@click.option("--dedicated-owner")
@click.option("--source-system", help="the sending system; with --external-id the same reference is always "
                                      "the same case")
@click.option("--external-id")
@click.option("--channel", required=True, type=_choice(Channel))
@click.option("--category", required=True, type=_choice(Category))
@click.option("--priority", type=_choice(Priority), default="normal", show_default=True)
@click.option("--subject", required=True)
@click.option("--description", default="")
@click.option("--assignee")
@click.option("--team")
@click.option("--case-id")
@_common
@click.pass_context
def open_case(ctx: click.Context, actor: Actor, command_id: str | None, as_json: bool, **f: Any) -> None:
    """Open a case (or get the existing one for the same source reference)."""
    source = ({"system": f["source_system"], "external_id": f["external_id"]}
              if f["source_system"] or f["external_id"] else None)
    customer = {"id": f["customer_id"], "name": f["customer_name"], "contact": f["customer_contact"],
                "tier": f["tier"], "dedicated_owner": f["dedicated_owner"]}
    cmd = _validated(lambda: OpenCase.model_validate({
        "command_id": command_id or str(uuid.uuid4()), "actor": actor, "source": source, "customer": customer,
        **{k: f[k] for k in ("channel", "category", "priority", "subject", "description", "assignee", "team",
                             "case_id")}}), options=OPEN_OPTIONS)

    async def work(obj: Context) -> None:
        cases = await obj.cases()
        _print_state(await obj.answer(cases.open_case(cmd), cmd.command_id), as_json, cmd.command_id)
    _run(ctx, work)


# The flattened options of `open` that name a nested field of OpenCase.
OPEN_OPTIONS = {"customer.id": "--customer-id", "customer.name": "--customer-name",
                "customer.contact": "--customer-contact", "customer.tier": "--tier",
                "customer.dedicated_owner": "--dedicated-owner", "source.system": "--source-system",
                "source.external_id": "--external-id"}


def _validated(build: Callable[[], T], kind: str | None = None, options: dict[str, str] | None = None) -> T:
    try:
        return build()
    except ValidationError as err:
        raise Usage(describe_validation(err, kind, options=options)) from None


def _enum_of(annotation: Any) -> type[Enum] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return candidate
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def _score(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        score = float(value)
        if not (sep and name and math.isfinite(score)):  # float() reads "nan" and "inf": no scores
            raise ValueError
        return name.strip(), score
    except ValueError:
        raise click.BadParameter(f"must be DIMENSION=SCORE with a finite number (e.g. attitude=5), "
                                 f"got {text!r}", param_hint="--score") from None


def _survey(values: dict[str, Any]) -> dict | None:
    """A survey from --score/--scale/--overall/--safety-incident/--survey-comment, or --survey JSON."""
    given = values.pop("survey", None)
    scores = values.pop("score", ())
    parts = {"scale": values.pop("survey_scale", None), "overall": values.pop("survey_overall", None),
             "safety_incident": values.pop("safety_incident", False) or None,
             "comment": values.pop("survey_comment", None)}
    parts = {k: v for k, v in parts.items() if v is not None}
    if given is not None and (scores or parts):
        raise Usage("give the survey either as --survey JSON or with --score/--survey-* options, not both")
    if given is not None:
        try:
            return json.loads(given)
        except json.JSONDecodeError as err:
            raise Usage(f"--survey: not valid JSON ({err.msg} at character {err.pos})") from None
    if parts and not scores:
        raise Usage("a survey needs its scores: --score DIMENSION=SCORE (repeat it for each dimension)")
    return {"scores": dict(_score(s) for s in scores), **parts} if scores else None


def _lifecycle(kind: str, model: type) -> click.Command:
    params: list[click.Parameter] = [click.Argument(["case_id"])]
    for name, f in model.model_fields.items():
        if name in NOT_OPTIONS:
            continue
        opt = "--" + name.replace("_", "-")
        enum = _enum_of(f.annotation)
        if _model_of(f.annotation) is SurveyAnswer:
            params += [
                click.Option([opt], help="the survey as JSON, e.g. '{\"scale\": \"1-5\", \"scores\": {\"attitude\": 5}}'"),
                click.Option(["--score"], multiple=True, help="a survey score DIMENSION=SCORE (repeat per dimension)"),
                click.Option(["--survey-scale"], type=click.Choice(["0-100", "1-5", "1-10"]),
                             help="the scale of the scores (default 0-100)"),
                click.Option(["--survey-overall"], type=float, help="the overall score (default: their mean)"),
                click.Option(["--safety-incident"], is_flag=True, help="the customer reports a safety incident"),
                click.Option(["--survey-comment"], help="the customer's comment on the survey")]
        elif _is_list(f.annotation):
            params.append(click.Option([opt], multiple=True, help="one a time: repeat the option for each"))
        else:
            params.append(click.Option([opt], required=f.is_required(), type=_choice(enum) if enum else None,
                                       help=f.description))
    params += [click.Option(["--actor"], type=ACTOR, default="agent:cli", show_default=True,
                            help="who sends it, ROLE:ID (agent, customer, supervisor, system)"),
               click.Option(["--command-id"], help="idempotency key; send again with the same one to retry "
                                                   "safely (default: a new one)"),
               click.Option(["--json", "as_json"], is_flag=True, help="machine-readable JSON on stdout")]

    @click.pass_context
    def callback(ctx: click.Context, case_id: str, actor: Actor, command_id: str | None, as_json: bool,
                 **values: Any) -> None:
        if "survey" in model.model_fields:
            values["survey"] = _survey(values)
        fields = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()
                  if v is not None and v != ()}
        cmd = _validated(lambda: COMMAND_ADAPTER.validate_python(
            {"kind": kind, "command_id": command_id or str(uuid.uuid4()), "actor": actor, **fields}), kind)

        async def work(obj: Context) -> None:
            cases = await obj.cases(workflow_id_for(case_id))
            _print_state(await obj.answer(cases.send(case_id, cmd), cmd.command_id), as_json, cmd.command_id)
        _run(ctx, work)

    doc = (model.__doc__ or kind).strip().splitlines()[0]
    return click.Command(kind.replace("_", "-"), params=params, callback=callback, help=doc, short_help=doc)


for _kind, _model in COMMAND_TYPES.items():
    if _kind not in INTERNAL:
        cli.add_command(_lifecycle(_kind, _model))


# --- reading cases -------------------------------------------------------------------------------

@cli.command("list")
@click.option("--stage", type=_choice(Stage))
@click.option("--team")
@click.option("--assignee")
@click.option("--priority", type=_choice(Priority))
@click.option("--category", type=_choice(Category))
@click.option("--breached/--not-breached", default=None, help="only cases with (or without) a breached SLA clock")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@json_option
@click.pass_obj
def list_command(obj: Context, as_json: bool, limit: int, **filters: Any) -> None:
    """List cases from the reporting tables, newest first, filtered (with their subjects where the
    engine's keyring is)."""
    settings = obj.settings()
    try:
        sealer = case_store_for_reading(settings).sealer if settings.store_encryption else None
    except NotFound:
        sealer = None  # the tables without the keys: ids, stages and times, no subjects
    rows = list_cases(reporting_view(settings), CaseFilter(limit=limit, **filters), sealer)
    if as_json:
        print_json(rows)
    else:
        print_table(rows, empty="(no cases match)")


def _content(event: Any) -> str:
    """What an event says, in words: its free texts (the personal fields) and a survey's scores."""
    fact = event.model_dump(mode="json")
    parts = []
    for path in PERSONAL_PATHS.get(event.type, ()):
        value: Any = fact
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if value:
            parts.append(f"{'.'.join(path)}: {value}")
    if event.type == "SurveyRecorded":
        s = event.survey
        parts.insert(0, f"overall {s.overall:g} ({s.scale}); " + ", ".join(f"{k} {v:g}" for k, v in s.scores.items()))
    if getattr(event, "parts_used", None):
        parts.append("parts used: " + ", ".join(event.parts_used))
    return "; ".join(parts)


@cli.command()
@click.argument("case_id")
@json_option
@click.pass_context
def show(ctx: click.Context, case_id: str, as_json: bool) -> None:
    """A case: its state from the engine, and its history with what was said (messages, questions,
    notes, comments, in order) from the event store."""
    async def work(obj: Context) -> None:
        cases = await obj.cases(workflow_id_for(case_id))
        state = await obj.answer(cases.state(case_id))
        timeline = await obj.answer(cases.timeline(case_id))
        history, missing = None, None
        try:
            history = case_store_for_reading(obj.settings()).history(case_id)
            if not history:
                missing = f"the event store in {obj.settings().data_dir} holds no event of case {case_id}"
        except NotFound as err:
            missing = err.message
        if as_json:
            print_json({"state": state.model_dump(mode="json"),
                        "timeline": [t.model_dump(mode="json") for t in timeline],
                        "history": [e.model_dump(mode="json") for e in history] if history else None,
                        **({"history_missing": missing} if missing else {})})
            return
        _print_state(state, False)
        if history:
            print_table([{"at": f"{e.at:%Y-%m-%d %H:%M:%S}", "event": e.type,
                          "by": f"{e.actor.role.value}:{e.actor.id}", "content": _content(e)} for e in history])
        else:
            print_table([{"at": f"{t.at:%Y-%m-%d %H:%M:%S}", "event": t.type, "by": f"{t.role}:{t.actor_id}",
                          "stage": t.stage} for t in timeline])
            print(f"casework: content not shown: {missing}", file=sys.stderr)
    _run(ctx, work)


# --- return visits, forgetting, the demo ---------------------------------------------------------

@cli.command("return-visits")
@click.argument("action", type=click.Choice(["list", "schedule", "pause", "resume"]))
@click.option("--customer-id")
@click.option("--customer-name")
@click.option("--dedicated-owner")
@click.option("--basis", type=click.Choice(["warranty", "ongoing_service"]), default="warranty", show_default=True)
@click.option("--first-due", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d"]),
              help="time of the first visit, e.g. 2026-06-01 or 2026-06-01T09:00:00+08:00 (default: one period "
                   "from now)")
@click.option("--reason", default="")
@click.option("--actor", type=ACTOR, default="supervisor:cli", show_default=True)
@json_option
@click.pass_context
def return_visits(ctx: click.Context, action: str, customer_id: str | None, customer_name: str | None,
                  dedicated_owner: str | None, basis: str, first_due: datetime | None, reason: str, actor: Actor,
                  as_json: bool) -> None:
    """Key accounts' periodic return visits: list, schedule, pause, resume."""
    from domain.return_visits import PERIOD_MONTHS, PlanChange, ReturnVisitPlan, SchedulePlan, add_months
    from workflows.return_visits import return_visits_id

    if action == "schedule" and not (customer_id and customer_name):
        raise Usage("return-visits schedule needs --customer-id and --customer-name")
    if action in ("pause", "resume") and not customer_id:
        raise Usage(f"return-visits {action} needs --customer-id")

    async def work(obj: Context) -> None:
        cases = await obj.cases(return_visits_id(customer_id) if action in ("pause", "resume") else None)
        if action == "list":
            plans = await obj.answer(cases.return_visit_plans())
        elif action == "schedule":
            first = first_due if first_due is None or first_due.tzinfo else first_due.replace(tzinfo=UTC)
            cmd = _validated(lambda: SchedulePlan(actor=actor, plan=ReturnVisitPlan(
                customer={"id": customer_id, "name": customer_name, "tier": "key_account",
                          "dedicated_owner": dedicated_owner}, basis=basis,
                first_due=first or add_months(datetime.now(UTC), PERIOD_MONTHS[basis]))))
            plans = [await obj.answer(cases.schedule_return_visits(cmd))]
        else:
            try:
                plans = [await obj.answer(cases.change_return_visits(
                    customer_id, action, PlanChange(actor=actor, reason=reason)))]
            except RPCError as err:
                if err.status is RPCStatusCode.NOT_FOUND:
                    raise NotFound(f"no return-visit plan for customer {customer_id}") from None
                raise
        if as_json:
            print_json([p.model_dump(mode="json") for p in plans])
            return
        print_table([{"customer": p.plan.customer.id, "basis": p.plan.basis, "every": f"{p.plan.months} months",
                      "next due": f"{p.next_due:%Y-%m-%d}", "state": "paused" if p.paused else "active",
                      "visits opened": p.next_visit} for p in plans], empty="(no plans)")
    _run(ctx, work)


@cli.command("forget-customer")
@click.argument("customer_id")
@click.option("--actor", type=ACTOR, required=True, help="who forgets them, ROLE:ID (a supervisor)")
@click.option("--reason", default="", help="why (recorded in the privacy audit)")
@json_option
@click.pass_context
def forget_customer(ctx: click.Context, customer_id: str, actor: Actor, reason: str, as_json: bool) -> None:
    """Forget a customer: destroy their key, audited (their personal data unreadable everywhere, the
    history kept)."""
    from casework.forget import ALLOWED, ForgetRefused, forget_customer as forget
    from casework.logs import configure_logging

    async def work(obj: Context) -> int:
        settings = obj.settings()
        configure_logging(settings.log_format, settings.log_level)  # log lines to stderr, the report to stdout
        store = client = None
        if actor.role in ALLOWED and settings.store_encryption:  # else the rules refuse it before either is used
            # The store must be the engine's: one opened where there is none would forget nobody in an
            # empty store it had just created.
            store = case_store_for_reading(settings)
            try:
                client = await obj.client()
            except Unreachable as err:  # the key is destroyed all the same; the workflows are told on a rerun
                print(f"casework: {err.message}; forgetting in the stores only, run the command again once it "
                      "is up to clear the running cases", file=sys.stderr)
        try:
            report = await forget(settings, client, customer_id, actor, reason, store=store)
        except ForgetRefused as err:
            raise Refused(str(err)) from None
        if as_json:
            print_json(report.model_dump(mode="json"))
        else:
            print(f"customer {report.customer_id} forgotten at {report.at:%Y-%m-%d %H:%M:%S} UTC: "
                  f"{len(report.key_ids)} key(s) destroyed, {len(report.case_ids)} case(s); "
                  f"{len(report.continued)} running case(s) continued without their data, {len(report.closed)} "
                  "closed" + (f", {len(report.not_confirmed)} not confirmed yet: {', '.join(report.not_confirmed)}"
                              if report.not_confirmed else "")
                  + (", return-visit plan terminated" if report.return_visits_terminated else ""))
        if client is None:
            return ExitCode.UNREACHABLE
        return ExitCode.FAILED if report.not_confirmed else ExitCode.OK
    _run(ctx, work)


@cli.command()
@click.option("--cases", type=click.IntRange(1, 100_000), default=36, show_default=True)
@json_option
@click.pass_context
def demo(ctx: click.Context, cases: int, as_json: bool) -> None:
    """Drive a few dozen varied cases through the running engine."""
    from casework.demo import drive

    async def work(obj: Context) -> None:
        client = await obj.cases()
        done = await drive(client, cases)
        if as_json:
            print_json(done)
        else:
            print("drove " + ", ".join(f"{n} {path}" for path, n in sorted(done.items())))
    _run(ctx, work)


report_cli.add_commands(cli)
notify_cli.add_commands(cli)
history_cli.add_commands(cli)


# --- errors and the entry point ------------------------------------------------------------------

def _failure(err: BaseException) -> tuple[int, str] | None:
    """The exit code and the one line a failure is reported with; None for one that is a defect."""
    if isinstance(err, CliError):
        return err.code, f"{err.label}: {err.message}" if err.label else err.message
    if isinstance(err, CaseNotFound):
        return ExitCode.NOT_FOUND, f"not found: {err.message}"
    if isinstance(err, CommandRefused):
        return ExitCode.REFUSED, f"refused ({err.code}): {err.message}"
    if isinstance(err, ValidationError):
        return ExitCode.USAGE, f"invalid input: {describe_validation(err, option_names=False)}"
    if isinstance(err, (ConfigError, PolicyError)):
        return ExitCode.USAGE, f"invalid configuration: {err}"
    if isinstance(err, PayloadDecryptionError):  # encrypted under a key this command was not given
        return ExitCode.FAILED, f"cannot read the case: {err}"
    if isinstance(err, EngineRefused):  # a store that cannot be opened as configured, and the like
        return ExitCode.FAILED, str(err)
    if isinstance(err, RPCError):
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return ExitCode.UNREACHABLE, f"engine unreachable: {_one_line(err)}"
        if err.status is RPCStatusCode.NOT_FOUND:
            return ExitCode.NOT_FOUND, f"not found: {_one_line(err)}"
        return ExitCode.FAILED, f"the Temporal server answered: {err.status.name}: {_one_line(err)}"
    if isinstance(err, OSError):
        name = f" {err.filename}" if err.filename else ""
        return ExitCode.FAILED, f"cannot use{name}: {err.strerror or err}"
    if isinstance(err, RuntimeError):  # connection problems and the like
        return ExitCode.FAILED, _one_line(err)
    return None


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    # The Temporal client's native runtime threads can crash the interpreter's finalisation
    # ("PyGILState_Release ... finalizing", seen here once in a few hundred calls): the work is done
    # and printed, so leave without finalising.
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.stderr.flush()
    os._exit(code)


def _main(argv: list[str] | None = None) -> int:
    show_traceback = "--traceback" in (sys.argv[1:] if argv is None else argv)
    try:
        return int(cli.main(args=argv, prog_name="casework", standalone_mode=False) or 0)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as err:  # usage: click's own message, with the usage line
        err.show()
        return err.exit_code
    except click.exceptions.Abort:
        print("casework: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("casework: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped early (`casework show X | head -1`): say nothing, exit 1 as click itself
        # does for a closed pipe (and Python's documentation advises).
        _quiet_stdout()
        return ExitCode.FAILED
    except SystemExit as done:  # the worker's own refusals (it printed why)
        return done.code if isinstance(done.code, int) else ExitCode.FAILED
    except Exception as err:  # noqa: BLE001 - every failure is one line, never a traceback
        failure = _failure(err)
        if show_traceback or failure is None:
            import traceback

            if show_traceback:
                traceback.print_exc()
        if failure is None:
            print(f"casework: failed: {type(err).__name__}: {_one_line(err)} (a defect: please report it; "
                  "--traceback shows where)", file=sys.stderr)
            return ExitCode.FAILED
        code, message = failure
        print(f"casework: {message}", file=sys.stderr)
        return code


def _quiet_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
