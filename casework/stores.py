"""Opening the event store the way the engine does: private files, encryption at rest, the keyring.

Every process that reads or writes the case store through the settings (the worker, the `casework`
commands, the benchmarks) opens it here, so none of them can write personal data in plaintext by
forgetting a step: the store is encrypted as a whole (casework/store_cipher.py) and its personal
fields are sealed with the customer's key (casework/keyring.py). docs/security-data.md has the why.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from pathlib import Path
from typing import Any

from casework.config import Settings
from casework.devserver import EngineRefused
from casework.keyring import Keyring, KeyringError
from projections.lease import postgres_ddl_lock
from casework.store_cipher import KEYS_ENV, MAGIC, TOPIC, RotatingCipher, new_key, parse_keys, read_key_file
from domain.store import CaseStore, CaseStream, is_case_event

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# The SQLite files of the engine (and what SQLite makes beside them, which takes the file's mode).
SQLITE_FILES = ("events.db", "reporting.db", "outbox.db", "keyring.db")


class StoreRefused(EngineRefused):
    """The store cannot be opened as configured; the message says why and what to do."""


def make_private(data_dir: Path, sqlite: bool = True) -> None:
    """The data directory and everything in it readable by the engine's user only (0700 / 0600), and
    the SQLite files made 0600 before SQLite first opens them (their -wal and -shm files follow the
    database file's mode)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, PRIVATE_DIR)
    if sqlite:
        for name in SQLITE_FILES:
            path = data_dir / name
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            _chmod(Path(root) / name, PRIVATE_DIR)
        for name in files:
            _chmod(Path(root) / name, PRIVATE_FILE)


def _chmod(path: Path, mode: int) -> None:
    try:
        if not stat.S_ISLNK(os.lstat(path).st_mode):  # never follow a link out of the data directory
            os.chmod(path, mode)
    except FileNotFoundError:
        pass  # a -journal or lock file that went away meanwhile


def _keys(values: list[str], file: str, generated: Path, what: str, setting: str, shared_store: bool) -> list[bytes]:
    """Keys from the settings' list, else their file, else (SQLite) a file made once under the data dir.

    A PostgreSQL store is shared by processes with data directories of their own (workers, projector):
    keys made by each would differ, so there the keys must be given."""
    if values:
        return parse_keys(values, what)
    if file:
        return parse_keys(read_key_file(file), f"{what} file {file}")
    if shared_store:
        raise ValueError(f"a PostgreSQL event store needs its {what} in the settings (CASEWORK_{setting.upper()}S "
                         f"or CASEWORK_{setting.upper()}_FILE; docs/security-data.md): every process on the store "
                         "must use the same keys, so none of them may make its own")
    if not generated.exists():
        generated.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        try:
            fd = os.open(generated, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
        except FileExistsError:
            pass  # another process made it meanwhile: read theirs
        else:
            with os.fdopen(fd, "w") as f:
                f.write(f"# {what}, newest first (made on first start; see docs/security-data.md)\n{new_key()}\n")
    return parse_keys(read_key_file(generated), f"{what} file {generated}")


def store_cipher_keys(settings: Settings) -> list[bytes]:
    return _keys(settings.store_cipher_keys, settings.store_cipher_key_file, settings.keys_dir / "store.keys",
                 "store cipher keys", "store_cipher_key", settings.event_store == "postgres")


def keyring_master_keys(settings: Settings) -> list[bytes]:
    return _keys(settings.keyring_master_keys, settings.keyring_master_key_file, settings.keys_dir / "master.keys",
                 "keyring master keys", "keyring_master_key", settings.event_store == "postgres")


def postgres_conninfo(settings: Settings) -> dict[str, str]:
    return {"host": settings.postgres_host, "port": str(settings.postgres_port), "dbname": settings.postgres_dbname,
            "user": settings.postgres_user, "password": settings.postgres_password}


def open_keyring(settings: Settings) -> Keyring:
    try:
        masters = keyring_master_keys(settings)
        if settings.event_store == "sqlite":
            make_private(settings.data_dir)
            return Keyring.sqlite(settings.keyring_db, masters)
        return Keyring.postgres(postgres_conninfo(settings), masters, settings.keyring_schema)
    except (ValueError, KeyringError) as err:
        raise StoreRefused(str(err)) from None


def cipher_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing settings of the store's cipher (CIPHER_TOPIC and its keys)."""
    import base64

    try:
        keys = store_cipher_keys(settings)
    except ValueError as err:
        raise StoreRefused(str(err)) from None
    return {"CIPHER_TOPIC": TOPIC, KEYS_ENV: ",".join(base64.b64encode(k).decode() for k in keys)}


def open_case_store(settings: Settings) -> CaseStore:
    """The case store, encrypted at rest with its personal fields sealed (unless `store_encryption` is
    off); refused (StoreRefused) when the store on disk was written the other way."""
    if settings.event_store == "sqlite":
        make_private(settings.data_dir)
    if not settings.store_encryption:
        with _creating_tables(settings):
            store = CaseStore(env=settings.store_env())
        _refuse_mixed(store, encrypted=False)
        return store
    env = {**settings.store_env(), **cipher_env(settings)}  # a missing key is refused before connecting
    with _creating_tables(settings):
        store = CaseStore(env=env, sealer=open_keyring(settings))
    _refuse_mixed(store, encrypted=True)
    return store


def _creating_tables(settings: Settings) -> contextlib.AbstractContextManager:
    """PostgreSQL's CREATE TABLE IF NOT EXISTS races when engine processes start together (the compose
    replicas): "tuple concurrently updated". The store and the keyring create their tables under the
    same advisory lock as the reporting tables."""
    if settings.event_store != "postgres":
        return contextlib.nullcontext()
    return postgres_ddl_lock(settings.store_env())


def _refuse_mixed(store: CaseStore, encrypted: bool) -> None:
    first = store.recorder.select_notifications(None, 1)
    if not first or first[0].state.startswith(MAGIC) == encrypted:
        return
    if encrypted:
        raise StoreRefused(
            "the event store holds events written before encryption at rest was enabled; casework does not "
            "mix plaintext and encrypted events. Copy it into a new, encrypted store (python -m "
            "casework.stores encrypt-copy, see docs/security-data.md), or set CASEWORK_STORE_ENCRYPTION=false "
            "to keep running it unencrypted (then nothing is protected at rest and forget-customer refuses)")
    raise StoreRefused("the event store is encrypted, but store_encryption is false: set it to true, with the "
                       "store's keys (store_cipher_keys or store_cipher_key_file) and its keyring")


def _table(store: CaseStore) -> tuple[str, str]:
    """The stored events' table and the backend's placeholder."""
    recorder: Any = store.recorder
    schema = getattr(recorder.datastore, "schema", None)
    if schema is not None:  # PostgreSQL
        return f'"{schema}"."{recorder.events_table_name}"', "%s"
    return recorder.events_table_name, "?"


def _sqlite_id(originator_id: Any) -> str:
    # eventsourcing's SQLite recorder keeps a UUID as its 32 hex digits.
    return originator_id.hex if isinstance(originator_id, uuid.UUID) else str(originator_id)


def reencrypt(store: CaseStore, batch_size: int = 500) -> int:
    """Rewrite every stored event not encrypted with the newest store key under it (the same bytes
    decrypted: the history does not change); returns how many it rewrote. Then the older keys can be
    dropped from store_cipher_keys. Safe to run while the engine runs: only the encryption changes."""
    cipher = store.mapper.cipher
    if not isinstance(cipher, RotatingCipher):
        raise StoreRefused("the store is not encrypted by casework's cipher: nothing to re-encrypt")
    table, mark = _table(store)
    done, after = 0, 0
    while batch := store.recorder.select_notifications(after, batch_size, inclusive_of_start=False):
        stale = [n for n in batch if cipher.key_of(n.state) != cipher.newest]
        if stale:
            with store.recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
                for n in stale:
                    c.execute(f"UPDATE {table} SET state = {mark} WHERE originator_id = {mark} AND "
                              f"originator_version = {mark}",
                              [cipher.encrypt(cipher.decrypt(n.state)),
                               _sqlite_id(n.originator_id) if mark == "?" else n.originator_id,
                               n.originator_version])
            done += len(stale)
        after = batch[-1].id
    return done


def encrypt_copy(source: Settings, target: Settings, batch_size: int = 500) -> int:
    """Copy a store written before encryption (source, store_encryption false) into a new, empty,
    encrypted one (target), event by event in the same order: the same history, now encrypted at rest
    with its personal fields sealed. Returns how many events it copied."""
    if source.store_encryption or not target.store_encryption:
        raise StoreRefused("encrypt-copy reads an unencrypted store (store_encryption false) into an encrypted one")
    old, new = open_case_store(source), open_case_store(target)
    if new.recorder.max_notification_id():
        raise StoreRefused("the target store is not empty: encrypt-copy writes into a fresh store only")
    owners: dict[Any, str] = {}  # stream -> customer, from its opening (older events do not name it)
    copied, after = 0, 0
    while batch := old.recorder.select_notifications(after, batch_size, inclusive_of_start=False):
        stored = []
        for n in batch:
            event = old.mapper.to_domain_event(n)
            if is_case_event(n.topic):
                if isinstance(event, CaseStream.CaseOpened):
                    owners[n.originator_id] = event.fact["customer"]["id"]
                else:
                    object.__setattr__(event, "customer_id", owners.get(n.originator_id, ""))
            stored.append(new.mapper.to_stored_event(event))
        new.recorder.insert_events(stored)
        copied += len(batch)
        after = batch[-1].id
    return copied


def main(argv: list[str] | None = None) -> int:
    """python -m casework.stores reencrypt | encrypt-copy SOURCE_CONFIG  (settings as for the engine)."""
    import sys

    from casework.config import ConfigError, load_settings

    args = sys.argv[1:] if argv is None else argv
    try:
        settings = load_settings()
        if args == ["reencrypt"]:
            print(f"re-encrypted {reencrypt(open_case_store(settings))} events with the newest store key")
        elif len(args) == 2 and args[0] == "encrypt-copy":
            print(f"copied {encrypt_copy(load_settings(args[1]), settings)} events into the encrypted store")
        else:
            print("usage: python -m casework.stores reencrypt | encrypt-copy SOURCE_CONFIG.toml", file=sys.stderr)
            return 2
    except (ConfigError, StoreRefused) as err:
        print(f"casework stores: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
