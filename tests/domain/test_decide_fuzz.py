"""`decide` is total: whatever command, terms, state and instant, it returns events or refuses.

Hypothesis builds a case from a random valid history (every command kind, random payloads within
their models, random actors and roles, random instants, reported ones included), with the shipped
policy's terms or odd ones (calendars in zones with half-hour offsets and DST, spans in DST gaps,
holidays, make-up days, closures; targets from a microsecond to decades; short and long ladders;
rosters; follow-up rules), and at every step checks that:

- `decide` gives a list of events or raises CommandRefused, never another exception;
- the events evolve the state without error and survive the event store's JSON round trip;
- deciding again on the same state, command and instant gives the same answer (the workflow's
  validator and its handler decide on the same state and instant);
- a re-triage is refused without terms (the validator) exactly when it is refused with them (the
  handler), with the same code.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from casework.policy import load_policy
from domain import events as e
from domain.calendar import WEEKDAYS, BusinessCalendar
from domain.commands import COMMAND_ADAPTER, COMMAND_TYPES, OpenCase
from domain.events import EVENT_ADAPTER
from domain.lifecycle import RULES, CommandRefused, check_allowed, check_time, decide, replay_on
from domain.model import EARLIEST, LATEST, Actor, Category, Channel, ClosureReason, Priority, Role, Tier
from domain.sla import SlaPolicy

SHIPPED = load_policy(None)
EXAMPLES = int(os.environ.get("DECIDE_FUZZ_EXAMPLES", "200"))
KINDS = sorted(k for k in COMMAND_TYPES if k != "open")
# Every kind, weighted towards the ones that lead somewhere (solutions, follow-up, escalations,
# retargeting), so that random histories reach the late stages.
WEIGHTED = [*KINDS, *("propose_solution", "start_follow_up", "attempt_callback", "escalate", "de_escalate",
                      "reapply_policy", "retriage", "agree_reply_time", "request_clarification",
                      "record_customer_reply", "respond", "check_deadlines") * 2,
            *("escalate", "de_escalate", "reapply_policy") * 2]

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=8)
names = st.sampled_from(["agent-alice", "sup-sam", "cust-1", "casework", "team-lead-on-duty", "mallory"])
actors = st.builds(Actor, id=names, role=st.sampled_from(list(Role)))
# Mostly near the shipped calendar's years, sometimes anywhere a case may be, edges included.
instants = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2027, 1, 1)).map(lambda d: d.replace(tzinfo=UTC)),
    st.datetimes(EARLIEST.replace(tzinfo=None), (LATEST - timedelta(days=1)).replace(tzinfo=None))
    .map(lambda d: d.replace(tzinfo=UTC)),
    st.sampled_from([EARLIEST, LATEST - timedelta(microseconds=1), LATEST - timedelta(hours=1)]),
)
advances = st.one_of(st.just(timedelta(0)), st.integers(0, 3600).map(lambda s: timedelta(seconds=s)),
                     st.integers(0, 40 * 24).map(lambda h: timedelta(hours=h)),
                     st.integers(0, 10 ** 12).map(lambda us: timedelta(microseconds=us)))


def clamp(at: datetime) -> datetime:
    return min(max(at, EARLIEST), LATEST - timedelta(microseconds=1))


# -- odd terms --------------------------------------------------------------------------------------

ZONES = ["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
         "Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns", "Pacific/Kiritimati"]
SPANS = ["09:00-12:00", "13:00-18:00", "00:00-24:00", "02:30-03:30", "01:00-04:00", "23:00-24:00",
         "09:00-09:01", "00:00-00:30", "12:00-13:00", "18:00-23:59"]
days = st.dates(date(2024, 1, 1), date(2027, 12, 31)) | st.sampled_from([date(1990, 1, 1), date(2099, 12, 31)])


@st.composite
def calendars(draw) -> BusinessCalendar:
    zone = draw(st.sampled_from(ZONES))
    closures = draw(st.lists(st.tuples(instants, st.integers(1, 10 ** 6)), max_size=3))
    closures = [{"start": s, "end": s + timedelta(seconds=d)} for s, d in closures]
    if draw(st.booleans()) and draw(st.booleans()):
        return BusinessCalendar(name="odd-24x7", timezone=zone, always_open=True, closures=closures)
    hours = draw(st.dictionaries(st.sampled_from(WEEKDAYS), st.sampled_from(SPANS).map(lambda s: [s]),
                                 min_size=1, max_size=7))
    holidays = draw(st.lists(days, max_size=6))
    workdays = [d for d in draw(st.lists(days, max_size=4)) if d not in holidays]
    makeup = draw(st.none() | st.sampled_from(SPANS).map(lambda s: [s]))
    try:
        return BusinessCalendar(name="odd", timezone=zone, hours=hours, holidays=holidays, workdays=workdays,
                                makeup_hours=makeup, closures=closures)
    except ValidationError:  # e.g. make-up days without Monday hours to work them with
        return BusinessCalendar(name="odd", timezone=zone, hours=hours, holidays=holidays, closures=closures)


hours_targets = st.sampled_from([1e-9, 1e-6, 0.001, 0.25, 1, 3, 8, 48, 500, 10_000, 1e5, 8e5])
rule_dims = st.fixed_dictionaries({}, optional={
    "priority": st.sampled_from([p.value for p in Priority]), "tier": st.sampled_from([t.value for t in Tier]),
    "category": st.sampled_from([c.value for c in Category]), "channel": st.sampled_from([c.value for c in Channel])})


@st.composite
def odd_policies(draw) -> dict:
    cals = {f"c{i}": draw(calendars()) for i in range(draw(st.integers(1, 3)))}
    rules, seen = [], set()
    for dims in [{}, *draw(st.lists(rule_dims, max_size=5))]:
        key = tuple(sorted(dims.items()))
        if key in seen:
            continue
        seen.add(key)
        rules.append({**dims, "calendar": draw(st.sampled_from(sorted(cals))),
                      "first_response_hours": draw(hours_targets), "next_response_hours": draw(hours_targets),
                      "resolution_hours": draw(hours_targets)})
    shares = draw(st.lists(st.sampled_from([0.01, 0.25, 0.5, 0.75, 0.9, 0.99]), max_size=4, unique=True))
    ladder = [{"name": f"level-{i}", **({"owner": draw(names)} if draw(st.booleans()) else {})}
              for i in range(draw(st.sampled_from([2, 2, 3, 5])))]
    return {
        "version": "odd", "warn_at": shares, "calendars": cals, "targets": rules, "ladder": ladder,
        "escalate_on_warning": draw(st.lists(st.sampled_from(shares), unique=True)) if shares else [],
        "emergency_categories": draw(st.lists(st.sampled_from([c.value for c in Category]), unique=True)),
        "roster": draw(st.sampled_from([{}, {"agent-alice": ["agent"], "sup-sam": ["supervisor", "agent"]}])),
        "follow_up": {"delay_hours": draw(hours_targets), "min_period_hours": draw(st.sampled_from([1e-9, 1, 48])),
                      "attempts": draw(st.integers(1, 4)), "spacing_hours": draw(hours_targets),
                      "bad_result_threshold": draw(st.sampled_from([0, 60, 100])),
                      "survey_throttle_days": draw(st.integers(0, 40)),
                      "rules": [{"tier": "key_account", "delay_hours": draw(hours_targets)}]},
    }


def policy_terms(pd):
    try:
        policy = odd_policies_checked(pd[0])
    except ValidationError:
        return None  # a policy refused when it loads never reaches a case
    return policy.terms_for(*pd[1])


def odd_policies_checked(raw: dict) -> SlaPolicy:
    return SlaPolicy.model_validate(raw)


dims = st.tuples(st.sampled_from(list(Priority)), st.sampled_from(list(Tier)), st.sampled_from(list(Category)),
                 st.sampled_from(list(Channel)))
odd_terms = st.tuples(odd_policies(), dims).map(policy_terms)
terms_strategy = st.one_of(dims.map(lambda d: SHIPPED.terms_for(*d)), odd_terms)


# -- commands -----------------------------------------------------------------------------------------

scores = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 120).map(float))
surveys = st.none() | st.fixed_dictionaries({
    "scale": st.sampled_from(["0-100", "1-5", "1-10"]),
    "scores": st.dictionaries(st.sampled_from(["response_speed", "problem_solving", "attitude", "taste"]), scores,
                              min_size=1, max_size=3),
}, optional={"overall": scores, "safety_incident": st.booleans(), "comment": text})


def payload(kind: str, at: datetime):
    """Random fields for a command kind, within its model."""
    later = st.integers(-10 ** 6, 10 ** 8).map(lambda s: clamp(at + timedelta(seconds=s)))
    return {
        "request_clarification": st.fixed_dictionaries({"question": text}),
        "record_customer_reply": st.fixed_dictionaries({"message": text}),
        "respond": st.fixed_dictionaries({"message": text}),
        "retriage": st.fixed_dictionaries({"reason": text}, optional={
            "priority": st.sampled_from([p.value for p in Priority]),
            "category": st.sampled_from([c.value for c in Category])}).filter(lambda f: len(f) > 1),
        "reassign": st.fixed_dictionaries({"assignee": names}, optional={"team": text, "reason": text}),
        "propose_solution": st.fixed_dictionaries({"summary": text}),
        "revise_solution": st.fixed_dictionaries({"summary": text}),
        "start_follow_up": st.fixed_dictionaries({}, optional={"follow_up_hours": st.one_of(
            st.sampled_from([1e-9, 0.5, 1, 24, 24 * 365]), st.floats(1e-12, 24 * 365))}),
        "confirm_solution": st.fixed_dictionaries({}, optional={"comment": text, "survey": surveys}),
        "reject_solution": st.fixed_dictionaries({"reason": text}, optional={"survey": surveys}),
        "add_note": st.fixed_dictionaries({"text": text}),
        "close": st.fixed_dictionaries({"reason": st.sampled_from([r.value for r in ClosureReason])},
                                       optional={"note": text}),
        "escalate": st.fixed_dictionaries({"reason": text}, optional={"level": st.integers(1, 6), "owner": names}),
        "acknowledge": st.fixed_dictionaries({}, optional={"note": text}),
        "de_escalate": st.fixed_dictionaries({"reason": text}),
        "reapply_policy": st.fixed_dictionaries({"reason": text}),
        "check_deadlines": st.just({}),
        "attempt_callback": st.fixed_dictionaries({}, optional={"last_survey_at": later}),
        "expire_follow_up": st.just({}),
        "record_rectification": st.fixed_dictionaries({"note": text}),
        "agree_reply_time": st.fixed_dictionaries({"reply_by": later}, optional={"note": text}),
        "book_appointment": st.fixed_dictionaries({"at": later, "place": text, "need": text}),
        "confirm_appointment": st.just({}),
        "record_service_report": st.fixed_dictionaries({"work_done": text},
                                                       optional={"parts_used": st.lists(text, max_size=2)}),
    }[kind]


# The role that may send each kind, so that histories get somewhere; other roles are drawn too.
LIKELY_ROLE = {"record_customer_reply": Role.customer, "confirm_solution": Role.customer,
               "reject_solution": Role.customer, "confirm_appointment": Role.customer,
               "escalate": Role.supervisor, "acknowledge": Role.supervisor, "de_escalate": Role.supervisor,
               "reapply_policy": Role.supervisor, "record_rectification": Role.supervisor,
               "check_deadlines": Role.system, "attempt_callback": Role.system, "expire_follow_up": Role.system}
LIKELY_ID = {Role.customer: "cust-1", Role.supervisor: "sup-sam", Role.system: "casework", Role.agent: "agent-alice"}


@st.composite
def commands(draw, at: datetime, number: int, state=None, kind: str | None = None):
    if kind is None:
        kind = draw(st.sampled_from(WEIGHTED))
        if state is not None and draw(st.booleans()):  # half the time a kind the case's stage allows
            allowed = [k for k in WEIGHTED if state.stage in RULES[k][0]]
            kind = draw(st.sampled_from(allowed)) if allowed else kind
    if draw(st.integers(0, 9)) < 8:
        role = LIKELY_ROLE.get(kind, Role.agent)
        actor = Actor(id=LIKELY_ID[role], role=role)
    else:
        actor = draw(actors)
    fields = draw(payload(kind, at))
    if draw(st.integers(0, 3)) == 0:  # a reported instant: before, at or a little after the engine's time
        fields["occurred_at"] = clamp(at + timedelta(seconds=draw(st.integers(-3 * 86400, 600))))
    try:
        return COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": f"cmd-{number}", "actor": actor, **fields})
    except ValidationError:  # a payload the model refuses is the API's business, not decide's
        return None


@st.composite
def openings(draw):
    fields = {
        "command_id": "cmd-open", "actor": Actor(id="agent-alice", role=Role.agent),
        "case_id": draw(st.sampled_from(["case-f", "case-f", "case-f", None])),
        "customer": {"id": "cust-1", "name": "Wang Fang", "tier": draw(st.sampled_from([t.value for t in Tier])),
                     **({"dedicated_owner": "ka-wang"} if draw(st.booleans()) else {})},
        "channel": draw(st.sampled_from([c.value for c in Channel])),
        "category": draw(st.sampled_from(["complaint", *(c.value for c in Category)])),
        "priority": draw(st.sampled_from([p.value for p in Priority])), "subject": draw(text)}
    return OpenCase.model_validate(fields)


# -- the properties ---------------------------------------------------------------------------------------



def outcome(state, cmd, now, terms):
    """decide's answer as plain data: the refusal's code, or the events; anything else propagates."""
    try:
        out = decide(state, cmd, now, terms)
    except CommandRefused as refused:
        assert refused.code and refused.message
        return ("refused", refused.code, refused.message)
    assert isinstance(out, list) and all(isinstance(ev, e.Event) for ev in out)
    return ("events", out)


def check(state, cmd, now, terms):
    first = outcome(state, cmd, now, terms)
    again = outcome(state, cmd, now, terms)
    if first[0] == "events":
        assert again[0] == "events"
        assert [ev.model_dump() for ev in first[1]] == [ev.model_dump() for ev in again[1]]
    else:
        assert again == first
    if cmd.kind == "retriage":  # the validator decides without terms, the handler with them
        with_terms = outcome(state, cmd, now, fitting_terms(state, cmd))
        without = outcome(state, cmd, now, None)
        assert with_terms[0] == without[0]
        if without[0] == "refused":
            assert with_terms[1] == without[1]
    if cmd.kind == "reapply_policy" and state is not None:
        # The workflow's validator runs check_time and check_allowed (the terms are read after
        # acceptance): it refuses exactly what the handler refuses, with the same code.
        handler = outcome(state, cmd, now, fitting_terms(state, cmd))
        try:
            check_time(state, cmd, now)
            check_allowed(state, cmd)
            validator = None
        except CommandRefused as refused:
            validator = refused.code
        assert validator == (handler[1] if handler[0] == "refused" else None)
    if first[0] == "refused":
        return state, first[1]
    out = first[1]
    after = replay_on(state, out) if out else state  # evolves without error
    for ev in out:  # and is what the store can keep
        assert EVENT_ADAPTER.validate_json(EVENT_ADAPTER.dump_json(ev)) == ev
    if out and state is not None:
        assert after.version == state.version + len(out)
        assert after.last_fact_at >= state.last_fact_at
    return after, "ok"


def shape_after(state, cmd) -> tuple:
    """The case's priority, tier, category and channel once the command is applied."""
    return (getattr(cmd, "priority", None) or state.priority, state.customer.tier,
            getattr(cmd, "category", None) or state.category, state.channel)


def fitting_terms(state, cmd):
    """The terms the workflow reads for a command: chosen for the case's shape after it (a random
    shape's terms are refused `stale_terms`, which the validator, deciding without terms, cannot know)."""
    if state is None:
        return SHIPPED.terms_for("normal", "C", "fault", "email")
    pinned = state.sla.policy if state.sla is not None and cmd.kind == "retriage" else None
    return (pinned or SHIPPED).terms_for(*shape_after(state, cmd))


def fitting_odd_terms(state, cmd):
    """An odd policy's terms, chosen for the case's shape: they get past the `stale_terms` check."""
    return st.tuples(odd_policies(), st.just(shape_after(state, cmd))).map(policy_terms)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(st.data())
def test_decide_answers_every_command_with_events_or_a_refusal(data):
    t = data.draw(instants, "opened at")
    terms = data.draw(st.none() | terms_strategy | terms_strategy, "terms")
    state, how = check(None, data.draw(openings(), "open"), t, terms)
    note(f"open: {how}")
    for number in range(data.draw(st.integers(0, 30), "steps")):
        t = clamp(t + data.draw(advances))
        cmd = data.draw(commands(t, number, state))
        if cmd is None:
            continue
        new_terms = (data.draw(st.none() | terms_strategy | fitting_odd_terms(state, cmd) | fitting_odd_terms(state, cmd))
                     if cmd.kind in ("retriage", "reapply_policy") and state is not None else None)
        if data.draw(st.integers(0, 19)) == 0:
            new_terms = data.draw(terms_strategy)  # terms given where none are expected change nothing
        state, how = check(state, cmd, t, new_terms)
        note(f"{t.isoformat()} {cmd.kind} by {cmd.actor.role.value}: {how}")
        if state is None:
            break
    if state is None or state.is_closed:
        return
    # The case as it ends up, perhaps under another policy (a shorter ladder, other calendars): every
    # kind of command, from its likely sender, at a later instant.
    if data.draw(st.booleans(), "re-applied"):
        supervisor = Actor(id="sup-sam", role=Role.supervisor)
        reapply = COMMAND_ADAPTER.validate_python({"kind": "reapply_policy", "command_id": "cmd-reapply",
                                                   "actor": supervisor, "reason": "new policy"})
        state, how = check(state, reapply, t, data.draw(fitting_odd_terms(state, reapply), "re-applied terms"))
        note(f"re-applied: {how}")
    t = clamp(t + data.draw(advances))
    for kind in KINDS:
        cmd = data.draw(commands(t, 1000, state, kind=kind))
        if cmd is not None:
            check(state, cmd, t, data.draw(terms_strategy) if kind in ("retriage", "reapply_policy") else None)


def test_the_histories_get_somewhere():
    """The strategies reach the late stages and the SLA events, or the property proves little."""
    seen_kinds: set[str] = set()

    # 200: with the terms read for the case as it is (stale ones are refused), 100 examples no longer
    # reached an accepted agree_reply_time.
    @settings(max_examples=200, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(st.data())
    def run(data):
        t = data.draw(st.datetimes(datetime(2026, 1, 1), datetime(2026, 6, 1)).map(lambda d: d.replace(tzinfo=UTC)))
        state, _ = check(None, data.draw(openings()).model_copy(update={"case_id": "case-f"}), t,
                         SHIPPED.terms_for("normal", "C", "complaint", "email"))
        for number in range(30):
            t = clamp(t + data.draw(advances))
            cmd = data.draw(commands(t, number, state))
            if cmd is None:
                continue
            state, how = check(state, cmd, t, fitting_terms(state, cmd))
            if how == "ok":
                seen_kinds.add(cmd.kind)

    run()
    assert {"propose_solution", "start_follow_up", "confirm_solution", "reject_solution", "retriage",
            "reapply_policy", "escalate", "agree_reply_time", "check_deadlines"} <= seen_kinds
    # (attempt_callback is refused `not_due` before its instant, which random instants rarely reach;
    # its accepted paths are in the scenario and follow-up tests.)


# -- the defects this test found, one by one ------------------------------------------------------------

T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)  # Mon 09:00 in Shanghai
AGENT = Actor(id="agent-alice", role=Role.agent)
SUPERVISOR = Actor(id="sup-sam", role=Role.supervisor)
ENGINE = Actor(id="casework", role=Role.system)


def cmd(kind: str, actor: Actor = AGENT, **fields):
    return COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": f"c-{kind}", "actor": actor, **fields})


def opened(terms, **fields):
    base = {"command_id": "c-open", "actor": AGENT, "case_id": "case-r", "subject": "s", "channel": "email",
            "category": "fault", "priority": "normal", "customer": {"id": "cust-1", "name": "W", "tier": "C"}}
    return replay_on(None, decide(None, OpenCase.model_validate({**base, **fields}), T0, terms))


def test_a_callback_on_a_case_without_follow_up_terms_is_refused():
    # Was: AttributeError ('NoneType' object has no attribute 'follow_up') in domain/followup.py.
    state = opened(None)
    for c in (cmd("propose_solution", summary="reset"), cmd("start_follow_up")):
        state = replay_on(state, decide(state, c, T0))
    try:
        decide(state, cmd("attempt_callback", ENGINE), T0)
    except CommandRefused as refused:
        assert refused.code == "no_follow_up_policy"
    else:
        raise AssertionError("attempt_callback without follow-up terms was not refused")


def test_de_escalating_below_a_shortened_ladder():
    # Was: IndexError when a re-applied policy's ladder is shorter than the case's escalation level.
    state = opened(SHIPPED.terms_for("normal", "C", "safety_incident", "email"), category="safety_incident")
    assert state.escalation_level == 3
    short = SlaPolicy.model_validate({**SHIPPED.model_dump(), "ladder": [{"name": "agent"}, {"name": "lead"}]})
    state = replay_on(state, decide(state, cmd("reapply_policy", SUPERVISOR, reason="new ladder"), T0,
                                    short.terms_for("normal", "C", "safety_incident", "email")))
    out = decide(state, cmd("de_escalate", SUPERVISOR, reason="handled"), T0)
    assert [(ev.type, ev.level, ev.level_name) for ev in out] == [("CaseDeEscalated", 1, "lead")]


def test_a_supervisor_escalation_after_a_breach_took_the_case_to_the_top():
    # Was: AssertionError in _supervisor_escalation (the breach that fell due before the command
    # escalated an urgent case to emergency response after check_allowed had passed), and an
    # "escalation" to level 2 that took the case down from 3.
    state = opened(SHIPPED.terms_for("urgent", "C", "fault", "email"), priority="urgent")
    later = T0 + timedelta(minutes=20)  # first response due at 09:15
    for fields, code in (({}, "top_level"), ({"level": 2}, "bad_level")):
        try:
            decide(state, cmd("escalate", SUPERVISOR, reason="customer called", **fields), later)
        except CommandRefused as refused:
            assert refused.code == code
        else:
            raise AssertionError(f"escalate {fields} was not refused")


def test_a_policy_whose_targets_cannot_be_represented_is_refused_when_it_loads():
    # Was: the policy loaded, then terms_for raised OverflowError for every case it applied to.
    raw = SHIPPED.model_dump()
    for hours in (1e12, float("inf")):
        bad = {**raw, "targets": [{**raw["targets"][0], "resolution_hours": hours}, *raw["targets"][1:]]}
        try:
            SlaPolicy.model_validate(bad)
        except ValidationError as err:
            assert "resolution_hours" in str(err)
        else:
            raise AssertionError(f"a resolution target of {hours} h was accepted")
    century = {**raw, "targets": [{**raw["targets"][0], "resolution_hours": 24 * 366 * 100}, *raw["targets"][1:]]}
    assert opened(SlaPolicy.model_validate(century).terms_for("normal", "C", "fault", "email")).clocks
