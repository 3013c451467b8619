"""The web console: server-rendered pages for agents, supervisors and managers (docs/console.md).

`console_app(settings)` is a Starlette application meant to be mounted (at /console by the HTTP API);
every link it draws is relative to where it is mounted. Sessions are signed cookies; every POST form
carries the session's CSRF token. Commands go to the cases through CaseworkClient, signed with the
console's own service credential (CASEWORK_PRINCIPAL) and naming the signed-in person as the actor,
so the engine checks the person against the registry again when it decides.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote_plus, urlencode
from zoneinfo import ZoneInfo

import structlog
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from casework.access import ACTIONS, Forbidden, Person
from casework.client import CaseworkClient, connect
from casework.config import ConfigError, Settings, console_zone, reporting_env
from casework.http_auth import HttpAuthenticator, Unauthenticated, jwt_verifier_for
from casework.principals import credential_for, registry_for
from casework.web.console import figures
from casework.web.console.access import Access, csrf_ok, new_csrf_token
from casework.web.console.casepage import case_page, with_headlines
from casework.web.console.charts import Bar, bar_chart
from casework.web.console.i18n import LANGUAGES, Speaker, negotiate
from casework.web.signin_limits import SignInLimiter, TooManyFailures, claimed_principal
from domain.commands import AcknowledgeEscalation, AddNote, DeEscalate, EscalateCase, Reassign
from domain.model import Actor, Role
from domain.principals import Registry
from domain.refusal import CommandRefused
from domain.store import CaseStore
from projections.reports import SATISFACTION_TARGET
from projections.view import ReportView

HERE = Path(__file__).parent
log = structlog.get_logger("casework.console")


# A page's links are built by the hundred (the weekly dashboard: one per figure and period), and
# their parts recur (the range, the figure names, the periods): each part is quoted once. Only short
# parts are remembered: a filter's text comes from the request, and a client sending long ones
# must not fill the process's memory (at most 4,096 parts of 64 characters).
_QUOTED_CACHED = 64
_quoted = functools.lru_cache(maxsize=4_096)(quote_plus)


def _quote(part: str) -> str:
    return _quoted(part) if len(part) <= _QUOTED_CACHED else quote_plus(part)


def query_string(query: dict[str, Any]) -> str:
    """urlencode(query), the same text, for text and number values."""
    return "&".join(f"{_quote(str(k))}={_quote(str(v))}" for k, v in query.items())


def calendar_zone(settings: Settings) -> ZoneInfo:
    """The zone dates are shown in: the setting, else the SLA policy's business calendar's."""
    return ZoneInfo(console_zone(settings))


def page_offset(request: Request, size: int) -> int:
    """The first row of the page asked for (`?page=N`, from 1); anything else is the first page."""
    text = request.query_params.get("page", "1")
    number = int(text) if text.isdigit() and len(text) < 7 else 1
    return (max(number, 1) - 1) * size


class Engine:
    """What the pages read and write, opened on first use (a mounted app gets no startup event)."""

    def __init__(self, settings: Settings, cases: CaseworkClient | None, store: CaseStore | None,
                 view: ReportView | None) -> None:
        self.settings, self._cases, self._store, self._view = settings, cases, store, view
        self._lock = asyncio.Lock()

    async def cases(self) -> CaseworkClient:
        async with self._lock:
            if self._cases is None:
                s = self.settings
                address = s.temporal_address or f"127.0.0.1:{s.embedded_port}"
                client = await connect(address, s.temporal_namespace, settings=s, embedded=not s.temporal_address)
                self._cases = CaseworkClient(client, s.task_queue, credential=credential_for(s))
            return self._cases

    def store(self) -> CaseStore:
        if self._store is None:
            from casework.stores import open_case_store

            self._store = open_case_store(self.settings)
        return self._store

    def view(self) -> ReportView:
        if self._view is None:
            from projections.runner import open_view

            self._view = open_view(reporting_env(self.settings))
        return self._view


def console_app(settings: Settings, *, cases: CaseworkClient | None = None, store: CaseStore | None = None,
                view: ReportView | None = None, registry: Registry | None = None,
                now: Callable[[], datetime] = figures.utcnow, sign_ins: SignInLimiter | None = None) -> Starlette:
    """The console. `cases`, `store`, `view`, `registry`: already open ones (tests, an embedding
    app); otherwise opened from `settings`. The console needs a principal registry: without one
    there is nobody to sign in. `sign_ins`: the failed sign-in limiter it shares with the HTTP API
    (casework/web/signin_limits.py); a new one otherwise."""
    registry = registry or registry_for(settings)
    if registry is None:
        raise ConfigError("the web console needs a principal registry (CASEWORK_PRINCIPALS_FILE): people sign "
                          "in with the API key or token it knows them by")
    # Checked now, not at the first command: a console that cannot sign would refuse every action.
    credential = cases.credential if cases is not None else credential_for(settings)
    if credential is None:
        raise ConfigError("the web console signs commands with its own service credential: set CASEWORK_PRINCIPAL "
                          "and its secret (a service acting as agent and supervisor)")
    access = Access(registry, HttpAuthenticator(registry, jwt_verifier_for(settings)), settings.console_managers)
    unlisted = sorted(set(settings.console_managers) - set(registry.staff))
    if unlisted:  # a manager signs in as listed staff: a name the registry lacks grants nobody anything
        log.warning("console_managers_not_in_registry", names=unlisted,
                    meaning="console_managers names people the principal registry does not list as staff; "
                            "they cannot sign in")
    engine = Engine(settings, cases, store, view)
    zone = calendar_zone(settings)
    pages = Pages(access, engine, zone, now, sign_ins or SignInLimiter.for_settings(settings))
    secret = settings.console_session_secret.get_secret_value() or secrets.token_urlsafe(32)
    routes = [
        Route("/", pages.home), Route("/signin", pages.signin, methods=["GET", "POST"]),
        Route("/signout", pages.signout, methods=["POST"]), Route("/language", pages.language, methods=["POST"]),
        Route("/queue", pages.queue), Route("/board", pages.board), Route("/dashboard", pages.dashboard),
        Route("/whatif", pages.whatif, methods=["GET", "POST"]), Route("/cases", pages.cases), Route("/cases/{case_id}", pages.case),
        Route("/cases/{case_id}/act", pages.act, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=secret, session_cookie="casework_console",
                             max_age=int(settings.console_session_hours * 3600), same_site="strict",
                             https_only=settings.console_secure_cookie)]
    handlers = {Forbidden: pages.forbidden, HTTPException: pages.http_error, Exception: pages.server_error}
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)  # type: ignore[arg-type]


class Pages:
    def __init__(self, access: Access, engine: Engine, zone: ZoneInfo, now: Callable[[], datetime],
                 sign_ins: SignInLimiter) -> None:
        self.access, self.engine, self.zone, self.now, self.sign_ins = access, engine, zone, now, sign_ins
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(),
                               trim_blocks=True, lstrip_blocks=True)

    # ------------------------------------------------------------------ plumbing

    def speaker(self, request: Request, zone: ZoneInfo | None = None) -> Speaker:
        lang = request.session.get("lang")
        if lang not in LANGUAGES:
            lang = negotiate(request.headers.get("accept-language"))
        return Speaker(lang=lang, zone=zone or self.zone)

    def csrf(self, request: Request) -> str:
        if not request.session.get("csrf"):
            request.session["csrf"] = new_csrf_token()
        return request.session["csrf"]

    def person(self, request: Request) -> Person | None:
        name = request.session.get("who")
        return self.access.person(name, self.csrf(request)) if name else None

    def render(self, request: Request, template: str, status: int = 200, *, person: Person | None = None,
               zone: ZoneInfo | None = None, **values: Any) -> HTMLResponse:
        speaker = self.speaker(request, zone)
        base = request.scope.get("root_path", "").rstrip("/")
        flash = request.session.pop("flash", None)
        html = self.env.get_template(template).render(
            _=speaker.gettext, ngettext=speaker.ngettext, say=speaker, person=person, csrf=self.csrf(request),
            u=lambda path="", **q: base + path + (("?" + query_string({k: v for k, v in q.items() if v not in (None, "")}))
                                                  if q else ""),
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""), flash=flash, now=self.now(), languages=LANGUAGES,
            uuid=lambda: str(uuid.uuid4()), target=SATISFACTION_TARGET, **values)
        response = HTMLResponse(html, status_code=status)
        response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                                       "script-src 'self'; frame-ancestors 'none'; form-action 'self'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    def to(self, request: Request, path: str) -> RedirectResponse:
        return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + path, status_code=303)

    def signed_in(self, request: Request, what: str) -> Person | RedirectResponse:
        person = self.person(request)
        if person is None:
            request.session.pop("who", None)
            # Back to the page after signing in (for a form sent from an expired session: its case).
            return self.to(request, "/signin?" + urlencode({"next": request.url.path.removesuffix("/act")}))
        person.require(what)
        return person

    async def checked_form(self, request: Request) -> dict[str, str]:
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        if not csrf_ok(request.session.get("csrf", ""), values.get("csrf")):
            raise HTTPException(403, "csrf")
        return values

    # ------------------------------------------------------------------ errors

    async def forbidden(self, request: Request, exc: Exception) -> Response:
        return self.render(request, "error.html", 403, person=self.person(request), code=403, what=str(exc))

    async def http_error(self, request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 500)
        return self.render(request, "error.html", code, person=self.person(request), code=code,
                           what=str(getattr(exc, "detail", "")))

    async def server_error(self, request: Request, exc: Exception) -> Response:
        log.error("console_page_failed", path=request.url.path, error=repr(exc), exc_info=exc)
        return self.render(request, "error.html", 500, code=500, what="")

    # ------------------------------------------------------------------ sign in and out

    async def home(self, request: Request) -> Response:
        person = self.person(request)
        return self.to(request, f"/{person.home}" if person else "/signin")

    async def signin(self, request: Request) -> Response:
        problem = ""
        nxt = request.query_params.get("next", "")
        if request.method == "POST":
            form = await self.checked_form(request)
            nxt = form.get("next", "")
            credential = form.get("credential", "")
            # Failed sign-ins count per address and claimed person (an empty form is no attempt).
            address = request.client.host if request.client else ""
            principal = claimed_principal(credential) if credential.strip() else None
            try:
                if credential.strip():
                    self.sign_ins.check(address, principal)
                name = self.access.sign_in(credential)
            except TooManyFailures as err:
                log.warning("console_sign_in_throttled", scope=err.scope, retry_after=err.retry_after)
                response = self.render(request, "signin.html", 429, wait=err.retry_after, next=nxt)
                response.headers["Retry-After"] = str(err.retry_after)
                return response
            except Unauthenticated as err:
                problem = str(err)
                if credential.strip():
                    self.sign_ins.failed(address, principal)
                log.info("console_sign_in_refused", reason=problem)
            else:
                lang = request.session.get("lang")
                request.session.clear()  # a new session (and CSRF token) for the signed-in person
                request.session.update({"who": name, "csrf": new_csrf_token(), **({"lang": lang} if lang else {})})
                log.info("console_signed_in", person=name)
                person = self.access.person(name, "")
                root = request.scope.get("root_path", "").rstrip("/")
                # Only a path of this console is followed after sign-in (no open redirect).
                target = nxt if nxt.startswith(root + "/") and not nxt.startswith("//") else root + f"/{person.home}"
                return RedirectResponse(target, status_code=303)
        return self.render(request, "signin.html", 401 if problem else 200, problem=problem, next=nxt)

    async def signout(self, request: Request) -> Response:
        await self.checked_form(request)
        request.session.clear()
        return self.to(request, "/signin")

    async def language(self, request: Request) -> Response:
        form = await self.checked_form(request)
        if form.get("lang") in LANGUAGES:
            request.session["lang"] = form["lang"]
        back = form.get("back", "")
        root = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(back if back.startswith(root + "/") else root + "/", status_code=303)

    # ------------------------------------------------------------------ pages

    async def queue(self, request: Request) -> Response:
        person = self.signed_in(request, "queue")
        if isinstance(person, RedirectResponse):
            return person
        scope = request.query_params.get("scope", "mine")
        offset = page_offset(request, figures.QUEUE_PAGE)
        view = self.engine.view()
        if scope == "team":
            page = await run_in_threadpool(figures.queue, view, teams=person.teams, limit=figures.QUEUE_PAGE,
                                           offset=offset)
        else:
            scope = "mine"
            page = await run_in_threadpool(figures.queue, view, assignee=person.name, limit=figures.QUEUE_PAGE,
                                           offset=offset)
        # The subjects and names from the store, for the page's rows only.
        rows = await run_in_threadpool(with_headlines, self.engine.store(), page.rows)
        return self.render(request, "queue.html", person=person, rows=rows, page=page, scope=scope,
                           size=figures.QUEUE_PAGE)

    async def board(self, request: Request) -> Response:
        person = self.signed_in(request, "board")
        if isinstance(person, RedirectResponse):
            return person
        board = await run_in_threadpool(figures.board, self.engine.view(), self.now(), figures.BOARD_ROWS)
        return self.render(request, "board.html", person=person, board=board, within=figures.AT_RISK_WITHIN,
                           actions=ACTIONS)

    def filters(self, request: Request) -> tuple[figures.Filters, str]:
        q = request.query_params
        default = figures.default_filters(self.now().astimezone(self.zone).date())
        try:
            start = figures.day_in_range(date.fromisoformat(q["from"])) if q.get("from") else default.start
            end = figures.day_in_range(date.fromisoformat(q["to"])) if q.get("to") else default.end
        except ValueError:
            return default, "bad_date"
        problem = ""
        if end < start:
            start, end, problem = end, start, "swapped"
        if (end - start).days > 3 * 366:
            start, problem = figures.years_before(end, 3), "too_long"
        grain = q.get("grain") if q.get("grain") in ("week", "month") else "month"
        return figures.Filters(start=start, end=end, team=q.get("team", ""), channel=q.get("channel", ""),
                               grain=grain), problem

    async def dashboard(self, request: Request) -> Response:
        person = self.signed_in(request, "dashboard")
        if isinstance(person, RedirectResponse):
            return person
        flt, problem = self.filters(request)
        view, now = self.engine.view(), self.now()
        board = await run_in_threadpool(figures.dashboard, view, flt, self.zone, now)
        options = await run_in_threadpool(figures.choices, view, self.zone)
        speaker = self.speaker(request)
        charts = self.charts(request, speaker, board)
        return self.render(request, "dashboard.html", person=person, d=board, f=flt, options=options,
                           problem=problem, charts=charts, ages=figures.AGE_BUCKETS)

    def charts(self, request: Request, say: Speaker, d: figures.Dashboard) -> dict[str, Any]:
        _ = say.gettext
        base = request.scope.get("root_path", "").rstrip("/")

        def link(figure: str, **extra: str) -> str:
            return f"{base}/cases?" + query_string(d.filters.query(figure=figure, **extra))

        def pct(p: str, s: dict | None, key: str, figure: str) -> Bar:
            value = None if s is None else s[key]
            return Bar(p, value, link(figure, period=p) if value is not None else "", say.percent(value))

        no_data = _("no data")
        return {
            "compliance": bar_chart("chart-compliance", _("SLA compliance (% of cases with no breach)"),
                                    [pct(p, s, "compliance_pct", "sla_met") for p, s in d.trend],
                                    top=100, unit="%", no_data=no_data),
            "fcr": bar_chart("chart-fcr", _("First contact resolution (% of closed cases)"),
                             [pct(p, s, "fcr_pct", "fcr") for p, s in d.trend], top=100, unit="%", no_data=no_data),
            "satisfaction": bar_chart(
                "chart-satisfaction", _("Satisfaction (average score, 0-100)"),
                [Bar(p, None if s is None else s["satisfaction"],
                     link("surveyed", period=p) if s and s["satisfaction"] is not None else "",
                     say.number(None if s is None else s["satisfaction"])) for p, s in d.trend],
                top=100, target=d.total["target"], target_label=_("target %(n)s", n=d.total["target"]),
                no_data=no_data),
            "opened": bar_chart("chart-opened", _("Cases opened"),
                                [Bar(p, None if s is None else s["n"]["opened"],
                                     link("opened", period=p) if s else "") for p, s in d.trend],
                                no_data=no_data),
            "backlog": bar_chart("chart-backlog", _("Open cases by age"),
                                 [Bar(a, d.backlog[a], link(f"age:{a}")) for a in figures.AGE_BUCKETS],
                                 no_data=no_data),
        }

    async def whatif(self, request: Request) -> Response:
        """What-if (casework/simulate.py): a draft policy pasted here, the stored history re-decided
        under it in memory, side by side with the terms the cases pinned. Nothing is written."""
        person = self.signed_in(request, "whatif")
        if isinstance(person, RedirectResponse):
            return person
        from casework.policy import DEFAULT_POLICY

        current = Path(self.engine.settings.sla_policy or DEFAULT_POLICY)
        values: dict[str, Any] = {"draft": "", "since": "", "until": "", "problem": "", "sim": None}
        if request.method == "POST":
            form = await self.checked_form(request)
            values.update({k: form.get(k, "") for k in ("draft", "since", "until")})
            values["problem"], values["sim"] = await run_in_threadpool(
                _simulate, self.engine.store(), values["draft"], values["since"], values["until"], self.zone)
        else:
            values["draft"] = current.read_text(encoding="utf-8")
        return self.render(request, "whatif.html", person=person, **values)

    async def cases(self, request: Request) -> Response:
        """The cases behind a dashboard figure."""
        person = self.signed_in(request, "dashboard")
        if isinstance(person, RedirectResponse):
            return person
        flt, problem = self.filters(request)
        q = request.query_params
        figure = q.get("figure", "opened")
        team = q.get("team", "") if q.get("by") == "team" else ""
        page = await run_in_threadpool(figures.drill_down, self.engine.view(), flt, self.zone, self.now(), figure,
                                       q.get("period", ""), team, limit=figures.DRILL_PAGE,
                                       offset=page_offset(request, figures.DRILL_PAGE))
        if page is None:
            raise HTTPException(404, "figure")
        # The pager's links keep everything but the page.
        query = {**flt.query(figure=figure), **({"period": q["period"]} if q.get("period") else {}),
                 **({"by": "team"} if q.get("by") == "team" else {})}
        return self.render(request, "cases.html", person=person, rows=page.rows, page=page, size=figures.DRILL_PAGE,
                           query=query, figure=figure, f=flt, period=q.get("period", ""), problem=problem,
                           request_team=team)

    async def case(self, request: Request) -> Response:
        person = self.signed_in(request, "case")
        if isinstance(person, RedirectResponse):
            return person
        case_id = request.path_params["case_id"]
        page = await run_in_threadpool(case_page, self.engine.store(), case_id, self.now(), self.zone)
        if page is None:
            raise HTTPException(404, "case")
        if not person.may_open(page.state.assignee, page.state.team):
            raise Forbidden("case")
        return self.render(request, "case.html", person=person, p=page, s=page.state, zone=page.zone,
                           command_id=str(uuid.uuid4()), actions=[a for a in ACTIONS if person.may(a)
                                                                   and self.applies(a, page.state)],
                           may_note=person.may("note"))

    async def act(self, request: Request) -> Response:
        person = self.signed_in(request, "case")
        if isinstance(person, RedirectResponse):
            return person
        case_id = request.path_params["case_id"]
        form = await self.checked_form(request)
        action = form.get("action", "")
        if action not in (*ACTIONS, "note"):
            raise HTTPException(400, "action")
        person.require(action)
        state = await run_in_threadpool(self.engine.store().state, case_id)
        if state is None:
            raise HTTPException(404, "case")
        if not person.may_open(state.assignee, state.team):
            raise Forbidden("case")
        say = self.speaker(request)
        root = request.scope.get("root_path", "").rstrip("/")
        # Back to the page the form was on (the board or the case), never to another site.
        wanted = form.get("back", "")
        back = RedirectResponse(wanted if wanted.startswith(root + "/") and not wanted.startswith("//")
                                else f"{root}/cases/{case_id}", status_code=303)
        reason = form.get("reason", "").strip()
        if not reason:
            request.session["flash"] = {"kind": "error", "text": say.gettext("Give a reason.")}
            return back
        try:
            cmd = self.command(person, action, form, reason)
        except (ValidationError, ValueError) as err:
            problems = "; ".join(e["msg"] for e in err.errors()) if isinstance(err, ValidationError) else str(err)
            request.session["flash"] = {"kind": "error", "text": say.gettext("Not sent: %(why)s", why=problems)}
            return back
        try:
            await (await self.engine.cases()).send(case_id, cmd)
        except CommandRefused as err:
            log.info("console_command_refused", case_id=case_id, action=action, code=err.code)
            request.session["flash"] = {"kind": "error",
                                        "text": say.gettext("Refused: %(why)s", why=err.message)}
            return back
        log.info("console_command_sent", case_id=case_id, action=action, person=person.name)
        request.session["flash"] = {"kind": "ok", "text": say.gettext("Done: %(action)s", action=say.gettext(
            ACTION_NAMES[action]))}
        return back

    @staticmethod
    def applies(action: str, state: Any) -> bool:
        """Offer only what the case's escalation allows (the engine refuses the rest anyway)."""
        if action == "acknowledge":
            return state.escalation_level > 0 and not state.escalation_acknowledged
        if action == "de_escalate":
            return state.escalation_level > 0
        return True

    @staticmethod
    def command(person: Person, action: str, form: dict[str, str], reason: str) -> Any:
        role = Role.supervisor if action in ACTIONS else person.acting_role
        if role is None:
            raise Forbidden(action)
        base = {"command_id": form.get("command_id") or str(uuid.uuid4()), "actor": Actor(id=person.name, role=role)}
        if action == "escalate":
            level = form.get("level", "").strip()
            return EscalateCase(**base, reason=reason, level=int(level) if level else None,
                                owner=form.get("owner", "").strip() or None)
        if action == "acknowledge":
            return AcknowledgeEscalation(**base, note=reason)
        if action == "de_escalate":
            return DeEscalate(**base, reason=reason)
        if action == "reassign":
            assignee, team = form.get("assignee", "").strip() or None, form.get("team", "").strip() or None
            if not (assignee or team):
                raise ValueError("name an assignee or a team")
            return Reassign(**base, reason=reason, assignee=assignee, team=team)
        return AddNote(**base, text=reason)


# The action names, marked for translation (the templates show them through gettext).
ACTION_NAMES = {"escalate": "Escalate", "acknowledge": "Acknowledge", "de_escalate": "De-escalate",
                "reassign": "Reassign", "note": "Add note"}


def _simulate(store: CaseStore, text: str, since: str, until: str, zone: ZoneInfo) -> tuple[str, Any]:
    """(a problem to show, or the simulation). A day is its midnight in the console's zone, as on the
    dashboard. The pasted draft is read from a temporary file (a calendar file it names by a relative
    path is not there: give such drafts to `casework simulate`)."""
    import tempfile

    from casework.policy import PolicyError, load_policy
    from casework.simulate import simulate

    try:
        start = figures.form_instant(since, zone) if since else None
        end = figures.form_instant(until, zone) if until else None
    except ValueError:
        return "bad_date", None
    with tempfile.TemporaryDirectory(prefix="casework-whatif-") as tmp:
        path = Path(tmp) / "draft.toml"
        path.write_text(text, encoding="utf-8")
        try:
            draft = load_policy(path)
        except PolicyError as err:
            return str(err).replace(str(path), "draft"), None
    return "", simulate(store, draft, start, end)
