"""The audit log against the real SeaweedFS and Elasticsearch: conditional appends from several
writers, sealed segments under Object Lock, every tampering named, the search copy."""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from archiver import bootstrap
from archiver.adapters.elastic import ElasticAuditIndex
from archiver.adapters.s3 import S3AuditStore
from archiver.audit.indexing import QueuedAuditIndex
from archiver.audit.log import AuditFilter, AuditLog
from archiver.audit.records import AuditAction
from archiver.errors import BackendUnavailable
from archiver.settings import Settings
from tests.support.audit_tamper import TAMPERS, S3Bucket
from tests.support.postfix import free_port

pytestmark = pytest.mark.services


def s3_log(settings: Settings, *, seal_every: int = 4, index: bool = False) -> AuditLog:
    """A log under a prefix of its own in the session bucket (tests tamper with theirs)."""
    name = uuid.uuid4().hex[:8]
    store = S3AuditStore(bootstrap.raw_store(settings), prefix=f"audit-test/{name}/")
    search = None
    if index:
        search = ElasticAuditIndex(bootstrap.search_index(settings), f"{settings.es_index}-a{name}")
        search.ensure_ready()
    return AuditLog(store, search, seal_every=seal_every, retention_days=1)


def fill(log: AuditLog, count: int) -> None:
    for n in range(count):
        log.record(
            [AuditAction.SEARCH, AuditAction.VIEW, AuditAction.EXPORT][n % 3],
            actor=f"user{n % 2}",
            actor_roles=("auditor",),
            client="127.0.0.1",
            target=f"msg-{n}",
            details={"query": "合同 审批", "total": n},
        )


@pytest.fixture
def log(settings: Settings, backends: None) -> Iterator[AuditLog]:
    log = s3_log(settings)
    fill(log, 10)
    yield log


def test_an_untouched_log_verifies_clean(log: AuditLog) -> None:
    report = log.verify()
    assert report.ok, report.issues
    assert report.head == 12 and report.segments == 2  # 1..5, 6..10 (seals at 5 and 10)


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_each_tampering_of_the_real_bucket_is_detected_and_named(log: AuditLog, name: str) -> None:
    assert isinstance(log.store, S3AuditStore)
    kind, seq = TAMPERS[name](S3Bucket(log.store), 3)
    report = log.verify()
    assert any(i.kind == kind and seq in i.seqs for i in report.issues), report.issues


def test_a_sealed_segment_cannot_be_deleted_without_bypassing_governance(log: AuditLog) -> None:
    store = log.store
    assert isinstance(store, S3AuditStore)
    client, bucket = store._store.client, store._store.bucket
    key = store.segment_key(1, 5)
    retention = client.get_object_retention(bucket, key)
    assert retention is not None
    assert retention.mode == "GOVERNANCE"
    assert retention.retain_until_date > datetime.now(UTC) + timedelta(hours=23)
    versions = [o.version_id for o in client.list_objects(bucket, prefix=key, include_version=True)]
    assert len(versions) == 1
    with pytest.raises(S3Error):
        client.remove_object(bucket, key, version_id=versions[0])
    errors = list(client.remove_objects(bucket, [DeleteObject(key, versions[0])]))
    assert errors  # refused in a multi-object delete too
    assert store.get_segment(1, 5) is not None
    # overwriting makes a new version; the sealed one stays, and verify sees the difference
    client.put_object(bucket, key, io.BytesIO(b"forged\n"), 7)
    assert any(i.kind == "segment_differs" for i in log.verify().issues)


def test_a_segment_is_written_once(log: AuditLog) -> None:
    store = log.store
    assert store.put_segment(1, 5, b"again\n", datetime.now(UTC) + timedelta(days=1)) is False


def test_writers_in_parallel_keep_one_linear_chain(settings: Settings, backends: None) -> None:
    first = s3_log(settings, seal_every=7)
    # two processes' logs (own instances) and a log shared by threads, as in one API process
    other = AuditLog(first.store, seal_every=7, retention_days=1)
    logs = [first, first, other, other, AuditLog(first.store, seal_every=7, retention_days=1)]
    start = threading.Barrier(len(logs))

    def write(log: AuditLog, who: int) -> None:
        start.wait()
        for n in range(10):
            log.record(AuditAction.VIEW, actor=f"w{who}", target=str(n))

    threads = [threading.Thread(target=write, args=(log, i)) for i, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = list(first.records())
    assert sum(r.action == AuditAction.VIEW for r in records) == 50
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    report = first.verify()
    assert report.ok, report.issues


def test_recording_fails_closed_when_s3_is_down(settings: Settings, backends: None) -> None:
    dead = settings.model_copy(update={"s3_endpoint": f"127.0.0.1:{free_port()}"})
    log = AuditLog(S3AuditStore(bootstrap.raw_store(dead)), seal_every=0)
    with pytest.raises(BackendUnavailable):
        log.record(AuditAction.VIEW, actor="a", target="m")


def test_search_by_actor_action_target_and_time_and_rebuild(
    settings: Settings, backends: None
) -> None:
    log = s3_log(settings, seal_every=0, index=True)
    fill(log, 9)
    assert log.index is not None
    log.index.refresh()
    page = log.search(AuditFilter(actor="user0", actions=[AuditAction.SEARCH]))
    assert {r.target for r in page.records} == {"msg-0", "msg-6"}
    assert page.total == 2
    assert log.search(AuditFilter(target="msg-4")).records[0].details["query"] == "合同 审批"
    future = datetime.now(UTC) + timedelta(hours=1)
    assert log.search(AuditFilter(since=future)).total == 0
    assert log.search(AuditFilter(until=future), page=2, size=5).total == 9
    assert len(log.search(AuditFilter(until=future), page=2, size=5).records) == 4
    # the index is a copy: dropped and rebuilt from S3, it answers the same
    assert isinstance(log.index, ElasticAuditIndex)
    log.index.client.indices.delete(index=f"{log.index.alias}-v1")
    assert log.reindex() == 9
    assert log.search(AuditFilter(actor="user0", actions=[AuditAction.SEARCH])).total == 2


def test_bootstrap_builds_the_configured_log(settings: Settings, backends: None) -> None:
    log = bootstrap.audit_log(settings)
    assert isinstance(log.store, S3AuditStore)
    assert log.store.retention_mode == settings.audit_retention_mode
    # the search copy is indexed off the request path, by a queue in front of Elasticsearch
    assert isinstance(log.index, QueuedAuditIndex)
    assert isinstance(log.index._index, ElasticAuditIndex)
    assert log.index._index.alias == f"{settings.es_index}-audit"
    assert log.seal_every == settings.audit_seal_every
