"""The SLA clocks casework keeps, once: the policy, the opening, the transitions, retargeting and
the reports all read this catalogue, so adding a clock is one entry here plus its rules in
domain/clocks.py, its section in docs/sla.md and its tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClockSpec:
    name: str
    # The policy rule's field giving the target in business hours; None: the command sets a due instant.
    policy_field: str | None
    opens_with_case: bool  # started by CaseOpened
    warns: bool  # warnings at the policy's shares of the target
    per_cycle: bool  # restarts for each customer message: every cycle is measured on its own
    summary: str


CATALOGUE: tuple[ClockSpec, ...] = (
    ClockSpec("first_response", "first_response_hours", opens_with_case=True, warns=True, per_cycle=False,
              summary="from opening to the first response or clarification request"),
    ClockSpec("next_response", "next_response_hours", opens_with_case=False, warns=True, per_cycle=True,
              summary="from a customer message (after the first response) to the next response"),
    ClockSpec("resolution", "resolution_hours", opens_with_case=True, warns=True, per_cycle=False,
              summary="from opening to a proposed solution, paused while waiting on the customer; "
                      "a normal-priority return visit's resolution clock is its visit window"),
    ClockSpec("agreed_reply", None, opens_with_case=False, warns=False, per_cycle=False,
              summary="a complaint's reply time agreed with the customer: due at the agreed instant"),
)
BY_NAME = {spec.name: spec for spec in CATALOGUE}
POLICY_CLOCKS = tuple(spec.name for spec in CATALOGUE if spec.policy_field)
OPENING_CLOCKS = tuple(spec.name for spec in CATALOGUE if spec.opens_with_case)
