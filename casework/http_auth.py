"""Who is calling over HTTP: an API key (services, staff) or a bearer token (a JWT from the
organisation's identity provider, verified with PyJWT against configured keys or a JWKS).

The credential decides the actor. A staff member's or customer's token acts as that person only; a
payload naming another actor is refused (`actor_mismatch`), never believed. A service's API key lets it
present the actors its registry entry allows, checked again when the command is decided
(domain/principals.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jwt
from pydantic import BaseModel

from casework.config import ConfigError, Settings
from domain.model import Actor, Role
from domain.principals import STAFF_ROLES, Registry
from domain.refusal import CommandRefused

ROLE_CLAIM = "casework_role"  # agent, supervisor or customer; `sub` names the person


class Unauthenticated(Exception):
    """No credential, or one that does not verify: HTTP 401. The message says which, not why in detail."""


class Identity(BaseModel):
    principal: str  # the registry entry (services, staff) or the person's id
    acts_as: frozenset[Role]  # roles the caller may present
    person: bool  # a staff member or customer acts only as themselves; a service presents others

class JwtVerifier:
    """Bearer tokens signed by the identity provider: a JWKS URL or a PEM public key, issuer, audience."""

    def __init__(self, *, issuer: str, audience: str, jwks_url: str = "", public_key: str = "",
                 algorithms: tuple[str, ...] = ("RS256", "ES256")) -> None:
        if not (jwks_url or public_key):
            raise ConfigError("JWT verification needs jwt_jwks_url or jwt_public_key_file")
        if any(a.startswith("HS") or a == "none" for a in algorithms):
            raise ConfigError("JWT algorithms must be asymmetric (RS*, ES*, PS*, EdDSA): a shared secret "
                              "would let anyone holding it mint tokens")
        self.issuer, self.audience, self.algorithms = issuer, audience, list(algorithms)
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None
        self.public_key = public_key

    def claims(self, token: str) -> dict:
        try:
            key = self.jwks.get_signing_key_from_jwt(token).key if self.jwks else self.public_key
            return jwt.decode(token, key, algorithms=self.algorithms, audience=self.audience, issuer=self.issuer,
                              options={"require": ["exp", "iat", "sub", "iss", "aud"]}, leeway=30)
        except jwt.PyJWKClientConnectionError:
            raise Unauthenticated("the token's signing keys cannot be fetched") from None
        except jwt.PyJWTError as err:
            raise Unauthenticated(f"bearer token refused: {err}") from None


def jwt_verifier_for(settings: Settings) -> JwtVerifier | None:
    if not (settings.jwt_jwks_url or settings.jwt_public_key_file):
        return None
    key = ""
    if settings.jwt_public_key_file:
        try:
            key = Path(settings.jwt_public_key_file).read_text()
        except FileNotFoundError:
            raise ConfigError(f"CASEWORK_JWT_PUBLIC_KEY_FILE {settings.jwt_public_key_file} does not exist") from None
    if not (settings.jwt_issuer and settings.jwt_audience):
        raise ConfigError("JWT verification needs CASEWORK_JWT_ISSUER and CASEWORK_JWT_AUDIENCE")
    return JwtVerifier(issuer=settings.jwt_issuer, audience=settings.jwt_audience, jwks_url=settings.jwt_jwks_url,
                       public_key=key, algorithms=tuple(settings.jwt_algorithms))


class HttpAuthenticator:
    def __init__(self, registry: Registry, verifier: JwtVerifier | None = None) -> None:
        self.registry, self.verifier = registry, verifier
        self.by_key = {e.api_key_sha256: (name, e) for group in (registry.services, registry.staff)
                       for name, e in group.items() if e.api_key_sha256}

    def authenticate(self, authorization: str | None = None, api_key: str | None = None) -> Identity:
        """The caller behind an `Authorization: Bearer <jwt>` header or an `X-API-Key` header."""
        if api_key:
            found = self.by_key.get(hashlib.sha256(api_key.encode()).hexdigest())
            if found is None:
                raise Unauthenticated("API key refused")
            name, entry = found
            if name in self.registry.services and entry is self.registry.services[name]:
                return Identity(principal=name, acts_as=entry.acts_as, person=False)
            return Identity(principal=name, acts_as=entry.roles, person=True)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("no credential: send 'Authorization: Bearer <token>' or 'X-API-Key'")
        if self.verifier is None:
            raise Unauthenticated("bearer tokens are not accepted here (no JWT issuer configured)")
        claims = self.verifier.claims(token.strip())
        try:
            role = Role(claims.get(ROLE_CLAIM, ""))
        except ValueError:
            raise Unauthenticated(f"bearer token refused: claim '{ROLE_CLAIM}' must be agent, supervisor or "
                                  "customer") from None
        subject = str(claims["sub"])
        if role in STAFF_ROLES and not self.registry.is_staff(subject, role):
            raise Unauthenticated(f"bearer token refused: '{subject}' is not listed staff with the role {role.value}")
        if role not in STAFF_ROLES | {Role.customer}:
            raise Unauthenticated(f"bearer token refused: a token cannot carry the role {role.value}")
        return Identity(principal=subject, acts_as=frozenset({role}), person=True)

    def actor_for(self, identity: Identity, claimed: Actor | None) -> Actor:
        """The actor a request acts as: the credential's own, or a claim the credential may make."""
        if identity.person and not identity.acts_as:  # a console manager: reads, never acts
            raise CommandRefused("no_role", f"'{identity.principal}' holds no role that may act (agent, "
                                 "supervisor or customer in the principal registry)")
        if claimed is None:
            if not identity.person or len(identity.acts_as) != 1:
                raise CommandRefused("actor_required", f"'{identity.principal}' may act in more than one "
                                     "way: the request must name its actor")
            return Actor(id=identity.principal, role=next(iter(identity.acts_as)))
        if identity.person and (claimed.id != identity.principal or claimed.role not in identity.acts_as):
            raise CommandRefused("actor_mismatch", f"the credential is '{identity.principal}' "
                                 f"({', '.join(sorted(r.value for r in identity.acts_as))}); the payload "
                                 f"claims {claimed.role.value} '{claimed.id}'")
        if claimed.role not in identity.acts_as:
            raise CommandRefused("role_not_granted", f"'{identity.principal}' may not act as a {claimed.role.value}")
        if claimed.role in STAFF_ROLES and not self.registry.is_staff(claimed.id, claimed.role):
            raise CommandRefused("not_staff", f"'{claimed.id}' is not listed staff with the role {claimed.role.value}")
        return claimed
