"""The payload codec on its own: the sealed format (checked by decrypting it by hand with AES-GCM),
rotation, and clear errors for a retired key or altered bytes."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload

from casework.codec import EncryptionCodec, PayloadDecryptionError

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"name":"Zebulon Quattlebaum"}')


async def test_a_sealed_payload_is_aes_256_gcm_of_the_whole_payload_as_documented():
    key = os.urandom(32)
    [sealed] = await EncryptionCodec([key]).encode([PLAIN])
    kid = "k" + hashlib.sha256(b"casework payload key id\x00" + key).hexdigest()[:16]
    assert dict(sealed.metadata) == {"encoding": b"binary/encrypted", "encryption-key-id": kid.encode(),
                                     "encryption-cipher": b"AES256-GCM"}
    assert b"Zebulon" not in sealed.SerializeToString()
    # Independently: nonce (12 bytes) | ciphertext+tag, associated data "<key id>|AES256-GCM".
    inner = AESGCM(key).decrypt(sealed.data[:12], sealed.data[12:], kid.encode() + b"|AES256-GCM")
    assert Payload.FromString(inner) == PLAIN
    # A fresh nonce each time: the same payload never seals to the same bytes.
    [again] = await EncryptionCodec([key]).encode([PLAIN])
    assert again.data != sealed.data


async def test_rotation_the_first_key_encrypts_every_listed_key_decrypts():
    old, new = os.urandom(32), os.urandom(32)
    [under_old] = await EncryptionCodec([old]).encode([PLAIN])
    rotated = EncryptionCodec([new, old])
    [under_new] = await rotated.encode([PLAIN])
    assert under_new.metadata["encryption-key-id"].decode() == rotated.encrypting_key_id != \
        under_old.metadata["encryption-key-id"].decode()
    assert await rotated.decode([under_old, under_new]) == [PLAIN, PLAIN]
    # The old key retired: what it sealed is refused by name, what the new key sealed still opens.
    retired = EncryptionCodec([new])
    assert await retired.decode([under_new]) == [PLAIN]
    with pytest.raises(PayloadDecryptionError, match="not among the configured payload keys .*retired too early"):
        await retired.decode([under_old])


async def test_plain_payloads_from_before_encryption_pass_through():
    assert await EncryptionCodec([os.urandom(32)]).decode([PLAIN]) == [PLAIN]


async def test_altered_ciphertext_or_metadata_fails_authentication():
    a, b = os.urandom(32), os.urandom(32)
    codec = EncryptionCodec([a, b])
    [sealed] = await codec.encode([PLAIN])
    flipped = Payload(); flipped.CopyFrom(sealed)
    flipped.data = sealed.data[:20] + bytes([sealed.data[20] ^ 1]) + sealed.data[21:]
    with pytest.raises(PayloadDecryptionError, match="fails authentication: its ciphertext or metadata was altered"):
        await codec.decode([flipped])
    # Claiming the other configured key: the key id is bound as associated data.
    relabelled = Payload(); relabelled.CopyFrom(sealed)
    relabelled.metadata["encryption-key-id"] = EncryptionCodec([b]).encrypting_key_id.encode()
    with pytest.raises(PayloadDecryptionError, match="fails authentication"):
        await codec.decode([relabelled])
    truncated = Payload(); truncated.CopyFrom(sealed)
    truncated.data = sealed.data[:8]
    with pytest.raises(PayloadDecryptionError, match="is truncated"):
        await codec.decode([truncated])
    other_cipher = Payload(); other_cipher.CopyFrom(sealed)
    other_cipher.metadata["encryption-cipher"] = b"AES128-CBC"
    with pytest.raises(PayloadDecryptionError, match="only AES256-GCM is known"):
        await codec.decode([other_cipher])
