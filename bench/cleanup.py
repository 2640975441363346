"""Removing the throwaway buckets and indices that tests and benchmarks create. Never used on
an archive: the application itself has no way to delete raw mail."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from minio.deleteobjects import DeleteObject

from archiver import bootstrap
from archiver.pipeline.archiver import Archiver
from archiver.settings import Settings

SEAWEED_MASTER = "127.0.0.1:9333"  # scripts/services.sh


def drop_bucket(client: Any, bucket: str) -> None:
    """The bucket and everything in it, retention or not. SeaweedFS's admin shell drops a whole
    bucket at once (and, on the filer, one holding COMPLIANCE locks, which no S3 request can
    empty); object by object, bypassing governance retention, is the portable (slow) way."""
    if not client.bucket_exists(bucket):
        return
    weed = shutil.which("weed")
    if weed:
        # the bucket's folder on the filer, below S3: the one way past COMPLIANCE locks
        for command in (f"s3.bucket.delete -name {bucket}", f"fs.rm -r /buckets/{bucket}"):
            subprocess.run(
                [weed, "shell", f"-master={SEAWEED_MASTER}"],
                check=False,
                timeout=120,
                input=command + "\n",
                capture_output=True,
                text=True,
            )
            if not client.bucket_exists(bucket):
                return
    versions = (
        DeleteObject(o.object_name, o.version_id)
        for o in client.list_objects(bucket, recursive=True, include_version=True)
    )
    errors = list(client.remove_objects(bucket, versions, bypass_governance_mode=True))
    if errors:
        raise RuntimeError(f"could not empty bucket {bucket}: {errors[:3]}")
    client.remove_bucket(bucket)


def drop_index(client: Any, alias: str) -> None:
    client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
    if client.indices.exists_index_template(name=f"{alias}-template"):
        client.indices.delete_index_template(name=f"{alias}-template")


def drop_queue(settings: Settings) -> None:
    """A throwaway Celery queue and kombu's binding records of it (they outlive the worker)."""
    name = settings.celery_queue
    client = redis.Redis.from_url(settings.redis_url)
    client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
    client.close()


def throwaway_settings(base: Settings, name: str) -> Settings:
    """Settings naming an index alias and a bucket of their own."""
    return base.model_copy(update={"es_index": name, "s3_bucket": name})


def export_bucket(settings: Settings) -> str:
    return settings.export_bucket or f"{settings.s3_bucket}-exports"


def cleanup_throwaway(settings: Settings) -> None:
    """Drop the settings' index and buckets (made by another process, e.g. `mailvault import`)."""
    drop_index(bootstrap.search_index(settings).client, settings.es_index)
    client = bootstrap.raw_store(settings).client
    drop_bucket(client, settings.s3_bucket)
    drop_bucket(client, export_bucket(settings))


@contextmanager
def throwaway_archive(settings: Settings, *, parallel: bool = False) -> Iterator[Archiver]:
    """An archiver on the settings' index and bucket, both created now and dropped after."""
    bootstrap.init_backends(settings)
    archiver = bootstrap.archiver(settings, parallel=parallel)
    try:
        yield archiver
    finally:
        archiver.close()
        drop_index(archiver.index.client, settings.es_index)
        client = bootstrap.raw_store(settings).client
        drop_bucket(client, settings.s3_bucket)
        drop_bucket(client, export_bucket(settings))  # if an export was made
