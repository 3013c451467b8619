"""`evolve`: the state after an event, once for the workflow, the store's aggregate and the
projections. Pure: the same events always give the same state."""

from __future__ import annotations

from domain import events as e
from domain.clocks import evolve_clock
from domain.model import CaseState
from domain.transitions import field_changes

SLA_EVENTS = (e.SlaPolicyPinned, e.SlaClockStarted, e.SlaClockPaused, e.SlaClockResumed, e.SlaClockWarned,
              e.SlaClockBreached, e.SlaClockMet, e.SlaClockCancelled, e.SlaClockRetargeted, e.CaseEscalated,
              e.EscalationAcknowledged, e.CaseDeEscalated)


def evolve(state: CaseState | None, event: e.Event) -> CaseState:
    """The state after one event. Pure: the same events always give the same state."""
    if isinstance(event, e.CaseOpened):
        state = CaseState(case_id=event.case_id, opened_at=event.at, **event.model_dump(
            include={"source", "customer", "channel", "category", "priority", "subject",
                     "description", "assignee", "team", "follow_up_of"}))
        return _bump(state, event, {})
    assert state is not None, f"{event.type} before CaseOpened"
    if isinstance(event, SLA_EVENTS):
        return _bump(evolve_clock(state, event), event, {})
    # The fields the read models show too, by domain.transitions' rules; then those only the engine keeps.
    changes = field_changes(state, event)
    match event:
        case e.ClarificationRequested():
            changes["return_stage"] = event.return_stage
        case e.CustomerReplied() if event.resumed_stage is not None:
            changes["return_stage"] = None
        case e.SolutionProposed():
            changes["solution"] = event.summary
        case e.SolutionRevised():
            # The customer confirmed the old solution, not this one.
            changes |= {"solution": event.summary, "follow_up_due": None, "callback_due": None,
                        "solution_revisions": event.revision, "customer_confirmed": False}
        case e.FollowUpStarted():
            changes |= {"follow_up_due": event.due, "callback_due": event.callback_due, "callback_attempts": 0}
        case e.CallbackAttempted():
            changes |= {"callback_attempts": event.attempt, "callback_due": event.next_due}
            if event.channel == "survey_request":
                changes["survey_requested_round"] = state.reopen_count
        case e.SurveyRecorded():
            changes |= {"surveys": [*state.surveys, event.survey]}
        case e.RectificationRequired():
            changes |= {"rectification_pending": True}
        case e.RectificationRecorded():
            changes |= {"rectification_pending": False, "rectification_notes": state.rectification_notes + 1}
        case e.AppointmentBooked():
            changes |= {"appointment": event.appointment}
        case e.AppointmentConfirmed():
            changes |= {"appointment": state.appointment.model_copy(update={"confirmed": True})}  # type: ignore[union-attr]
        case e.ServiceReportRecorded():
            changes |= {"service_reports": state.service_reports + 1}
        case e.SolutionConfirmed():
            changes |= {"customer_confirmed": True}
        case e.SolutionRejected():
            changes |= {"callback_due": None, "follow_up_due": None, "customer_confirmed": False}
        case e.CaseReopened():
            changes["customer_confirmed"] = False
        case e.CaseClosed():
            changes |= {"return_stage": None, "follow_up_due": None, "callback_due": None}
    return _bump(state, event, changes)


def _bump(state: CaseState, event: e.Event, changes: dict) -> CaseState:
    last = event.at if state.last_fact_at is None else max(state.last_fact_at, event.at)
    return state.model_copy(update={**changes, "version": state.version + 1, "last_fact_at": last})


def replay(events: list[e.Event]) -> CaseState | None:
    return replay_on(None, events) if events else None


def replay_on(state: CaseState | None, events: list[e.Event]) -> CaseState:
    for event in events:
        state = evolve(state, event)
    assert state is not None
    return state
