"""Export benchmark: building an evidence package of the whole archive, in each format.

    python -m bench.exports --count 20000 --formats eml,mbox [--part-size BYTES] [--keep]

On a throwaway archive (its own bucket, exports bucket and index, dropped after unless --keep)
seeded as bench/seeding.py does: COUNT distinct variants of a few thousand analysed generated
messages, every one in the department "基准" and every tenth also in "抽样". For each format, two
exports are asked for (a search, through the ExportService, as a person would): the tenth, then
the whole archive, so the builder's memory at two sizes shows whether it stays flat. Each is built
by `mailvault export build ID` in a process of its own, so its memory is its own: peak RSS
sampled from /proc (bench/rss.py), its CPU from its rusage when reaped, Elasticsearch's and
SeaweedFS's from /proc (bench/proc_cpu.py). Then every part is downloaded (as `mailvault export
download` does) and the package verified offline (archiver/exports/verifier.py).

Seconds and rates are the build's own (the job's started → built, the builder's interpreter
start-up apart); MB/s is the message bytes read from the archive per second. --profile DIR also
runs each whole-archive build once more under cProfile (a profile, not a measurement) and prints
where its time went.
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archiver import bootstrap
from archiver.access.model import Permission, Principal, Role
from archiver.exports.model import ExportJob, ExportRequest
from archiver.exports.service import ExportService
from archiver.exports.verifier import Report, verify
from archiver.settings import Settings, get_settings
from bench import proc_cpu
from bench.cleanup import throwaway_archive, throwaway_settings
from bench.rss import RssSampler
from bench.search import machine_line
from bench.seeding import seed, templates

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("eml", "mbox", "pdf")
EVERYONE = "基准"  # every seeded message's department: a search for the whole archive
TENTH = "抽样"  # every tenth message's too
SPREAD = timedelta(days=3650)  # dates sent, over the last ten years
MB = 1e6
EXPORTER = Principal(
    username="bench:exporter",
    roles=(
        Role(name="bench-exporter", permissions=frozenset({Permission.SEARCH, Permission.EXPORT})),
    ),
)


@dataclass(frozen=True)
class Build:
    """One export built in a process of its own, downloaded and verified."""

    label: str
    job: ExportJob
    wall: float  # the builder process, start to exit
    seconds: float  # the build itself: the job's started_at → built_at
    peak_rss: int
    cpu: dict[str, float]  # CPU seconds: the builder, this process, Elasticsearch, SeaweedFS
    download_seconds: float
    verify_seconds: float
    report: Report

    @property
    def messages(self) -> int:
        return self.job.progress.selected

    @property
    def message_bytes(self) -> int:
        return self.job.progress.selected_bytes

    @property
    def package_bytes(self) -> int:
        return sum(p.size for p in self.job.parts)


def builder_env(settings: Settings) -> dict[str, str]:
    """The environment `mailvault` reads its settings from, naming the throwaway archive."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT),
        "MAILVAULT_ES_INDEX": settings.es_index,
        "MAILVAULT_S3_BUCKET": settings.s3_bucket,
        "MAILVAULT_EXPORT_BUCKET": settings.export_bucket,
        "MAILVAULT_EXPORT_PART_SIZE": str(settings.export_part_size),
    }


def build_command(export_id: str, profile: Path | None = None) -> list[str]:
    command = ["-m", "ingest.cli", "export", "build", export_id, "--json"]
    if profile is not None:
        command = ["-m", "cProfile", "-o", str(profile), *command]
    return [sys.executable, *command]


def cpu_groups() -> list[proc_cpu.Group]:
    """The services and this process (its sampler), each on its own; the builder is measured
    from its rusage: it starts and ends between the snapshots."""
    return [
        proc_cpu.Group("bench (sampling)", [os.getpid()], tree=False),
        proc_cpu.Group(
            "elasticsearch",
            proc_cpu.find(lambda comm, cmd: comm == "java" and "org.elasticsearch" in cmd),
        ),
        proc_cpu.Group("seaweedfs", proc_cpu.find(lambda comm, cmd: comm == "weed")),
    ]


def run_builder(
    settings: Settings, export_id: str, profile: Path | None = None
) -> tuple[float, int, float, proc_cpu.Snapshot, proc_cpu.Snapshot]:
    """Build the export in a process of its own: (wall seconds, peak RSS, its CPU seconds, the
    /proc snapshots before and after)."""
    with tempfile.TemporaryFile() as out:
        before = proc_cpu.Snapshot.take()
        began = time.perf_counter()
        process = subprocess.Popen(
            build_command(export_id, profile),
            env=builder_env(settings),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        with RssSampler(process.pid) as rss:
            # wait4 rather than Popen.wait: the child's own rusage, exactly, as it is reaped
            _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - began
        after = proc_cpu.Snapshot.take()
        if process.returncode != 0:
            out.seek(0)
            tail = out.read()[-4000:].decode(errors="replace")
            raise RuntimeError(f"the builder exited with {process.returncode}:\n{tail}")
    return wall, rss.peak, usage.ru_utime + usage.ru_stime, before, after


def download(service: ExportService, job: ExportJob, to: Path) -> float:
    """Every part into `to`, as `mailvault export download` writes them; seconds."""
    began = time.perf_counter()
    to.mkdir(parents=True, exist_ok=True)
    for part in job.parts:
        got = service.download(job.id, part.number, EXPORTER, "bench")
        with (to / got.name).open("wb") as file:
            for chunk in got.chunks:
                file.write(chunk)
    return time.perf_counter() - began


def build_once(
    settings: Settings,
    service: ExportService,
    label: str,
    request: ExportRequest,
    downloads: Path,
) -> Build:
    job = service.create(request, EXPORTER, "bench")
    wall, peak, cpu, before, after = run_builder(settings, job.id)
    groups = cpu_groups()
    job = service.job(job.id, EXPORTER)
    if job.status != "done" or job.started_at is None or job.built_at is None:
        raise RuntimeError(f"export {job.id} is {job.status}: {job.error}")
    seconds = (job.built_at - job.started_at).total_seconds()
    print(f"{label} ({job.id}): {job.progress.selected} messages")
    used = proc_cpu.print_split(
        groups, before, after, wall, job.progress.selected, measured={"builder": cpu}
    )
    folder = downloads / job.id
    fetched = download(service, job, folder)
    began = time.perf_counter()
    key = bootstrap.export_signer(settings).public_key_hex
    report = verify(folder, public_key_hex=key)
    verified = time.perf_counter() - began
    return Build(label, job, wall, seconds, peak, used, fetched, verified, report)


def print_build(build: Build) -> None:
    seconds = max(build.seconds, 1e-9)
    report = build.report
    verdict = "ok" if report.ok else f"FAILED ({len(report.problems)} problems)"
    print(
        f"  messages {build.messages}, message MB {build.message_bytes / MB:.1f}, package MB"
        f" {build.package_bytes / MB:.1f} in {len(build.job.parts)} parts"
    )
    print(
        f"  build {build.seconds:.1f} s (process {build.wall:.1f} s) ="
        f" {build.messages / seconds:.0f} messages/s, {build.message_bytes / seconds / MB:.2f}"
        f" MB/s; builder peak RSS {build.peak_rss / MB:.0f} MB, CPU {build.cpu['builder']:.1f} s"
    )
    print(
        f"  download {build.download_seconds:.1f} s; verify {build.verify_seconds:.1f} s ="
        f" {report.messages_checked / max(build.verify_seconds, 1e-9):.0f} messages/s: {verdict},"
        f" {report.files_checked} files and {report.messages_checked} messages checked"
    )
    for problem in report.problems[:5]:
        print(f"    {problem.to_text()}")


def print_table(builds: Sequence[Build]) -> None:
    print(
        f"{'export':<22} {'messages':>8} {'msg MB':>8} {'pkg MB':>8} {'parts':>5} {'s':>7}"
        f" {'msg/s':>7} {'MB/s':>6} {'RSS MB':>7} {'verify s':>8}"
    )
    for b in builds:
        seconds = max(b.seconds, 1e-9)
        print(
            f"{b.label:<22} {b.messages:>8} {b.message_bytes / MB:>8.1f}"
            f" {b.package_bytes / MB:>8.1f} {len(b.job.parts):>5} {b.seconds:>7.1f}"
            f" {b.messages / seconds:>7.0f} {b.message_bytes / seconds / MB:>6.2f}"
            f" {b.peak_rss / MB:>7.0f} {b.verify_seconds:>8.1f}"
        )


def print_flatness(builds: Sequence[Build]) -> None:
    """The builder's peak RSS at the two sizes of each format."""
    by_format: dict[str, list[Build]] = {}
    for b in builds:
        by_format.setdefault(b.job.request.format, []).append(b)
    for fmt, pair in by_format.items():
        sizes = ", ".join(f"{b.messages} messages {b.peak_rss / MB:.0f} MB" for b in pair)
        growth = pair[-1].peak_rss / max(pair[0].peak_rss, 1)
        print(f"builder peak RSS, {fmt}: {sizes} (x{growth:.2f} for x{_ratio(pair):.0f} messages)")


def _ratio(pair: Sequence[Build]) -> float:
    return pair[-1].messages / max(pair[0].messages, 1)


def profile(settings: Settings, service: ExportService, request: ExportRequest, to: Path) -> None:
    """The build once more under cProfile; where its time went, by own time."""
    job = service.create(request, EXPORTER, "bench")
    path = to / f"{request.format}.prof"
    wall, _, _, _, _ = run_builder(settings, job.id, path)
    print(f"profile of the {request.format} builder ({wall:.1f} s under cProfile): {path}")
    stats = pstats.Stats(str(path))
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    total = sum(row[1][2] for row in rows) or 1e-9
    for (file, line, function), (_, calls, own, cumulative, _) in rows[:15]:
        where = f"{Path(file).name}:{line}({function})" if line else function
        print(
            f"  {own:7.2f} s own ({own / total:4.0%}) {cumulative:7.2f} s cum {calls:>9} calls"
            f"  {where}"
        )


@contextmanager
def archive(settings: Settings, keep: bool) -> Iterator[None]:
    """The throwaway archive: dropped after, unless it is to be kept for a look."""
    if keep:
        bootstrap.init_backends(settings)
        yield
        return
    with throwaway_archive(settings):  # its exports bucket is dropped too
        yield


def measure(settings: Settings, args: argparse.Namespace, downloads: Path) -> list[Build]:
    retention = bootstrap.retention(settings)
    pool = templates(min(args.templates, args.count), args.seed)
    now = datetime.now(UTC)
    step: timedelta = SPREAD / max(args.count, 1)
    print(f"templates: {len(pool)} generated messages analysed once")
    rate = seed(
        retention,
        bootstrap.raw_store(settings),
        pool,
        range(args.count),
        lambda n: now - timedelta(hours=1) - step * n,
        lambda n: [EVERYONE, TENTH] if n % 10 == 0 else [EVERYONE],
    )
    print(f"seeded {args.count} messages at {rate:.0f} msg/s")
    service = bootstrap.exports(settings)
    builds = []
    for fmt in args.formats:
        for label, department in ((f"{fmt}, a tenth", TENTH), (f"{fmt}, whole archive", EVERYONE)):
            request = ExportRequest(
                name=f"bench {label}", kind="query", query=f"department:{department}", format=fmt
            )
            builds.append(build_once(settings, service, label, request, downloads))
            print_build(builds[-1])
        if args.profile is not None:
            request = ExportRequest(
                name=f"bench {fmt} profiled",
                kind="query",
                query=f"department:{EVERYONE}",
                format=fmt,
            )
            profile(settings, service, request, args.profile)
    return builds


def _formats(text: str) -> list[str]:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(f"formats among {', '.join(FORMATS)}: {text!r}")
    return formats


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="messages in the archive")
    parser.add_argument("--formats", type=_formats, default=["eml", "mbox"])
    parser.add_argument(
        "--part-size", type=int, default=0, help="bytes per zip part (0: export_part_size)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the archive and the downloads")
    parser.add_argument("--templates", type=int, default=2000, help="distinct generated messages")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="also profile each whole-archive build"
    )
    args = parser.parse_args(argv)
    base = get_settings()
    name = f"mailvault-benchexports-{uuid.uuid4().hex[:8]}"
    settings = throwaway_settings(base, name).model_copy(
        update={
            "export_bucket": f"{name}-exports",
            "export_part_size": args.part_size or base.export_part_size,
        }
    )
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    print(f"load average at start: {os.getloadavg()}")
    print(
        f"archive: {name} ({'kept' if args.keep else 'throwaway: dropped at the end'}); part"
        f" size {settings.export_part_size} bytes"
    )
    downloads = Path(tempfile.mkdtemp(prefix="mailvault-benchexports-"))
    try:
        with archive(settings, args.keep):
            builds = measure(settings, args, downloads)
    finally:
        if args.keep:
            print(f"downloads kept in {downloads}")
        else:
            shutil.rmtree(downloads, ignore_errors=True)
    print_table(builds)
    print_flatness(builds)
    print(f"load average at end: {os.getloadavg()}")
    if not all(b.report.ok for b in builds):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
