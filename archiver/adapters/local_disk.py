"""Local file systems' size and free space (shutil.disk_usage)."""

from __future__ import annotations

import shutil

from archiver.errors import BackendUnavailable
from archiver.models import DiskFigures


class LocalDiskUsage:
    def usage(self, path: str) -> DiskFigures:
        try:
            found = shutil.disk_usage(path)
        except OSError as exc:
            raise BackendUnavailable("disk", f"{path}: {exc}") from exc
        return DiskFigures(path=path, total_bytes=found.total, free_bytes=found.free)
