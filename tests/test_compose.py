"""docker-compose.yml keeps its secrets in `.env`: no password or key is written in it, a missing one
stops `docker compose up` (`${VAR:?...}`), and only what a user needs is published, on 127.0.0.1.
Docker cannot run here, so the file is read as YAML and checked against those rules; the database
init script it mounts runs against a real PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import subprocess
from pathlib import Path

import psycopg
import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|API_?KEY", re.I)
REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]+\}$")  # compose refuses to start without it
OPTIONAL = re.compile(r"^\$\{(\w+):-\}$")  # empty unless .env sets it
PUBLISHED = {"temporal": {"7233"}, "temporal-ui": {"8080"}}  # the casework CLI, the UI; nothing else


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def environments(services: dict) -> dict[str, dict[str, str]]:
    return {name: service.get("environment") or {} for name, service in services.items()}


def test_every_secret_comes_from_the_env_file_and_the_passwords_are_required():
    services = compose()["services"]
    secrets = {(name, key): str(value) for name, env in environments(services).items()
               for key, value in env.items() if SECRET_NAME.search(key)}
    assert ("postgresql", "POSTGRES_PASSWORD") in secrets and ("temporal", "POSTGRES_PWD") in secrets
    for (name, key), value in secrets.items():
        if key.endswith("_FILE") and value.startswith("/run/secrets/"):
            continue  # a Docker secret's mount: the value is in a file outside the compose file
        assert REQUIRED.match(value) or OPTIONAL.match(value), f"{name}.{key} is written in the file"
        if "PASSWORD" in key or "PWD" in key:
            assert REQUIRED.match(value), f"{name}.{key}: a missing password must stop the start"


def test_no_literal_password_anywhere_in_the_file_or_the_scripts_it_mounts():
    text = (ROOT / "docker-compose.yml").read_text()
    found = re.findall(r"(?im)^\s*([\w-]*(?:password|pwd|secret)[\w-]*)\s*:\s*(?!\$\{)(\S.*)$", text)
    # Docker's `secrets:` lists name file-backed secrets (`*anchor` or `[names]`), not values.
    literal = [(k, v) for k, v in found if k != "secrets" and not v.startswith("/run/secrets/")]
    assert literal == []
    for script in (ROOT / "deploy").iterdir():
        assert not re.search(r"(?i)password\s+'[^']", script.read_text()), script.name


def test_only_what_a_user_needs_is_published_and_only_on_localhost():
    services = compose()["services"]
    published: dict[str, set[str]] = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):  # the long syntax
                host_ip, container = port.get("host_ip", "0.0.0.0"), str(port["target"])
            else:
                parts = str(port).split(":")
                assert len(parts) == 3, f"{name}: {port} publishes on every interface"
                host_ip, container = parts[0], parts[2]
            assert host_ip == "127.0.0.1", f"{name}: {port} is published beyond this host"
            published.setdefault(name, set()).add(container)
    assert published == PUBLISHED  # PostgreSQL, the workers, the projector and the notifier: none
    assert all("expose" not in s and s.get("network_mode") != "host" for s in services.values())


def test_the_env_example_lists_every_variable_with_placeholders_only_and_env_is_ignored():
    used = {name for env in environments(compose()["services"]).values() for value in env.values()
            for name in re.findall(r"\$\{(\w+)", str(value))}
    example = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    assert set(example) == used and {"TEMPORAL_DB_PASSWORD", "CASEWORK_DB_PASSWORD"} <= used
    assert set(example.values()) == {""}  # copied unfilled, compose still refuses to start
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored and ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_only_the_notifier_holds_the_webhook_secret():
    holders = {name for name, env in environments(compose()["services"]).items() if "CASEWORK_WEBHOOK_SECRET" in env}
    assert holders == {"casework-notifier"}


def test_the_init_script_creates_the_casework_user_with_the_password_from_the_environment(postgres_server):
    """Run as the postgres image runs it, against a real PostgreSQL; the stored SCRAM verifier is
    checked against the password by hand (RFC 7677: PBKDF2, then HMAC 'Server Key')."""
    password = "it's; DROP ROLE postgres; --"  # quoted by psql, whatever it holds
    env = {**os.environ, "PGHOST": postgres_server["host"], "PGPORT": postgres_server["port"],
           "POSTGRES_USER": postgres_server["user"], "CASEWORK_DB_PASSWORD": password}
    result = subprocess.run(["sh", str(ROOT / "deploy" / "postgres-init.sh")], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(host=postgres_server["host"], port=postgres_server["port"], user="postgres",
                         dbname="postgres") as conn:
        verifier = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'casework'").fetchone()[0]
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'casework'").fetchone()
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'postgres'").fetchone()
    assert owner == ("casework",)
    method, params, keys = verifier.split("$")
    iterations, salt = params.split(":")
    server_key = keys.split(":")[1]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    assert method == "SCRAM-SHA-256"
    assert base64.b64encode(hmac.new(salted, b"Server Key", hashlib.sha256).digest()).decode() == server_key


def test_the_cluster_admits_as_many_updates_in_flight_per_case_as_the_embedded_server():
    # Compared with the dev server's own constant: both sides are configuration, and the check is
    # that the compose cluster does not fall back to Temporal's default of 10 (docs/cluster.md).
    from casework.devserver import MAX_IN_FLIGHT_UPDATES

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    temporal = compose["services"]["temporal"]
    path = temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in temporal["volumes"]}
    config = yaml.safe_load((ROOT / mounted[path]).read_text())
    assert config["history.maxInFlightUpdates"] == [{"value": MAX_IN_FLIGHT_UPDATES}]
    assert MAX_IN_FLIGHT_UPDATES >= 8 * 3  # the API, the console and a CLI run on one case
    assert config["frontend.enableUpdateWorkflowExecution"] == [{"value": True}]
