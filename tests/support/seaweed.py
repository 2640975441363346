"""A private SeaweedFS (`weed server` with S3) for tests that must not depend on the shared one's
free volumes, on its own ports and temp dir; stopped and removed afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archiver import bootstrap
from archiver.pipeline.archiver import Archiver
from archiver.settings import Settings
from tests.support.postfix import free_port


@contextmanager
def private_s3(access_key: str, secret_key: str) -> Iterator[str]:
    """Yields the S3 endpoint ("127.0.0.1:port")."""
    base = Path(tempfile.mkdtemp(prefix="mailvault-weed-"))
    (base / "data").mkdir()
    config = base / "s3.json"
    identity = {
        "name": "mailvault",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    log = (base / "weed.log").open("wb")
    process = subprocess.Popen(
        [
            shutil.which("weed") or "weed", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-dir={base / 'data'}", "-master.volumeSizeLimitMB=64", "-master.telemetry=false",
            f"-master.port={ports['master']}", f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={grpc['volume']}",
            "-volume.max=0", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={grpc['filer']}",
            "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={grpc['s3']}",
            f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"127.0.0.1:{ports['s3']}"
    try:
        _wait_ready(endpoint, access_key, secret_key, process, base / "weed.log")
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:  # its data is thrown away anyway
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(
    endpoint: str, access_key: str, secret_key: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    """Ready when a bucket can be created and written to (volumes allocated)."""
    import io

    from minio import Minio

    client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=False)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if not client.bucket_exists("ready-probe"):
                client.make_bucket("ready-probe")
            client.put_object("ready-probe", "probe", io.BytesIO(b"ok"), 2)
            return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"private weed not ready: {log.read_text(errors='replace')[-2000:]}")


@contextmanager
def archive_on_private_s3(settings: Settings) -> Iterator[tuple[Archiver, Settings]]:
    """An Archiver on a private SeaweedFS and the session's Elasticsearch index. The shared
    SeaweedFS gives each bucket its own volumes and can run out of them when many test sessions
    run at once; tests of the sink's durability must not fail for that."""
    with private_s3(settings.s3_access_key, settings.s3_secret_key) as endpoint:
        own = settings.model_copy(update={"s3_endpoint": endpoint})
        bootstrap.raw_store(own).ensure_ready()
        archiver = bootstrap.archiver(own)
        try:
            yield archiver, own
        finally:
            archiver.close()
