"""Failed sign-ins throttled: per client address and per principal, on the `limits` library's moving
window (in this process's memory).

Counted is every credential presented that does not verify: an API key or bearer token on an HTTP API
request, a key or token typed into the console's sign-in form. A request with no credential at all
is not an attempt (it is answered 401 and counts for nothing). Once an address or a principal has
used up its failures within the window, its next attempts are answered 429 with `Retry-After`
before the credential is even looked at, so a guesser learns nothing more until the window moves on,
whatever it sends.

The principal of a failed attempt is the one it claims: a bearer token's `sub`, read without
verifying it (the token may be forged; that is the point of counting it against that person). An
API key names nobody until it matches, so a wrong key counts against its address only.

One limiter serves the HTTP API and the console of an engine (worker.py hands the same one to both);
the counts live in memory, so two replicas count apart and a restart forgets them.
"""

from __future__ import annotations

import math
import time

import jwt
from limits import RateLimitItem, parse, storage, strategies

from casework.config import ConfigError, Settings


class TooManyFailures(Exception):
    """This address or principal has used up its failed sign-ins: HTTP 429, try after `retry_after` s."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"too many failed sign-ins from this {scope}: try again in {retry_after} s")
        self.retry_after, self.scope = retry_after, scope


def rate(setting: str, text: str) -> RateLimitItem:
    """A rate as `limits` writes it ("10/minute", "20 per 5 minutes"), or ConfigError naming the setting."""
    try:
        return parse(text)
    except ValueError:
        raise ConfigError(f"setting '{setting}': {text!r} is not a rate such as '10/minute' or "
                          "'20 per 5 minutes'") from None


def claimed_principal(credential: str) -> str | None:
    """The person a bearer token (a JWT, three dot-separated parts) claims to be, unverified; None else."""
    token = credential.removeprefix("Bearer ").removeprefix("bearer ").strip()
    if token.count(".") != 2:
        return None
    try:
        sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.PyJWTError:
        return None
    return str(sub)[:200] if sub else None


class SignInLimiter:
    def __init__(self, per_address: str, per_principal: str) -> None:
        self.per_address = rate("sign_in_failures_per_address", per_address)
        self.per_principal = rate("sign_in_failures_per_principal", per_principal)
        self.window = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    @classmethod
    def for_settings(cls, settings: Settings) -> SignInLimiter:
        return cls(settings.sign_in_failures_per_address, settings.sign_in_failures_per_principal)

    def _keys(self, address: str, principal: str | None):
        yield self.per_address, "address", address or "unknown"
        if principal:
            yield self.per_principal, "principal", principal

    def check(self, address: str, principal: str | None = None) -> None:
        """Raise TooManyFailures while the address or the claimed principal has no failure left."""
        for item, scope, key in self._keys(address, principal):
            if not self.window.test(item, "sign-in", scope, key):
                reset = self.window.get_window_stats(item, "sign-in", scope, key).reset_time
                raise TooManyFailures(max(1, math.ceil(reset - time.time())), scope)

    def failed(self, address: str, principal: str | None = None) -> None:
        for item, scope, key in self._keys(address, principal):
            self.window.hit(item, "sign-in", scope, key)
