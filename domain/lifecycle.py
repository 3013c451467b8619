"""The case lifecycle's public face: `decide` (state + command -> events, domain/decide.py),
`evolve` (state + event -> state, domain/evolve.py) and the one `CommandRefused`
(domain/refusal.py). Where and by whom each command may be sent is declared on the command
(domain/commands.py); RULES lists it by kind for readers and tests.
"""

from __future__ import annotations

from domain.commands import COMMAND_TYPES
from domain.decide import MAX_CLOCK_SKEW, check_allowed, check_time, decide
from domain.evolve import SLA_EVENTS, evolve, replay, replay_on
from domain.refusal import CommandRefused

RULES = {kind: (cls.STAGES, cls.ROLES) for kind, cls in COMMAND_TYPES.items() if kind != "open"}

__all__ = ["MAX_CLOCK_SKEW", "RULES", "SLA_EVENTS", "CommandRefused", "check_allowed", "check_time", "decide",
           "evolve", "replay", "replay_on"]
