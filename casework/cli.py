"""`casework`: run the engine, open cases, send lifecycle commands and show a case, from a shell.

Every lifecycle command is a subcommand named after its kind (dashes for underscores); its options
are the command's fields. `--json` prints machine-readable output; a refusal exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import ValidationError

from casework import notify_cli, report_cli
from casework.client import CaseworkClient, CommandRefused, connect
from casework.codec import PayloadDecryptionError
from casework.config import ConfigError, Settings, load_settings
from casework.demo import drive
from casework.devserver import EngineRefused
from casework.forget import ForgetRefused, forget_customer
from casework.stores import StoreRefused
from casework.policy import PolicyError
from casework.principals import credential_for
from domain.commands import COMMAND_ADAPTER, COMMAND_TYPES, TIMER_COMMANDS, OpenCase
from domain.model import Actor, CaseState
from domain.return_visits import PERIOD_MONTHS, ReturnVisitPlan, SchedulePlan, add_months
from domain.return_visits import PlanChange

INTERNAL = TIMER_COMMANDS | {"open"}
OPEN_FIELDS = {  # flattened options of `open`
    "customer_id": True, "customer_name": True, "customer_contact": False, "tier": False,
    "dedicated_owner": False, "source_system": False, "external_id": False, "channel": True,
    "category": True, "priority": False, "subject": True, "description": False, "assignee": False,
    "team": False, "case_id": False,
}


def parse_actor(text: str) -> Actor:
    role, _, actor_id = text.partition(":")
    if not actor_id:
        raise argparse.ArgumentTypeError(f"actor must be ROLE:ID (e.g. agent:alice), got {text!r}")
    try:
        return Actor(id=actor_id, role=role)
    except ValidationError as err:
        raise argparse.ArgumentTypeError(f"bad actor {text!r}: {err.errors()[0]['msg']}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="casework", description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="Temporal server host:port (default: settings, else localhost:7233)")
    parser.add_argument("--task-queue", help="task queue of the casework worker (default: settings)")
    conn = parser.add_argument_group("connection to a Temporal server at --address / CASEWORK_TEMPORAL_ADDRESS "
                                     "(as the temporal CLI's options; default: settings)")
    conn.add_argument("--tls", action=argparse.BooleanOptionalAction, default=None,
                      help="TLS on or off (default: on when a certificate, CA, server name or API key is set)")
    conn.add_argument("--tls-cert-path", help="client certificate (PEM) for mTLS")
    conn.add_argument("--tls-key-path", help="private key (PEM) of the client certificate")
    conn.add_argument("--tls-ca-path", help="CA certificate (PEM) the server's certificate must chain to")
    conn.add_argument("--tls-server-name", help="name the server's certificate must carry")
    conn.add_argument("--api-key", help="API key, sent as 'authorization: Bearer'; prefer --api-key-file "
                                        "or CASEWORK_API_KEY (a command line is visible to other users)")
    conn.add_argument("--api-key-file", help="file whose first line is the API key")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    sub.add_parser("run", help="run the worker (embedded Temporal unless CASEWORK_TEMPORAL_ADDRESS is set)")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--actor", type=parse_actor, default=Actor(id="cli", role="agent"),
                       help="who sends it, ROLE:ID (agent, customer, supervisor, system); default agent:cli")
        p.add_argument("--command-id", help="idempotency key; reuse it to retry safely (default: new)")
        p.add_argument("--json", action="store_true", help="print the case state as JSON")

    op = sub.add_parser("open", help="open a case (or get the existing one for the same source reference)")
    for name, required in OPEN_FIELDS.items():
        op.add_argument(f"--{name.replace('_', '-')}", required=required)
    common(op)
    for kind, model in COMMAND_TYPES.items():
        if kind in INTERNAL:
            continue
        p = sub.add_parser(kind.replace("_", "-"), help=(model.__doc__ or kind).splitlines()[0])
        p.add_argument("case_id")
        for name, field in model.model_fields.items():
            if name in ("kind", "command_id", "actor", "occurred_at"):
                continue
            choices = [e.value for e in _enum_of(field.annotation)] if _enum_of(field.annotation) else None
            p.add_argument(f"--{name.replace('_', '-')}", required=field.is_required(), choices=choices)
        common(p)
    report_cli.add_commands(sub)
    notify_cli.add_commands(sub)
    rv = sub.add_parser("return-visits", help="key accounts' periodic return visits: list, schedule, pause, resume")
    rv.add_argument("action", choices=["list", "schedule", "pause", "resume"])
    rv.add_argument("--customer-id")
    rv.add_argument("--customer-name")
    rv.add_argument("--dedicated-owner")
    rv.add_argument("--basis", choices=["warranty", "ongoing_service"], default="warranty")
    rv.add_argument("--first-due", help="RFC 3339 time of the first visit (default: one period from now)")
    rv.add_argument("--reason", default="")
    rv.add_argument("--actor", type=parse_actor, default=Actor(id="cli", role="supervisor"))
    rv.add_argument("--json", action="store_true")
    demo = sub.add_parser("demo", help="drive a few dozen varied cases through the running engine")
    demo.add_argument("--cases", type=int, default=36)
    codec = sub.add_parser("codec-server", help="serve Temporal's codec protocol (decode encrypted payloads "
                                                "for the UI and CLI, to holders of a codec token)")
    codec.add_argument("--host", help="address to listen on (default: settings, 127.0.0.1)")
    codec.add_argument("--port", type=int, help="port to listen on (default: settings, 8234)")
    forget = sub.add_parser("forget-customer", help="forget a customer: destroy their key, audited "
                            "(their personal data unreadable everywhere, the history kept)")
    forget.add_argument("customer_id")
    forget.add_argument("--actor", type=parse_actor, required=True, help="who forgets them, ROLE:ID (supervisor)")
    forget.add_argument("--reason", default="", help="why (recorded in the privacy audit)")
    forget.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="a case's state and timeline")
    show.add_argument("case_id")
    show.add_argument("--json", action="store_true")
    return parser


def _enum_of(annotation: Any) -> type[Enum] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return candidate
    return None


def _open_command(args: argparse.Namespace) -> OpenCase:
    source = None
    if args.source_system or args.external_id:
        source = {"system": args.source_system, "external_id": args.external_id}
    customer = {"id": args.customer_id, "name": args.customer_name, "contact": args.customer_contact,
                "tier": args.tier or "C", "dedicated_owner": args.dedicated_owner}
    fields = {k: getattr(args, k) for k in ("channel", "category", "subject", "assignee", "team", "case_id")}
    return OpenCase.model_validate({
        "command_id": args.command_id or str(uuid.uuid4()), "actor": args.actor, "source": source,
        "customer": customer, "priority": args.priority or "normal",
        "description": args.description or "", **fields})


def _lifecycle_command(kind: str, args: argparse.Namespace):
    model = COMMAND_TYPES[kind]
    fields = {n: getattr(args, n) for n in model.model_fields
              if n not in ("kind", "command_id", "actor", "occurred_at") and getattr(args, n) is not None}
    return COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": args.command_id or str(uuid.uuid4()),
                                            "actor": args.actor, **fields})


def _print_state(state: CaseState, as_json: bool, command_id: str | None = None) -> None:
    if as_json:
        out = state.model_dump(mode="json")
        if command_id:
            out["command_id"] = command_id
        print(json.dumps(out, indent=2))
        return
    print(f"case {state.case_id}  stage={state.stage.value}  priority={state.priority.value}  "
          f"assignee={state.assignee or '-'}  team={state.team or '-'}")
    print(f"  {state.subject}  (customer {state.customer.name}, tier {state.customer.tier.value})")
    if state.closure_reason:
        print(f"  closed: {state.closure_reason.value} at {state.closed_at:%Y-%m-%d %H:%M}")


CONNECTION_OPTIONS = ("tls", "tls_cert_path", "tls_key_path", "tls_ca_path", "tls_server_name", "api_key",
                      "api_key_file")


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, with the connection options given on the command line over them."""
    settings = load_settings()
    given = {n: getattr(args, n) for n in CONNECTION_OPTIONS if getattr(args, n, None) is not None}
    if given.get("api_key") and settings.api_key_file and "api_key_file" not in given:
        given["api_key_file"] = ""  # the command line's key replaces the configured file's
    if given.get("api_key_file") and settings.api_key.get_secret_value() and "api_key" not in given:
        given["api_key"] = ""
    return Settings.model_validate({**settings.model_dump(), **given}) if given else settings


async def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.verb in report_cli.VERBS:  # these read the reporting tables, not Temporal
        return report_cli.run(args, settings)
    # No address anywhere: the engine's embedded server, plaintext on loopback (no TLS, no API key).
    embedded = not (args.address or settings.temporal_address)
    if embedded and any(getattr(args, n, None) is not None for n in CONNECTION_OPTIONS):
        raise ConfigError("the --tls*/--api-key* options are for a Temporal server at --address (or "
                          "CASEWORK_TEMPORAL_ADDRESS); the engine's embedded server serves plaintext on 127.0.0.1")
    address = args.address or settings.temporal_address or f"localhost:{settings.embedded_port}"
    if args.verb == "forget-customer":
        return await _forget_customer(args, settings, address, embedded)
    cases = CaseworkClient(await connect(address, settings.temporal_namespace, settings=settings, embedded=embedded),
                           args.task_queue or settings.task_queue, credential=credential_for(settings))
    if args.verb == "return-visits":
        return await _return_visits(cases, args)
    if args.verb == "demo":
        done = await drive(cases, args.cases)
        print("drove " + ", ".join(f"{n} {path}" for path, n in sorted(done.items())))
        return 0
    if args.verb == "show":
        state, timeline = await cases.state(args.case_id), await cases.timeline(args.case_id)
        if args.json:
            print(json.dumps({"state": state.model_dump(mode="json"),
                              "timeline": [t.model_dump(mode="json") for t in timeline]}, indent=2))
        else:
            _print_state(state, False)
            for t in timeline:
                print(f"  {t.at:%Y-%m-%d %H:%M:%S}  {t.type:<24} {t.role}:{t.actor_id:<16} -> {t.stage}")
        return 0
    if args.verb == "open":
        cmd = _open_command(args)
        state = await cases.open_case(cmd)
    else:
        cmd = _lifecycle_command(args.verb.replace("-", "_"), args)
        state = await cases.send(args.case_id, cmd)
    _print_state(state, args.json, cmd.command_id)
    return 0


async def _forget_customer(args: argparse.Namespace, settings, address: str, embedded: bool) -> int:
    from casework.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)  # log lines to stderr, the report to stdout
    try:
        client = await connect(address, settings.temporal_namespace, settings=settings, embedded=embedded)
    except RuntimeError as err:  # the key is destroyed all the same; the workflows are told on a rerun
        print(f"casework: Temporal at {address} is not reachable ({err}); forgetting in the stores only, "
              "run the command again once it is up to clear the running cases", file=sys.stderr)
        client = None
    try:
        report = await forget_customer(settings, client, args.customer_id, args.actor, args.reason)
    except ForgetRefused as err:
        raise CommandRefused("forget_refused", str(err)) from None
    except StoreRefused as err:
        print(f"casework: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        print(f"customer {report.customer_id} forgotten at {report.at:%Y-%m-%d %H:%M:%S} UTC: "
              f"{len(report.key_ids)} key(s) destroyed, {len(report.case_ids)} case(s); "
              f"{len(report.continued)} running case(s) continued without their data, {len(report.closed)} closed"
              + (f", {len(report.not_confirmed)} not confirmed yet: {', '.join(report.not_confirmed)}"
                 if report.not_confirmed else "")
              + (", return-visit plan terminated" if report.return_visits_terminated else ""))
    return 0 if client is not None and not report.not_confirmed else 1


async def _return_visits(cases: CaseworkClient, args: argparse.Namespace) -> int:
    if args.action == "list":
        plans = await cases.return_visit_plans()
    elif args.action == "schedule":
        if not (args.customer_id and args.customer_name):
            raise CommandRefused("invalid", "schedule needs --customer-id and --customer-name")
        basis_months = PERIOD_MONTHS[args.basis]
        first = (datetime.fromisoformat(args.first_due) if args.first_due
                 else add_months(datetime.now(UTC), basis_months))
        plans = [await cases.schedule_return_visits(SchedulePlan(actor=args.actor, plan=ReturnVisitPlan(
            customer={"id": args.customer_id, "name": args.customer_name, "tier": "key_account",
                      "dedicated_owner": args.dedicated_owner}, basis=args.basis, first_due=first)))]
    else:
        if not args.customer_id:
            raise CommandRefused("invalid", f"{args.action} needs --customer-id")
        plans = [await cases.change_return_visits(args.customer_id, args.action,
                                                  PlanChange(actor=args.actor, reason=args.reason))]
    if args.json:
        print(json.dumps([p.model_dump(mode="json") for p in plans], indent=2))
    for p in [] if args.json else plans:
        print(f"{p.plan.customer.id:<20} {p.plan.basis:<16} every {p.plan.months} months  next "
              f"{p.next_due:%Y-%m-%d}  {'PAUSED' if p.paused else 'active'}  visits opened: {p.next_visit}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "run":
        import worker

        try:
            worker.main(_settings(args))
        except (ConfigError, PolicyError) as err:
            print(f"casework: invalid configuration: {err}", file=sys.stderr)
            return 2
        return 0
    if args.verb == "codec-server":  # no Temporal: payload keys and codec tokens only
        from casework import codec_server
        from casework.logs import configure_logging

        try:
            settings = load_settings()
            configure_logging(settings.log_format, settings.log_level)
            codec_server.serve(settings, args.host, args.port)
        except ConfigError as err:
            print(f"casework: invalid configuration: {err}", file=sys.stderr)
            return 2
        return 0
    if args.verb == "notifications":  # the outbox alone: no Temporal
        try:
            return notify_cli.run(args)
        except ConfigError as err:
            print(f"casework: invalid configuration: {err}", file=sys.stderr)
            return 2
    code = _client_command(args)
    # The Temporal client's native runtime threads can crash the interpreter's finalisation
    # ("PyGILState_Release ... finalizing", seen here once in a few hundred calls): the work is done
    # and printed, so leave without finalising.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _client_command(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except CommandRefused as err:
        print(f"casework: refused ({err.code}): {err.message}", file=sys.stderr)
        return 2
    except (ValidationError, ConfigError, PolicyError) as err:
        print(f"casework: invalid input: {err}", file=sys.stderr)
        return 2
    except EngineRefused as err:  # a store that cannot be opened as configured, and the like: says why
        print(f"casework: {err}", file=sys.stderr)
        return 1
    except PayloadDecryptionError as err:  # encrypted under a key this command was not given
        print(f"casework: cannot read the case: {err}", file=sys.stderr)
        return 1
    except RuntimeError as err:  # connection problems and the like
        print(f"casework: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
