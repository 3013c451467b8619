"""Who may act: the principal registry, and the check every command passes before it is decided.

A command names the principal that sends it and carries that principal's HMAC over what it asks
(`signature`). The actor in the payload is a claim; the registry says which claims a principal may
make:

- a **service** (a backend, a gateway, the engine's own return-visit planner) may present actors of
  the roles in its `acts_as`; staff actors it presents must be listed staff holding that role;
- a **staff** member with a credential of their own acts only as themselves, in their own roles;
- a **customer** is identified by the case's customer id: a customer actor may act only on cases
  whose customer they are (this rule holds in open mode too, see domain/decide.py).

Pure: the secrets are handed in by whoever loaded the registry (casework/principals.py).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr

from domain.model import Frozen, Role
from domain.refusal import CommandRefused

if TYPE_CHECKING:
    from domain.commands import Command

STAFF_ROLES = frozenset({Role.agent, Role.supervisor})
SIGNATURE_SCHEME = "casework-command-v1"


class Service(Frozen):
    acts_as: frozenset[Role]
    secret: SecretStr = Field(repr=False)
    # The SHA-256 of the API key it presents over HTTP (the key itself is not kept anywhere).
    api_key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", repr=False)


class Staff(Frozen):
    roles: frozenset[Role]
    teams: tuple[str, ...] = ()
    secret: SecretStr | None = Field(default=None, repr=False)  # a credential of their own, optional
    api_key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", repr=False)


class Registry(Frozen):
    services: dict[str, Service] = Field(default_factory=dict)
    staff: dict[str, Staff] = Field(default_factory=dict)

    def check(self, subject: str, cmd: Command, customer_id: str | None) -> None:
        """Raise CommandRefused unless `cmd`, on `subject` (a case id, a plan), is authentic and its
        actor a claim its principal may make. `customer_id`: the customer of the case it acts on."""
        secret = self._secret_of(cmd.principal)
        if secret is None or not cmd.signature or not hmac.compare_digest(
                cmd.signature, sign(secret, subject, cmd)):
            # One answer for an unknown principal and a bad signature: a prober learns nothing.
            raise CommandRefused("unauthenticated", f"command '{_kind(cmd)}' refused: it carries no valid "
                                 "credential (principal and signature) for this registry")
        actor = cmd.actor
        if cmd.principal in self.staff and cmd.principal not in self.services:
            held = self.staff[cmd.principal].roles
            if actor.id != cmd.principal or actor.role not in held:
                raise CommandRefused("actor_mismatch", f"command '{_kind(cmd)}' refused: credential of "
                                     f"'{cmd.principal}' cannot act as {actor.role.value} '{actor.id}'")
        else:
            granted = self.services[cmd.principal].acts_as
            if actor.role not in granted:
                raise CommandRefused("role_not_granted", f"command '{_kind(cmd)}' refused: principal "
                                     f"'{cmd.principal}' may not act as a {actor.role.value}")
            if actor.role in STAFF_ROLES and actor.role not in self.staff.get(
                    actor.id, Staff(roles=frozenset())).roles:
                raise CommandRefused("not_staff", f"command '{_kind(cmd)}' refused: '{actor.id}' is not "
                                     f"listed staff with the role {actor.role.value}")
        if actor.role is Role.customer and customer_id is not None and actor.id != customer_id:
            raise CommandRefused("not_your_case", f"command '{_kind(cmd)}' refused: customer '{actor.id}' "
                                 f"may act only on their own cases")

    def is_staff(self, actor_id: str, role: Role = Role.agent) -> bool:
        return role in self.staff.get(actor_id, Staff(roles=frozenset())).roles

    def _secret_of(self, principal: str) -> str | None:
        if principal in self.services:
            return self.services[principal].secret.get_secret_value()
        member = self.staff.get(principal)
        return member.secret.get_secret_value() if member and member.secret else None


def sign(secret: str, subject: str, cmd: Command) -> str:
    """HMAC-SHA256 over the scheme, the subject (case id), the principal, the command id and digest:
    a signature is good for this command on this case only (a retry repeats it, as it repeats the id)."""
    text = "\n".join((SIGNATURE_SCHEME, subject, cmd.principal, cmd.command_id, cmd.digest()))
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def _kind(cmd: Command) -> str:
    return getattr(cmd, "kind", type(cmd).__name__)
