"""The event store encrypted at rest through eventsourcing's cipher: rotation, tampering, old stores."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from eventsourcing.persistence import MapperDeserialisationError

from casework.store_cipher import MAGIC, key_id
from casework.stores import StoreRefused, encrypt_copy, open_case_store, reencrypt
from domain.store import stream_id
from tests.security.shred_helpers import new_key, note, open_case, settings_for


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


@pytest.fixture
def make_settings(backend, tmp_path, request):
    server = request.getfixturevalue("postgres_server") if backend == "postgres" else None
    made = {}
    master = new_key()

    def make(**values):
        values.setdefault("keyring_master_keys", [master])
        # One database for the test: later calls reopen it with other keys.
        s = settings_for(backend, tmp_path / "data", server, made.get("db"), **values)
        made["db"] = s.postgres_dbname
        return s
    return make


def raw_events(settings) -> list[tuple[str, int, bytes]]:
    if settings.event_store == "sqlite":
        with sqlite3.connect(settings.events_db) as db:
            return [(r[0], r[1], bytes(r[2])) for r in
                    db.execute("SELECT originator_id, originator_version, state FROM stored_events ORDER BY rowid")]
    with psycopg.connect(host=settings.postgres_host, port=settings.postgres_port, user=settings.postgres_user,
                         dbname=settings.postgres_dbname) as db:
        return [(str(r[0]), r[1], bytes(r[2])) for r in db.execute(
            "SELECT originator_id, originator_version, state FROM casestore_events ORDER BY notification_id")]


def tamper(settings, originator_id: str, version: int) -> None:
    if settings.event_store == "sqlite":
        with sqlite3.connect(settings.events_db) as db:
            state = db.execute("SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
                               (originator_id, version)).fetchone()[0]
            altered = bytes(state[:-5]) + bytes([state[-5] ^ 0x01]) + bytes(state[-4:])
            changed = db.execute("UPDATE stored_events SET state = ? WHERE originator_id = ? AND "
                                 "originator_version = ?", (altered, originator_id, version)).rowcount
            assert changed == 1
        return
    with psycopg.connect(host=settings.postgres_host, port=settings.postgres_port, user=settings.postgres_user,
                         dbname=settings.postgres_dbname) as db:
        changed = db.execute("UPDATE casestore_events SET state = overlay(state placing "
                             "set_byte('\\x00'::bytea, 0, get_byte(state, 39) # 1) from 40 for 1) "
                             "WHERE originator_id = %s AND originator_version = %s", (originator_id, version)).rowcount
        assert changed == 1


def test_every_stored_event_is_encrypted_with_the_newest_key_and_reads_back(make_settings):
    k1 = new_key()
    settings = make_settings(store_cipher_keys=[k1])
    store = open_case_store(settings)
    v = open_case(store, "case-1", "cust-1", "Quintus Plaintextus", "a leaking tap at Elm Road 5")
    note(store, "case-1", "call after six", v)
    rows = raw_events(settings)
    assert len(rows) == 2
    import base64
    for _, _, state in rows:
        assert state.startswith(MAGIC + key_id(base64.b64decode(k1)))
        assert b"Quintus" not in state and b"NoteAdded" not in state and b"cust-1" not in state
    history = store.history("case-1")
    assert history[0].customer.name == "Quintus Plaintextus" and history[1].text == "call after six"


def test_a_rotated_key_encrypts_new_events_and_old_ones_read_until_reencrypted(make_settings):
    import base64

    old, new = new_key(), new_key()
    store = open_case_store(make_settings(store_cipher_keys=[old]))
    v = open_case(store, "case-r", "cust-r", "Rotating Rita", "first under the old key")
    # Rotation: the new key first, the old one still listed.
    settings = make_settings(store_cipher_keys=[new, old])
    store = open_case_store(settings)
    assert store.history("case-r")[0].customer.name == "Rotating Rita"
    note(store, "case-r", "written under the new key", v)
    ids = [state[4:12] for _, _, state in raw_events(settings)]
    assert ids == [key_id(base64.b64decode(old)), key_id(base64.b64decode(new))]
    # Dropping the old key too early: the old event is named, with the key it needs.
    early = open_case_store(make_settings(store_cipher_keys=[new]))
    with pytest.raises(MapperDeserialisationError, match=f"store key {key_id(base64.b64decode(old)).hex()}"):
        early.history("case-r")
    # Re-encryption moves every event to the newest key; then the old key can go.
    assert reencrypt(store) == 1
    assert reencrypt(store) == 0
    after = open_case_store(make_settings(store_cipher_keys=[new]))
    assert [e.type for e in after.history("case-r")] == ["CaseOpened", "NoteAdded"]
    assert after.history("case-r")[0].customer.name == "Rotating Rita"


def test_a_tampered_stored_event_is_a_clear_error_naming_it(make_settings):
    settings = make_settings(store_cipher_keys=[new_key()])
    store = open_case_store(settings)
    v = open_case(store, "case-t", "cust-t", "Tampered Tom", "x")
    note(store, "case-t", "the note someone alters", v)
    sid = stream_id("case-t")
    tamper(settings, sid.hex if settings.event_store == "sqlite" else str(sid), 2)
    fresh = open_case_store(settings)  # no cached aggregate: read from the rows
    with pytest.raises(MapperDeserialisationError) as err:
        fresh.history("case-t")
    message = str(err.value)
    assert "fails authentication" in message and "altered or damaged" in message
    assert str(stream_id("case-t")) in message and "originator_version 2" in message


def test_a_store_written_before_encryption_is_refused_by_name_and_can_be_copied_encrypted(make_settings, tmp_path):
    plain = make_settings(store_encryption=False)
    store = open_case_store(plain)
    v = open_case(store, "case-p", "cust-p", "Plain Paula", "written in the clear")
    note(store, "case-p", "also clear", v)
    assert any(b"Plain Paula" in state for _, _, state in raw_events(plain))
    with pytest.raises(StoreRefused, match="written before encryption at rest was enabled"):
        open_case_store(make_settings(store_cipher_keys=[new_key()]))
    # The way out: copy it into a fresh encrypted store (another data dir / database).
    from tests.security.shred_helpers import settings_for
    server = None
    if plain.event_store == "postgres":
        server = {"host": plain.postgres_host, "port": str(plain.postgres_port), "user": plain.postgres_user}
    target = settings_for(plain.event_store, tmp_path / "copy", server, store_cipher_keys=[new_key()],
                          keyring_master_keys=[new_key()])
    assert encrypt_copy(plain, target) == 2
    copied = open_case_store(target)
    history = copied.history("case-p")
    assert history[0].customer.name == "Plain Paula" and history[1].text == "also clear"
    assert not any(b"Plain Paula" in state or b"also clear" in state for _, _, state in raw_events(target))
    # And the copy's personal fields are sealed: forgetting reaches them.
    copied.sealer.forget("cust-p", "sup")
    assert open_case_store(target).history("case-p")[1].text == "[forgotten]"
    # An encrypted store opened as unencrypted is refused too, not misread.
    with pytest.raises(StoreRefused, match="the event store is encrypted"):
        open_case_store(target.model_copy(update={"store_encryption": False}))


def test_bad_keys_in_the_settings_are_named(make_settings, tmp_path):
    with pytest.raises(StoreRefused, match="store cipher keys: key 1 is 5 bytes"):
        open_case_store(make_settings(store_cipher_keys=["aGVsbG8="]))
    with pytest.raises(StoreRefused, match="not base64"):
        open_case_store(make_settings(store_cipher_keys=["not base64!"]))
    with pytest.raises(StoreRefused, match="cannot be read"):
        open_case_store(make_settings(store_cipher_key_file=str(tmp_path / "missing.keys")))


def test_a_postgresql_store_needs_its_keys_given(tmp_path, postgres_server):
    settings = settings_for("postgres", tmp_path / "data", postgres_server)
    with pytest.raises(StoreRefused, match="CASEWORK_STORE_CIPHER_KEYS or CASEWORK_STORE_CIPHER_KEY_FILE"):
        open_case_store(settings)
    with pytest.raises(StoreRefused, match="CASEWORK_KEYRING_MASTER_KEYS or CASEWORK_KEYRING_MASTER_KEY_FILE"):
        open_case_store(settings.model_copy(update={"store_cipher_keys": [new_key()]}))


def test_engine_processes_starting_together_on_postgresql_all_open_the_store(tmp_path, postgres_server):
    """The compose replicas start together on a fresh database: each creates the store's and the
    keyring's tables (CREATE ... IF NOT EXISTS races in PostgreSQL: 'tuple concurrently updated')."""
    import threading

    master = new_key()
    for round_ in range(3):
        first = settings_for("postgres", tmp_path / f"d{round_}", postgres_server, keyring_master_keys=[master],
                             store_cipher_keys=[new_key()])
        barrier, errors = threading.Barrier(6), []

        def start() -> None:
            barrier.wait()
            try:
                open_case_store(first)
            except Exception as err:  # noqa: BLE001 - collected for the assertion
                errors.append(repr(err))
        threads = [threading.Thread(target=start) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
