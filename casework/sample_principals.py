"""The sample sign-ins of the web console, for development: what `make run` offers a newcomer.

Open mode (no CASEWORK_PRINCIPALS_FILE) has nobody to sign in, so the console would be off. On its
embedded defaults the engine instead gives the console the shipped sample registry
(casework/samples/principals.toml) and says so in a warning at every start, with the keys. That opens
nothing open mode does not already: the HTTP API beside it takes any actor a request names and
listens on loopback only (casework/web/__init__.py refuses open mode elsewhere), and the engine
itself still runs in open mode (the sample registry is the console's, not the worker's).

The keys are published, so a configured registry that lists one of them is refused at start
(`casework.principals.load_registry`): a copy of the sample made the production registry cannot be
signed into with the README's keys.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from casework.config import Settings

SAMPLE_REGISTRY = Path(__file__).parent / "samples" / "principals.toml"
# Who signs in with which key (their roles and teams are in the sample registry).
SIGN_INS = {"agent-alice": "dev-alice", "agent-bob": "dev-bob", "sup-sam": "dev-sam", "mia": "dev-mia"}
MANAGERS = ("mia",)  # the sample's console_managers
CONSOLE_PRINCIPAL, CONSOLE_SECRET_ENV = "console", "SAMPLE_CONSOLE_SECRET"
PUBLISHED_KEY_HASHES = {hashlib.sha256(key.encode()).hexdigest(): key for key in SIGN_INS.values()}


def wanted(settings: Settings) -> bool:
    """The sample sign-ins apply: no registry configured, and the setting leaves them on."""
    return not settings.principals_file and settings.console_sample_sign_ins


def sample_console(settings: Settings):
    """(registry, credential, settings) for the console on the sample sign-ins. The console's own
    secret is random per start; its session cookie goes over plain HTTP (the API is on loopback)."""
    from casework.principals import Credential, load_registry

    secret = secrets.token_urlsafe(32)
    registry = load_registry(SAMPLE_REGISTRY, {CONSOLE_SECRET_ENV: secret}, sample=True)
    credential = Credential(principal=CONSOLE_PRINCIPAL, secret=secret)
    console_settings = settings.model_copy(update={
        "console_managers": sorted({*settings.console_managers, *MANAGERS}), "console_secure_cookie": False})
    return registry, credential, console_settings


def described(registry) -> list[str]:
    """Each sample sign-in as `name: key (roles, teams)`, for the start-up log."""
    lines = []
    for name, key in SIGN_INS.items():
        entry = registry.staff[name]
        roles = sorted(r.value for r in entry.roles) + (["manager"] if name in MANAGERS else [])
        teams = f", team {', '.join(entry.teams)}" if entry.teams else ""
        lines.append(f"{name}: {key} ({', '.join(roles)}{teams})")
    return lines
