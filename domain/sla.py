"""SLA policy: targets per priority x tier (optionally category and channel), calendars, warning
shares, the escalation ladder and the roster. The terms that apply to a case are pinned on it."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.calendar import BusinessCalendar
from domain.model import Category, Channel, Priority, Role, Tier

CLOCKS = ("first_response", "next_response", "resolution")


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetRule(Strict):
    """One line of the policy: the most specific rule matching a case wins; `None` matches anything."""

    priority: Priority | None = None
    tier: Tier | None = None
    category: Category | None = None
    channel: Channel | None = None
    first_response_hours: float = Field(gt=0)
    next_response_hours: float = Field(gt=0)
    resolution_hours: float = Field(gt=0)
    calendar: str = "business"
    source: str = ""  # where the figure comes from (seed, help desk default)

    def matches(self, priority: Priority, tier: Tier, category: Category, channel: Channel) -> bool:
        return all(want is None or want == got for want, got in (
            (self.priority, priority), (self.tier, tier), (self.category, category), (self.channel, channel)))

    @property
    def specificity(self) -> int:
        return sum(x is not None for x in (self.priority, self.tier, self.category, self.channel))


class EscalationLevel(Strict):
    name: str = Field(min_length=1)
    owner: str | None = None  # who the case is reassigned to at this level


class FollowUpRule(Strict):
    """A callback delay for some customers or categories; the most specific rule wins."""

    tier: Tier | None = None
    category: Category | None = None
    delay_hours: float = Field(gt=0)


class FollowUpPolicy(Strict):
    """After a solution: when and how often to call back, and what a satisfaction survey asks."""

    delay_hours: float = Field(default=24, gt=0)  # Zendesk sends its survey 24 h after solved
    rules: tuple[FollowUpRule, ...] = ()
    attempts: int = Field(default=3, ge=1, le=20)
    spacing_hours: float = Field(default=24, gt=0)
    survey_dimensions: tuple[str, ...] = ("response_speed", "problem_solving", "attitude")
    bad_result_threshold: float = Field(default=60, ge=0, le=100)
    survey_throttle_days: int = Field(default=30, ge=0)

    def delay_for(self, tier: Tier, category: Category) -> timedelta:
        rules = [r for r in self.rules if r.tier in (None, tier) and r.category in (None, category)]
        best = max(rules, key=lambda r: (r.tier is not None) + (r.category is not None), default=None)
        return timedelta(hours=best.delay_hours if best else self.delay_hours)


class FollowUpTerms(Strict):
    delay: timedelta
    attempts: int
    spacing: timedelta
    survey_dimensions: tuple[str, ...]
    bad_result_threshold: float
    survey_throttle_days: int


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


class SlaPolicy(Strict):
    version: str = Field(min_length=1)
    warn_at: tuple[float, ...] = (0.5, 0.75, 0.9)
    escalate_on_warning: tuple[float, ...] = ()
    calendars: dict[str, BusinessCalendar]
    targets: list[TargetRule] = Field(min_length=1)
    ladder: tuple[EscalationLevel, ...] = Field(min_length=2)
    emergency_categories: tuple[Category, ...] = (Category.safety_incident,)
    # actor id -> the staff roles they hold; when given, staff actors must be listed with their role
    roster: dict[str, tuple[Role, ...]] = Field(default_factory=dict)
    follow_up: FollowUpPolicy = Field(default_factory=FollowUpPolicy)

    @model_validator(mode="after")
    def _consistent(self) -> SlaPolicy:
        for i, rule in enumerate(self.targets):
            if rule.calendar not in self.calendars:
                raise ValueError(f"targets[{i}] uses calendar {rule.calendar!r}, which is not defined "
                                 f"(calendars: {', '.join(self.calendars)})")
        for share in (*self.warn_at, *self.escalate_on_warning):
            if not 0 < share < 1:
                raise ValueError(f"warning share {share} must be between 0 and 1")
        if not any(r.specificity == 0 for r in self.targets):
            raise ValueError("targets need a catch-all rule (no priority, tier, category or channel)")
        return self

    def terms_for(self, priority: Priority, tier: Tier, category: Category, channel: Channel) -> SlaTerms:
        rules = [r for r in self.targets if r.matches(priority, tier, category, channel)]
        best = max(rules, key=lambda r: r.specificity)  # first of the most specific, in file order
        return SlaTerms(
            policy_version=self.version, calendar=self.calendars[best.calendar],
            targets={"first_response": timedelta(hours=best.first_response_hours),
                     "next_response": timedelta(hours=best.next_response_hours),
                     "resolution": timedelta(hours=best.resolution_hours)},
            warn_at=tuple(sorted(self.warn_at)), escalate_on_warning=self.escalate_on_warning,
            ladder=self.ladder, emergency_categories=self.emergency_categories, roster=self.roster,
            rule=best.source or f"targets[{self.targets.index(best)}]",
            follow_up=FollowUpTerms(
                delay=self.follow_up.delay_for(tier, category), attempts=self.follow_up.attempts,
                spacing=timedelta(hours=self.follow_up.spacing_hours),
                survey_dimensions=self.follow_up.survey_dimensions,
                bad_result_threshold=self.follow_up.bad_result_threshold,
                survey_throttle_days=self.follow_up.survey_throttle_days))
