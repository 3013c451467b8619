"""Payload encryption: every payload Temporal stores (workflow input, update arguments and results,
activity results, encoded failure attributes) is sealed with AES-256-GCM before it leaves the
client or worker, so the Temporal server, its database and its UI see ciphertext only.

Keys rotate: several may be configured, the first encrypts and every one decrypts. Each sealed
payload names its key by a key id (a digest of the key, never the key) in its metadata, and the id
and cipher name are bound into the ciphertext as associated data, so neither can be swapped.
Payloads without the encrypted encoding (written before encryption was turned on) pass through.
See docs/security-transport.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from casework.config import ConfigError, Settings

ENCODING = b"binary/encrypted"
CIPHER = b"AES256-GCM"
ENCODING_KEY, KEY_ID_KEY, CIPHER_KEY = "encoding", "encryption-key-id", "encryption-cipher"
KEY_BYTES, NONCE_BYTES = 32, 12


class PayloadDecryptionError(ValueError):
    """A sealed payload cannot be opened: its key is not configured, or it was altered."""


def key_id(key: bytes) -> str:
    """The public name of a key: a domain-separated digest, so it reveals nothing about the key."""
    return "k" + hashlib.sha256(b"casework payload key id\x00" + key).hexdigest()[:16]


def parse_keys(texts: Iterable[str], source: str) -> list[bytes]:
    """Base64 texts of 32-byte keys, in order; an error names the position, never the text."""
    keys: list[bytes] = []
    for n, text in enumerate(texts, 1):
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{source}: key #{n} is not valid base64 (make one with "
                              f"`openssl rand -base64 32`)") from None
        if len(key) != KEY_BYTES:
            raise ConfigError(f"{source}: key #{n} is {len(key)} bytes, AES-256 needs {KEY_BYTES} "
                              f"(make one with `openssl rand -base64 32`)")
        if key in keys:
            raise ConfigError(f"{source}: key #{n} is listed twice")
        keys.append(key)
    return keys


def payload_keys(settings: Settings) -> list[bytes]:
    """The configured payload keys, the encrypting one first; empty: payloads are not encrypted."""
    if settings.payload_key and settings.payload_key_file:
        raise ConfigError("set one of payload_key (env CASEWORK_PAYLOAD_KEY) and payload_key_file "
                          "(env CASEWORK_PAYLOAD_KEY_FILE), not both")
    if settings.payload_key_file:
        lines = secret_lines(settings.payload_key_file, "payload_key_file")
        if not lines:
            raise ConfigError(f"setting payload_key_file: {settings.payload_key_file} holds no key")
        return parse_keys(lines, f"setting payload_key_file ({settings.payload_key_file})")
    return parse_keys([k.get_secret_value() for k in settings.payload_key],
                      "setting payload_key (env CASEWORK_PAYLOAD_KEY)")


def secret_lines(path: str, setting: str) -> list[str]:
    """The non-blank, non-comment lines of a secrets file."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"setting {setting}: file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"setting {setting}: cannot read {path}: {err}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole payload (its metadata and data), under the first of `keys`."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ConfigError("payload encryption needs at least one key")
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self.encrypting_key_id = key_id(keys[0])

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(p) for p in payloads]

    def seal(self, payload: Payload) -> Payload:
        kid = self.encrypting_key_id.encode()
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: rotate keys long before 2**32 payloads
        sealed = self._keys[self.encrypting_key_id].encrypt(nonce, payload.SerializeToString(), kid + b"|" + CIPHER)
        return Payload(metadata={ENCODING_KEY: ENCODING, KEY_ID_KEY: kid, CIPHER_KEY: CIPHER}, data=nonce + sealed)

    def open(self, payload: Payload) -> Payload:
        if payload.metadata.get(ENCODING_KEY) != ENCODING:
            return payload  # never encrypted (e.g. written before encryption was turned on)
        kid = payload.metadata.get(KEY_ID_KEY, b"")
        cipher = payload.metadata.get(CIPHER_KEY, b"")
        if cipher != CIPHER:
            raise PayloadDecryptionError(f"payload sealed with cipher {cipher.decode(errors='replace')!r}, "
                                         f"only {CIPHER.decode()} is known")
        aead = self._keys.get(kid.decode(errors="replace"))
        if aead is None:
            raise PayloadDecryptionError(
                f"payload sealed under key id {kid.decode(errors='replace')!r}, which is not among the "
                f"configured payload keys ({', '.join(self._keys)}): was that key retired too early?")
        if len(payload.data) < NONCE_BYTES + 16:  # a nonce and a GCM tag at the least
            raise PayloadDecryptionError(f"payload sealed under key id {kid.decode()} is truncated")
        try:
            plain = aead.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], kid + b"|" + CIPHER)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload sealed under key id {kid.decode()} fails authentication: its ciphertext or "
                f"metadata was altered") from None
        opened = Payload()
        opened.ParseFromString(plain)
        return opened


class NoPayloadKeys(PayloadCodec):
    """The codec without keys: payloads go out in clear, and an encrypted one coming in is refused with
    a reason (rather than the converter's "unknown payload encoding")."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        for p in payloads:
            if p.metadata.get(ENCODING_KEY) == ENCODING:
                raise PayloadDecryptionError(
                    f"payload is encrypted (key id {p.metadata.get(KEY_ID_KEY, b'?').decode(errors='replace')}) "
                    f"and no payload key is configured: set payload_key or payload_key_file")
        return list(payloads)


async def decode_in_place(message: Message, codec: PayloadCodec) -> None:
    """Decode every payload anywhere inside a protobuf message (e.g. a raw history event), in place."""
    found: list[Payload] = []
    _collect_payloads(message, found)
    if found:
        for payload, decoded in zip(found, await codec.decode(found), strict=True):
            payload.CopyFrom(decoded)


def _collect_payloads(message: Message, found: list[Payload]) -> None:
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                found.append(item)
            else:
                _collect_payloads(item, found)
