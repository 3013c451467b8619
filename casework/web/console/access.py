"""Who is signed in to the console and what they may see and do.

A person signs in with what they already hold for the HTTP API (casework/http_auth.py): their staff
API key or a bearer token from the identity provider. The console verifies it once with the
HttpAuthenticator and keeps only the person's name in a signed session cookie; roles and teams are
read from the principal registry on every request, so taking someone out of the registry locks them
out at their next click. Service keys and customer tokens do not open the console.

Roles and what each may see and do: casework/access.py, shared with the HTTP API.
"""

from __future__ import annotations

import hmac
import secrets

from casework.access import Person, person_in
from casework.http_auth import HttpAuthenticator, Unauthenticated
from domain.principals import Registry


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
        return person_in(self.registry, name, self.managers, csrf=csrf)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)
