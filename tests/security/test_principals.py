"""The registry's rules without Temporal: loading, signatures, and the open-mode customer rule."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from casework.config import ConfigError
from casework.principals import Credential, load_registry
from domain.lifecycle import CommandRefused, decide, replay
from domain.model import Actor, Role
from tests.factory import command, open_case

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_a_signature_is_hmac_sha256_over_the_documented_text():
    cmd = command("add_note", actor=Actor(id="bob", role=Role.agent), text="hi", command_id="c-1")
    signed = Credential(principal="console", secret="s3cret").sign("case-x", cmd)
    # Recomputed by hand from docs/security.md: scheme, case, principal, command id, digest, one per line.
    text = f"casework-command-v1\ncase-x\nconsole\nc-1\n{cmd.digest()}"
    assert signed.signature == hmac.new(b"s3cret", text.encode(), hashlib.sha256).hexdigest()
    assert signed.digest() == cmd.digest()  # the credential is not part of what the command asks


def test_a_customer_acts_only_on_their_own_case_even_in_open_mode():
    opening = open_case(customer={"id": "cust-a", "name": "A", "tier": "B"}, case_id="case-1")
    state = replay(decide(None, opening, NOW))
    with pytest.raises(CommandRefused) as err:
        decide(state, command("record_customer_reply", actor=Actor(id="cust-b", role=Role.customer),
                              message="not mine"), NOW)
    assert err.value.code == "not_your_case"
    with pytest.raises(CommandRefused) as err:
        decide(None, open_case(actor=Actor(id="cust-b", role=Role.customer), case_id="case-2",
                               customer={"id": "cust-a", "name": "A", "tier": "B"}), NOW)
    assert err.value.code == "not_your_case"


@pytest.mark.parametrize(("text", "says"), [
    ("[services.crm]\nacts_as = ['system']\n", "needs secret_file or secret_env"),
    ("[services.crm]\nacts_as = ['system']\nsecret = 'inline'\n", "not in the registry"),
    ("[services.crm]\nacts_as = ['system']\nsecret_file = 'missing'\n", "does not exist"),
    ("[services.crm]\nacts_as = ['system']\nsecret_env = 'NOT_SET_ANYWHERE'\n", "is not set"),
    ("[services.crm]\nacts_as = ['boss']\nsecret_env = 'X'\n", "acts_as"),
    ("[staff.alice]\nroles = 'agent'\n", "roles"),
    ("[services.crm\n", "not valid TOML"),
])
def test_a_bad_registry_is_refused_with_what_is_wrong(tmp_path, text, says):
    path = tmp_path / "principals.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_registry(path, {"X": "x"})
    assert says in str(err.value)
