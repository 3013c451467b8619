"""Words the pages show from data (stages, channels, clock names, event types, figure names): listed
here so the catalogs carry them (extracted with the N_ keyword). English has its own catalog for
these: an identifier such as `needs_clarification` reads 'needs clarification' on the page."""

from __future__ import annotations


def N_(message: str) -> str:
    """Marks a message for the catalogs without translating it here."""
    return message


VOCABULARY = (
    # stages
    N_("intake"), N_("needs_clarification"), N_("response"), N_("solution"), N_("follow_up"), N_("closed"),
    # priorities
    N_("urgent"), N_("high"), N_("normal"), N_("low"),
    # channels
    N_("phone"), N_("email"), N_("chat"), N_("web"), N_("sms"), N_("on_site"), N_("social"), N_("other"),
    # categories
    N_("enquiry"), N_("fault"), N_("complaint"), N_("suggestion"), N_("warranty"), N_("problem"),
    N_("safety_incident"), N_("return_visit"),
    # roles
    N_("agent"), N_("customer"), N_("supervisor"), N_("system"), N_("manager"),
    # clocks and their states
    N_("first_response"), N_("next_response"), N_("resolution"), N_("agreed_reply"),
    N_("running"), N_("paused"), N_("met"), N_("cancelled"),
    # closure reasons
    N_("resolved"), N_("resolved_unconfirmed"), N_("duplicate"), N_("invalid"), N_("no_response"),
    # escalation causes
    N_("breach"), N_("warning"), N_("emergency"), N_("bad_survey"),
    # what the conversation shows
    N_("CaseOpened"), N_("CustomerReplied"), N_("SolutionRejected"), N_("SolutionConfirmed"), N_("ResponseSent"),
    N_("ClarificationRequested"), N_("SolutionProposed"), N_("SolutionRevised"), N_("NoteAdded"),
    N_("RectificationRecorded"), N_("CaseEscalated"), N_("EscalationAcknowledged"), N_("CaseDeEscalated"),
    N_("CaseReassigned"), N_("CaseRetriaged"), N_("CaseClosed"), N_("CaseReopened"), N_("SlaClockBreached"),
    # the default policy's survey dimensions
    N_("response_speed"), N_("problem_solving"), N_("attitude"),
    # trend grains
    N_("month"), N_("week"),
    # the dashboard's figures, named on their drill-down pages
    N_("figure:opened"), N_("figure:sla_held"), N_("figure:sla_met"), N_("figure:breached"),
    N_("figure:responded"), N_("figure:resolved"), N_("figure:closed"), N_("figure:fcr"), N_("figure:reopened"),
    N_("figure:surveyed"), N_("figure:below_target"), N_("figure:open"),
    N_("figure:age:<1d"), N_("figure:age:1-3d"), N_("figure:age:3-7d"), N_("figure:age:7-30d"),
    N_("figure:age:>30d"),
    # action names (app.ACTION_NAMES)
    N_("Escalate"), N_("Acknowledge"), N_("De-escalate"), N_("Reassign"), N_("Add note"),
)
