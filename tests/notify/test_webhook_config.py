"""The webhook's secret settings: a bad secret is refused without being quoted; a webhook without a
secret is refused at start unless unsigned delivery is allowed outright, and then said loudly; the
secret can come from a file (a mounted secret)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from casework.config import ConfigError, Settings, load_settings
from casework.stores import open_case_store
from tests.notify.receiver import PER_ROUND, SECRET, Receiver, notified_round, open_a_case, wait_for

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("secret, says", [
    ("s3cr3t-plain-password", "must start with 'whsec_'"),
    ("whsec_not!base64@all#", "is not valid base64"),
    ("whsec_c2hvcnQta2V5", "must encode 24 to 64 random bytes, it encodes 9"),
])
def test_a_malformed_secret_is_refused_and_never_quoted(secret, says):
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"CASEWORK_WEBHOOK_SECRET": secret})
    message = str(refused.value)
    assert "CASEWORK_WEBHOOK_SECRET" in message and says in message
    assert secret not in message and secret.removeprefix("whsec_") not in message


def test_a_good_secret_is_taken_and_its_repr_hides_it():
    settings = load_settings(environ={"CASEWORK_WEBHOOK_SECRET": SECRET})
    assert settings.webhook_signing_secret() == SECRET
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


def test_a_webhook_url_in_a_refusal_is_not_quoted():
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"CASEWORK_WEBHOOK_URL": "ftp://hooks.example.com/T0/B0/tok3n-in-the-path"})
    assert "tok3n" not in str(refused.value) and "http:// or https://" in str(refused.value)


def test_the_secret_comes_from_a_file_and_both_at_once_are_refused(tmp_path):
    path = tmp_path / "webhook-secret"
    path.write_text(SECRET + "\n")
    assert load_settings(environ={"CASEWORK_WEBHOOK_SECRET_FILE": str(path)}).webhook_signing_secret() == SECRET
    with pytest.raises(ConfigError, match="not both"):
        load_settings(environ={"CASEWORK_WEBHOOK_SECRET_FILE": str(path), "CASEWORK_WEBHOOK_SECRET": SECRET})
    path.write_text("whsec_broken!")
    with pytest.raises(ConfigError, match="is not valid base64") as refused:
        load_settings(environ={"CASEWORK_WEBHOOK_SECRET_FILE": str(path)}).webhook_signing_secret()
    assert "broken" not in str(refused.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(environ={"CASEWORK_WEBHOOK_SECRET_FILE": str(tmp_path / "absent")}).webhook_signing_secret()


def outbox_run(env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "casework"), "notifications", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def base_env(tmp_path: Path, url: str) -> dict[str, str]:
    return {**os.environ, "CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_WEBHOOK_URL": url,
            "CASEWORK_LOG_FORMAT": "json", "CASEWORK_NOTIFY_RETRY_INITIAL_SECONDS": "0.05"}


def test_a_webhook_without_a_secret_is_refused_at_start_and_nothing_is_touched(tmp_path):
    result = subprocess.run([str(BIN / "casework"), "notifications", "run"],
                            env=base_env(tmp_path, "https://hooks.example.com/casework"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and "CASEWORK_WEBHOOK_SECRET" in result.stderr
    assert "CASEWORK_WEBHOOK_ALLOW_UNSIGNED=true" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "outbox.db").exists()


def deliver_with(tmp_path: Path, env: dict[str, str], receiver: Receiver) -> str:
    """Run the outbox alone until one round is delivered; its log."""
    store = open_case_store(Settings(data_dir=tmp_path))  # as the engine opens it: encrypted at rest
    notified_round(store, open_a_case(store))
    proc = outbox_run(env)
    try:
        wait_for(lambda: len(receiver.accepted) == PER_ROUND, what="one round delivered")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_unsigned_delivery_only_when_allowed_outright_and_then_said_loudly(tmp_path):
    receiver = Receiver(secret=None).start()
    try:
        out = deliver_with(tmp_path, {**base_env(tmp_path, receiver.url), "CASEWORK_WEBHOOK_ALLOW_UNSIGNED": "true"},
                           receiver)
    finally:
        receiver.stop()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    (warning,) = [line for line in lines if line["event"] == "webhooks_unsigned"]
    assert warning["level"] == "warning" and "NOT signed" in warning["warning"]
    assert not any("webhook-signature" in r.headers for r in receiver.requests)
    assert all("webhook-id" in r.headers and "webhook-timestamp" in r.headers for r in receiver.requests)


def test_a_secret_from_a_file_signs_what_the_receiver_verifies(tmp_path):
    (tmp_path / "secret").write_text(SECRET + "\n")
    receiver = Receiver().start()
    try:
        out = deliver_with(tmp_path, {**base_env(tmp_path, receiver.url),
                                      "CASEWORK_WEBHOOK_SECRET_FILE": str(tmp_path / "secret")}, receiver)
    finally:
        receiver.stop()
    assert not receiver.refused and len(receiver.accepted) == PER_ROUND
    started = [json.loads(line) for line in out.splitlines() if '"notifications_started"' in line]
    assert started and started[0]["signed"] is True and started[0]["webhook"] == receiver.url.removesuffix("/casework")
    assert "webhooks_unsigned" not in out and SECRET.removeprefix("whsec_") not in out
