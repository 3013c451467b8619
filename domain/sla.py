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
            rule=best.source or f"targets[{self.targets.index(best)}]")
