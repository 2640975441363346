"""Building an export package: selected once, then streamed part by part into the exports bucket.

The build holds a lease on its job (renewed as it goes), so two workers never build one export
and a crashed worker's job is taken over once its lease runs out. First the selection: the
request's items, through the requester's scope, saved in work files. Then the parts, each a
self-contained zip streamed to the bucket (a multipart upload) as the messages are read from the
raw store: nothing is held whole in memory but the few messages read ahead (a bounded number
and size: archiver/read_ahead.py). Every message is checked against its
stored SHA-256 as it is written; a mismatch stops the export loudly.

A part's progress is saved when it is complete: a build that dies resumes at the part it was
writing, which is written again from its first message, byte for byte as it would have been
(the same items in the same order, fixed entry dates and names), so a resumed package is the
same as an uninterrupted one. The last part also carries metadata.csv, the load file, the
verifier, a README, the manifest and its signature.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any, TextIO

from archiver.audit.log import AuditLog
from archiver.audit.records import AuditAction, Outcome
from archiver.errors import ExportBusy, IntegrityError, InvalidExport, MailvaultError, NotFound
from archiver.exports.jobs import ExportJobs
from archiver.exports.layout import control_number, mbox_name
from archiver.exports.manifest import (
    manifest_head,
    message_entry,
    readme,
    signature_file,
    write_manifest,
)
from archiver.exports.metadata import LoadFileDat, MetadataCsv
from archiver.exports.model import CustodyEntry, CustodyEvent, ExportItem, ExportJob, ExportPart
from archiver.exports.parts import Part, lines, local_lines, package_prefix, part_name, work_key
from archiver.exports.pdf import render_pdf
from archiver.exports.selection import Selector
from archiver.exports.signing import ManifestSigner
from archiver.holds.model import Hold
from archiver.ports import Document, PackageStore, RawStore, SearchIndex
from archiver.read_ahead import read_ahead
from archiver.retention.evaluate import CriteriaQueries
from archiver.search.scoped import ScopedIndex

log = logging.getLogger(__name__)

SELECTION_BATCH = 1000  # items per selection work file
PDF_FIELDS = (
    "subject",
    "from",
    "to",
    "cc",
    "bcc",
    "date",
    "date_offset_minutes",
    "message_id",
    "body",
    "attachments",
)


class ExportCancelled(MailvaultError):
    """The job was cancelled while it was being built."""


@dataclass(frozen=True)
class ExportOptions:
    part_size: int = 2 << 30
    expiry: timedelta = timedelta(days=15)
    lease: timedelta = timedelta(minutes=5)
    renew_every: int = 200  # messages between lease renewals (and checks for a cancel)
    part_files: int = 25_000  # files per part at most (each holds ~1.4 KB of zip directory)
    # messages read ahead of the one being written (GETs overlapped, not one round trip after
    # another): at most so many, on so many threads (below the raw store's pooled connections),
    # and no more once so many bytes are waiting
    read_ahead: int = 32
    read_threads: int = 8
    read_ahead_bytes: int = 32 << 20
    max_attempts: int = 5  # builds of one job that stop with an error, before it is failed


def worker_name() -> str:
    return f"system:export@{socket.gethostname()}:{os.getpid()}"


class PackageBuilder:
    def __init__(
        self,
        jobs: ExportJobs,
        packages: PackageStore,
        raw: RawStore,
        index: SearchIndex,
        queries: CriteriaQueries,
        holds_of: Callable[[str], Sequence[Hold]],
        signer: ManifestSigner,
        audit: AuditLog,
        options: ExportOptions | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.jobs = jobs
        self.packages = packages
        self.raw = raw
        self.index = index
        self.queries = queries
        self.holds_of = holds_of  # a matter's active holds
        self.signer = signer
        self.audit = audit
        self.options = options or ExportOptions()
        self.clock = clock

    # -- the lease ---------------------------------------------------------------------------

    def _take(self, export_id: str, worker: str) -> ExportJob:
        def take(job: ExportJob) -> None:
            if job.finished:
                return
            now = self.clock()
            if job.lease_until and job.lease_until > now and job.built_by != worker:
                raise ExportBusy(job.id, job.built_by, job.lease_until)
            job.built_by, job.lease_until = worker, now + self.options.lease
            job.started_at = job.started_at or now
            job.attempts += 1
            if job.status == "queued":
                job.status = "selecting"

        return self.jobs.change(export_id, take)[0]

    def _renew(self, job: ExportJob, worker: str, edit: Callable[[ExportJob], None] | None) -> None:
        """Extend the lease (and save `edit`); stop when cancelled or taken over."""

        def renew(stored: ExportJob) -> None:
            if stored.status == "cancelled":
                raise ExportCancelled(f"export {job.id} was cancelled")
            if stored.built_by != worker:
                raise ExportBusy(job.id, stored.built_by, stored.lease_until or self.clock())
            if edit is not None:
                edit(stored)
            stored.lease_until = self.clock() + self.options.lease

        saved = self.jobs.change(job.id, renew)[0]
        job.__dict__.update(saved.__dict__)

    # -- building ----------------------------------------------------------------------------

    def build(self, export_id: str, worker: str | None = None) -> ExportJob:
        """Build the export, or resume it where its last builder stopped."""
        worker = worker or worker_name()
        job = self._take(export_id, worker)
        if job.finished:
            return job
        if job.attempts > self.options.max_attempts:  # it fails the same way each time
            gave_up = InvalidExport(
                "build", f"gave up after {job.attempts - 1} attempts: {job.error}"
            )
            self._fail(job, gave_up)
            return self.jobs.get(job.id)
        try:
            if job.status == "selecting":
                self._select(job, worker)
            self._write(job, worker)
        except ExportCancelled:
            self.packages.delete_prefix(package_prefix(job.id))
            return self.jobs.get(job.id)
        except (IntegrityError, InvalidExport, NotFound) as exc:
            self._fail(job, exc)
            raise
        except Exception as exc:
            self._note(job, exc)
            raise
        return job

    def _note(self, job: ExportJob, exc: Exception) -> None:
        """Keep the error with the job, which stays resumable (a backend away, a worker bug):
        the next attempt, or the one that gives up, says what happened."""

        def note(stored: ExportJob) -> None:
            stored.error = f"{type(exc).__name__}: {exc}"[:2000]

        with contextlib.suppress(MailvaultError):  # the store may be what failed
            self.jobs.change(job.id, note)

    def _fail(self, job: ExportJob, exc: Exception) -> None:
        def failed(stored: ExportJob) -> None:
            stored.status, stored.error, stored.lease_until = "failed", str(exc), None

        self.jobs.change(job.id, failed)
        self.packages.delete_prefix(package_prefix(job.id))
        self._custody(job, "failed", str(exc))
        self.audit.record(
            AuditAction.EXPORT,
            actor=job.built_by,
            client=socket.gethostname(),
            target=job.id,
            outcome=Outcome.FAILED,
            details={"step": "build", "error": str(exc)[:1000]},
        )
        log.error("export failed", extra={"export": job.id, "error": str(exc)})

    def _custody(self, job: ExportJob, event: CustodyEvent, detail: str) -> None:
        entry = CustodyEntry(
            time=self.clock(),
            event=event,
            actor=job.built_by,
            client=socket.gethostname(),
            detail=detail,
        )
        self.jobs.add_custody(job.id, entry)

    def _scoped(self, job: ExportJob) -> ScopedIndex:
        return ScopedIndex(self.index, job.scope)

    def _select(self, job: ExportJob, worker: str) -> None:
        request = job.request
        holds = self.holds_of(request.matter) if request.kind == "matter" else ()
        selector = Selector(self._scoped(job), self.queries)
        self.packages.delete_prefix(work_key(job.id, "selection/"))
        batch: list[str] = []
        batches = count = size = 0
        seen: set[str] = set()
        for item in selector.items(request, holds):
            batch.append(item.model_dump_json(by_alias=True))
            count, size = count + 1, size + item.size
            if request.kind == "ids":
                seen.add(item.id)
            if len(batch) == SELECTION_BATCH:
                batches += 1
                self._save_batch(job, batches, batch)
                self._renew(job, worker, None)  # a long walk keeps its lease (and sees a cancel)
                batch = []
        if batch:
            batches += 1
            self._save_batch(job, batches, batch)
        missing = sorted(set(request.ids) - seen)

        def selected(stored: ExportJob) -> None:
            stored.status, stored.selection_batches = "building", batches
            stored.progress.selected, stored.progress.selected_bytes = count, size
            stored.progress.missing, stored.progress.missing_ids = len(missing), missing[:50]

        self._renew(job, worker, selected)
        log.info("export selected", extra={"export": job.id, "messages": count, "bytes": size})

    def _save_batch(self, job: ExportJob, number: int, lines: list[str]) -> None:
        data = "\n".join(lines).encode() + b"\n"
        self.packages.put(work_key(job.id, f"selection/{number:06d}.jsonl"), data)

    def _items(self, job: ExportJob, start: int) -> Iterator[tuple[int, ExportItem]]:
        """The selected items from the `start`-th (0-based), with their index."""
        first = start // SELECTION_BATCH
        for batch in range(first, job.selection_batches):
            key = work_key(job.id, f"selection/{batch + 1:06d}.jsonl")
            for offset, line in enumerate(lines(self.packages.read(key))):
                index = batch * SELECTION_BATCH + offset
                if index >= start:
                    yield index, ExportItem.model_validate_json(line)

    def _write(self, job: ExportJob, worker: str) -> None:
        part = Part(self.packages, job, len(job.parts) + 1)
        mbox_counts = dict(job.mbox_counts)
        since_renewal = 0
        try:
            for index, item, raw, doc in self._fetched(job, self._items(job, job.next_item)):
                if part.full(item, self.options.part_size, self.options.part_files):
                    self._write_mbox_files(job, part, mbox_counts)
                    self._seal_part(job, worker, part, mbox_counts, index)
                    part = Part(self.packages, job, len(job.parts) + 1)
                self._add(job, part, index, item, raw, doc)
                since_renewal += 1
                if since_renewal >= self.options.renew_every:
                    self._renew(job, worker, _in_part(part.messages))
                    since_renewal = 0
            self._finish(job, worker, part, mbox_counts)
        except BaseException:
            part.abort()
            raise

    def _fetched(
        self, job: ExportJob, items: Iterator[tuple[int, ExportItem]]
    ) -> Iterator[tuple[int, ExportItem, bytes, Document]]:
        """The items with their stored bytes (and, for renderings, their documents), read ahead
        on threads while the current one is written (archiver/read_ahead.py): one GET
        after another would bound the export by round trips."""
        scoped = self._scoped(job)
        with_pdf = job.request.with_pdf

        def fetch(entry: tuple[int, ExportItem]) -> tuple[bytes, Document]:
            item = entry[1]
            raw = self.raw.get(item.id)  # raises IntegrityError unless it hashes to its id
            doc = scoped.get_many([item.id], PDF_FIELDS).get(item.id, {}) if with_pdf else {}
            return raw, doc

        options = self.options
        for (index, item), (raw, doc) in read_ahead(
            items,
            fetch,
            threads=options.read_threads,
            max_items=options.read_ahead,
            size=lambda entry: entry[1].size,
            max_bytes=options.read_ahead_bytes,
        ):
            yield index, item, raw, doc

    def _add(
        self, job: ExportJob, part: Part, index: int, item: ExportItem, raw: bytes, doc: Document
    ) -> None:
        when = item.date or job.requested_at
        if job.request.format == "mbox":
            digest = hashlib.sha256(raw).hexdigest()
            _check(item, digest)
            part.pending += part.mbox.add(index, item.folder, raw, item)
            part.hold(index, item, hashlib.md5(raw, usedforsecurity=False).hexdigest())
        else:
            with part.zip.entry(item.path, when, len(raw), md5=True) as out:
                out.write(raw)
            _check(item, out.sha256)  # the hash of the bytes as they went into the package
            part.add_file(item.path, out.size, out.sha256)
            part.add_item(item, out.md5)
        if item.pdf_path:
            rendering = render_pdf(doc, item, control_number=control_number(job.id, item.number))
            part.add_bytes(item.pdf_path, rendering, when)

    def _write_mbox_files(self, job: ExportJob, part: Part, mbox_counts: dict[str, int]) -> None:
        if job.request.format != "mbox":
            return
        paths: dict[int, str] = {}
        for folder in sorted(part.mbox.spans):
            spans = part.mbox.spans[folder]
            mbox_counts[folder] = mbox_counts.get(folder, 0) + 1
            path = mbox_name(folder, mbox_counts[folder])
            with part.zip.entry(path, job.requested_at) as out:
                for chunk in part.mbox.chunks(spans):
                    out.write(chunk)
            part.add_file(path, out.size, out.sha256)
            paths.update((item_index, path) for item_index, _, _ in spans)
        for line in local_lines(part.held):  # package order; each names its mbox file
            held = json.loads(line)
            item = ExportItem.model_validate(held["item"])
            item.path = paths[held["index"]]
            part.add_item(item, held["md5"])
        part.held.seek(0)
        part.held.truncate()
        part.held_count = part.pending = 0

    def _seal_part(
        self,
        job: ExportJob,
        worker: str,
        part: Part,
        mbox_counts: dict[str, int],
        next_item: int,
        edit: Callable[[ExportJob], None] | None = None,
    ) -> None:
        part.zip.close()
        part.writer.close()
        part.sealed = True  # the part exists now: a failure from here on leaves it for a resume
        for suffix, local in (("items", part.items), ("files", part.files)):
            local.seek(0)
            self.packages.put(work_key(job.id, f"part-{part.number:03d}.{suffix}"), local.read())
        done = ExportPart(
            number=part.number,
            key=part.key,
            name=part_name(job, part.number),
            size=part.tee.size,
            sha256=part.tee.digest.hexdigest(),
            files=sum(1 for _ in local_lines(part.files)),
        )
        written = sum(1 for _ in local_lines(part.items))

        def sealed(stored: ExportJob) -> None:
            stored.parts = [*stored.parts, done]
            stored.next_item, stored.mbox_counts = next_item, dict(mbox_counts)
            stored.progress.written += written
            stored.progress.in_part = 0
            stored.progress.written_bytes += done.size
            if edit is not None:
                edit(stored)

        self._renew(job, worker, sealed)
        part.release()
        log.info("export part written", extra={"export": job.id, "part": part.number})

    # -- the last part's own files -------------------------------------------------------------

    def _all_item_lines(self, job: ExportJob, current: Part) -> Iterator[dict[str, Any]]:
        for number in range(1, current.number):
            key = work_key(job.id, f"part-{number:03d}.items")
            for line in lines(self.packages.read(key)):
                yield json.loads(line)
        for line in local_lines(current.items):
            yield json.loads(line)

    def _all_file_lines(self, job: ExportJob, current: Part) -> Iterator[bytes]:
        for number in range(1, current.number):
            yield from lines(self.packages.read(work_key(job.id, f"part-{number:03d}.files")))
        yield from local_lines(current.files)

    def _finish(self, job: ExportJob, worker: str, part: Part, mbox_counts: dict[str, int]) -> None:
        self._write_mbox_files(job, part, mbox_counts)
        when = job.requested_at
        built_at = self.clock()
        part.add_text("metadata.csv", when, lambda out: self._csv(job, part, out))
        if job.request.load_file:
            part.add_text("loadfile.dat", when, lambda out: self._dat(job, part, out))
        verifier = files("archiver.exports").joinpath("verifier.py").read_bytes()
        part.add_bytes("verify.py", verifier, when)
        part.add_bytes("README.txt", readme(job, part.number, self.signer), when)
        file_count = sum(1 for _ in self._all_file_lines(job, part))
        head = manifest_head(job, self.signer, built_at, part.number, file_count)
        with part.zip.entry("manifest.json", when) as out:
            messages = (message_entry(line) for line in self._all_item_lines(job, part))
            write_manifest(out, head, messages, self._all_file_lines(job, part))
        part.zip.add("manifest.sig", signature_file(self.signer, out.sha256), when)

        def done(stored: ExportJob) -> None:
            stored.status, stored.built_at = "done", built_at
            stored.expires_at = built_at + self.options.expiry
            stored.manifest_sha256, stored.lease_until, stored.error = out.sha256, None, ""
            stored.key_fingerprint = self.signer.fingerprint

        total = job.progress.selected
        self._seal_part(job, worker, part, mbox_counts, total, done)
        self.packages.delete_prefix(work_key(job.id, ""))
        detail = f"{total} messages in {len(job.parts)} parts; manifest sha256 {out.sha256}"
        self._custody(job, "built", detail)
        self.audit.record(
            AuditAction.EXPORT,
            actor=worker,
            client=socket.gethostname(),
            target=job.id,
            details={
                "step": "built",
                "messages": total,
                "parts": len(job.parts),
                "bytes": sum(p.size for p in job.parts),
                "manifest_sha256": out.sha256,
                "requested_by": job.requested_by,
            },
        )
        log.info("export built", extra={"export": job.id, "messages": total})

    def _csv(self, job: ExportJob, part: Part, out: TextIO) -> None:
        csv = MetadataCsv(out, job.id)
        for line in self._all_item_lines(job, part):
            csv.row(ExportItem.model_validate(line["item"]), line["md5"])

    def _dat(self, job: ExportJob, part: Part, out: TextIO) -> None:
        dat = LoadFileDat(out, job.id)
        for line in self._all_item_lines(job, part):
            dat.row(ExportItem.model_validate(line["item"]), line["md5"])


def _check(item: ExportItem, digest: str) -> None:
    """Every message re-verified as it is written (the raw store checked it as it read it)."""
    if digest != item.id:
        raise IntegrityError(item.id, digest)


def _in_part(count: int) -> Callable[[ExportJob], None]:
    def note(stored: ExportJob) -> None:
        stored.progress.in_part = count

    return note
