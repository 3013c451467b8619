"""The keyring: one data key per customer, wrapped by a master key, destroyed to forget the customer.

Personal fields are sealed (AES-256-GCM) with their customer's data key; the data keys live here,
in a SQLite file of their own (`keyring.db`) or a PostgreSQL table (schema `keyring`), each wrapped
(AES-256-GCM) by a master key from the settings, never in the event store. Forgetting a customer
destroys the wrapped key, so every copy of their sealed fields, in the store, its backups, the outbox,
turns unreadable at once: crypto-shredding (docs/security-data.md).

- A token is `enc1:<key id>:<base64url(nonce | ciphertext | tag)>`; its associated data is the key
  id and the place it was written for (case, event type, field), so a token moved elsewhere, or
  altered, fails authentication: a `TamperedField` error, never silent garbage.
- A destroyed key reads as None (the caller shows "[forgotten]"); a key the keyring never had is an
  error (a wrong keyring file must not look like forgotten customers).
- The master key rotates by re-wrapping (`rewrap`): list the new master key first, re-wrap, then
  drop the old one from the settings.
- SQLite: `secure_delete` on and a rollback journal (not WAL), so a destroyed key's bytes are zeroed
  in the file and no journal keeps them. PostgreSQL: the table is rewritten (VACUUM FULL) after a
  forgetting, so no dead row version keeps the key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TOKEN_PREFIX = "enc1:"
KEY_BYTES = 32
# How stale another process's forgetting may be here: a destroyed key opens nothing after this.
EPOCH_TTL = 1.0


class KeyringError(Exception):
    """The keyring cannot do what was asked; the message says why and what to do."""


class TamperedField(KeyringError):
    """A sealed field does not authenticate: altered, moved, or damaged."""


def key_id_of(key: bytes) -> str:
    """A master key's public name: a hash prefix, so settings need not name keys."""
    return hashlib.sha256(b"casework-master-key:" + key).hexdigest()[:16]


@dataclass(frozen=True)
class ForgetResult:
    customer_id: str
    key_ids: list[str]  # the data keys destroyed now
    case_ids: list[str]  # the cases that hold (held) their sealed fields


class _Backend:
    """The SQL the keyring needs; SQLite and PostgreSQL differ in placeholders, DDL and clean-up."""

    def transaction(self, write: bool = True) -> Any:
        raise NotImplementedError

    def purge(self) -> None:
        """Make sure no destroyed key survives in the storage's free space."""

    def close(self) -> None: ...


class _SQLite(_Backend):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # private from its first byte
        os.chmod(path, 0o600)
        self.path = path
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA secure_delete = ON")  # zero what is deleted or overwritten
        self.conn.execute("PRAGMA journal_mode = DELETE")  # no WAL file holding old pages
        with self.transaction() as c:
            c.execute("CREATE TABLE IF NOT EXISTS customer_keys (key_id TEXT PRIMARY KEY, customer_id TEXT "
                      "NOT NULL, wrapped BLOB, master_id TEXT, created_at REAL NOT NULL, forgotten_at REAL, "
                      "forgotten_by TEXT)")
            c.execute("CREATE UNIQUE INDEX IF NOT EXISTS customer_keys_live ON customer_keys (customer_id) "
                      "WHERE forgotten_at IS NULL")
            c.execute("CREATE TABLE IF NOT EXISTS key_cases (customer_id TEXT NOT NULL, case_id TEXT NOT NULL, "
                      "PRIMARY KEY (customer_id, case_id))")

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Any]:
        with self.lock:
            c = self.conn.cursor()
            c.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _Cursor(c, "?")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class _Postgres(_Backend):
    def __init__(self, conninfo: dict[str, str], schema: str) -> None:
        import psycopg

        self.schema = schema
        self.lock = threading.Lock()
        self.conninfo = conninfo
        self.conn = psycopg.connect(**conninfo, autocommit=False)
        self.table = f'"{schema}".customer_keys'
        self.cases = f'"{schema}".key_cases'
        with self.transaction() as c:
            c.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            c.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (key_id TEXT PRIMARY KEY, customer_id TEXT "
                      "NOT NULL, wrapped BYTEA, master_id TEXT, created_at DOUBLE PRECISION NOT NULL, "
                      "forgotten_at DOUBLE PRECISION, forgotten_by TEXT)")
            c.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS customer_keys_live ON {self.table} (customer_id) "
                      "WHERE forgotten_at IS NULL")
            c.execute(f"CREATE TABLE IF NOT EXISTS {self.cases} (customer_id TEXT NOT NULL, case_id TEXT "
                      "NOT NULL, PRIMARY KEY (customer_id, case_id))")

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Any]:
        with self.lock:
            if self.conn.closed or self.conn.broken:  # the server restarted: the caller's retry gets a new one
                import psycopg

                self.conn = psycopg.connect(**self.conninfo, autocommit=False)
            with self.conn.transaction():
                yield _Cursor(self.conn.cursor(), "%s", {"customer_keys": self.table, "key_cases": self.cases})

    def purge(self) -> None:
        # Dead row versions (the key before it was destroyed) stay in the table's pages until the
        # table is rewritten; VACUUM FULL writes a fresh file and drops the old one.
        with self.lock:
            self.conn.autocommit = True
            try:
                self.conn.execute(f"VACUUM FULL {self.table}")
            finally:
                self.conn.autocommit = False

    def close(self) -> None:
        self.conn.close()


class _Cursor:
    """One statement style for both backends: `?` placeholders, bare table names."""

    def __init__(self, cursor: Any, placeholder: str, names: dict[str, str] | None = None) -> None:
        self.cursor, self.placeholder, self.names = cursor, placeholder, names or {}

    def execute(self, sql: str, params: tuple | list = ()) -> _Cursor:
        for bare, qualified in self.names.items():
            sql = sql.replace(f" {bare} ", f" {qualified} ").replace(f" {bare}(", f" {qualified}(")
        if self.placeholder != "?":
            sql = sql.replace("?", self.placeholder)
        self.cursor.execute(sql, params)
        return self

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self.cursor.fetchall()


class Keyring:
    """Per-customer data keys wrapped by master keys (newest first); seals and opens personal fields."""

    def __init__(self, backend: _Backend, master_keys: list[bytes]) -> None:
        if not master_keys:
            raise KeyringError("the keyring needs a master key (keyring_master_keys or keyring_master_key_file)")
        for key in master_keys:
            if len(key) != KEY_BYTES:
                raise KeyringError(f"a keyring master key must be {KEY_BYTES} bytes (base64 of 32 random bytes), "
                                   f"got {len(key)} bytes")
        self.backend = backend
        self.masters = {key_id_of(k): AESGCM(k) for k in master_keys}
        self.newest = key_id_of(master_keys[0])
        # Unwrapped data keys, per process: without them every sealed field read or written is a query
        # on a database every process shares (a busy engine's store steps queued behind the projector's
        # reads). Dropped whenever a key is destroyed anywhere, looked at every EPOCH_TTL seconds.
        self._cache_lock = threading.Lock()
        self._keys: dict[str, bytes | None] = {}  # key id -> data key (None: destroyed)
        self._live: dict[str, tuple[str, bytes]] = {}  # customer id -> their live key
        self._epoch: int | None = None
        self._checked = float("-inf")

    @classmethod
    def sqlite(cls, path: str | Path, master_keys: list[bytes]) -> Keyring:
        return cls(_SQLite(Path(path)), master_keys)

    @classmethod
    def postgres(cls, conninfo: dict[str, str], master_keys: list[bytes], schema: str = "keyring") -> Keyring:
        return cls(_Postgres(conninfo, schema), master_keys)

    def close(self) -> None:
        self.backend.close()

    # -- the Sealer protocol (domain/store.py) ---------------------------------------------------------

    def seal(self, customer_id: str, aad: str, text: str) -> str:
        key_id, key = self._live_key(customer_id)
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, text.encode(), f"{key_id}|{aad}".encode())
        return f"{TOKEN_PREFIX}{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def unseal(self, aad: str, token: str) -> str | None:
        try:
            key_id, body = token[len(TOKEN_PREFIX):].split(":", 1)
            raw = base64.urlsafe_b64decode(body.encode())
        except ValueError:
            raise TamperedField(f"a sealed field ({aad}) is damaged: not a keyring token") from None
        key = self._key(key_id, aad)
        if key is None:
            return None
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], f"{key_id}|{aad}".encode()).decode()
        except (InvalidTag, ValueError):
            raise TamperedField(f"a sealed field ({aad}) fails authentication with its key {key_id}: it was "
                                "altered, damaged, or moved from another place") from None

    def is_sealed(self, value: str) -> bool:
        return value.startswith(TOKEN_PREFIX)

    def forget_epoch(self) -> int:
        """How many keys were destroyed, by any process (read at most every EPOCH_TTL seconds)."""
        self._refresh()
        return self._epoch or 0

    def refresh(self) -> None:
        """Look at destroyed keys now (a read that must see a forgetting of a moment ago)."""
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < EPOCH_TTL:
            return
        with self.backend.transaction(write=False) as c:
            epoch = int(c.execute("SELECT COUNT(*) FROM customer_keys WHERE forgotten_at IS NOT NULL").fetchone()[0])
        with self._cache_lock:
            if epoch != self._epoch:
                self._keys.clear()
                self._live.clear()
                self._epoch = epoch
            self._checked = now

    def link_case(self, customer_id: str, case_id: str) -> None:
        with self.backend.transaction() as c:
            c.execute("INSERT INTO key_cases (customer_id, case_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                      (customer_id, case_id))

    # -- keys ----------------------------------------------------------------------------------------

    def _live_key(self, customer_id: str) -> tuple[str, bytes]:
        self._refresh()
        if (known := self._live.get(customer_id)) is not None:
            return known
        found = self._live_key_stored(customer_id)
        with self._cache_lock:
            self._live[customer_id] = found
            self._keys[found[0]] = found[1]
        return found

    def _live_key_stored(self, customer_id: str) -> tuple[str, bytes]:
        for _ in range(3):
            with self.backend.transaction(write=False) as c:
                row = c.execute("SELECT key_id, wrapped, master_id FROM customer_keys WHERE customer_id = ? "
                                "AND forgotten_at IS NULL", (customer_id,)).fetchone()
            if row is not None:
                return row[0], self._unwrap(row[0], bytes(row[1]), row[2])
            key_id, key = uuid.uuid4().hex, AESGCM.generate_key(bit_length=256)
            nonce = os.urandom(12)
            wrapped = nonce + self.masters[self.newest].encrypt(nonce, key, key_id.encode())
            with self.backend.transaction() as c:
                # Another process may make the customer's key first: the unique index keeps one live
                # key per customer, and the loop reads back whichever won.
                c.execute("INSERT INTO customer_keys (key_id, customer_id, wrapped, master_id, created_at) "
                          "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                          (key_id, customer_id, wrapped, self.newest, time.time()))
        raise KeyringError(f"the keyring could not make a data key for customer {customer_id!r}")

    def _key(self, key_id: str, aad: str) -> bytes | None:
        self._refresh()
        if key_id in self._keys:
            return self._keys[key_id]
        key = self._key_stored(key_id, aad)
        with self._cache_lock:
            self._keys[key_id] = key
        return key

    def _key_stored(self, key_id: str, aad: str) -> bytes | None:
        with self.backend.transaction(write=False) as c:
            row = c.execute("SELECT wrapped, master_id, forgotten_at FROM customer_keys WHERE key_id = ?",
                            (key_id,)).fetchone()
        if row is None:
            raise KeyringError(f"a sealed field ({aad}) names data key {key_id}, which this keyring never held: "
                               "is the keyring file (or schema) the one that belongs to this event store?")
        if row[2] is not None:
            return None  # destroyed: the customer was forgotten
        return self._unwrap(key_id, bytes(row[0]), row[1])

    def _unwrap(self, key_id: str, wrapped: bytes, master_id: str) -> bytes:
        master = self.masters.get(master_id)
        if master is None:
            raise KeyringError(f"data key {key_id} is wrapped by master key {master_id}, which is not among the "
                               f"configured keyring master keys ({', '.join(self.masters)}); list it again, "
                               "re-wrap (casework.keyring rewrap), then drop it")
        try:
            return master.decrypt(wrapped[:12], wrapped[12:], key_id.encode())
        except InvalidTag:
            raise TamperedField(f"data key {key_id} fails authentication with master key {master_id}: the "
                                "keyring row was altered or damaged") from None

    def rewrap(self) -> int:
        """Re-wrap every live data key with the newest master key; returns how many it re-wrapped. After
        it, the older master keys can be dropped from the settings."""
        count = 0
        with self.backend.transaction() as c:
            rows = c.execute("SELECT key_id, wrapped, master_id FROM customer_keys WHERE forgotten_at IS NULL "
                             "AND master_id <> ?", (self.newest,)).fetchall()
            for key_id, wrapped, master_id in rows:
                key = self._unwrap(key_id, bytes(wrapped), master_id)
                nonce = os.urandom(12)
                c.execute("UPDATE customer_keys SET wrapped = ?, master_id = ? WHERE key_id = ?",
                          (nonce + self.masters[self.newest].encrypt(nonce, key, key_id.encode()), self.newest, key_id))
                count += 1
        return count

    def forget(self, customer_id: str, actor_id: str) -> ForgetResult:
        """Destroy the customer's data keys (every one they had); their sealed fields never open again.
        A customer who comes back later gets a new key for what they give from then on."""
        with self.backend.transaction() as c:
            keys = [r[0] for r in c.execute("SELECT key_id FROM customer_keys WHERE customer_id = ? AND "
                                            "forgotten_at IS NULL", (customer_id,)).fetchall()]
            c.execute("UPDATE customer_keys SET wrapped = NULL, master_id = NULL, forgotten_at = ?, forgotten_by = ? "
                      "WHERE customer_id = ? AND forgotten_at IS NULL", (time.time(), actor_id, customer_id))
            cases = [r[0] for r in c.execute("SELECT case_id FROM key_cases WHERE customer_id = ? ORDER BY case_id",
                                             (customer_id,)).fetchall()]
        self.backend.purge()
        self._refresh(force=True)  # this process forgets at once; the others within EPOCH_TTL
        return ForgetResult(customer_id, keys, cases)

    def cases_of(self, customer_id: str) -> list[str]:
        with self.backend.transaction(write=False) as c:
            return [r[0] for r in c.execute("SELECT case_id FROM key_cases WHERE customer_id = ? ORDER BY case_id",
                                            (customer_id,)).fetchall()]


def main(argv: list[str] | None = None) -> int:
    """`python -m casework.keyring rewrap`: re-wrap the data keys with the newest master key."""
    import sys

    from casework.config import ConfigError, load_settings
    from casework.stores import open_keyring

    args = sys.argv[1:] if argv is None else argv
    if args != ["rewrap"]:
        print("usage: python -m casework.keyring rewrap", file=sys.stderr)
        return 2
    try:
        keyring = open_keyring(load_settings())
    except (ConfigError, KeyringError) as err:
        print(f"casework keyring: {err}", file=sys.stderr)
        return 2
    try:
        print(f"re-wrapped {keyring.rewrap()} data keys with master key {keyring.newest}")
    except KeyringError as err:
        print(f"casework keyring: {err}", file=sys.stderr)
        return 1
    finally:
        keyring.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
