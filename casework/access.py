"""What a staff member may see and do, for every door they come in by: the web console
(casework/web/console/) and the HTTP API (casework/web/api.py) ask the same `Person`.

Roles: the domain's `agent` and `supervisor` (what the principal registry grants), and `manager`, a
reader of the dashboard named in the `console_managers` setting (a manager holds no domain role and
sends no commands). An agent sees and acts on their own cases and their teams' cases only;
supervisors and managers see every case. Some actions the domain lets any staff role send are kept
for supervisors here (reassign): that is a rule about people, not about cases, so it lives here and
not in domain/commands.py, and a service presenting an agent (a CRM reporting what its user did)
keeps the domain's reach.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from domain.model import Role
from domain.principals import Registry

AGENT, SUPERVISOR, MANAGER = "agent", "supervisor", "manager"

# What each page and action needs: any one of the roles listed (actions are command kinds).
MAY = {
    "queue": {AGENT, SUPERVISOR},
    "board": {SUPERVISOR, MANAGER},
    "dashboard": {MANAGER, SUPERVISOR},
    "whatif": {MANAGER, SUPERVISOR},
    "case": {AGENT, SUPERVISOR, MANAGER},
    "note": {AGENT, SUPERVISOR},
    "escalate": {SUPERVISOR}, "acknowledge": {SUPERVISOR}, "de_escalate": {SUPERVISOR},
    "reassign": {SUPERVISOR},
}
ACTIONS = ("escalate", "acknowledge", "de_escalate", "reassign")


class Forbidden(Exception):
    """The person's roles do not allow this page or action: HTTP 403."""


@dataclass(frozen=True)
class Person:
    name: str
    roles: frozenset[str]
    teams: tuple[str, ...] = ()
    csrf: str = field(default="", repr=False)  # the console session's token; unused over the HTTP API

    def may(self, what: str) -> bool:
        return bool(self.roles & MAY[what])

    def require(self, what: str) -> None:
        if not self.may(what):
            raise Forbidden(what)

    @property
    def acting_role(self) -> Role | None:
        """The domain role the console presents for this person's commands (supervisor first)."""
        if SUPERVISOR in self.roles:
            return Role.supervisor
        return Role.agent if AGENT in self.roles else None

    @property
    def sees_every_case(self) -> bool:
        return bool(self.roles & {SUPERVISOR, MANAGER})

    def may_open(self, assignee: str | None, team: str | None) -> bool:
        """Supervisors and managers open any case; an agent their own and their teams' cases."""
        if self.sees_every_case:
            return True
        return AGENT in self.roles and (assignee == self.name or (team is not None and team in self.teams))

    @property
    def home(self) -> str:
        if SUPERVISOR in self.roles:
            return "board"
        if AGENT in self.roles:
            return "queue"
        return "dashboard"


def person_in(registry: Registry, name: str, managers: Collection[str], *, csrf: str = "",
              presented: Collection[Role] | None = None) -> Person | None:
    """The person as the registry says now; None when they are not staff or hold no role here.
    `presented`: the domain roles the credential carries (a bearer token names one), when narrower
    than the registry's."""
    entry = registry.staff.get(name)
    if entry is None:
        return None
    held = entry.roles if presented is None else entry.roles & frozenset(presented)
    roles = {r.value for r in held if r in (Role.agent, Role.supervisor)}
    if name in managers:
        roles.add(MANAGER)
    if not roles:
        return None
    return Person(name=name, roles=frozenset(roles), teams=tuple(entry.teams), csrf=csrf)
