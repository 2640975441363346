"""Raw bytes that no longer match their SHA-256 are never handed out: not by the store, not by
the API. The object is tampered with in the real S3, as a new version with other bytes (the
bucket's Object Lock keeps the original version; reads see the newest)."""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from archiver.adapters.s3 import S3RawStore, raw_key
from archiver.errors import IntegrityError
from archiver.models import Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.settings import Settings
from search_api.app import create_app
from tests.support.principals import as_role

pytestmark = pytest.mark.services


def tampered_message(archiver: Archiver) -> tuple[str, bytes]:
    """A freshly archived message whose stored bytes were then replaced; (id, the new bytes)."""
    raw = (
        f"Message-ID: <{uuid.uuid4().hex}@integrity.test>\r\n"
        "Subject: =?utf-8?b?5ZCI5ZCM?=\r\n\r\n付款 100 元。\r\n"
    ).encode()
    source = Source(kind="import", detail="integrity-test", received_at=datetime.now(UTC))
    [outcome] = archiver.ingest_many([Incoming(raw, source)])
    assert outcome.status == "imported" and outcome.sha256 is not None
    store = archiver.store
    assert isinstance(store, S3RawStore) and store.get(outcome.sha256) == raw
    forged = raw.replace(b"100", b"900")
    store.client.put_object(store.bucket, raw_key(outcome.sha256), io.BytesIO(forged), len(forged))
    return outcome.sha256, forged


def test_the_store_refuses_bytes_that_do_not_match_their_hash(archiver: Archiver) -> None:
    sha256, forged = tampered_message(archiver)

    with pytest.raises(IntegrityError) as raised:
        archiver.store.get(sha256)

    assert (raised.value.sha256, raised.value.actual) == (
        sha256,
        hashlib.sha256(forged).hexdigest(),
    )


def test_the_raw_download_of_a_tampered_message_is_an_error_not_the_bytes(
    archiver: Archiver, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    sha256, forged = tampered_message(archiver)

    headers = as_role(settings, "compliance_officer")
    with TestClient(create_app(), headers=headers) as client, caplog.at_level(logging.WARNING):
        response = client.get(f"/api/messages/{sha256}/raw")

    # the archive's fault, not the caller's, and not transient: 500, saying what is wrong
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": "IntegrityError",
        "message": f"raw object {sha256} is corrupt: its bytes hash to "
        f"{hashlib.sha256(forged).hexdigest()}",
    }
    assert forged not in response.content
    # evidence that changed is for a person to look at: logged as an error, not a warning
    [record] = [r for r in caplog.records if r.getMessage() == "request failed"]
    assert record.levelno == logging.ERROR
