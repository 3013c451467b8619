"""The keyring: per-customer data keys wrapped by a master key, destroyed to forget a customer."""

from __future__ import annotations

import base64
import os
import sqlite3
import uuid

import psycopg
import pytest

from casework.keyring import Keyring, KeyringError, TamperedField
from tests.pg import create_database


def key() -> bytes:
    return os.urandom(32)


@pytest.fixture(params=["sqlite", "postgres"])
def open_keyring(request, tmp_path):
    """A function opening the same keyring (file or schema) with the given master keys."""
    opened: list[Keyring] = []
    if request.param == "sqlite":
        path = tmp_path / "keyring.db"

        def make(masters):
            opened.append(Keyring.sqlite(path, masters))
            return opened[-1]
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"kr_{uuid.uuid4().hex[:10]}"
        create_database(server, name)
        conninfo = {"host": server["host"], "port": server["port"], "user": server["user"], "dbname": name}

        def make(masters):
            opened.append(Keyring.postgres(conninfo, masters))
            return opened[-1]
        make.conninfo = conninfo
    make.backend = request.param
    make.path = tmp_path / "keyring.db"
    yield make
    for k in opened:
        k.close()


def test_a_sealed_field_opens_with_its_place_and_reads_none_once_the_customer_is_forgotten(open_keyring):
    ring = open_keyring([key()])
    a = ring.seal("cust-a", "case:1|NoteAdded|text", "door code 4711")
    b = ring.seal("cust-b", "case:2|NoteAdded|text", "Ms B's flat")
    assert ring.is_sealed(a) and "4711" not in a
    assert ring.unseal("case:1|NoteAdded|text", a) == "door code 4711"
    result = ring.forget("cust-a", "sup-1")
    assert len(result.key_ids) == 1 and a.split(":")[1] == result.key_ids[0]
    assert ring.unseal("case:1|NoteAdded|text", a) is None
    assert ring.unseal("case:2|NoteAdded|text", b) == "Ms B's flat"  # the other customer keeps theirs
    # A customer who comes back gets a new key; the old tokens stay unreadable.
    again = ring.seal("cust-a", "case:3|NoteAdded|text", "new text")
    assert again.split(":")[1] != a.split(":")[1]
    assert ring.unseal("case:3|NoteAdded|text", again) == "new text"
    assert ring.unseal("case:1|NoteAdded|text", a) is None
    assert ring.forget("cust-a", "sup-1").key_ids == [again.split(":")[1]]
    assert ring.forget("cust-a", "sup-1").key_ids == []  # nothing left to destroy


def test_an_altered_or_moved_token_is_a_clear_error_not_garbage(open_keyring):
    ring = open_keyring([key()])
    token = ring.seal("cust-a", "case:1|NoteAdded|text", "hello there")
    prefix, key_id, body = token.split(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    altered = f"{prefix}:{key_id}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(TamperedField, match="fails authentication"):
        ring.unseal("case:1|NoteAdded|text", altered)
    with pytest.raises(TamperedField, match="fails authentication"):
        ring.unseal("case:2|NoteAdded|text", token)  # copied into another case
    with pytest.raises(TamperedField, match="damaged"):
        ring.unseal("case:1|NoteAdded|text", "enc1:no-body")
    with pytest.raises(KeyringError, match="never held"):
        ring.unseal("case:1|NoteAdded|text", f"enc1:{uuid.uuid4().hex}:{body}")


def test_the_master_key_rotates_by_rewrapping(open_keyring):
    old, new = key(), key()
    ring = open_keyring([old])
    tokens = {c: ring.seal(c, f"case:{c}|X|f", f"text of {c}") for c in ("c1", "c2", "c3")}
    ring.forget("c3", "sup")
    ring.close()
    with pytest.raises(KeyringError, match="not among the configured keyring master keys"):
        open_keyring([new]).unseal("case:c1|X|f", tokens["c1"])
    both = open_keyring([new, old])
    assert both.unseal("case:c1|X|f", tokens["c1"]) == "text of c1"  # old wraps still open
    assert both.rewrap() == 2  # the live keys of c1 and c2; c3's is destroyed
    assert both.rewrap() == 0
    only_new = open_keyring([new])
    assert [only_new.unseal(f"case:{c}|X|f", tokens[c]) for c in ("c1", "c2", "c3")] == [
        "text of c1", "text of c2", None]


def test_a_master_key_of_the_wrong_size_is_refused_by_name(tmp_path):
    with pytest.raises(KeyringError, match="32 bytes"):
        Keyring.sqlite(tmp_path / "k.db", [b"short"])
    with pytest.raises(KeyringError, match="needs a master key"):
        Keyring.sqlite(tmp_path / "k.db", [])


def test_a_destroyed_key_leaves_no_bytes_behind(open_keyring):
    ring = open_keyring([key()])
    ring.seal("cust-a", "a", "x")
    ring.seal("cust-b", "b", "y")
    if open_keyring.backend == "sqlite":
        with sqlite3.connect(open_keyring.path) as db:
            wrapped = db.execute("SELECT wrapped FROM customer_keys WHERE customer_id = 'cust-a'").fetchone()[0]
    else:
        with psycopg.connect(**open_keyring.conninfo) as db:
            wrapped = db.execute("SELECT wrapped FROM keyring.customer_keys WHERE customer_id = 'cust-a'").fetchone()[0]
    ring.forget("cust-a", "sup")
    if open_keyring.backend == "sqlite":
        ring.close()
        files = [p for p in open_keyring.path.parent.iterdir() if p.name.startswith("keyring.db")]
        assert files and not any(bytes(wrapped) in p.read_bytes() for p in files)
        assert oct(open_keyring.path.stat().st_mode & 0o777) == "0o600"
    else:
        with psycopg.connect(**open_keyring.conninfo) as db:
            row = db.execute("SELECT wrapped, forgotten_by FROM keyring.customer_keys "
                             "WHERE customer_id = 'cust-a'").fetchone()
            assert row == (None, "sup")
            # VACUUM FULL rewrote the table: no dead row version with the key in its file.
            path = db.execute("SELECT current_setting('data_directory') || '/' || "
                              "pg_relation_filepath('keyring.customer_keys')").fetchone()[0]
            db.execute("CHECKPOINT")
        assert bytes(wrapped) not in open(path, "rb").read()
