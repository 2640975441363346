"""Manifest signatures: the pure-Python Ed25519 check agrees with cryptography, and every
process of an archive signs with one key."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.errors import ConcurrentEdit
from archiver.exports.signing import (
    SIGNING_KEY,
    ManifestSigner,
    generate_key,
    load_or_create_key,
    signing_key_from_file,
)
from archiver.exports.verifier import (
    fingerprint,
    signed_message,
    verify_ed25519,
    verify_ed25519_pure,
)
from tests.support.fakes import InMemoryJsonStore

keys = st.binary(min_size=32, max_size=32)


def public_bytes(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


@settings(max_examples=60, deadline=None)
@given(seed=keys, message=st.binary(max_size=300), data=st.data())
def test_the_pure_check_accepts_cryptography_signatures_and_no_bit_flip(
    seed: bytes, message: bytes, data: st.DataObject
) -> None:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public, signature = public_bytes(private), private.sign(message)

    assert verify_ed25519_pure(public, signature, message)
    assert verify_ed25519(public, signature, message)

    bit = data.draw(st.integers(0, 64 * 8 - 1), label="signature bit")
    flipped = bytearray(signature)
    flipped[bit // 8] ^= 1 << bit % 8
    assert not verify_ed25519_pure(public, bytes(flipped), message)
    assert not verify_ed25519(public, bytes(flipped), message)

    bit = data.draw(st.integers(0, 32 * 8 - 1), label="key bit")
    other_key = bytearray(public)
    other_key[bit // 8] ^= 1 << bit % 8
    assert not verify_ed25519_pure(bytes(other_key), signature, message)

    changed = data.draw(st.binary(max_size=300).filter(lambda m: m != message), label="message")
    assert not verify_ed25519_pure(public, signature, changed)


def test_the_pure_check_passes_rfc8032_test_vector_2() -> None:
    # RFC 8032 section 7.1, TEST 2
    public = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    signature = bytes.fromhex(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
    assert verify_ed25519_pure(public, signature, b"\x72")
    assert not verify_ed25519_pure(public, signature, b"\x73")


def test_malformed_keys_and_signatures_do_not_verify() -> None:
    private = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    public, signature = public_bytes(private), private.sign(b"m")
    order = 2**252 + 27742317777372353535851937790883648493
    s_plus_order = int.from_bytes(signature[32:], "little") + order  # same point, S not reduced

    assert not verify_ed25519_pure(public, signature[:63], b"m")
    assert not verify_ed25519_pure(public[:31], signature, b"m")
    assert not verify_ed25519_pure(b"\xff" * 32, signature, b"m")  # y >= p: no point
    assert not verify_ed25519_pure(
        public, signature[:32] + s_plus_order.to_bytes(32, "little"), b"m"
    )


def test_sign_digest_is_manifest_sig() -> None:
    signer = ManifestSigner(generate_key())
    digest = hashlib.sha256(b'{"format": "mailvault-export-manifest"}').hexdigest()

    signature = signer.sign_digest(digest.upper())

    assert signature["algorithm"] == "Ed25519"
    assert signature["manifest_sha256"] == digest
    assert signature["public_key"] == signer.public_key_hex == signer.public_key.hex()
    assert signer.fingerprint == fingerprint(signer.public_key)
    assert signer.fingerprint == "sha256:" + hashlib.sha256(signer.public_key).hexdigest()
    raw = base64.b64decode(signature["signature"])
    assert verify_ed25519_pure(signer.public_key, raw, signed_message(digest))
    assert signed_message(digest) == b"mailvault-export-manifest-v1:" + digest.encode()
    with pytest.raises(ValueError, match="SHA-256"):
        signer.sign_digest("not a digest")
    with pytest.raises(ValueError, match="32 bytes"):
        ManifestSigner(b"short")


def test_the_key_is_created_once_and_read_back() -> None:
    store = InMemoryJsonStore()

    first = load_or_create_key(store)
    again = load_or_create_key(store)

    assert first == again and len(first) == 32
    stored = store.get_json(SIGNING_KEY)
    assert stored is not None
    assert stored["public_key"] == ManifestSigner(first).public_key_hex
    assert stored["fingerprint"] == ManifestSigner(first).fingerprint


def test_a_damaged_stored_key_is_refused() -> None:
    store = InMemoryJsonStore()
    load_or_create_key(store)
    stored = store.get_json(SIGNING_KEY)
    assert stored is not None
    store.put_json(SIGNING_KEY, stored | {"public_key": "00" * 32})

    with pytest.raises(ValueError, match="does not match"):
        load_or_create_key(store)


class RacingStore(InMemoryJsonStore):
    """Both creators read "no key" before either writes: the race the compare-and-swap settles."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties)
        self.racing = parties  # the first reads of this many creators wait for each other
        self.refused = 0

    def get_json(self, key: str) -> dict[str, Any] | None:
        found = super().get_json(key)
        with self._lock:
            wait, self.racing = self.racing > 0, self.racing - 1
        if wait:
            self.barrier.wait(timeout=30)
        return found

    def put_json_if(self, key: str, value: Any, *, etag: str | None) -> str:
        try:
            return super().put_json_if(key, value, etag=etag)
        except ConcurrentEdit:
            self.refused += 1
            raise


def test_racing_creators_end_with_one_key() -> None:
    store = RacingStore(parties=4)

    with ThreadPoolExecutor(4) as pool:
        created = list(pool.map(lambda _: load_or_create_key(store), range(4)))

    assert len(set(created)) == 1
    assert store.refused == 3  # everyone tried; one won, the others read the winner's
    stored = store.get_json(SIGNING_KEY)
    assert stored is not None and stored["public_key"] == ManifestSigner(created[0]).public_key_hex


@pytest.fixture
def s3_json_store(settings: Any, backends: None) -> Iterator[Any]:
    from archiver import bootstrap
    from archiver.adapters.s3 import S3JsonStore

    yield S3JsonStore(bootstrap.raw_store(settings))


@pytest.mark.services
def test_racing_creators_end_with_one_key_on_s3(s3_json_store: Any) -> None:
    key = f"exports/test-signing-key-{uuid.uuid4().hex}.json"
    try:
        with ThreadPoolExecutor(8) as pool:
            created = list(pool.map(lambda _: load_or_create_key(s3_json_store, key), range(8)))

        assert len(set(created)) == 1
        assert load_or_create_key(s3_json_store, key) == created[0]
    finally:
        s3_json_store.delete(key)


def test_a_key_file_raw_or_pem(tmp_path: Path) -> None:
    seed = generate_key()
    private = Ed25519PrivateKey.from_private_bytes(seed)
    raw_file, pem_file = tmp_path / "key.raw", tmp_path / "key.pem"
    raw_file.write_bytes(seed)
    pem_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    text_file = tmp_path / "key.txt"
    text_file.write_text("not a key")

    assert signing_key_from_file(raw_file) == seed
    assert signing_key_from_file(pem_file) == seed
    with pytest.raises(ValueError, match="neither"):
        signing_key_from_file(text_file)
