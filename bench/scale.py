"""Does ingest scale with workers? The same generated history through `mailvault import` with
one analyser, with two, and as two `mailvault import` processes side by side (the history split
in two folders, as README's multi-node section splits one), all against the one Elasticsearch
and S3 endpoint of this machine.

    python -m bench.scale [--count 6000]

Prints each shape's wall time, msg/s and MB/s, its speed-up over one analyser, and the CPU of
the import processes and of each service: on this 2-core machine the services share the cores
with the importers, so the speed-up shows how much of the work parallel importers take on, and
the CPU split what bounds the rest. Each shape starts on a fresh index and bucket.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from archiver.settings import get_settings
from bench import indexers, proc_cpu
from bench.cleanup import cleanup_throwaway, throwaway_settings
from bench.mailgen import generate


@dataclass(frozen=True)
class Shape:
    name: str
    processes: int  # mailvault import processes, one folder each
    analysers: int  # per process


SHAPES = (
    Shape("1 import, 1 analyser", 1, 1),
    Shape("1 import, 2 analysers", 1, 2),
    Shape("2 imports, 1 analyser each", 2, 1),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}"
    )
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        raws = [m.raw for m in generate(args.count, seed=args.seed)]
        halves = [root / "history" / "a", root / "history" / "b"]
        size = sum(indexers.write_maildir(d, raws[n::2]) for n, d in enumerate(halves))
        print(f"history: {len(raws)} generated messages, {size / 1e6:.1f} MB, in two Maildirs")
        base: float | None = None
        for shape in SHAPES:
            folders = halves if shape.processes == 2 else [root / "history"]
            seconds, cpu = run_shape(shape, folders)
            base = base or seconds
            split = ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
            print(
                f"  {shape.name:<28} {seconds:7.1f} s  {len(raws) / seconds:5.0f} msg/s  "
                f"{size / seconds / 1e6:5.2f} MB/s  x{base / seconds:.2f}  CPU-s: {split}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_shape(shape: Shape, folders: list[Path]) -> tuple[float, dict[str, float]]:
    """Wall time until the last import process ends, and the CPU of each group meanwhile."""
    name = f"mailvault-benchscale-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MAILVAULT_ES_INDEX": name,
        "MAILVAULT_S3_BUCKET": name,
        "MAILVAULT_IMPORT_WORKERS": str(shape.analysers),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    cli = [sys.executable, "-m", "ingest.cli"]
    try:
        subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
        groups = indexers.service_groups()
        before = proc_cpu.Snapshot.take()
        start = time.perf_counter()
        imports = [
            subprocess.Popen(
                [*cli, "import", "--no-progress", "--json", str(folder)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for folder in folders
        ]
        for process in imports:
            _, err = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"mailvault import exited {process.returncode}: {err[-500:]!r}")
        seconds = time.perf_counter() - start
        after = proc_cpu.Snapshot.take()
        me = os.getpid()
        reaped = (after.stats[me].reaped - before.stats[me].reaped) / proc_cpu.TICK
        return seconds, {"imports": reaped, **proc_cpu.usage(groups, before, after)}
    finally:
        cleanup_throwaway(throwaway_settings(get_settings(), name))


if __name__ == "__main__":
    main()
