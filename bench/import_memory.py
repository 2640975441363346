"""Memory of `mailvault import` on mbox files of growing size: does it stream?

    python -m bench.import_memory --mb 100 400 [--workers N]

For each size, writes a generated mbox of about that many MB, imports it with `mailvault import`
(a process of its own, on a throwaway index and bucket) and prints the rate and the peak memory
of all import processes together (main, fork server, analysers): the sum of their RSS (shared
pages counted in each, as `ps` adds up) and of their PSS (shared pages divided among their
sharers), with each process at the RSS peak. Flat in the size of the file is the target.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import uuid
from pathlib import Path

from archiver.settings import get_settings
from bench import indexers
from bench.cleanup import cleanup_throwaway, throwaway_settings
from bench.mailgen import generate, write_mbox

AVERAGE_MESSAGE = 12_200  # bytes, the generator's average


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}"
    )
    for mb in args.mb:
        root = Path(tempfile.mkdtemp(prefix="bench-mbox-"))
        name = f"mailvault-benchmem-{uuid.uuid4().hex[:8]}"
        try:
            mbox = root / "import.mbox"
            count = write_mbox(mbox, generate(mb * 1_000_000 // AVERAGE_MESSAGE, seed=args.seed))
            size = mbox.stat().st_size
            run = indexers.run_mailvault(mbox, name, args.workers, pss=True)
            cpu = ", ".join(f"{k} {v:.1f}" for k, v in run.cpu.items())
            print(
                f"mbox {size / 1e6:7.1f} MB, {count} messages: {run.seconds:7.1f} s, "
                f"{count / run.seconds:5.0f} msg/s, {size / run.seconds / 1e6:5.2f} MB/s; "
                f"peak RSS {run.peak_rss / 2**20:5.0f} MB (PSS {run.peak_pss / 2**20:5.0f} MB); "
                f"CPU-s: {cpu}"
            )
            print(
                "  at the peak: "
                + ", ".join(
                    f"{comm} {rss / 2**20:.0f}/{pss / 2**20:.0f} MB"
                    for comm, rss, pss in sorted(run.at_peak, key=lambda m: -m[1])
                )
                + " (RSS/PSS)"
            )
            print(f"  {run.detail[:200]}")
        finally:
            cleanup_throwaway(throwaway_settings(get_settings(), name))
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
