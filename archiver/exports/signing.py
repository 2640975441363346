"""The archive's export signing key (Ed25519) and the signature of a manifest (manifest.sig).

One key per archive: every process that builds exports signs with the same key, created once in
the JSON store (a compare-and-swap create, so two processes starting together agree on one), or
read from a file an operator keeps outside S3. Verification is the standalone verifier's
(archiver/exports/verifier.py), the same code a reviewer runs.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from archiver.errors import ConcurrentEdit
from archiver.exports.verifier import fingerprint, signed_message
from archiver.ports import JsonStore

SIGNING_KEY = "exports/signing-key.json"


class ManifestSigner:
    """Signs manifests with one Ed25519 private key (32 raw bytes)."""

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32:
            raise ValueError("an Ed25519 private key is 32 bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(private_key)
        self.public_key = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def sign_digest(self, manifest_sha256_hex: str) -> dict[str, str]:
        """The content of manifest.sig for a manifest whose SHA-256 is the given hex digest."""
        digest = manifest_sha256_hex.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a SHA-256 hex digest: {manifest_sha256_hex!r}")
        signature = self._key.sign(signed_message(digest))
        return {
            "algorithm": "Ed25519",
            "manifest_sha256": digest,
            "public_key": self.public_key_hex,
            "signature": base64.b64encode(signature).decode("ascii"),
        }


def generate_key() -> bytes:
    """A new private key: 32 random bytes (the RFC 8032 seed)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def load_or_create_key(store: JsonStore, key: str = SIGNING_KEY) -> bytes:
    """The archive's signing key from the store, created there on first use. Two processes that
    both find none both try to create it; the store lets one win (put_json_if with etag None)
    and the other reads the winner's, so every package of the archive carries one key."""
    found = store.get_json(key)
    if found is not None:
        return _stored_key(found, key)
    created = generate_key()
    try:
        store.put_json_if(key, _stored_value(created), etag=None)
    except ConcurrentEdit:
        found = store.get_json(key)
        if found is None:  # created and deleted in between: nothing sensible to sign with
            raise
        return _stored_key(found, key)
    return created


def _stored_value(private_key: bytes) -> dict[str, Any]:
    signer = ManifestSigner(private_key)
    return {
        "algorithm": "Ed25519",
        "private_key": base64.b64encode(private_key).decode("ascii"),
        # beside it, so an operator can read the fingerprint without the secret
        "public_key": signer.public_key_hex,
        "fingerprint": signer.fingerprint,
        "created_at": datetime.now(UTC).isoformat(),
    }


def _stored_key(value: dict[str, Any], key: str) -> bytes:
    try:
        private_key = base64.b64decode(str(value["private_key"]), validate=True)
        signer = ManifestSigner(private_key)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{key}: not an Ed25519 signing key ({exc})") from exc
    if value.get("public_key") not in (None, signer.public_key_hex):
        # a damaged or hand-edited document: signing with it would publish a different key
        raise ValueError(f"{key}: its private key does not match its public key")
    return private_key


def signing_key_from_file(path: str | Path) -> bytes:
    """A private key an operator keeps outside S3: the raw 32 bytes, or PEM (PKCS#8,
    `openssl genpkey -algorithm ed25519`)."""
    data = Path(path).read_bytes()
    if len(data) == 32:
        return data
    if data.lstrip().startswith(b"-----BEGIN"):
        loaded = serialization.load_pem_private_key(data, password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"{path}: a {type(loaded).__name__}, not an Ed25519 key")
        return loaded.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    raise ValueError(f"{path}: neither 32 raw bytes nor a PEM (PKCS#8) Ed25519 private key")
