"""Encryption at rest of the event store: eventsourcing's Cipher interface (CIPHER_TOPIC), with rotation.

eventsourcing's own AES ciphers take one key. This one takes a list, newest first (CIPHER_KEYS, comma
separated base64, from the settings `store_cipher_keys` or `store_cipher_key_file`): it encrypts with
the newest and decrypts with whichever key a stored event names. Rotation: put a new key first; the
events written before stay readable while their key is listed; `reencrypt` rewrites them under the
newest key, after which the old key can go (docs/security-data.md).

Stored bytes: MAGIC (4) | key id (8, a hash of the key) | nonce (12) | AES-256-GCM ciphertext and tag,
with MAGIC and the key id as associated data. A stored event that was altered, or written by
another key, fails authentication with a clear error (never silent garbage), and one written before
encryption was enabled is named as such.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Cipher
from eventsourcing.utils import Environment

MAGIC = b"cwE1"
TOPIC = "casework.store_cipher:RotatingCipher"
KEYS_ENV = "CIPHER_KEYS"


class StoreCipherError(ValueError):
    """A stored event cannot be decrypted; the message says why (tampered, unknown key, unencrypted)."""


def parse_keys(values: list[str], where: str) -> list[bytes]:
    """Base64 keys of 32 bytes, named by where they came from in an error."""
    keys = []
    for i, text in enumerate(values, 1):
        try:
            key = base64.b64decode(text.strip().encode(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{where}: key {i} is not base64") from None
        if len(key) != 32:
            raise ValueError(f"{where}: key {i} is {len(key)} bytes; AES-256 needs 32 (base64 of 32 random bytes)")
        keys.append(key)
    return keys


def read_key_file(path: str | Path) -> list[str]:
    """One base64 key a line, newest first; blank lines and # comments are skipped."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise ValueError(f"key file {path} cannot be read: {err.strerror}") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"casework-store-key:" + key).digest()[:8]


class RotatingCipher(Cipher):
    def __init__(self, environment: Environment) -> None:
        text = environment.get(KEYS_ENV) or ""
        keys = parse_keys([k for k in text.split(",") if k.strip()], "store cipher keys")
        if not keys:
            raise ValueError(f"the store cipher needs at least one key ({KEYS_ENV})")
        self.keys = {key_id(k): AESGCM(k) for k in keys}
        self.newest = key_id(keys[0])

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        head = MAGIC + self.newest
        return head + nonce + self.keys[self.newest].encrypt(nonce, plaintext, head)

    def decrypt(self, ciphertext: bytes) -> bytes:
        if not ciphertext.startswith(MAGIC):
            raise StoreCipherError(
                "the stored event is not encrypted by casework (written before encryption at rest was "
                "enabled?); see docs/security-data.md, 'Stores written before encryption'")
        head, kid = ciphertext[:12], ciphertext[4:12]
        aead = self.keys.get(kid)
        if aead is None:
            raise StoreCipherError(f"the stored event was encrypted with store key {kid.hex()}, which is not among "
                                   f"the configured store_cipher_keys ({', '.join(k.hex() for k in self.keys)})")
        try:
            return aead.decrypt(ciphertext[12:24], ciphertext[24:], head)
        except (InvalidTag, ValueError):
            raise StoreCipherError(f"the stored event fails authentication with store key {kid.hex()}: it was "
                                   "altered or damaged") from None

    def key_of(self, ciphertext: bytes) -> bytes | None:
        return ciphertext[4:12] if ciphertext.startswith(MAGIC) else None
