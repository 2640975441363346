"""Incremental, idempotent archiving of IMAP folders.

Per (account, folder) a checkpoint in the archive's own S3 bucket holds the folder's UIDVALIDITY
and the highest UID archived. A poll fetches the UIDs above it in batches; a batch is stored and
indexed (``Archiver.ingest_many``) before the checkpoint moves past it, so a crash resumes after
the last complete batch: the messages of the interrupted batch are fetched again and deduplicated
by content hash. A changed UIDVALIDITY means the old UIDs are meaningless: the folder is read
again from UID 1, and the content hash keeps the archive free of duplicates.

Messages that fail are counted and remembered in the checkpoint, to be retried on the next poll,
while the folder goes on. A batch that stores nothing at all means the backend is down: the folder
stops there, with its checkpoint untouched.

The server side is behind the ``Mailbox`` protocol (implemented in archiver/adapters/imap.py).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from pydantic import BaseModel, Field

from archiver.errors import (
    BackendError,
    ImapAuthError,
    ImapConnectionLost,
    ImapError,
    MessageTooLarge,
)
from archiver.imap.accounts import ImapAccount
from archiver.models import IngestOutcome, MessageInfo, Source
from archiver.pipeline.archiver import Archiver, Incoming
from archiver.ports import JsonStore, Mailbox

log = logging.getLogger(__name__)

# Opens a logged-in session for an account (archiver/adapters/imap.py: connect).
Connect = Callable[[ImapAccount], AbstractContextManager[Mailbox]]

CHECKPOINT_PREFIX = "checkpoints/imap/"


class Checkpoint(BaseModel):
    folder: str
    uidvalidity: int
    last_uid: int = 0
    retry: dict[int, int] = Field(default_factory=dict)  # failed UID -> attempts so far
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class FolderSummary(BaseModel):
    folder: str
    uidvalidity: int | None = None
    new: int = 0
    duplicates: int = 0
    failed: int = 0
    removed: int = 0  # journal mode: deleted or moved after archiving
    resynced: bool = False  # UIDVALIDITY changed: the folder was read again from the start
    complete: bool = False  # every UID seen was handled (failed ones are kept for retry)
    errors: list[dict[str, str]] = Field(default_factory=list)


class PollSummary(BaseModel):
    account: str
    folders: list[FolderSummary] = Field(default_factory=list)
    reconnects: int = 0
    error: str | None = None  # the poll stopped: bad credentials, server gone, backend down

    def folder(self, name: str) -> FolderSummary:
        for summary in self.folders:
            if summary.folder == name:
                return summary
        self.folders.append(FolderSummary(folder=name))
        return self.folders[-1]

    @property
    def ok(self) -> bool:
        return self.error is None and all(f.complete and not f.failed for f in self.folders)


def checkpoint_key(account: str, folder: str) -> str:
    # Hashed: folder names may hold any character, and keys should not.
    digest = hashlib.sha256(folder.encode()).hexdigest()[:32]
    return f"{CHECKPOINT_PREFIX}{account}/{digest}.json"


def selected_folders(account: ImapAccount, folders: Sequence[str]) -> list[str]:
    """The folders to archive: included, not excluded, never the journal target itself."""
    chosen = [
        f
        for f in folders
        if any(fnmatchcase(f, g) for g in account.include)
        and not any(fnmatchcase(f, g) for g in account.exclude)
        and f != account.journal_folder
    ]
    return sorted(chosen)


def uid_batches(infos: Sequence[MessageInfo], count: int, max_bytes: int) -> Iterator[list[int]]:
    """Consecutive UIDs in groups of at most count messages and max_bytes (one large message
    makes a group of its own)."""
    batch: list[int] = []
    size = 0
    for info in infos:
        if batch and (len(batch) >= count or size + info.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(info.uid)
        size += info.size
    if batch:
        yield batch


class _PollStopped(Exception):
    """A backend failed: stop this poll, keep the checkpoints as they are."""


class ImapPoller:
    def __init__(
        self,
        archiver: Archiver,
        checkpoints: JsonStore,
        connect: Connect,
        *,
        batch_size: int = 100,
        batch_bytes: int = 32 * 1024 * 1024,
        max_message_bytes: int = 50 * 1024 * 1024,
        retries: int = 5,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.archiver = archiver
        self.checkpoints = checkpoints
        self.connect = connect
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.max_message_bytes = max_message_bytes
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    def poll(self, account: ImapAccount) -> PollSummary:
        """Archive what is new in every selected folder. Never raises for IMAP or backend
        trouble: the summary's error says why the poll stopped."""
        summary = PollSummary(account=account.name)
        done: set[str] = set()
        while True:
            try:
                self._poll_once(account, summary, done)
                return summary
            except ImapConnectionLost as exc:
                if summary.reconnects >= self.retries:
                    return self._stopped(summary, exc)
                delay = self.backoff * 2**summary.reconnects
                summary.reconnects += 1
                log.warning(
                    "imap connection lost, reconnecting",
                    extra={"account": account.name, "error": str(exc), "delay": delay},
                )
                self.sleep(delay)
            except (ImapError, BackendError) as exc:
                return self._stopped(summary, exc)
            except _PollStopped as exc:
                return self._stopped(summary, exc)

    def _stopped(self, summary: PollSummary, exc: Exception) -> PollSummary:
        summary.error = str(exc)
        log.error("imap poll stopped", extra={"account": summary.account, "error": str(exc)})
        return summary

    def _poll_once(self, account: ImapAccount, summary: PollSummary, done: set[str]) -> None:
        with self.connect(account) as box:
            if account.mode == "journal":
                # before anything is archived: mail archived but never removable would be
                # fetched again on every poll
                box.ensure_removable(account.journal_folder)
                if account.journal_folder:
                    box.ensure_folder(account.journal_folder)
            for folder in selected_folders(account, box.folders()):
                if folder in done:
                    continue
                try:
                    self._sync_folder(box, account, folder, summary.folder(folder))
                except (ImapConnectionLost, ImapAuthError):
                    raise
                except ImapError as exc:  # e.g. the folder was deleted since LIST: go on
                    summary.folder(folder).errors.append({"message": folder, "error": str(exc)})
                    log.error(
                        "imap folder skipped",
                        extra={"account": account.name, "folder": folder, "error": str(exc)},
                    )
                done.add(folder)

    # -- one folder ------------------------------------------------------------------------

    def _sync_folder(
        self, box: Mailbox, account: ImapAccount, folder: str, summary: FolderSummary
    ) -> None:
        uidvalidity = box.select(folder, readonly=account.mode == "copy")
        checkpoint = self._load(account, folder)
        if checkpoint is None or checkpoint.uidvalidity != uidvalidity:
            if checkpoint is not None:
                summary.resynced = True
                log.warning(
                    "imap UIDVALIDITY changed: reading the folder again",
                    extra={
                        "account": account.name,
                        "folder": folder,
                        "old": checkpoint.uidvalidity,
                        "new": uidvalidity,
                    },
                )
            checkpoint = Checkpoint(folder=folder, uidvalidity=uidvalidity)
        summary.uidvalidity = uidvalidity
        todo = sorted(set(checkpoint.retry) | set(box.uids_after(checkpoint.last_uid)))
        for start in range(0, len(todo), self.batch_size):
            infos = box.fetch_info(todo[start : start + self.batch_size])
            for uids in uid_batches(infos, self.batch_size, self.batch_bytes):
                batch = [i for i in infos if i.uid in set(uids)]
                checkpoint = self._archive_batch(box, account, folder, batch, checkpoint, summary)
            # UIDs the server no longer has (expunged meanwhile) need no retry
            gone = set(todo[start : start + self.batch_size]) - {i.uid for i in infos}
            if gone & set(checkpoint.retry):
                checkpoint.retry = {u: n for u, n in checkpoint.retry.items() if u not in gone}
                self._save(account, checkpoint)
        summary.complete = True
        log.info("imap folder archived", extra={"account": account.name, **summary.model_dump()})

    def _archive_batch(
        self,
        box: Mailbox,
        account: ImapAccount,
        folder: str,
        batch: Sequence[MessageInfo],
        checkpoint: Checkpoint,
        summary: FolderSummary,
    ) -> Checkpoint:
        failed: dict[int, str] = {
            i.uid: str(MessageTooLarge(i.size, self.max_message_bytes))
            for i in batch
            if i.size > self.max_message_bytes
        }
        wanted = [i for i in batch if i.uid not in failed]
        bodies = box.fetch_bodies([i.uid for i in wanted]) if wanted else {}
        items = [
            Incoming(
                bodies[i.uid],
                imap_source(account.name, folder, checkpoint.uidvalidity, i),
                _label(folder, i.uid),
            )
            for i in wanted
            if i.uid in bodies
        ]
        failed.update({i.uid: "the server returned no body" for i in wanted if i.uid not in bodies})
        outcomes = self.archiver.ingest_many(items) if items else []
        archived, store_failed = _sort_outcomes(items, outcomes, failed)
        if items and not archived and store_failed:
            # nothing of the batch could be stored: the backend is down, not the messages bad
            raise _PollStopped(f"{folder}: storing failed: {next(iter(failed.values()))}")
        self._count(summary, outcomes, failed, checkpoint)
        if account.mode == "journal" and archived:
            # before the checkpoint moves: a crash in between re-fetches (deduplicated) and
            # removes them next time, instead of leaving archived mail on the server for good
            self._remove(box, account, sorted(archived))
            summary.removed += len(archived)
        advanced = checkpoint.model_copy(
            update={
                "last_uid": max(checkpoint.last_uid, *(i.uid for i in batch)),
                "retry": {
                    **{u: n for u, n in checkpoint.retry.items() if u not in archived},
                    **{u: checkpoint.retry.get(u, 0) + 1 for u in failed},
                },
                "updated_at": datetime.now(UTC),
            }
        )
        self._save(account, advanced)
        return advanced

    def _count(
        self,
        summary: FolderSummary,
        outcomes: Sequence[IngestOutcome],
        failed: dict[int, str],
        checkpoint: Checkpoint,
    ) -> None:
        summary.new += sum(o.status == "imported" for o in outcomes)
        summary.duplicates += sum(o.status == "duplicate" for o in outcomes)
        summary.failed += len(failed)
        for uid, error in sorted(failed.items()):
            summary.errors.append({"message": _label(summary.folder, uid), "error": error})
            log.warning(
                "imap message not archived; retried next poll",
                extra={
                    "folder": summary.folder,
                    "uid": uid,
                    "uidvalidity": checkpoint.uidvalidity,
                    "error": error,
                },
            )

    def _remove(self, box: Mailbox, account: ImapAccount, uids: list[int]) -> None:
        if account.journal_folder:
            box.move(uids, account.journal_folder)
        else:
            box.delete(uids)

    # -- checkpoints -----------------------------------------------------------------------

    def _load(self, account: ImapAccount, folder: str) -> Checkpoint | None:
        data = self.checkpoints.get_json(checkpoint_key(account.name, folder))
        return Checkpoint.model_validate(data) if data is not None else None

    def _save(self, account: ImapAccount, checkpoint: Checkpoint) -> None:
        key = checkpoint_key(account.name, checkpoint.folder)
        self.checkpoints.put_json(key, checkpoint.model_dump(mode="json"))


def imap_source(account: str, folder: str, uidvalidity: int, info: MessageInfo) -> Source:
    return Source(
        kind="imap",
        detail=f"{account}/{folder}/{uidvalidity}/{info.uid}",
        received_at=info.internaldate,
        attributes={
            "account": account,
            "folder": folder,
            "uid": str(info.uid),
            "uidvalidity": str(uidvalidity),
            "flags": " ".join(info.flags),
            "internaldate": info.internaldate.isoformat(),
        },
    )


def _label(folder: str, uid: int) -> str:
    return f"{folder}/{uid}"


def _sort_outcomes(
    items: Sequence[Incoming], outcomes: Sequence[IngestOutcome], failed: dict[int, str]
) -> tuple[set[int], bool]:
    """UIDs archived (stored and indexed) and whether any store failed. Adds failures to failed.

    A UID counts as archived only if no outcome for its bytes failed: the pipeline reports a
    repeated copy in one batch as a duplicate even when storing the first copy failed."""
    uid_of = {item.label: int(item.label.rsplit("/", 1)[1]) for item in items}
    sha_of = {item.label: hashlib.sha256(item.raw).hexdigest() for item in items}
    bad = [o for o in outcomes if o.status == "failed"]
    bad_shas = {o.sha256 or sha_of.get(o.label, "") for o in bad}
    store_failed = any(o.sha256 is None for o in bad)
    errors = {o.label: o.error or "failed" for o in bad}
    for label, uid in uid_of.items():
        if sha_of[label] in bad_shas:
            failed[uid] = errors.get(label, "another copy of the same bytes failed")
    return {u for u in uid_of.values() if u not in failed}, store_failed
