"""The fault harness's accounting (bench/fault.py) on histories written by hand: it must see a lost,
a doubled, a stray and a wrongly refused event, an SLA fact stored twice and a deadline that never
fired — a harness that can only say 0 proves nothing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.fault import FACTS, POLICY, Sent, account, after_close, own_fact, sla_check
from casework.policy import load_policy
from domain import events as e
from domain.model import ENGINE, Actor, Role

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = Actor(id="agent-alice", role=Role.agent)
TERMS = load_policy(POLICY).terms_for("normal", "B", "fault", "email")  # 21.6 s, 90 s; warnings 0.5/0.75/0.9


def base(command_id: str, seconds: float = 0.0, actor: Actor = AGENT) -> dict:
    at = T0 + timedelta(seconds=seconds)
    return {"case_id": "c-1", "command_id": command_id, "actor": actor, "at": at, "recorded_at": at}


def opened() -> list[e.Event]:
    b = base("open-1")
    return [e.CaseOpened(**b, source=None, customer={"id": "cust-1", "name": "A", "tier": "B"}, channel="email",
                         category="fault", priority="normal", subject="s", description=""),
            e.SlaPolicyPinned(**b, terms=TERMS),
            e.SlaClockStarted(**b, clock="first_response", target=TERMS.targets["first_response"],
                              due=T0 + TERMS.targets["first_response"]),
            e.SlaClockStarted(**b, clock="resolution", target=TERMS.targets["resolution"],
                              due=T0 + TERMS.targets["resolution"])]


def sent(command_id: str, kind: str, outcome: str = "accepted") -> Sent:
    return Sent("c-1", command_id, kind, "path", FACTS[kind], outcome=outcome)


def note(command_id: str, seconds: float) -> e.NoteAdded:
    return e.NoteAdded(**base(command_id, seconds), text="x")


def test_lost_doubled_stray_and_wrongly_refused_events_are_counted():
    history = [*opened(), note("n-1", 1), note("n-2", 2), note("n-2", 2), note("n-4", 3), note("n-5", 4)]
    ledger = [sent("open-1", "open"), sent("n-1", "add_note"), sent("n-2", "add_note"), sent("n-3", "add_note"),
              sent("n-4", "add_note", "refused"), sent("n-6", "add_note", "unanswered")]
    acc = account(ledger, {"c-1": history})
    assert acc["lost"] == Counter({"NoteAdded": 1})  # n-3 accepted, not stored
    assert acc["doubled"] == Counter({"NoteAdded": 1})  # n-2 stored twice
    assert acc["refused_stored"] == Counter({"NoteAdded": 1})  # n-4 refused, stored
    assert acc["foreign"] == Counter({"NoteAdded": 1})  # n-5 never sent
    # An unanswered command is not judged here (its case counts as stalled).
    assert all(x["command_id"] != "n-6" for xs in acc["examples"].values() for x in xs)


def test_timer_commands_and_the_deadlines_a_command_records_first_are_not_its_own_facts():
    b = base("esc-1", 30)
    warned = e.SlaClockWarned(**b, clock="resolution", share=0.75, due=T0 + TERMS.targets["resolution"])
    by_warning = e.CaseEscalated(**b, level=1, level_name="team_lead", owner=None, cause="warning", clock="resolution")
    by_supervisor = e.CaseEscalated(**b, level=2, level_name="service_manager", owner=None, cause="supervisor")
    tick = e.SlaClockWarned(**base("timer:check_deadlines@5", 11, ENGINE), clock="first_response", share=0.5,
                            due=T0 + TERMS.targets["first_response"])
    history = [*opened(), tick, warned, by_warning, by_supervisor]
    escalate = sent("esc-1", "escalate")
    assert [own_fact(x, escalate) for x in (warned, by_warning, by_supervisor)] == [False, False, True]
    acc = account([sent("open-1", "open"), escalate], {"c-1": history})
    assert not (acc["lost"] or acc["doubled"] or acc["unexpected"] or acc["foreign"])


def test_an_sla_fact_stored_twice_is_doubled_and_a_new_cycle_is_not():
    due_fr = T0 + TERMS.targets["first_response"]
    warn = e.SlaClockWarned(**base("timer:check_deadlines@4", 10.8, ENGINE), clock="first_response", share=0.5,
                            due=due_fr)
    again = e.SlaClockWarned(**base("timer:check_deadlines@5", 10.9, ENGINE), clock="first_response", share=0.5,
                             due=due_fr)
    respond = base("r-1", 12)
    history = [*opened(), warn, again, e.ResponseSent(**respond, message="m", first_response=True),
               e.SlaClockMet(**respond, clock="first_response", late=False)]
    doubled, lost, _ = sla_check(history, T0 + timedelta(seconds=20), timedelta(seconds=45))
    assert doubled == Counter({"SlaClockWarned": 1}) and not lost

    # next_response starts again after each customer reply: each cycle warns anew, never twice per cycle.
    def cycle(n: int, start: float) -> list[e.Event]:
        target = TERMS.targets["next_response"]
        b, tick = base(f"reply-{n}", start), base(f"timer:check_deadlines@{n}", start + 11, ENGINE)
        return [e.SlaClockStarted(**b, clock="next_response", target=target, due=b["at"] + target, cycle=n),
                e.SlaClockWarned(**tick, clock="next_response", share=0.5, due=b["at"] + target),
                e.SlaClockMet(**base(f"answer-{n}", start + 12), clock="next_response", late=False)]
    history = [*opened()[:3], *cycle(1, 1), *cycle(2, 20)]
    doubled, _, _ = sla_check(history, T0 + timedelta(seconds=40), timedelta(seconds=45))
    assert not doubled
    started_twice = [*opened(), opened()[2]]
    doubled, _, _ = sla_check(started_twice, T0, timedelta(seconds=45))
    assert doubled == Counter({"SlaClockStarted": 1})


def test_a_deadline_long_past_without_its_event_is_lost():
    history = opened()  # first_response due after 21.6 s, resolution after 90 s: nothing ever fired
    _, lost, notes = sla_check(history, T0 + timedelta(seconds=200), timedelta(seconds=45))
    # first_response: 3 warnings and the breach; resolution: the warnings at 45 s, 67.5 s, 81 s and the
    # breach at 90 s are all more than 45 s before the end.
    assert lost == Counter({"SlaClockWarned": 6, "SlaClockBreached": 2}), notes
    _, lost, _ = sla_check(history, T0 + timedelta(seconds=30), timedelta(seconds=45))
    assert not lost  # still within the grace


def test_events_after_the_close_are_counted():
    b = base("close-1", 5)
    closed = [*opened(), e.CaseClosed(**b, reason="duplicate", note=""),
              e.SlaClockCancelled(**b, clock="first_response", reason="closed")]
    assert after_close(closed) == 0
    assert after_close([*closed, note("late", 6)]) == 1
