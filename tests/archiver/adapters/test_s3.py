"""The S3 adapter against the real SeaweedFS: which failures are transient (retried) and which
are permanent (a person must act), the conditional-write probe, and the private minio call it
relies on."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from minio import Minio

from archiver.adapters import s3
from archiver.adapters.s3 import S3RawStore
from archiver.errors import BackendFailed, BackendUnavailable
from archiver.settings import Settings
from ingest import cli
from tests.support.postfix import free_port

pytestmark = pytest.mark.services

RAW = b"Message-ID: <s3-errors@example.com>\r\nSubject: s3\r\n\r\nbody\r\n"


def store(settings: Settings, **changes: Any) -> S3RawStore:
    return S3RawStore(settings.model_copy(update=changes))


def test_an_invalid_bucket_name_is_a_permanent_error_naming_the_cause(settings: Settings) -> None:
    bad = store(settings, s3_bucket="Not_A_Bucket")
    with pytest.raises(BackendFailed, match=r"s3 failed .*ValueError: .*bucket name") as err:
        bad.ensure_ready()
    assert err.value.backend == "s3"
    with pytest.raises(BackendFailed, match=r"InvalidBucketName|ValueError"):
        bad.put(RAW)


def test_wrong_credentials_are_a_permanent_error(settings: Settings) -> None:
    bad = store(settings, s3_secret_key="not-the-secret")
    with pytest.raises(BackendFailed, match=r"SignatureDoesNotMatch|AccessDenied"):
        bad.ensure_ready()
    with pytest.raises(BackendFailed, match=r"SignatureDoesNotMatch|AccessDenied"):
        bad.put(RAW)
    unknown = store(settings, s3_access_key="nobody")
    with pytest.raises(BackendFailed, match=r"InvalidAccessKeyId|AccessDenied"):
        unknown.get("0" * 64)


def test_a_missing_bucket_is_a_permanent_error(settings: Settings) -> None:
    # reads only: SeaweedFS creates a missing bucket on a PUT (without Object Lock), which is
    # why every entry point runs ensure_ready first
    missing = store(settings, s3_bucket=f"{settings.s3_bucket}-never-made")
    with pytest.raises(BackendFailed, match="NoSuchBucket"):
        missing.get("0" * 64)
    with pytest.raises(BackendFailed, match="NoSuchBucket"):
        list(missing.iter_ids())


def test_s3_on_a_closed_port_is_unavailable(settings: Settings) -> None:
    dead = store(settings, s3_endpoint=f"127.0.0.1:{free_port()}")
    with pytest.raises(BackendUnavailable, match="s3 unavailable: MaxRetryError"):
        dead.put(RAW)
    with pytest.raises(BackendUnavailable):
        dead.records("0" * 64)  # raised the client's own error before
    with pytest.raises(BackendUnavailable):
        list(dead.spooled())


def probe_versions(store: S3RawStore) -> list[str]:
    return [
        o.object_name
        for o in store.client.list_objects(
            store.bucket, prefix=s3._PROBE_PREFIX, recursive=True, include_version=True
        )
    ]


def test_seaweedfs_honours_if_none_match_and_the_probe_leaves_nothing(
    settings: Settings, backends: None
) -> None:
    real = S3RawStore(settings)
    real.ensure_ready()  # what `mailvault init` runs: passes on the real server
    real.check_conditional_writes()
    assert probe_versions(real) == []


class IgnoresIfNoneMatch(Minio):
    """A client at the adapter boundary that drops the condition, so the real server behaves as
    one that does not support it (no such S3 server is at hand): every PUT is accepted."""

    def _put_object(self, bucket_name: str, object_name: str, data: bytes, headers: Any = None,
                    query_params: Any = None) -> Any:  # fmt: skip
        headers = {k: v for k, v in (headers or {}).items() if k.lower() != "if-none-match"}
        return super()._put_object(bucket_name, object_name, data, headers, query_params)


def test_init_refuses_a_server_that_ignores_if_none_match(
    settings: Settings, backends: None, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(s3, "Minio", IgnoresIfNoneMatch)
    ignoring = S3RawStore(settings)
    with pytest.raises(BackendFailed, match=r"does not honour If-None-Match: \*"):
        ignoring.check_conditional_writes()
    assert probe_versions(ignoring) == []  # both versions of the probe removed

    assert cli.main(["init"]) != 0
    err = capsys.readouterr().err
    assert "s3 failed (permanent, not retried): the server does not honour If-None-Match" in err
    assert probe_versions(ignoring) == []


def test_the_private_put_object_keeps_the_signature_and_sends_headers_as_headers(
    settings: Settings, backends: None
) -> None:
    """S3RawStore._put_if_absent calls minio's private _put_object (the public put_object turns
    If-None-Match into metadata). A minio release that changes it must fail here, loudly."""
    params = list(inspect.signature(Minio._put_object).parameters)
    assert params == ["self", "bucket_name", "object_name", "data", "headers", "query_params"], (
        "minio's private _put_object changed: update S3RawStore._put_if_absent"
    )
    real = S3RawStore(settings)
    sha256, created = real.put(RAW)
    assert created and real.put(RAW) == (sha256, False)  # the second PUT was refused
    meta = {k.lower() for k in real.client.stat_object(real.bucket, s3.raw_key(sha256)).metadata}
    assert "x-amz-meta-if-none-match" not in meta
    assert "x-amz-meta-sha256" in meta


def test_a_bucket_without_object_lock_is_refused(settings: Settings, backends: None) -> None:
    unlocked = settings.model_copy(update={"s3_bucket": f"{settings.s3_bucket}-unlocked"})
    store = S3RawStore(unlocked)
    store.client.make_bucket(unlocked.s3_bucket)  # no Object Lock: it cannot be added later
    try:
        with pytest.raises(BackendFailed, match="has no Object Lock"):
            store.ensure_ready()
    finally:
        store.client.remove_bucket(unlocked.s3_bucket)
    S3RawStore(settings).ensure_ready()  # the archive's own bucket passes
