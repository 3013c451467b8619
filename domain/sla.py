"""SLA policy: targets per priority x tier (optionally category and channel), calendars, warning
shares, the escalation ladder and the roster. The terms that apply to a case are pinned on it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.calendar import BusinessCalendar
from domain.clock_catalogue import BY_NAME, POLICY_CLOCKS
from domain.model import Category, Channel, Priority, Role, Tier

CLOCKS = POLICY_CLOCKS
# Which rule applies (docs/sla.md, "Choosing the rule"): the rule matching on more of a case's
# dimensions wins; between rules matching on as many, the one naming the weightier dimension, in
# this order. Two rules naming the same dimensions and values are refused when the policy loads.
PRECEDENCE = ("priority", "category", "tier", "channel")
# The longest target or delay a policy may give: a century. More is a typo, and past ~2.7e10 hours
# a duration cannot even be represented (the policy would load, then fail every case it applies to).
MAX_HOURS = 24 * 366 * 100
# Numbers in a policy must be numbers: `true` is not 1 hour (strict: no booleans, no strings).
Share = Annotated[float, Field(strict=True)]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetRule(Strict):
    """One line of the policy: the most specific rule matching a case wins; `None` matches anything."""

    priority: Priority | None = None
    tier: Tier | None = None
    category: Category | None = None
    channel: Channel | None = None
    first_response_hours: float = Field(gt=0, le=MAX_HOURS, strict=True)
    next_response_hours: float = Field(gt=0, le=MAX_HOURS, strict=True)
    resolution_hours: float = Field(gt=0, le=MAX_HOURS, strict=True)
    calendar: str = "business"
    source: str = ""  # where the figure comes from (seed, help desk default)

    def matches(self, priority: Priority, tier: Tier, category: Category, channel: Channel) -> bool:
        return all(want is None or want == got for want, got in (
            (self.priority, priority), (self.tier, tier), (self.category, category), (self.channel, channel)))

    @property
    def specificity(self) -> int:
        return sum(x is not None for x in (self.priority, self.tier, self.category, self.channel))

    @property
    def rank(self) -> tuple[int, ...]:
        """Higher wins: how many dimensions it names, then which, in PRECEDENCE order."""
        return (self.specificity, *(getattr(self, d) is not None for d in PRECEDENCE))

    @property
    def condition(self) -> tuple:
        return tuple(getattr(self, d) for d in PRECEDENCE)

    def describe(self) -> str:
        named = [f"{d}={getattr(self, d).value}" for d in PRECEDENCE if getattr(self, d) is not None]
        return ", ".join(named) or "catch-all"


class EscalationLevel(Strict):
    name: str = Field(min_length=1)
    owner: str | None = None  # who the case is reassigned to at this level


class FollowUpRule(Strict):
    """A callback delay for some customers or categories; the most specific rule wins."""

    tier: Tier | None = None
    category: Category | None = None
    delay_hours: float = Field(gt=0, le=MAX_HOURS, strict=True)

    @property
    def condition(self) -> tuple:
        return self.tier, self.category

    def describe(self) -> str:
        named = [f"{d}={getattr(self, d).value}" for d in ("tier", "category") if getattr(self, d) is not None]
        return ", ".join(named) or "every case"


class FollowUpPolicy(Strict):
    """After a solution: when and how often to call back, and what a satisfaction survey asks."""

    delay_hours: float = Field(default=24, gt=0, le=MAX_HOURS, strict=True)  # Zendesk: survey 24 h after solved
    # The shortest explicit follow-up period a command may ask: the customer must get a real chance to
    # confirm before the case closes unconfirmed.
    min_period_hours: float = Field(default=1, gt=0, le=MAX_HOURS, strict=True)
    rules: tuple[FollowUpRule, ...] = ()
    attempts: int = Field(default=3, ge=1, le=20, strict=True)
    spacing_hours: float = Field(default=24, gt=0, le=MAX_HOURS, strict=True)
    survey_dimensions: tuple[str, ...] = ("response_speed", "problem_solving", "attitude")
    bad_result_threshold: float = Field(default=60, ge=0, le=100, strict=True)
    survey_throttle_days: int = Field(default=30, ge=0, strict=True)

    @model_validator(mode="after")
    def _unambiguous(self) -> FollowUpPolicy:
        # The most specific rule wins. A tier rule and a category rule are as specific as each other
        # and both apply to that tier's cases of that category: file order would decide, so that is
        # refused unless a rule naming both says which delay holds.
        conditions = {r.condition for r in self.rules}
        for i, a in enumerate(self.rules):
            for j, b in enumerate(self.rules[:i]):
                if a.condition == b.condition:
                    raise ValueError(f"follow_up.rules[{j}] and rules[{i}] both apply to {a.describe()}: "
                                     "say which one holds")
                tiered, categorised = (a, b) if a.tier is not None else (b, a)
                if (_specificity(a) == _specificity(b) == 1 and tiered.tier is not None
                        and categorised.category is not None
                        and (tiered.tier, categorised.category) not in conditions):
                    both = f"tier={tiered.tier.value}, category={categorised.category.value}"
                    raise ValueError(
                        f"follow_up.rules[{j}] ({b.describe()}) and rules[{i}] ({a.describe()}) are as specific "
                        f"as each other and both apply to {both}: add a rule for {both} to say which delay holds")
        return self

    def delay_for(self, tier: Tier, category: Category) -> timedelta:
        rules = [r for r in self.rules if r.tier in (None, tier) and r.category in (None, category)]
        best = max(rules, key=_specificity, default=None)  # unique: ties are refused when the policy loads
        return timedelta(hours=best.delay_hours if best else self.delay_hours)


def _specificity(rule: FollowUpRule) -> int:
    return (rule.tier is not None) + (rule.category is not None)


class FollowUpTerms(Strict):
    delay: timedelta
    min_period: timedelta = timedelta(hours=1)
    attempts: int
    spacing: timedelta
    survey_dimensions: tuple[str, ...]
    bad_result_threshold: float
    survey_throttle_days: int


class ChosenFor(Strict):
    """The case's dimensions a policy rule was chosen for: terms for another case's shape (say, a
    priority the case had before a concurrent re-triage) must not be pinned on it."""

    priority: Priority
    tier: Tier
    category: Category
    channel: Channel

    def describe(self) -> str:
        return "/".join(x.value for x in (self.priority, self.tier, self.category, self.channel))


class SlaTerms(Strict):
    """What one case is held to, pinned when it opens: a later policy change never alters it."""

    policy_version: str
    calendar: BusinessCalendar
    targets: dict[str, timedelta]
    warn_at: tuple[float, ...]
    escalate_on_warning: tuple[float, ...] = ()
    ladder: tuple[EscalationLevel, ...]
    emergency_categories: tuple[Category, ...] = (Category.safety_incident,)
    roster: dict[str, tuple[Role, ...]] = Field(default_factory=dict)
    rule: str = ""
    follow_up: FollowUpTerms | None = None
    chosen_for: ChosenFor | None = None  # None in terms pinned before it was recorded
    # The whole policy these terms come from, pinned with them: a re-triage chooses the rule for the
    # case's new priority or category from this version, not from whatever the file says now (only
    # a supervisor's reapply_policy brings in an edited policy). None in terms pinned before.
    policy: SlaPolicy | None = None
    # How long after its close a customer's reply or a rejection reopens the case (domain/reopen.py);
    # later they open a follow-up case. None (terms pinned before the window existed): never reopens.
    reopen_window: timedelta | None = None

    def fits(self, priority: Priority, tier: Tier, category: Category, channel: Channel) -> bool:
        """Whether these terms were chosen for a case of this shape (unknown: assumed so)."""
        return self.chosen_for is None or self.chosen_for == ChosenFor(
            priority=priority, tier=tier, category=category, channel=channel)


class SlaPolicy(Strict):
    version: str = Field(min_length=1)
    warn_at: tuple[Share, ...] = (0.5, 0.75, 0.9)
    escalate_on_warning: tuple[Share, ...] = ()
    calendars: dict[str, BusinessCalendar]
    targets: list[TargetRule] = Field(min_length=1)
    ladder: tuple[EscalationLevel, ...] = Field(min_length=2)
    emergency_categories: tuple[Category, ...] = (Category.safety_incident,)
    # actor id -> the staff roles they hold; when given, staff actors must be listed with their role
    roster: dict[str, tuple[Role, ...]] = Field(default_factory=dict)
    follow_up: FollowUpPolicy = Field(default_factory=FollowUpPolicy)
    # Zendesk reopens a solved ticket on the requester's reply and, once it is closed, makes the reply a
    # follow-up ticket; Zammad allows a follow-up for a set number of days after the close. Seven days
    # here; 0 turns reopening off (every reply after a close opens a follow-up case).
    reopen_window_hours: float = Field(default=168, ge=0, le=MAX_HOURS, strict=True)

    @model_validator(mode="after")
    def _consistent(self) -> SlaPolicy:
        for i, rule in enumerate(self.targets):
            if rule.calendar not in self.calendars:
                raise ValueError(f"targets[{i}] uses calendar {rule.calendar!r}, which is not defined "
                                 f"(calendars: {', '.join(self.calendars)})")
        for share in (*self.warn_at, *self.escalate_on_warning):
            if not 0 < share < 1:
                raise ValueError(f"warning share {share} must be between 0 and 1")
        for name, shares in (("warn_at", self.warn_at), ("escalate_on_warning", self.escalate_on_warning)):
            twice = sorted({s for s in shares if shares.count(s) > 1})
            if twice:
                raise ValueError(f"{name} lists {', '.join(f'{s:g}' for s in twice)} more than once")
        never = [s for s in self.escalate_on_warning if s not in self.warn_at]
        if never:
            raise ValueError(f"escalate_on_warning {', '.join(f'{s:g}' for s in never)} is not a warning share "
                             f"(warn_at: {', '.join(f'{s:g}' for s in self.warn_at)}): it would never escalate")
        if not any(r.specificity == 0 for r in self.targets):
            raise ValueError("targets need a catch-all rule (no priority, tier, category or channel)")
        seen: dict[tuple, int] = {}
        for i, rule in enumerate(self.targets):
            if rule.condition in seen:
                raise ValueError(f"targets[{seen[rule.condition]}] and targets[{i}] both apply to "
                                 f"{rule.describe()}: say which one holds")
            seen[rule.condition] = i
        return self

    def rule_for(self, priority: Priority, tier: Tier, category: Category, channel: Channel) -> TargetRule:
        return max((r for r in self.targets if r.matches(priority, tier, category, channel)), key=lambda r: r.rank)

    def terms_for(self, priority: Priority, tier: Tier, category: Category, channel: Channel) -> SlaTerms:
        best = self.rule_for(priority, tier, category, channel)
        return SlaTerms(
            policy_version=self.version, calendar=self.calendars[best.calendar],
            targets={name: timedelta(hours=getattr(best, BY_NAME[name].policy_field)) for name in POLICY_CLOCKS},
            warn_at=tuple(sorted(self.warn_at)), escalate_on_warning=self.escalate_on_warning,
            ladder=self.ladder, emergency_categories=self.emergency_categories, roster=self.roster,
            rule=best.source or f"targets[{self.targets.index(best)}]",
            chosen_for=ChosenFor(priority=priority, tier=tier, category=category, channel=channel),
            policy=self, reopen_window=timedelta(hours=self.reopen_window_hours),
            follow_up=FollowUpTerms(
                delay=self.follow_up.delay_for(tier, category), attempts=self.follow_up.attempts,
                min_period=timedelta(hours=self.follow_up.min_period_hours),
                spacing=timedelta(hours=self.follow_up.spacing_hours),
                survey_dimensions=self.follow_up.survey_dimensions,
                bad_result_threshold=self.follow_up.bad_result_threshold,
                survey_throttle_days=self.follow_up.survey_throttle_days))


SlaTerms.model_rebuild()  # `policy` refers to SlaPolicy, defined after it
