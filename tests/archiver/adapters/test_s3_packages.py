"""S3PackageStore against the real SeaweedFS: a package streamed in as a multipart upload comes
back byte-identical, exists only once closed, leaves nothing behind when aborted or deleted, and
a zip part written by archiver/exports/zipstream.py into it reads back whole. Also the private
minio calls the writer relies on."""

from __future__ import annotations

import hashlib
import inspect
import io
import random
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from minio import Minio
from minio.error import S3Error

from archiver import bootstrap
from archiver.adapters.s3 import PACKAGE_CHUNK, S3PackageStore
from archiver.errors import BackendFailed, NotFound
from archiver.exports.zipstream import PackageZip
from archiver.settings import Settings
from bench.cleanup import drop_bucket, throwaway_settings

pytestmark = pytest.mark.services

MIB = 1 << 20


@pytest.fixture(scope="module")
def store(settings: Settings) -> Iterator[S3PackageStore]:
    """An exports bucket of this module's own (<its archive bucket>-exports), dropped
    afterwards: never the session's, which later tests' exports are written to."""
    own = throwaway_settings(settings, f"{settings.s3_bucket}-packages")
    packages = bootstrap.package_store(own)
    assert packages.bucket == f"{own.s3_bucket}-exports"
    packages.ensure_ready()
    yield packages
    drop_bucket(packages.client, packages.bucket)


@pytest.fixture
def prefix(store: S3PackageStore) -> Iterator[str]:
    """A prefix of the test's own, emptied afterwards whatever the test left."""
    name = f"exports/{uuid.uuid4().hex[:10]}/"
    yield name
    store.delete_prefix(name)


def sha256_of(chunks: Iterator[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def test_the_private_multipart_calls_keep_their_signatures() -> None:
    """S3PackageWriter drives a multipart upload through minio's private calls; a minio release
    that changes one must fail here, not in the middle of an export."""
    expected = {
        "_create_multipart_upload": ["self", "bucket_name", "object_name", "headers"],
        "_upload_part": [
            "self", "bucket_name", "object_name", "data", "headers", "upload_id", "part_number",
        ],
        "_complete_multipart_upload": ["self", "bucket_name", "object_name", "upload_id", "parts"],
        "_abort_multipart_upload": ["self", "bucket_name", "object_name", "upload_id"],
    }  # fmt: skip
    for name, params in expected.items():
        have = list(inspect.signature(getattr(Minio, name)).parameters)
        assert have[: len(params)] == params, f"minio's private {name} changed: {have}"
    listing = inspect.signature(Minio._list_multipart_uploads).parameters
    assert {"bucket_name", "prefix", "max_uploads"} <= set(listing)


def test_the_exports_bucket_is_a_plain_bucket_made_once(
    store: S3PackageStore, settings: Settings
) -> None:
    named = settings.model_copy(update={"export_bucket": "mailvault-packages"})
    assert bootstrap.package_store(named).bucket == "mailvault-packages"
    store.ensure_ready()  # again: no error
    assert store.client.bucket_exists(store.bucket)
    with pytest.raises(S3Error) as no_lock:
        store.client.get_object_lock_config(store.bucket)
    assert no_lock.value.code in {
        "ObjectLockConfigurationNotFoundError",
        "NoSuchObjectLockConfiguration",
    }


def test_a_40_mib_stream_in_odd_pieces_comes_back_byte_identical(
    store: S3PackageStore, prefix: str
) -> None:
    rng = random.Random(13)
    data = rng.randbytes(40 * MIB)
    key = f"{prefix}big_part001.zip"
    writer = store.writer(key)
    position, sizes = 0, [1, 7, 4095, 3 * MIB + 1, 20 * MIB + 3]  # one write spans two chunks
    while position < len(data):
        size = sizes.pop(0) if sizes else rng.randint(1, 2 * MIB)
        assert writer.write(data[position : position + size]) == len(data[position:][:size])
        position = min(position + size, len(data))
        assert writer.tell() == position
        writer.flush()  # what zipfile calls: sends nothing early

    # two parts are in S3, the rest is buffered: an upload, but no object yet
    assert store.size(key) is None
    assert [k for k, _ in store.pending_uploads(prefix)] == [key]

    writer.close()
    assert store.size(key) == len(data)
    assert store.pending_uploads(prefix) == []
    assert store.keys(prefix) == [key]
    chunks = list(store.read(key, chunk_size=3 * MIB))
    assert max(len(c) for c in chunks) <= 3 * MIB
    assert sha256_of(iter(chunks)) == (hashlib.sha256(data).hexdigest(), len(data))
    writer.close()  # again: nothing happens


def test_a_small_writer_is_one_put_and_an_empty_one_an_empty_object(
    settings: Settings, prefix: str
) -> None:
    raw = bootstrap.raw_store(settings)  # its own counting client
    store = S3PackageStore(raw, f"{settings.s3_bucket}-exports")
    small, empty = f"{prefix}manifest.json", f"{prefix}empty.bin"

    writer = store.writer(small)
    writer.write(b'{"format": ')
    writer.write('"中文"}'.encode())
    before = raw.requests
    writer.close()
    assert raw.requests - before == 1  # no multipart upload for what fits one chunk
    assert b"".join(store.read(small)) == '{"format": "中文"}'.encode()

    store.writer(empty).close()
    assert store.size(empty) == 0
    assert b"".join(store.read(empty)) == b""
    assert store.client.stat_object(store.bucket, small).content_type == "application/json"


def test_abort_leaves_no_object_and_no_pending_upload(store: S3PackageStore, prefix: str) -> None:
    key = f"{prefix}crashed_part002.zip"
    writer = store.writer(key)
    writer.write(random.Random(2).randbytes(PACKAGE_CHUNK + MIB))  # one part sent
    assert len(store.pending_uploads(prefix)) == 1

    writer.abort()
    assert store.size(key) is None
    assert store.keys(prefix) == []
    assert store.pending_uploads(prefix) == []
    writer.abort()  # again: nothing happens
    with pytest.raises(ValueError, match="aborted"):
        writer.write(b"more")
    with pytest.raises(ValueError, match="aborted"):
        writer.close()

    unsent = store.writer(f"{prefix}small.zip")  # nothing sent yet: nothing to abort
    unsent.write(b"zip bytes")
    unsent.abort()
    assert store.keys(prefix) == []


def test_a_writer_left_by_an_error_is_aborted(store: S3PackageStore, prefix: str) -> None:
    key = f"{prefix}failed.zip"
    with pytest.raises(RuntimeError, match="the build failed"), store.writer(key) as writer:
        writer.write(random.Random(3).randbytes(PACKAGE_CHUNK))
        raise RuntimeError("the build failed")
    assert store.size(key) is None
    assert store.pending_uploads(prefix) == []


def test_delete_prefix_clears_objects_and_pending_uploads_under_it_only(
    store: S3PackageStore, prefix: str
) -> None:
    other = f"{prefix[:-1]}-other/"
    try:
        store.put(f"{prefix}work/items.jsonl", b"{}\n")
        store.put(f"{prefix}a_part001.zip", b"PK")
        store.put(f"{other}a_part001.zip", b"PK")
        crashed = store.writer(f"{prefix}a_part002.zip")
        crashed.write(random.Random(4).randbytes(PACKAGE_CHUNK))  # a build that died here
        kept = store.writer(f"{other}a_part002.zip")
        kept.write(random.Random(5).randbytes(PACKAGE_CHUNK))

        assert store.delete_prefix(prefix) == 2
        assert store.keys(prefix) == []
        assert store.pending_uploads(prefix) == []
        assert store.keys(other) == [f"{other}a_part001.zip"]
        assert [k for k, _ in store.pending_uploads(other)] == [f"{other}a_part002.zip"]

        # the crashed builder, should it come back, cannot finish what was deleted
        with pytest.raises(BackendFailed, match="NoSuchUpload"):
            crashed.close()
        assert store.delete_prefix(prefix) == 0  # again: nothing left
        with pytest.raises(ValueError, match="needs a prefix"):
            store.delete_prefix("")
    finally:
        store.delete_prefix(other)
    assert store.pending_uploads(other) == []


def test_an_absent_key_is_not_found_on_read_and_none_as_size(
    store: S3PackageStore, prefix: str
) -> None:
    key = f"{prefix}never-written.zip"
    with pytest.raises(NotFound, match="never-written"):
        next(store.read(key))
    assert store.size(key) is None
    assert store.keys(key) == []


def test_a_read_stopped_early_gives_its_connection_back(settings: Settings, prefix: str) -> None:
    raw = bootstrap.raw_store(settings)
    store = S3PackageStore(raw, f"{settings.s3_bucket}-exports")
    key = f"{prefix}download.zip"
    data = random.Random(6).randbytes(3 * MIB)
    store.put(key, data)
    host, _, port = settings.s3_endpoint.partition(":")
    pool = raw._http.connection_from_host(host, int(port), scheme="http")
    opened = pool.num_connections
    for _ in range(30):
        chunks = store.read(key, chunk_size=MIB)
        assert next(chunks) == data[:MIB]
        chunks.close()  # a download cancelled half way
    assert b"".join(store.read(key)) == data
    # a connection never given back would have made the pool open a new one for every read
    assert pool.num_connections - opened <= 1


def test_a_zip_part_streamed_into_the_store_reads_back_whole(
    store: S3PackageStore, prefix: str
) -> None:
    key = f"{prefix}报告_exp-0123456789_part001.zip"
    when = datetime(2024, 5, 6, 7, 8, 10, tzinfo=UTC)
    big = random.Random(7).randbytes(PACKAGE_CHUNK + 3 * MIB)  # incompressible: two parts
    eml = "Subject: 季度报告\r\n\r\n正文\r\n".encode()
    writer = store.writer(key)
    package = PackageZip(writer, part=1)
    first = package.add("法务部 (hold-1)/zhang@example.com/2024-05-06_报告.eml", eml, when)
    with package.entry("法务部 (hold-1)/zhang@example.com.mbox", when, md5=True) as mbox:
        for start in range(0, len(big), 5 * MIB + 17):
            mbox.write(big[start : start + 5 * MIB + 17])
    package.add("metadata.csv", "\ufeffnumber,path\r\n".encode(), when)
    size = package.close()
    writer.close()

    assert store.size(key) == size == package.bytes_written
    body = b"".join(store.read(key))
    with zipfile.ZipFile(io.BytesIO(body)) as back:
        assert back.testzip() is None
        assert [i.filename for i in back.infolist()] == [f.path for f in package.files]
        for listed in package.files:
            read = back.read(listed.path)
            assert (len(read), hashlib.sha256(read).hexdigest()) == (listed.size, listed.sha256)
    assert first.sha256 == hashlib.sha256(eml).hexdigest()
    assert mbox.file.size == len(big) and mbox.md5 == hashlib.md5(big).hexdigest()
