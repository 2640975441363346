"""Export jobs and their chains of custody: small documents changed by compare-and-swap.

Several API processes and workers touch one job (a cancel while a worker builds; a download
while another is recorded), so every change reads the job with its version and writes only if
nobody wrote in between; a lost race reads again. The custody log is its own document: it
outlives the package, which expires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from archiver.errors import ConcurrentEdit, NotFound
from archiver.exports.model import CustodyEntry, ExportJob
from archiver.ports import JsonStore

JOBS = "exports/jobs/"
CUSTODY = "exports/custody/"
_ATTEMPTS = 20
T = TypeVar("T")


class ExportJobs:
    def __init__(self, store: JsonStore) -> None:
        self.store = store

    def create(self, job: ExportJob) -> ExportJob:
        self.store.put_json_if(JOBS + job.id, job.model_dump(mode="json"), etag=None)
        return job

    def get(self, export_id: str) -> ExportJob:
        return self._versioned(export_id)[0]

    def _versioned(self, export_id: str) -> tuple[ExportJob, str]:
        found = self.store.get_json_versioned(JOBS + export_id)
        if found is None:
            raise NotFound(f"no export {export_id!r}")
        return ExportJob.model_validate(found[0]), found[1]

    def ids(self) -> list[str]:
        return sorted(k.removeprefix(JOBS) for k in self.store.list_keys(JOBS))

    def all(self) -> list[ExportJob]:
        jobs: list[ExportJob] = []
        for export_id in self.ids():
            try:
                jobs.append(self.get(export_id))
            except NotFound:  # deleted between the listing and the read
                continue
        return sorted(jobs, key=lambda j: j.requested_at, reverse=True)

    def change(self, export_id: str, edit: Callable[[ExportJob], T]) -> tuple[ExportJob, T]:
        """Apply `edit` to the job as stored now and save it; `edit` may raise to refuse."""
        for _ in range(_ATTEMPTS):
            job, etag = self._versioned(export_id)
            result = edit(job)
            try:
                self.store.put_json_if(JOBS + export_id, job.model_dump(mode="json"), etag=etag)
            except ConcurrentEdit:
                continue
            return job, result
        raise ConcurrentEdit(f"export {export_id}")

    # -- custody ---------------------------------------------------------------------------

    def custody(self, export_id: str) -> list[CustodyEntry]:
        found = self.store.get_json(CUSTODY + export_id)
        return [CustodyEntry.model_validate(e) for e in (found or {}).get("entries", [])]

    def add_custody(self, export_id: str, entry: CustodyEntry) -> None:
        key = CUSTODY + export_id
        for _ in range(_ATTEMPTS):
            found = self.store.get_json_versioned(key)
            entries = found[0].get("entries", []) if found else []
            value = {"export": export_id, "entries": [*entries, entry.model_dump(mode="json")]}
            try:
                self.store.put_json_if(key, value, etag=found[1] if found else None)
            except ConcurrentEdit:
                continue
            return
        raise ConcurrentEdit(f"the custody log of export {export_id}")


def custody_text(export_id: str, entries: list[CustodyEntry]) -> str:
    header = f"# chain of custody of export {export_id}: time\tevent\tactor\twhere from\tdetail\n"
    return header + "".join(e.line() + "\n" for e in entries)
