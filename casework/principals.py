"""Loading the principal registry (TOML) and a caller's credential from settings or files.

    [services.crm]                  # a backend: opens cases, reports what customers said
    acts_as = ["system", "customer"]
    secret_env = "CRM_SECRET"       # or secret_file = "secrets/crm" (relative to this file)

    [staff.alice]
    roles = ["agent"]
    teams = ["printing"]
    secret_file = "secrets/alice"   # optional: alice signs her own commands

No registry (CASEWORK_PRINCIPALS_FILE empty) is open mode: every caller is who it says it is. The
worker says so at start, in a warning, every time (docs/security.md).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from casework.config import ConfigError, Settings
from casework.sample_principals import PUBLISHED_KEY_HASHES
from domain.commands import Command
from domain.principals import Registry, sign
from domain.refusal import in_words

C = TypeVar("C", bound=Command)


def load_registry(path: str | Path, environ: dict[str, str] | None = None, *, sample: bool = False) -> Registry:
    """The registry in `path`, its secrets read from the files or variables it names. A staff or
    service key published as a sample sign-in (casework/sample_principals.py) is refused unless
    `sample`: a copy of the sample registry must not let the README's keys in."""
    environ = dict(os.environ if environ is None else environ)
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"principal registry {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"principal registry {path} is not valid TOML: {err}") from None
    for section in ("services", "staff"):
        for name, entry in dict(raw.get(section, {})).items():
            where = f"{path}: [{section}.{name}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where} must be a table")
            secret = _secret(entry, path.parent, environ, where)
            if secret is None and section == "services":
                raise ConfigError(f"{where} needs secret_file or secret_env: a service must prove who it is")
            entry["secret"] = secret
            published = PUBLISHED_KEY_HASHES.get(str(entry.get("api_key_sha256", "")).lower())
            if published and not sample:
                raise ConfigError(f"{where}: api_key_sha256 is the published sample key '{published}' "
                                  "(casework/samples/principals.toml); anyone could sign in with it. Give "
                                  "each person a key of their own")
    try:
        return Registry.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"principal registry {path}: {in_words(err)}") from None


def _secret(entry: dict, base: Path, environ: dict[str, str], where: str) -> str | None:
    file, env = entry.pop("secret_file", None), entry.pop("secret_env", None)
    if "secret" in entry:
        raise ConfigError(f"{where}: write secrets in a file (secret_file) or a variable (secret_env), "
                          "not in the registry")
    if file:
        try:
            return (base / file).read_text().strip() or _empty(where)
        except FileNotFoundError:
            raise ConfigError(f"{where}: secret_file {base / file} does not exist") from None
    if env:
        if not environ.get(env):
            raise ConfigError(f"{where}: the variable {env} (secret_env) is not set")
        return environ[env]
    return None


def _empty(where: str) -> str:
    raise ConfigError(f"{where}: the secret file is empty")


def registry_for(settings: Settings) -> Registry | None:
    """The configured registry, or None for open mode."""
    return load_registry(settings.principals_file) if settings.principals_file else None


class Credential(BaseModel):
    """What a caller signs its commands with: its principal name and secret."""

    principal: str
    secret: SecretStr

    def sign(self, subject: str, cmd: C) -> C:
        named = cmd.model_copy(update={"principal": self.principal, "signature": ""})
        return named.model_copy(update={"signature": sign(self.secret.get_secret_value(), subject, named)})


def credential_for(settings: Settings) -> Credential | None:
    """The caller's credential from settings (CASEWORK_PRINCIPAL with _SECRET or _SECRET_FILE)."""
    if not settings.principal:
        return None
    secret = settings.principal_secret.get_secret_value()
    if settings.principal_secret_file:
        try:
            secret = Path(settings.principal_secret_file).read_text().strip()
        except FileNotFoundError:
            raise ConfigError(f"CASEWORK_PRINCIPAL_SECRET_FILE {settings.principal_secret_file} does not exist") from None
    if not secret:
        raise ConfigError(f"principal '{settings.principal}' needs CASEWORK_PRINCIPAL_SECRET or "
                          "CASEWORK_PRINCIPAL_SECRET_FILE")
    return Credential(principal=settings.principal, secret=secret)
