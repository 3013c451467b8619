"""`decide`: the events a command produces on a case, or the refusal saying why not. Each command
declares where and by whom it may be sent (domain/commands.py); what it does is decided here."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain import commands as c
from domain import events as e
from domain.clocks import clock_events, opening_events, passing_time_events, retarget_events
from domain.escalation import escalation_for, escalation_to, top_level
from domain.evolve import evolve, replay_on
from domain.followup import SurveyInvalid, callback_attempted, follow_up_started, survey_events
from domain.model import Appointment, CaseState, ClosureReason, Role, Stage
from domain.refusal import CommandRefused
from domain.reopen import reopen_events
from domain.sla import SlaTerms

def decide(state: CaseState | None, cmd: c.Command, now: datetime,
           terms: SlaTerms | None = None) -> list[e.Event]:
    """The events a command produces, or CommandRefused saying why not.

    `terms` are the SLA terms to pin when a case opens. Each lifecycle fact is followed by the clock
    events it implies, so the clocks are explained by events as much as the stages are.
    """
    check_time(state, cmd, now)
    if isinstance(cmd, c.OpenCase):
        return _open(state, cmd, now, terms)
    kind = cmd.kind  # type: ignore[attr-defined]
    if state is None:
        raise CommandRefused("not_open", f"command '{kind}' refused: the case is not open yet")
    base = _base(state.case_id, cmd, now, state.last_fact_at, state.customer.id)
    reopened = reopen_events(state, cmd, base)  # a closed case the customer came back to, in time
    state = replay_on(state, reopened) if reopened else state
    check_allowed(state, cmd)
    if isinstance(cmd, c.ExpireFollowUp):
        base = _expiry_base(state, base)
    if isinstance(cmd, c.CheckDeadlines):
        return passing_time_events(state, base, base["at"])
    if isinstance(cmd, c.ReapplyPolicy) and terms is None:
        raise CommandRefused("no_policy", "command 'reapply_policy' needs the current policy's terms")
    _check_terms_fit(state, cmd, terms)
    # The clocks are evaluated as of the command's instant first: a warning or breach that fell due
    # before it is a fact before it, whether or not the case's timer has fired yet.
    out: list[e.Event] = passing_time_events(state, base, base["at"], inclusive=False)
    state = replay_on(state, out)
    if out:  # a breach that fell due may have escalated the case: the command must still make sense
        check_allowed(state, cmd)
    out = reopened + out
    if isinstance(cmd, c.ReapplyPolicy):
        return out + retarget_events(state, base, terms, reason=f"policy re-applied: {cmd.reason}")
    for fact in _facts(state, cmd, base):
        if reopened and isinstance(fact, e.SolutionRejected):  # the reopen counted it already
            fact = fact.model_copy(update={"reopen_count": state.reopen_count})
        after = evolve(state, fact)
        implied = clock_events(state, after, fact, base)
        if isinstance(fact, e.CaseRetriaged) and terms is not None:
            implied = [*implied, *retarget_events(after, base, terms, reason=(
                f"re-triaged to {fact.priority.value}/{fact.category.value}"))]
        out += [fact, *implied]
        state = replay_on(after, implied)
    return out


# A sender's clock may run a little ahead of the engine's; more than this is a wrong date.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def check_time(state: CaseState | None, cmd: c.Command, now: datetime) -> None:
    """A live command happens now, or at a reported instant that is not in the future and not
    before the case's last recorded fact (backfilling history is the importer's job)."""
    kind = cmd.kind  # type: ignore[attr-defined]
    at = cmd.occurred_at
    if at is None:
        return
    if at > now + MAX_CLOCK_SKEW:
        raise CommandRefused("occurred_in_future", f"command '{kind}' refused: occurred_at {at.isoformat()} "
                             f"is in the future (engine time {now.isoformat()})")
    if state is not None and state.last_fact_at is not None and at < state.last_fact_at:
        raise CommandRefused("occurred_before_last_fact", (
            f"command '{kind}' refused: occurred_at {at.isoformat()} is before the case's last recorded "
            f"fact ({state.last_fact_at.isoformat()}); a case's history is recorded in order (import "
            "older history with the importer)"))


def _open(state: CaseState | None, cmd: c.OpenCase, now: datetime, terms: SlaTerms | None) -> list[e.Event]:
    if state is not None:
        raise CommandRefused("already_open", f"case {state.case_id} is already open")
    if not cmd.case_id:
        raise CommandRefused("invalid", "command 'open' needs a case_id")
    if cmd.actor.role is Role.customer and cmd.actor.id != cmd.customer.id:
        raise CommandRefused("not_your_case", f"command 'open' refused: customer '{cmd.actor.id}' may open "
                             f"cases only as themselves (the case names customer '{cmd.customer.id}')")
    base = _base(cmd.case_id, cmd, now, None, cmd.customer.id)
    out: list[e.Event] = [e.CaseOpened(**base, **cmd.model_dump(
        include={"source", "customer", "channel", "category", "priority", "subject",
                 "description", "assignee", "team", "follow_up_of"}))]
    if terms is not None:
        out += opening_events(base, terms)
        opened = replay_on(None, out)
        if opened.category in terms.emergency_categories:  # a safety incident: emergency response at once
            out.append(escalation_to(opened, base, top_level(opened), "emergency", reason=opened.category.value))
    return out


def _facts(state: CaseState, cmd: c.Command, base: dict) -> list[e.Event]:
    """The lifecycle facts of an allowed command (clock events are added by `decide`)."""
    kind = cmd.kind  # type: ignore[attr-defined]
    now = base["recorded_at"]
    match cmd:
        case c.RequestClarification():
            waiting = state.stage is Stage.needs_clarification
            return [e.ClarificationRequested(**base, question=cmd.question,
                                             return_stage=state.return_stage if waiting else state.stage)]
        case c.RecordCustomerReply():
            resumed = state.return_stage if state.stage is Stage.needs_clarification else None
            return [e.CustomerReplied(**base, message=cmd.message, resumed_stage=resumed)]
        case c.Respond():
            return [e.ResponseSent(**base, message=cmd.message,
                                   first_response=state.first_response_at is None)]
        case c.Retriage():
            return [e.CaseRetriaged(**base, priority=cmd.priority or state.priority,
                                    category=cmd.category or state.category,
                                    previous_priority=state.priority,
                                    previous_category=state.category, reason=cmd.reason)]
        case c.Reassign():
            return [e.CaseReassigned(**base, assignee=cmd.assignee or state.assignee,
                                     team=cmd.team or state.team, previous_assignee=state.assignee,
                                     previous_team=state.team, reason=cmd.reason)]
        case c.ProposeSolution():
            return [e.SolutionProposed(**base, summary=cmd.summary)]
        case c.ReviseSolution():
            return [e.SolutionRevised(**base, summary=cmd.summary,
                                      revision=state.solution_revisions + 1)]
        case c.StartFollowUp():
            return [follow_up_started(state, cmd, base, now)]
        case c.ConfirmSolution():
            out = [e.SolutionConfirmed(**base, comment=cmd.comment), *_surveyed(state, cmd.survey, base)]
            # A bad result, now or before, keeps the case open until the rectification is recorded.
            if not (state.rectification_pending or any(isinstance(x, e.RectificationRequired) for x in out)):
                out.append(e.CaseClosed(**base, reason=ClosureReason.resolved, note=cmd.comment))
            return out
        case c.RejectSolution():
            return [*_surveyed(state, cmd.survey, base),  # rates the solution being rejected
                    e.SolutionRejected(**base, reason=cmd.reason, reopen_count=state.reopen_count + 1)]
        case c.RecordRectification():
            out = [e.RectificationRecorded(**base, note=cmd.note)]
            if state.customer_confirmed:
                out.append(e.CaseClosed(**base, reason=ClosureReason.resolved, note="rectified: " + cmd.note))
            return out
        case c.AgreeReplyTime():
            if cmd.reply_by <= base["at"]:
                raise CommandRefused("invalid", f"command 'agree_reply_time' refused: reply_by {cmd.reply_by} "
                                     "is not in the future")
            return [e.ReplyTimeAgreed(**base, reply_by=cmd.reply_by, note=cmd.note)]
        case c.BookAppointment():
            return [e.AppointmentBooked(**base, appointment=Appointment(at=cmd.at, place=cmd.place, need=cmd.need))]
        case c.ConfirmAppointment():
            return [e.AppointmentConfirmed(**base)]
        case c.RecordServiceReport():
            return [e.ServiceReportRecorded(**base, work_done=cmd.work_done, parts_used=cmd.parts_used)]
        case c.AttemptCallback():
            _due_or_refuse(kind, state.callback_due, base["at"])
            return callback_attempted(state, cmd, base, now)
        case c.AddNote():
            return [e.NoteAdded(**base, text=cmd.text)]
        case c.CloseCase():
            return [e.CaseClosed(**base, reason=cmd.reason, note=cmd.note)]
        case c.ExpireFollowUp():
            _due_or_refuse(kind, state.follow_up_due, base["at"])  # dated by _expiry_base
            return [e.CaseClosed(**base, reason=ClosureReason.resolved_unconfirmed,
                                 note="follow-up period ran out without an answer from the customer")]
        case c.EscalateCase():
            return [_supervisor_escalation(state, cmd, base)]
        case c.AcknowledgeEscalation():
            return [e.EscalationAcknowledged(**base, level=state.escalation_level, note=cmd.note)]
        case c.DeEscalate():
            # One level down, or to the top of the ladder now pinned should a re-applied policy
            # have shortened it below the case's level.
            level = min(state.escalation_level - 1, len(state.sla.ladder) - 1)  # type: ignore[union-attr]
            step = state.sla.ladder[level]  # type: ignore[union-attr]
            return [e.CaseDeEscalated(**base, level=level, level_name=step.name, owner=step.owner,
                                      reason=cmd.reason)]
    raise CommandRefused("unknown_command", f"unknown command '{kind}'")


def _due_or_refuse(kind: str, due: datetime | None, at: datetime) -> None:
    # A timer's command from a stale state (a reset run, a timer queued behind a command that moved
    # the deadline) must not act on a deadline that has not come.
    if due is None or due > at:
        raise CommandRefused("not_due", f"command '{kind}' refused: nothing is due "
                             f"({'no deadline' if due is None else 'due ' + due.isoformat()})")


def _expiry_base(state: CaseState, base: dict) -> dict:
    # The follow-up period's end is recorded when the period ran out, not when the timer happened to
    # fire (a worker was down), and the clocks are evaluated as of that instant: nothing falling due
    # after the close is recorded before it (a promise due later is cancelled by the close).
    due = state.follow_up_due
    if due is not None and due < base["at"]:
        return {**base, "at": max(due, state.last_fact_at or due)}
    return base


def _check_terms_fit(state: CaseState, cmd: c.Command, terms: SlaTerms | None) -> None:
    # Terms are read for the case as the sender saw it; a command decided on a case that moved on
    # meanwhile (a concurrent re-triage) must not pin a rule chosen for a shape it no longer has.
    if terms is None or not isinstance(cmd, (c.Retriage, c.ReapplyPolicy)):
        return
    priority = (cmd.priority if isinstance(cmd, c.Retriage) else None) or state.priority
    category = (cmd.category if isinstance(cmd, c.Retriage) else None) or state.category
    pinned = state.sla.policy_version if state.sla else None
    if isinstance(cmd, c.Retriage) and state.sla is not None and state.sla.policy is not None \
            and terms.policy_version != pinned:
        raise CommandRefused("policy_changed", (
            f"command 'retriage' refused: its terms come from policy {terms.policy_version}, the case holds "
            f"{pinned}; a re-triage chooses from the pinned version (an edited policy is applied with "
            "reapply_policy)"))
    if not terms.fits(priority, state.customer.tier, category, state.channel):
        given = terms.chosen_for.describe() if terms.chosen_for else "?"
        shape = "/".join(x.value for x in (priority, state.customer.tier, category, state.channel))
        raise CommandRefused("stale_terms", (
            f"command '{cmd.kind}' refused: the SLA terms given were chosen for {given}, the case is "
            f"{shape}; read them again for the case as it is"))


def _surveyed(state: CaseState, answer: c.SurveyAnswer | None, base: dict) -> list[e.Event]:
    if answer is None:
        return []
    try:
        return survey_events(state, answer, base)
    except SurveyInvalid as err:
        raise CommandRefused("invalid_survey", f"survey refused: {err}") from None


def _supervisor_escalation(state: CaseState, cmd: c.EscalateCase, base: dict) -> e.CaseEscalated:
    if cmd.level is None and cmd.owner is None:
        auto = escalation_for(state, base, cause="supervisor", reason=cmd.reason)
        assert auto is not None  # the top of the ladder is refused in check_allowed
        return auto
    level = cmd.level or min(state.escalation_level + 1, top_level(state))
    return escalation_to(state, base, level, "supervisor", owner=cmd.owner, reason=cmd.reason)


def check_allowed(state: CaseState, cmd: c.Command) -> None:
    """Raise CommandRefused unless the command's stage, role and preconditions hold."""
    kind = cmd.kind  # type: ignore[attr-defined]
    if not cmd.STAGES:  # the opening is decided on its own
        raise CommandRefused("unknown_command", f"unknown command '{kind}'")
    stages, roles = cmd.STAGES, cmd.ROLES
    where = f"case {state.case_id} is in stage '{state.stage.value}'"
    if state.stage is Stage.closed:
        raise CommandRefused("case_closed", f"command '{kind}' refused: {where} (closed)")
    if state.stage not in stages:
        allowed = ", ".join(sorted(s.value for s in stages))
        raise CommandRefused("not_allowed_in_stage",
                             f"command '{kind}' is not allowed in stage '{state.stage.value}' "
                             f"(case {state.case_id}; allowed in: {allowed})")
    if cmd.actor.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        raise CommandRefused("role_not_allowed",
                             f"command '{kind}' refused: role '{cmd.actor.role.value}' of actor "
                             f"'{cmd.actor.id}' may not send it (allowed roles: {allowed})")
    if cmd.actor.role is Role.customer and cmd.actor.id != state.customer.id:
        # Who a customer is cannot be checked without a principal registry; which case is theirs can.
        raise CommandRefused("not_your_case", f"command '{kind}' refused: customer '{cmd.actor.id}' may act "
                             f"only on their own cases ({where} and belongs to another customer)")
    _check_roster(state, cmd, kind)
    if isinstance(cmd, c.CloseCase):
        _check_close(state, cmd, where)
    _check_follow_up(state, cmd, kind, where)
    if kind in ("escalate", "acknowledge", "de_escalate", "reapply_policy"):
        _check_escalation(state, cmd, kind, where)


def _check_follow_up(state: CaseState, cmd: c.Command, kind: str, where: str) -> None:
    """Preconditions of rectification, complaints' agreed reply time and appointments."""
    problem = None
    if isinstance(cmd, (c.CloseCase, c.AttemptCallback, c.ExpireFollowUp)) and state.rectification_pending:
        problem = ("rectification_pending", "a bad survey result needs a rectification note first "
                   "(record_rectification)")
    elif isinstance(cmd, c.StartFollowUp) and cmd.follow_up_hours is not None and timedelta(
            hours=cmd.follow_up_hours) < _min_follow_up(state):
        problem = ("follow_up_too_short", f"a follow-up period of {cmd.follow_up_hours:g} h is shorter than "
                   f"the policy's minimum of {_min_follow_up(state).total_seconds() / 3600:g} h: the "
                   "customer must get a real chance to confirm")
    elif isinstance(cmd, c.AttemptCallback) and (state.sla is None or state.sla.follow_up is None):
        problem = ("no_follow_up_policy", "the case has no follow-up policy pinned, so no callbacks to attempt")
    elif isinstance(cmd, c.RecordRectification) and not state.rectification_pending:
        problem = ("no_rectification", "no rectification is pending")
    elif isinstance(cmd, c.AgreeReplyTime) and state.category.value != "complaint":
        problem = ("not_a_complaint", f"only complaints get an agreed reply time (category "
                   f"'{state.category.value}')")
    elif isinstance(cmd, c.ConfirmAppointment) and (state.appointment is None or state.appointment.confirmed):
        problem = ("no_appointment", "there is no unconfirmed appointment")
    elif isinstance(cmd, c.RecordServiceReport) and state.appointment is None:
        problem = ("no_appointment", "no appointment was booked")
    if problem:
        raise CommandRefused(problem[0], f"command '{kind}' refused: {where}; {problem[1]}")


def _min_follow_up(state: CaseState) -> timedelta:
    terms = state.sla.follow_up if state.sla else None
    return terms.min_period if terms else timedelta(hours=1)


def _check_roster(state: CaseState, cmd: c.Command, kind: str) -> None:
    roster = state.sla.roster if state.sla else {}
    role = cmd.actor.role
    if roster and role in (Role.agent, Role.supervisor) and role not in roster.get(cmd.actor.id, ()):
        raise CommandRefused("not_on_roster", f"command '{kind}' refused: actor '{cmd.actor.id}' is not "
                             f"on the roster as {role.value}")


def _check_escalation(state: CaseState, cmd: c.Command, kind: str, where: str) -> None:
    if state.sla is None:
        raise CommandRefused("no_sla", f"command '{kind}' refused: {where} and has no SLA policy "
                             "(and so no escalation ladder) pinned")
    top, level = len(state.sla.ladder) - 1, state.escalation_level
    if isinstance(cmd, c.ReapplyPolicy):
        return
    if isinstance(cmd, c.EscalateCase):
        if cmd.level is not None and not level < cmd.level <= top:
            raise CommandRefused("bad_level", f"command 'escalate' refused: level {cmd.level} is not "
                                 f"above the current level {level} and at most {top}")
        if cmd.level is None and cmd.owner is None and level >= top:
            raise CommandRefused("top_level", f"command 'escalate' refused: {where} and already at "
                                 f"the top escalation level ({state.sla.ladder[top].name})")
    elif level == 0:
        raise CommandRefused("not_escalated", f"command '{kind}' refused: {where} and is not escalated")
    elif isinstance(cmd, c.AcknowledgeEscalation) and state.escalation_acknowledged:
        raise CommandRefused("already_acknowledged", f"command 'acknowledge' refused: escalation "
                             f"level {level} is already acknowledged")


def _check_close(state: CaseState, cmd: c.CloseCase, where: str) -> None:
    if cmd.reason in (ClosureReason.resolved, ClosureReason.resolved_unconfirmed):
        raise CommandRefused(
            "not_confirmed",
            f"command 'close' with reason '{cmd.reason.value}' refused: {where}; a case closes as "
            "resolved only when the customer confirms the solution (confirm_solution) or the "
            "follow-up period runs out")
    if cmd.reason is ClosureReason.no_response and state.stage not in (
            Stage.needs_clarification, Stage.follow_up):
        raise CommandRefused(
            "not_waiting_on_customer",
            f"command 'close' with reason 'no_response' refused: {where}; only a case waiting on "
            "the customer (needs_clarification or follow_up) can close for lack of response")


def _base(case_id: str, cmd: c.Command, now: datetime, last_fact_at: datetime | None,
          customer_id: str) -> dict:
    # Without a reported instant a command happens now. A reported instant a little ahead of the
    # engine's (a sender's clock running fast, within the skew check_time allows) is taken as now: no
    # fact is dated, and no clock evaluated, past the engine's time. Never before the last fact.
    at = min(cmd.occurred_at, now) if cmd.occurred_at else now
    at = max(at, last_fact_at) if last_fact_at else at
    # Staff or a gateway saying what the customer said (a reply on the phone, a confirmation) act on
    # the customer's behalf: the facts say both who did it and for whom.
    for_customer = Role.customer in cmd.ROLES and cmd.actor.role is not Role.customer
    return {"case_id": case_id, "command_id": cmd.command_id, "command_digest": cmd.digest(),
            "actor": cmd.actor, "on_behalf_of": customer_id if for_customer else None, "at": at,
            "recorded_at": now}
