"""Follow-up after a solution: callbacks and their retries, satisfaction surveys and rectification.
Pure: the throttle's input (the customer's last survey) is read by the workflow and passed in."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain import commands as c
from domain import events as e
from domain.escalation import escalation_to, top_level
from domain.model import CaseState, ClosureReason, Survey

SCALES = {"0-100": (0.0, 100.0), "1-5": (1.0, 5.0), "1-10": (1.0, 10.0)}


class SurveyInvalid(ValueError):
    pass


def follow_up_started(state: CaseState, cmd: c.StartFollowUp, base: dict, now: datetime) -> e.FollowUpStarted:
    terms = state.sla.follow_up if state.sla else None
    if cmd.follow_up_hours is not None or terms is None:
        # Counted from the engine's clock, not a reported past time: an imported follow-up must
        # not expire before the customer's recorded answer arrives.
        return e.FollowUpStarted(**base, due=now + timedelta(hours=cmd.follow_up_hours or 7 * 24))
    return e.FollowUpStarted(**base, due=None, callback_due=now + terms.delay)


def callback_attempted(state: CaseState, cmd: c.AttemptCallback, base: dict, now: datetime) -> list[e.Event]:
    """The next callback, or, once every attempt went unanswered, the case closing for no response."""
    terms = state.sla.follow_up  # type: ignore[union-attr]
    assert terms is not None
    if state.callback_attempts >= terms.attempts:
        return [e.CaseClosed(**base, reason=ClosureReason.no_response,
                             note=f"follow-up: {terms.attempts} callbacks went unanswered")]
    skipped = survey_skip_reason(state, cmd.last_survey_at, now)
    return [e.CallbackAttempted(**base, attempt=state.callback_attempts + 1,
                                channel="agent_callback" if skipped else "survey_request",
                                survey_skipped=skipped, next_due=now + terms.spacing)]


def survey_skip_reason(state: CaseState, last_survey_at: datetime | None, now: datetime) -> str:
    terms = state.sla.follow_up  # type: ignore[union-attr]
    if state.survey_requested_round == state.reopen_count or any(s.round == state.reopen_count
                                                                  for s in state.surveys):
        return "one survey per solution: already asked"
    if last_survey_at is not None and now - last_survey_at < timedelta(days=terms.survey_throttle_days):
        return f"throttled: customer surveyed on {last_survey_at:%Y-%m-%d} (one per {terms.survey_throttle_days} days)"
    return ""


def to_survey(state: CaseState, answer: c.SurveyAnswer) -> Survey:
    dimensions = state.sla.follow_up.survey_dimensions if state.sla and state.sla.follow_up else ()
    unknown = sorted(set(answer.scores) - set(dimensions)) if dimensions else []
    if unknown:
        raise SurveyInvalid(f"unknown survey dimension(s) {', '.join(unknown)} "
                            f"(configured: {', '.join(dimensions)})")
    low, high = SCALES[answer.scale]
    values = {**answer.scores, **({"overall": answer.overall} if answer.overall is not None else {})}
    for name, value in values.items():
        if not low <= value <= high:
            raise SurveyInvalid(f"survey score {name}={value} is outside the {answer.scale} scale")

    def convert(v: float) -> float:
        return round((v - low) / (high - low) * 100, 1)

    scores = {k: convert(v) for k, v in answer.scores.items()}
    overall = convert(answer.overall) if answer.overall is not None else round(sum(scores.values()) / len(scores), 1)
    return Survey(round=state.reopen_count, scores=scores, overall=overall, scale=answer.scale,
                  original=values, safety_incident=answer.safety_incident, comment=answer.comment)


def survey_events(state: CaseState, answer: c.SurveyAnswer, base: dict) -> list[e.Event]:
    """The survey, and what a bad result or a reported safety incident sets off."""
    if any(s.round == state.reopen_count for s in state.surveys):
        raise SurveyInvalid("this solution has been surveyed already (one survey per solution)")
    survey = to_survey(state, answer)
    out: list[e.Event] = [e.SurveyRecorded(**base, survey=survey)]
    threshold = state.sla.follow_up.bad_result_threshold if state.sla and state.sla.follow_up else 60.0
    if survey.safety_incident and state.sla:  # the seeds' 100-1=0 rule: emergency response at once
        out.append(escalation_to(state, base, top_level(state), "safety_incident",
                                 reason="safety incident reported in a survey"))
    if survey.overall < threshold:
        out.append(e.RectificationRequired(**base, reason=f"survey score {survey.overall:g} below {threshold:g}"))
        if state.sla and state.escalation_level < 1 and not survey.safety_incident:
            # The team lead (level 1) must record the rectification.
            out.append(escalation_to(state, base, 1, "bad_survey", reason=f"survey score {survey.overall:g}"))
    return out
