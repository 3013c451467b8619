"""The reporting rows as the domain's state gives them: from one domain event and the case's state
after it (domain.evolve), the rows applying that event alone would write. Pure.

The projection does not build the domain state (projections/handlers.py keeps a memory of what the
rows need); these are the definition its tables are held to (tests/projections/test_batched_rows.py
folds `evolve` over the events and writes these rows, one event at a time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from projections.schema import CLOCK_NAMES
from domain.clocks import clock_views
from domain.events import Event
from domain.model import CaseState

STAFF_ROLES = ("agent", "supervisor")
ESCALATION_KINDS = {"CaseEscalated": "escalated", "EscalationAcknowledged": "acknowledged",
                    "CaseDeEscalated": "de_escalated"}


def iso(t: datetime | None) -> str | None:
    """UTC, fixed width, so text order is time order in every database: the isoformat of the UTC
    instant (its year always 4 digits, unlike strftime's %Y here), its "+00:00" written "Z", and the
    microseconds it leaves out when they are 0 written."""
    if t is None:
        return None
    u = t if t.tzinfo is UTC else t.astimezone(UTC)
    return u.isoformat()[:-6] + ("Z" if u.microsecond else ".000000Z")


def seconds(d: timedelta | None) -> float | None:
    return None if d is None else d.total_seconds()


def case_row(state: CaseState, event: Event) -> dict:
    def span(end: datetime | None, clock: str) -> tuple[float | None, float | None]:
        if end is None:
            return None, None
        # Business time as the case's own clock counted it, on the calendars in force while it ran
        # (a re-triage may have moved the case to another calendar), never recomputed on the one
        # pinned now; without SLA terms, calendar time.
        views = {v.name: v for v in clock_views(state, end)} if state.sla else {}
        business = views[clock].elapsed if clock in views else end - state.opened_at
        return seconds(end - state.opened_at), seconds(business)

    first, first_b = span(state.first_response_at, "first_response")
    resolution, resolution_b = span(state.solved_at if state.closed_at is None else
                                    (state.solved_at or state.closed_at), "resolution")
    breached = set(state.sla_breached)
    return {
        "case_id": state.case_id,
        "source_system": state.source.system if state.source else None,
        "external_id": state.source.external_id if state.source else None,
        "stage": state.stage.value, "priority": state.priority.value, "tier": state.customer.tier.value,
        "category": state.category.value, "channel": state.channel.value,
        "customer_id": state.customer.id,  # the name is personal: reports join the CRM on the id
        "team": state.team, "assignee": state.assignee,
        "opened_at": iso(state.opened_at), "first_response_at": iso(state.first_response_at),
        "solved_at": iso(state.solved_at), "closed_at": iso(state.closed_at),
        "closure_reason": state.closure_reason.value if state.closure_reason else None,
        "first_response_seconds": first, "first_response_business_seconds": first_b,
        "resolution_seconds": resolution, "resolution_business_seconds": resolution_b,
        "escalation_level": state.escalation_level, "reopen_count": state.reopen_count,
        "clarification_rounds": state.clarification_rounds, "notes_count": state.notes_count,
        # Resolved at the first contact: the customer confirmed it (a follow-up period that ran out
        # unanswered is no evidence of resolution), never reopened, never asked back.
        "first_contact_resolution": int(state.closure_reason is not None
                                        and state.closure_reason.value == "resolved"
                                        and state.reopen_count == 0 and state.clarification_rounds == 0),
        "sla_policy_version": state.sla.policy_version if state.sla else None,
        **{f"{name}_breached": int(name in breached) for name in CLOCK_NAMES},
        "satisfaction_score": state.surveys[-1].overall if state.surveys else None,
        "updated_at": iso(event.recorded_at), "events": state.version,
    }


def clock_rows(state: CaseState, at: datetime) -> list[dict]:
    # One row per clock cycle: a next_response cycle's row is final once the next cycle starts.
    return [{"case_id": state.case_id, "clock": v.name, "cycle": state.clocks[v.name].cycle,
             "state": v.state, "target_seconds": seconds(v.target),
             "started_at": iso(state.clocks[v.name].started_at), "due": iso(v.due),
             "elapsed_business_seconds": seconds(v.elapsed), "paused_seconds": seconds(v.paused),
             "met_at": iso(v.met_at), "breached_at": iso(v.breached_at), "breached": int(v.breached_at is not None),
             "warned_shares": ",".join(f"{s:g}" for s in v.warned)}
            for v in clock_views(state, at)]


def escalation_row(state: CaseState, event: Event) -> dict | None:
    kind = ESCALATION_KINDS.get(event.type)
    if kind is None:
        return None
    data = event.model_dump()
    return {"case_id": state.case_id, "seq": state.version, "at": iso(event.at), "kind": kind,
            "level": data["level"], "level_name": data.get("level_name"), "owner": data.get("owner"),
            "cause": data.get("cause"), "clock": data.get("clock"),
            # The engine's own reasons (a breach, an emergency, a bad survey) are kept; what a supervisor
            # wrote is personal free text, kept in the (sealed) event store only.
            "reason": data.get("reason") if kind == "escalated" and data.get("cause") != "supervisor" else None,
            "actor_id": event.actor.id, "actor_role": event.actor.role.value}


def activity_row(state: CaseState, event: Event) -> dict | None:
    if event.actor.role.value not in STAFF_ROLES:
        return None
    return {"case_id": state.case_id, "seq": state.version, "at": iso(event.at), "actor_id": event.actor.id,
            "actor_role": event.actor.role.value, "event_type": event.type, "stage_after": state.stage.value,
            "team": state.team}


def follow_up_rows(state: CaseState, event: Event) -> list[tuple[str, dict]]:
    """Rows for the callbacks, surveys and survey_scores tables."""
    if event.type == "CallbackAttempted":
        return [("callbacks", {"case_id": state.case_id, "attempt": event.attempt, "at": iso(event.at),
                               "channel": event.channel, "survey_skipped": event.survey_skipped or None,
                               "customer_id": state.customer.id})]
    if event.type != "SurveyRecorded":
        return []
    s = event.survey
    return [("surveys", {"case_id": state.case_id, "round": s.round, "at": iso(event.at),
                         "customer_id": state.customer.id, "overall": s.overall, "scale": s.scale,
                         "original_overall": s.original.get("overall"), "safety_incident": int(s.safety_incident),
                         "team": state.team, "assignee": state.assignee, "category": state.category.value}),
            *(("survey_scores", {"case_id": state.case_id, "round": s.round, "dimension": d, "score": v,
                                 "original": s.original[d]}) for d, v in s.scores.items())]
