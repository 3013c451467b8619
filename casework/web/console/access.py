"""Who is signed in to the console and what they may see and do.

A person signs in with what they already hold for the HTTP API (casework/http_auth.py): their staff
API key or a bearer token from the identity provider. The console verifies it once with the
HttpAuthenticator and keeps only the person's name in a signed session cookie; roles and teams are
read from the principal registry on every request, so taking someone out of the registry locks them
out at their next click. Service keys and customer tokens do not open the console.

Roles in the console: the domain's `agent` and `supervisor` (what the registry grants), and
`manager`, a reader of the dashboard named in the `console_managers` setting (a manager holds no
domain role and sends no commands).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from casework.http_auth import HttpAuthenticator, Unauthenticated
from domain.model import Role
from domain.principals import Registry

AGENT, SUPERVISOR, MANAGER = "agent", "supervisor", "manager"

# What each page and action needs: any one of the roles listed.
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
    """The signed-in person's roles do not allow this page or action: HTTP 403."""


@dataclass(frozen=True)
class Person:
    name: str
    roles: frozenset[str]
    teams: tuple[str, ...] = ()
    csrf: str = field(default="", repr=False)

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

    def may_open(self, assignee: str | None, team: str | None) -> bool:
        """Supervisors and managers open any case; an agent their own and their teams' cases."""
        if self.roles & {SUPERVISOR, MANAGER}:
            return True
        return AGENT in self.roles and (assignee == self.name or (team is not None and team in self.teams))

    @property
    def home(self) -> str:
        if SUPERVISOR in self.roles:
            return "board"
        if AGENT in self.roles:
            return "queue"
        return "dashboard"


class Access:
    def __init__(self, registry: Registry, authenticator: HttpAuthenticator, managers: list[str]) -> None:
        self.registry, self.authenticator, self.managers = registry, authenticator, frozenset(managers)

    def sign_in(self, credential: str) -> str:
        """The person's name for an API key or a bearer token; Unauthenticated otherwise."""
        credential = credential.strip()
        if not credential:
            raise Unauthenticated("enter your API key or token")
        if credential.count(".") == 2 and self.authenticator.verifier is not None:
            identity = self.authenticator.authenticate(authorization=f"Bearer {credential}")
        else:
            identity = self.authenticator.authenticate(api_key=credential)
        if not identity.person or identity.principal not in self.registry.staff:
            raise Unauthenticated("the console is for staff: sign in with your own key or token")
        if self.person(identity.principal, "") is None:
            raise Unauthenticated("your entry in the registry grants no console role")
        return identity.principal

    def person(self, name: str, csrf: str) -> Person | None:
        """The person as the registry says now; None when they are no longer staff with a console role."""
        entry = self.registry.staff.get(name)
        if entry is None:
            return None
        roles = {r.value for r in entry.roles if r in (Role.agent, Role.supervisor)}
        if name in self.managers:
            roles.add(MANAGER)
        if not roles:
            return None
        return Person(name=name, roles=frozenset(roles), teams=tuple(entry.teams), csrf=csrf)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)
