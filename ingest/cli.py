"""The ``mailvault`` command."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver import logs
from archiver.errors import InvalidUser, MailvaultError
from archiver.settings import get_settings

if TYPE_CHECKING:
    from archiver.imap.sync import PollSummary
    from archiver.models import ImportSummary
    from archiver.retention.disposition import DispositionRun
    from archiver.retention.policy import PolicyVersion
    from archiver.retention.recompute import RecomputeReport
    from archiver.retention.service import Explanation
    from archiver.settings import Settings

# archiver.bootstrap (and through it every adapter) is imported by each command that needs it,
# not here: the analyser processes of `mailvault import` re-import this module as their main
# module, and the adapters would cost each of them ~2 s of CPU and ~35 MB for nothing.


def cmd_init(args: argparse.Namespace) -> int:
    from archiver import bootstrap

    settings = get_settings()
    bootstrap.init_backends(settings)
    print("bucket and index ready")
    password = bootstrap.user_directory(settings).create_first_admin()
    if password is not None:
        _audit_cli(settings, "user:admin", {"command": "init", "roles": ["admin"]})
        print(f"created user admin (role admin) with the one-time password: {password}")
        print("sign in and change it: mailvault users passwd admin")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from archiver import bootstrap
    from ingest.files import run_import, total_bytes

    settings = get_settings()
    if args.workers is not None:
        settings = settings.model_copy(update={"import_workers": args.workers})
    bootstrap.init_backends(settings)
    archiver = bootstrap.archiver(settings, parallel=True)
    paths = [Path(p) for p in args.paths]
    bar = None
    if sys.stderr.isatty() and not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=total_bytes(paths), unit="B", unit_scale=True, desc="importing")
    threshold = settings.import_pause_refresh_bytes
    pause = threshold == 0 or 0 < threshold <= total_bytes(paths, stop_at=threshold)
    try:
        summary = run_import(
            archiver,
            paths,
            batch_size=args.batch_size or settings.import_batch_size,
            max_bytes=settings.max_message_bytes,
            progress=bar.update if bar else None,
            all_files=args.all_files,
            pause_refresh=pause,
        )
    finally:
        if bar:
            bar.close()
        archiver.close()
    _print_summary(summary, as_json=args.json)
    return 0 if summary.failed == 0 else 1


def _print_summary(summary: ImportSummary, *, as_json: bool) -> None:
    if as_json:
        print(
            summary.model_dump_json(
                include={
                    "imported",
                    "duplicates",
                    "failed",
                    "errors",
                    "parse_errors",
                    "skipped",
                    "skipped_files",
                    "doubtful_splits",
                    "notes",
                }
            )
        )
        return
    print(
        f"imported {summary.imported}, duplicates {summary.duplicates}, "
        f"failed {summary.failed} ({summary.parse_errors} stored with parse errors)"
    )
    if summary.skipped:
        print(
            f"skipped {summary.skipped} files that are not mail (--all-files archives them): "
            + ", ".join(summary.skipped_files[:5])
            + (", ..." if summary.skipped > 5 else "")
        )
    if summary.doubtful_splits:
        print(f"{summary.doubtful_splits} doubtful mbox separators, kept inside their message:")
        for note in summary.notes:
            print(f"  {note['message']}: {note['note']}")
    for error in summary.errors[:20]:
        print(f"  {error['message']}: {error['error']}", file=sys.stderr)


def cmd_search(args: argparse.Namespace) -> int:
    from archiver import bootstrap

    service = bootstrap.search_service(get_settings())
    result = service.search(args.query, page=args.page, size=args.size, sort=args.sort)
    if args.json:
        print(result.model_dump_json(by_alias=True))
        return 0
    print(f"{result.total} messages")
    for hit in result.hits:
        date = hit.date.isoformat() if hit.date else "-"
        print(f"{hit.id[:12]}  {date}  {hit.from_}  {hit.subject}")
        print(f"    {hit.snippet}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from archiver import bootstrap

    settings = get_settings()
    bootstrap.init_backends(settings)
    uvicorn.run(
        "search_api.app:app",
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_config=None,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from ingest.tasks import celery_app

    # Accepting mail comes before indexing it: an MTA waits on the SMTP sink, while indexing
    # catches up after a burst. The analyser processes inherit the priority.
    os.nice(max(0, get_settings().worker_nice))
    celery_app().worker_main(
        ["worker", "--loglevel", "INFO", "--concurrency", str(args.concurrency)]
    )
    return 0


def cmd_smtp(args: argparse.Namespace) -> int:
    from archiver import bootstrap
    from ingest.smtp import serve, sink_settings
    from ingest.tasks import enqueue_archive_spool

    if args.log_level == "WARNING":  # not chosen: a sink logs every transaction (INFO)
        logging.getLogger("ingest.smtp").setLevel(logging.INFO)
    settings = sink_settings(get_settings(), host=args.host, port=args.port)
    bootstrap.raw_store(settings).ensure_ready()
    archiver = bootstrap.archiver(settings)
    try:
        serve(archiver, settings, enqueue_archive_spool)
    finally:
        archiver.close()
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    from ingest.tasks import celery_app

    celery_app().start(["beat", "--loglevel", "INFO", "--schedule", args.schedule])
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from archiver import bootstrap
    from archiver.pipeline.reconcile import reconcile, reconcile_all

    settings = get_settings()
    archiver = bootstrap.archiver(settings)
    failures = bootstrap.failure_log(settings)
    try:
        if args.all:
            summary = reconcile_all(archiver, failures=failures)
        else:
            summary = reconcile(
                archiver, min_age=timedelta(seconds=args.min_age), failures=failures
            )
    finally:
        archiver.close()
    print(summary.model_dump_json())
    return 0 if summary.failed == 0 else 1


def cmd_reindex(args: argparse.Namespace) -> int:
    from archiver import bootstrap
    from archiver.pipeline.rebuild import rebuild_index

    settings = get_settings()
    bootstrap.init_backends(settings)
    archiver = bootstrap.archiver(settings, parallel=True)
    index = bootstrap.search_index(settings)
    began = time.monotonic()

    def progress(checked: int, summary: Any) -> None:
        rate = checked / max(time.monotonic() - began, 1e-9)
        print(
            f"  {checked} checked, {summary.indexed} indexed, {summary.failed} failed "
            f"({rate:.0f} messages/s)",
            file=sys.stderr,
        )

    details: dict[str, Any] = {"command": "reindex", "layout_before": index.layout()}
    try:
        summary = rebuild_index(
            archiver, index, failures=bootstrap.failure_log(settings), progress=progress
        )
    except MailvaultError as exc:
        _audit_cli(
            settings, settings.es_index, {**details, "error": str(exc)}, "config_change", "failed"
        )
        raise
    finally:
        archiver.close()
    _audit_cli(settings, settings.es_index, {**details, "layout": summary.layout}, "config_change")
    print(summary.model_dump_json(exclude={"built": {"errors"}, "caught_up": {"errors"}}))
    return 0


def cmd_failures(args: argparse.Namespace) -> int:
    from functools import partial

    from archiver import bootstrap
    from archiver.pipeline.reconcile import retry_failures, unresolved
    from ingest.tasks import enqueue_retry

    settings = get_settings()
    archiver = bootstrap.archiver(settings)
    failures = bootstrap.failure_log(settings)
    try:
        still_open = partial(unresolved, archiver)
        if args.retry:
            found = retry_failures(failures, still_open, enqueue_retry)
        else:
            found = failures.open(still_open)
    finally:
        archiver.close()
    for failure in found:
        if args.json:
            print(failure.model_dump_json())
        else:
            print(
                f"{failure.failed_at.isoformat()}  {failure.subject()}  {failure.task}  "
                f"attempts={failure.attempts}  {failure.error}"
            )
    if args.retry and not args.json:
        print(f"re-sent {len(found)} to the pipeline", file=sys.stderr)
    return 0


def cmd_imap_poll(args: argparse.Namespace) -> int:
    from archiver import bootstrap

    summaries = bootstrap.poll_imap_accounts(
        get_settings(), args.account, batch_size=args.batch_size
    )
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in summaries], ensure_ascii=False))
    else:
        _print_imap_summaries(summaries)
    return 0 if all(s.ok for s in summaries) else 1


def _print_imap_summaries(summaries: Sequence[PollSummary]) -> None:
    for summary in summaries:
        print(f"account {summary.account}" + (f": {summary.error}" if summary.error else ""))
        for f in summary.folders:
            note = "" if f.complete else " (incomplete)"
            note += " (UIDVALIDITY changed: resynced)" if f.resynced else ""
            print(
                f"  {f.folder}: new {f.new}, duplicates {f.duplicates}, failed {f.failed}"
                + (f", removed {f.removed}" if f.removed else "")
                + note
            )
            for error in f.errors[:20]:
                print(f"    {error['message']}: {error['error']}", file=sys.stderr)


def _print_report(report: Any, as_json: bool) -> None:
    """A tagging preview/apply report: messages changed, tags gained and lost."""
    if as_json:
        print(report.model_dump_json())
        return
    print(
        f"{report.job}: {report.scanned} scanned, {report.changed} changed, {report.failed} failed"
    )
    for direction in ("gained", "lost"):
        for tag, count in sorted(getattr(report, direction).items()):
            print(f"  {direction} {tag}: {count}")
            for sample in report.samples[direction].get(tag, [])[:3]:
                print(f"      {sample.id[:12]}  {sample.subject}")
    if report.timed_out:
        print(f"  timed out on {report.timed_out} messages (their tags by the rule unchanged)")
        for timeout in report.timeouts:
            which = "draft" if timeout.version is None else f"v{timeout.version}"
            print(f"      {timeout.id}  {timeout.rule} {which}  {timeout.subject}")


def _progress(report: Any) -> None:
    print(
        f"  batch {report.batches}: {report.scanned} scanned, {report.changed} changed",
        file=sys.stderr,
    )


def cmd_rules(args: argparse.Namespace) -> int:
    from archiver import bootstrap

    settings = get_settings()
    service = bootstrap.tagging(settings)
    if args.rules_command == "list":
        for version in service.store.current_rules():
            print(f"{version.name}  v{version.version}  {version.saved_at:%Y-%m-%d %H:%M}")
        return 0
    if args.rules_command == "save":
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
        saved = service.save_rule(data, _cli_actor())
        _audit_cli(
            settings, f"rule:{saved.name}", {"rule": data, "version": saved.version}, "rule_change"
        )
        print(f"saved {saved.name} v{saved.version}")
        return 0
    if args.rules_command == "preview":
        draft = json.loads(Path(args.file).read_text(encoding="utf-8")) if args.file else None
        _print_report(service.preview_rule(args.name, draft), args.json)
        return 0
    report = service.apply_rule(args.name, restart=args.restart, progress=_progress)
    _audit_cli(settings, f"rule:{args.name}", {"apply": {"restart": args.restart}}, "rule_change")
    _print_report(report, args.json)
    return 0 if report.failed == 0 else 1


def cmd_directory(args: argparse.Namespace) -> int:
    from archiver import bootstrap

    settings = get_settings()
    service = bootstrap.tagging(settings)
    if args.directory_command == "import":
        path = Path(args.file)
        data = service.import_directory(
            path.read_bytes(),
            "json" if path.suffix.lower() == ".json" else "csv",
            scope=args.scope,
            replace=args.replace,
            user=_cli_actor(),
        )
        details = {"file": path.name, "replace": args.replace, "version": data.version}
        _audit_cli(settings, "directory", details, "config_change")
        print(f"directory v{data.version}: {len(data.people)} people, departments of {data.scope}")
        if not args.apply:
            return 0
    report = service.apply_directory(progress=_progress)
    _audit_cli(settings, "directory", {"apply": True}, "config_change")
    _print_report(report, False)
    return 0 if report.failed == 0 else 1


def cmd_topics(args: argparse.Namespace) -> int:
    from archiver import bootstrap

    service = bootstrap.tagging(get_settings())
    report = service.apply_topics(restart=args.restart, progress=_progress)
    _print_report(report, False)
    return 0 if report.failed == 0 else 1


def _when(text: str) -> datetime:
    """An ISO 8601 date or time; without a zone, in the display time zone."""
    from zoneinfo import ZoneInfo

    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(get_settings().display_timezone))
    return value


def cmd_audit(args: argparse.Namespace) -> int:
    from archiver import bootstrap
    from archiver.audit.export import ExportFormat, export
    from archiver.audit.log import AuditFilter

    settings = get_settings()
    audit = bootstrap.audit_log(settings)
    if args.audit_command == "verify":
        report = audit.verify()
        if args.json:
            print(report.model_dump_json())
        else:
            print(
                f"{report.records} records, {report.segments} sealed segments, head {report.head}"
            )
            for issue in report.issues:
                print(f"  {issue.kind}: {_seq_list(issue.seqs)}: {issue.detail}")
            print("ok" if report.ok else f"{len(report.issues)} problems found")
        return 0 if report.ok else 1
    if args.audit_command == "seal":
        seal = audit.seal()
        print(f"sealed {seal.details['first']}..{seal.seq}" if seal else "nothing to seal")
        return 0
    if args.audit_command == "reindex":
        print(f"{audit.reindex()} audit records indexed")
        return 0
    filters = AuditFilter(
        actor=args.actor, actions=args.action or [], since=args.since, until=args.until
    )
    with open(args.out, "wb") as out:
        count = export(ExportFormat(args.format), lambda: audit.records(filters), filters, out)
    print(f"{count} audit records written to {args.out}", file=sys.stderr)
    return 0


def _seq_list(seqs: Sequence[int]) -> str:
    if len(seqs) > 6 and seqs == list(range(seqs[0], seqs[-1] + 1)):
        return f"{seqs[0]}..{seqs[-1]}"
    return ", ".join(map(str, seqs))


def _add_audit_parsers(sub: Any) -> None:
    from archiver.audit.records import AuditAction

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser("verify", help="check the hash chain and the sealed segments")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(fn=cmd_audit)
    audit.add_parser("seal", help="seal the records since the last seal").set_defaults(fn=cmd_audit)
    audit.add_parser("reindex", help="rebuild the audit search index from S3").set_defaults(
        fn=cmd_audit
    )
    export = audit.add_parser("export", help="export records as CSV, JSON or a PDF report")
    export.add_argument("--format", choices=["csv", "json", "pdf"], required=True)
    export.add_argument("--actor")
    export.add_argument(
        "--action", action="append", choices=[a.value for a in AuditAction], help="repeatable"
    )
    export.add_argument("--since", type=_when, help="ISO date or time (inclusive)")
    export.add_argument("--until", type=_when, help="ISO date or time (exclusive)")
    export.add_argument("--out", required=True)
    export.set_defaults(fn=cmd_audit)


def _new_password(args: argparse.Namespace, username: str) -> tuple[str, bool]:
    """The password to set and whether it was generated (and so must be shown once)."""
    from archiver.access.users import generate_password

    if args.generate:
        return generate_password(), True
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if not sys.stdin.isatty():
        raise InvalidUser("password", "no terminal to ask on: use --password-stdin or --generate")
    first = getpass.getpass(f"password for {username}: ")
    if getpass.getpass("again: ") != first:
        raise InvalidUser("password", "the two entries differ")
    return first, False


def _cli_actor() -> str:
    """Who runs the command: the operating system user (the CLI takes no name to act as)."""
    return f"cli:{getpass.getuser()}"


def _audit_cli(
    settings: Any,
    target: str,
    details: dict[str, Any],
    action: str = "",
    outcome: str = "success",
) -> None:
    """An audit record of a change (or a read) made at the command line, by the operating
    system user."""
    from archiver import bootstrap
    from archiver.audit.records import AuditAction, Outcome

    kind = AuditAction(action) if action else AuditAction.USER_CHANGE
    bootstrap.audit_log(settings).record(
        kind,
        actor=_cli_actor(),
        client="local",
        target=target,
        details=details,
        outcome=Outcome(outcome),
    )


def cmd_users(args: argparse.Namespace) -> int:
    from archiver import bootstrap

    settings = get_settings()
    directory = bootstrap.user_directory(settings)
    action: str = args.users_command
    if action == "list":
        users = [(u, directory.lock_status(u.username)) for u in directory.list()]
        if args.json:
            rows = [{**u.public(), "locked_until": until} for u, until in users]
            print(json.dumps(rows, ensure_ascii=False, default=str, indent=2))
            return 0
        for user, until in users:
            state = "disabled" if user.disabled else "active"
            if until is not None:
                state += f", locked until {until:%Y-%m-%d %H:%M:%S %Z}"
            # the directory's roles too: what the user holds, wherever it was granted
            roles = ",".join(user.all_roles) or "-"
            print(f"{user.username}\t{user.provider}\t{roles}\t{state}\t{user.display_name}")
        return 0
    name: str = args.name
    if action == "add":
        password, generated = _new_password(args, name)
        user = directory.add(
            name,
            password,
            roles=args.role,
            departments=args.department,
            display_name=args.display_name,
            email=args.email,
        )
        print(f"added user {user.username} ({', '.join(user.roles) or 'no roles'})")
    elif action == "passwd":
        directory.local_user(name)  # before asking: a shadow account's password is LDAP's
        password, generated = _new_password(args, name)
        directory.set_password(name, password)
        print(f"password of {name} changed")
    elif action in {"disable", "enable"}:
        directory.set_disabled(name, action == "disable")
        print(f"user {name} {action}d")
    elif action == "roles":
        user = directory.change_roles(name, set_to=args.set, add=args.add, remove=args.remove)
        print(f"roles of {user.username}: {', '.join(user.roles) or 'none'}")
    elif action == "unlock":
        directory.unlock(name)
        print(f"user {name} unlocked")
    if action in {"passwd", "disable"}:
        bootstrap.sessions(settings).revoke_all(directory.get(name).username)
    changed = {k: v for k, v in vars(args).items() if k in CHANGE_ARGS and v}
    _audit_cli(settings, f"user:{name}", {"command": action, **changed})
    if action in {"add", "passwd"} and generated:
        print(f"one-time password: {password}")
    return 0


# what a `users` command changed, for its audit record (never a password)
CHANGE_ARGS = {"role", "department", "display_name", "email", "set", "add", "remove"}


def _add_users_parsers(sub: Any) -> None:
    users = sub.add_parser("users", help="local users and their roles").add_subparsers(
        dest="users_command", required=True
    )
    listing = users.add_parser(
        "list", help="every user: name, provider, roles, state, display name (no password hash)"
    )
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(fn=cmd_users)
    for name, text in (("add", "add a user"), ("passwd", "set a user's password")):
        cmd = users.add_parser(name, help=text)
        cmd.add_argument("name")
        how = cmd.add_mutually_exclusive_group()
        how.add_argument("--password-stdin", action="store_true", help="read it from stdin")
        how.add_argument("--generate", action="store_true", help="print a random one, once")
        cmd.set_defaults(fn=cmd_users)
        if name == "add":
            cmd.add_argument("--role", action="append", default=[], help="repeatable")
            cmd.add_argument("--department", action="append", default=[], help="repeatable")
            cmd.add_argument("--display-name", default="")
            cmd.add_argument("--email", default="")
    for name, text in (
        ("disable", "refuse the user's sign-ins"),
        ("enable", "allow the user's sign-ins again"),
        ("unlock", "lift a lockout after failed sign-ins"),
    ):
        cmd = users.add_parser(name, help=text)
        cmd.add_argument("name")
        cmd.set_defaults(fn=cmd_users)
    roles = users.add_parser("roles", help="change a user's roles")
    roles.add_argument("name")
    change = roles.add_mutually_exclusive_group(required=True)
    change.add_argument("--set", nargs="+", metavar="ROLE", help="exactly these roles")
    change.add_argument("--add", nargs="+", metavar="ROLE", default=[])
    change.add_argument("--remove", nargs="+", metavar="ROLE", default=[])
    roles.set_defaults(fn=cmd_users)


# -- retention and legal holds (archiver/retention/, archiver/holds/) -------------------------

# `retention run` exits with this when the run waits for a second person's approval: a script
# can tell "nothing deleted yet, on purpose" from success (0) and from an error (2)
AWAITING_APPROVAL = 3


@dataclass
class _Audit:
    """What one retention or holds command's audit record says: the command fills in the target
    and details as it learns them (a new hold's id, a run's count), and may queue a follow-up
    (the recompute after a change, the deletion after an approval) audited on its own."""

    action: str
    target: str
    details: dict[str, Any]
    then: list[tuple[_Audit, Callable[[_Audit], int]]] = field(default_factory=list)


Handler = Callable[[argparse.Namespace, "Settings", _Audit], int]


def cmd_audited(args: argparse.Namespace) -> int:
    """Run a `retention` or `holds` command with an audit record of it, reads and changes alike;
    a refused or failed one is recorded with its error before main() prints it."""
    settings = get_settings()
    handler: Handler = args.handler
    audit = _Audit(args.audit_action, args.audit_target, {"command": args.cli_command})
    return _audited(settings, audit, lambda a: handler(args, settings, a))


def _audited(settings: Settings, audit: _Audit, step: Callable[[_Audit], int]) -> int:
    try:
        code = step(audit)
    except MailvaultError as exc:
        audit.details["error"] = str(exc)
        # an unreachable audit log must not hide the command's own error
        with contextlib.suppress(MailvaultError):
            _audit_cli(settings, audit.target, audit.details, audit.action, "failed")
        raise
    # the change is recorded before its follow-up starts: a recompute that fails afterwards
    # does not undo the saved policy, and its record says so separately
    _audit_cli(settings, audit.target, audit.details, audit.action)
    for follow, next_step in audit.then:
        code = max(code, _audited(settings, follow, next_step))
    return code


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _day(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d}" if value else "forever"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def _sha256(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"not a message id (64 hex digits): {text!r}")
    return value


def _policy_file(name: str) -> dict[str, Any]:
    """A policy (or draft) as JSON, from a file or stdin ("-"); the name is inside it."""
    from archiver.errors import InvalidRetention

    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise InvalidRetention("retention policy", f"{name}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRetention("retention policy", f"{name}: a JSON object is expected")
    return data


def _policy_text(version: PolicyVersion) -> str:
    """One line: the version, what it does, what it covers, who saved it."""
    from archiver.retention.policy import DEFAULT_POLICY

    policy = version.policy
    if policy is None:
        what, covers = "deleted", "-"
    else:
        if policy.forever:
            what = "keep forever" + (f" (at least {policy.period})" if policy.period else "")
        else:
            what = f"delete {policy.period} after {'sent' if policy.basis == 'sent' else 'arrival'}"
        criteria = policy.criteria
        parts = [f"query {criteria.query!r}"] if criteria.query.strip() else []
        for label in ("tags", "departments", "sources"):
            values = getattr(criteria, label)
            if values:
                parts.append(f"{label} {', '.join(values)}")
        everything = (
            "what no other policy matches" if version.name == DEFAULT_POLICY else "all mail"
        )
        covers = "; ".join(parts) or everything
    saved = f"saved {version.saved_at:%Y-%m-%d %H:%M} by {version.saved_by or '-'}"
    return f"{version.ref}\t{what}\t{covers}\t{saved}"


def _retention_policies(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    versions = bootstrap.retention(settings).policies()
    audit.target = "retention-policies"
    if args.json:
        _print_json([v.model_dump(mode="json") for v in versions])
        return 0
    for version in versions:
        print(_policy_text(version))
    return 0


def _retention_policy_show(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target = f"policy:{args.name}"
    audit.details["version"] = args.version
    version = bootstrap.retention(settings).policy(args.name, args.version)
    if args.json:
        _print_json(version.model_dump(mode="json"))
        return 0
    print(_policy_text(version))
    if version.policy is not None and version.policy.description:
        print(f"  {version.policy.description}")
    return 0


def _retention_policy_history(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target = f"policy:{args.name}"
    history = bootstrap.retention(settings).history(args.name)
    if args.json:
        _print_json([v.model_dump(mode="json") for v in history])
        return 0
    for version in history:
        print(_policy_text(version))
    return 0


def _retention_policy_save(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    data = _policy_file(args.file)
    audit.target, audit.details["policy"] = f"policy:{data.get('name')}", data
    saved = bootstrap.retention(settings).save_policy(data, _cli_actor())
    audit.details["version"] = saved.version
    if args.json:
        _print_json(saved.model_dump(mode="json"))
    else:
        print(f"saved {saved.ref}")
    _recompute_after(args, audit)
    return 0


def _retention_policy_delete(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target, audit.details["deleted"] = f"policy:{args.name}", True
    saved = bootstrap.retention(settings).delete_policy(args.name, _cli_actor())
    audit.details["version"] = saved.version
    print(f"deleted {args.name} (version {saved.ref} records the deletion)")
    _recompute_after(args, audit)
    return 0


def _retention_policy_preview(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    data = _policy_file(args.file)
    audit.target, audit.details["draft"] = f"policy:{data.get('name')}", data
    preview = bootstrap.retention(settings).preview(data)
    audit.details |= {"scanned": preview.scanned, "changed": preview.changed}
    if args.json:
        print(preview.model_dump_json())
        return 0
    print(
        f"preview of {preview.policy}: {preview.scanned} scanned, {preview.matched} matched, "
        f"{preview.changed} would change ({preview.longer} kept longer, {preview.shorter} "
        f"shorter), {preview.deletable_now} due for disposition at once"
    )
    print(f"  by department: {_counts(preview.by_department)}")
    print(f"  by month sent: {_counts(preview.by_month)}")
    for sample in preview.samples:
        print(
            f"    {sample.id[:12]}  {_day(sample.before)} ({sample.before_policy}) -> "
            f"{_day(sample.after)} ({sample.after_policy})  {sample.subject}"
        )
    print("nothing saved (mailvault retention policy save saves it)")
    return 0


def _recompute_after(args: argparse.Namespace, audit: _Audit) -> None:
    """Queue the recompute that applies a change to the archived mail (unless --no-recompute:
    then the beat's next recompute, or `mailvault retention recompute`, does)."""
    if args.no_recompute:
        print("not recomputed: run mailvault retention recompute", file=sys.stderr)
        return
    follow = _Audit(
        "retention_change", "retention", {"command": "retention recompute", "after": audit.target}
    )
    audit.then.append((follow, lambda a: _recompute(get_settings(), a, restart=False)))


def _retention_recompute(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    return _recompute(settings, audit, restart=args.restart, as_json=args.json)


def _recompute(settings: Settings, audit: _Audit, *, restart: bool, as_json: bool = False) -> int:
    from archiver import bootstrap
    from archiver.retention.recompute import recompute

    print("recomputing retention and holds of the archived mail", file=sys.stderr)
    report = recompute(bootstrap.retention(settings), restart=restart, progress=_recompute_progress)
    audit.details |= report.model_dump(
        mode="json", include={"run", "generation", "scanned", "changed", "failed", "restarts"}
    )
    audit.details["restart"] = restart
    _print_recompute(report, as_json)
    return 0 if report.failed == 0 else 1


def _recompute_progress(report: RecomputeReport) -> None:
    print(
        f"  recompute: {report.scanned}/{report.total} scanned, {report.changed} changed",
        file=sys.stderr,
    )


def _print_recompute(report: RecomputeReport, as_json: bool) -> None:
    if as_json:
        print(report.model_dump_json())
        return
    print(
        f"recompute {report.status} (generation {report.generation}): {report.scanned} of "
        f"{report.total} scanned, {report.changed} changed, {report.locks_extended} storage "
        f"locks extended, legal holds {report.holds_set} set and {report.holds_cleared} "
        f"cleared, {report.failed} failed"
    )
    if report.status == "running":
        print(f"  {report.progress:.0%} done, last saved {report.updated_at:%Y-%m-%d %H:%M:%S}")
    if report.restarts:
        print(f"  begun again {report.restarts} times: the policies or holds changed meanwhile")
    if report.swept:
        print(f"  {report.swept} messages indexed meanwhile, decided at the end")
    for error in report.errors:
        print(f"  {error}", file=sys.stderr)


def _retention_status(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap
    from archiver.retention.recompute import status

    found = status(bootstrap.retention(settings))
    if found is None:
        print("null" if args.json else "retention has not been recomputed yet")
        return 0
    _print_recompute(found, args.json)
    return 0


def _print_run(run: DispositionRun) -> None:
    print(
        f"{run.id}  {run.status}  requested by {run.requested_by} at "
        f"{run.requested_at:%Y-%m-%d %H:%M}; retention ended by {run.cutoff:%Y-%m-%d %H:%M}"
    )
    approved = f", approved by {run.approved_by}" if run.approved_by else ""
    print(f"  planned {run.planned} (approval limit {run.approval_limit}){approved}")
    print(f"  by policy: {_counts(run.by_policy)}")
    print(f"  by department: {_counts(run.by_department)}")
    print(f"  by month sent: {_counts(run.by_month)}")
    for sample in run.samples:
        print(
            f"    {sample.id[:12]}  {sample.policy}  {_day(sample.retain_until)}  {sample.subject}"
        )
    if run.status in ("running", "done"):
        print(
            f"  deleted {run.deleted}; kept {run.kept_held} held, {run.kept_by_policy} by a "
            f"policy, {run.kept_locked} locked in storage, {run.kept_spooled} still spooled; "
            f"{run.failed} failed"
        )
    for error in run.errors:
        print(f"  {error}", file=sys.stderr)


def _run_progress(run: DispositionRun) -> None:
    print(f"  {run.id}: {run.deleted} of {run.planned} deleted", file=sys.stderr)


def _retention_run(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    run = bootstrap.disposition(settings).plan(_cli_actor(), dry_run=args.dry_run)
    audit.target = "disposition" if args.dry_run else f"run:{run.id}"
    audit.details |= {"dry_run": args.dry_run, "planned": run.planned, "status": run.status}
    if run.status == "approved":
        # within the approval limit: deleted at once, in the foreground, audited on its own
        if not args.json:
            _print_run(run)
        audit.then.append((_run_audit(run.id), lambda a: _execute(settings, a, run.id, args.json)))
        return 0
    if args.json:
        print(run.model_dump_json())
    else:
        _print_run(run)
    if run.status == "awaiting_approval":
        print(
            f"run {run.id} waits for a second person's approval: {run.planned} messages is "
            f"over the limit of {run.approval_limit} (mailvault retention approve {run.id})",
            file=sys.stderr if args.json else sys.stdout,
        )
        return AWAITING_APPROVAL
    print("dry run: nothing deleted", file=sys.stderr if args.json else sys.stdout)
    return 0


def _run_audit(run_id: str) -> _Audit:
    return _Audit("retention_change", f"run:{run_id}", {"command": "retention execute"})


def _execute(settings: Settings, audit: _Audit, run_id: str, as_json: bool) -> int:
    from archiver import bootstrap

    print(f"deleting what run {run_id} planned", file=sys.stderr)
    run = bootstrap.disposition(settings).execute(run_id, progress=_run_progress)
    audit.details |= run.model_dump(
        mode="json", include={"status", "planned", "deleted", "kept_held", "kept_locked", "failed"}
    )
    if as_json:
        print(run.model_dump_json())
    else:
        _print_run(run)
    return 0 if run.failed == 0 else 1


def _retention_runs(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target = "disposition"
    runs = bootstrap.disposition(settings).runs()
    if args.json:
        _print_json([r.model_dump(mode="json") for r in runs])
        return 0
    for run in runs:
        approved = f"approved by {run.approved_by}" if run.approved_by else "-"
        print(
            f"{run.id}\t{run.status}\t{run.requested_at:%Y-%m-%d %H:%M}\t{run.requested_by}\t"
            f"planned {run.planned}\tdeleted {run.deleted}\t{approved}"
        )
    return 0


def _retention_approve(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target = f"run:{args.run}"
    run = bootstrap.disposition(settings).approve(args.run, _cli_actor())
    audit.details["requested_by"] = run.requested_by
    print(f"approved {run.id} (requested by {run.requested_by}, {run.planned} messages)")
    if not args.no_execute:
        audit.then.append((_run_audit(run.id), lambda a: _execute(settings, a, run.id, False)))
    return 0


def _retention_execute(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    audit.target = f"run:{args.run}"
    return _execute(settings, audit, args.run, args.json)


def _retention_cancel(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target = f"run:{args.run}"
    run = bootstrap.disposition(settings).cancel(args.run)
    print(f"cancelled {run.id}")
    return 0


def _retention_explain(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target = args.message_id
    service = bootstrap.retention(settings)
    # the command line reads the whole archive (as the API's scoped index does for an admin)
    found = service.explain(args.message_id, service.index)
    if args.json:
        print(found.model_dump_json())
        return 0
    _print_explanation(found)
    return 0


def _print_explanation(found: Explanation) -> None:
    print(f"message {found.id}")
    print(f"  {found.reason}")
    kept = "forever" if found.forever else _day(found.retain_until)
    print(f"  retained until: {kept}, decided by {found.winner} (generation {found.generation})")
    print("  deletable now" if found.deletable else "  not deletable now")
    for v in found.matched:
        print(
            f"  matches {v.policy}: {v.action}, until {_day(v.until)}{'  <- wins' if v.won else ''}"
        )
    if found.default_applies:
        print(f"  no policy matches: the default {found.default.policy} applies")
    for hold in found.holds:
        print(f"  held by {hold.id} ({hold.name}, matter {hold.matter})")
    storage = found.storage
    lock = (
        f"{storage.mode} lock until {storage.retain_until:%Y-%m-%d %H:%M}"
        if storage.retain_until
        else "no lock"
    )
    print(f"  storage: {lock}, legal hold {'on' if storage.legal_hold else 'off'}")
    if not found.stored_up_to_date:
        print("  the decision stored with the message is older: a recompute will update it")


def _retention_tombstones(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap
    from archiver.errors import NotFound

    audit.target = args.message_id
    found = list(bootstrap.retention(settings).storage.tombstones(args.message_id))
    if not found:
        raise NotFound(f"no tombstone for {args.message_id}")
    if args.json:
        _print_json([t.model_dump(mode="json") for t in found])
        return 0
    for tomb in found:
        approved = f", approved by {tomb.approved_by}" if tomb.approved_by else ""
        print(
            f"{tomb.sha256}  disposed {tomb.disposed_at:%Y-%m-%d %H:%M} by {tomb.run_id} under "
            f"{tomb.policy} (retained until {_day(tomb.retain_until)}){approved}; sent "
            f"{_day(tomb.date)}, {tomb.size} bytes, {tomb.versions_deleted} versions and "
            f"{tomb.records_deleted} source records deleted"
        )
    return 0


def _holds_matters(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target = "matters"
    matters = bootstrap.holds(settings).matters()
    if args.json:
        _print_json([m.model_dump(mode="json") for m in matters])
        return 0
    for m in matters:
        active = sum(h.active for h in m.holds.values())
        print(
            f"{m.id}\t{m.status}\t{m.case_number or '-'}\t{m.name}\t"
            f"{active} active of {len(m.holds)} holds\t{', '.join(m.owners) or '-'}"
        )
    return 0


def _holds_matter_create(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    data = {
        "name": args.name,
        "case_number": args.case_number,
        "description": args.description,
        "owners": args.owner,
    }
    audit.details["matter"] = data
    matter = bootstrap.holds(settings).create_matter(data, _cli_actor())
    audit.target = f"matter:{matter.id}"
    if args.json:
        print(matter.model_dump_json())
    else:
        print(f"created {matter.id} ({matter.name})")
    return 0


def _holds_matter_show(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target = f"matter:{args.matter_id}"
    service = bootstrap.holds(settings)
    matter = service.matter(args.matter_id)
    counts = service.counts(args.matter_id)
    if args.json:
        _print_json(
            {"matter": matter.model_dump(mode="json"), "counts": [c.model_dump() for c in counts]}
        )
        return 0
    print(f"{matter.id}  {matter.status}  {matter.name}  case {matter.case_number or '-'}")
    print(f"  owners: {', '.join(matter.owners) or '-'}; created by {matter.created_by or '-'}")
    if matter.description:
        print(f"  {matter.description}")
    for count in counts:
        print(
            f"  {count.hold}  {count.status}  {count.name}: {count.held} held, "
            f"{count.matching} matching now"
        )
    return 0


def _holds_matter_close(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target, audit.details["changes"] = f"matter:{args.matter_id}", {"status": "closed"}
    matter = bootstrap.holds(settings).update_matter(
        args.matter_id, {"status": "closed"}, _cli_actor()
    )
    print(f"closed {matter.id}")
    return 0


def _holds_add(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    data: dict[str, Any] = {
        "name": args.name,
        "custodians": {
            "addresses": args.address,
            "users": args.user,
            "departments": args.department,
        },
        "query": args.query,
        "sent_after": args.sent_after,
        "sent_before": args.sent_before,
    }
    audit.target, audit.details["hold"] = f"matter:{args.matter_id}", data
    hold = bootstrap.holds(settings).add_hold(args.matter_id, data, _cli_actor())
    audit.target, audit.details["matter"] = f"hold:{hold.id}", args.matter_id
    if args.json:
        print(hold.model_dump_json())
    else:
        print(f"added {hold.id} ({hold.name}) to {hold.matter}")
    _recompute_after(args, audit)
    return 0


def _holds_release(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target, audit.details["reason"] = f"hold:{args.hold_id}", args.reason
    hold = bootstrap.holds(settings).release_hold(args.hold_id, args.reason, _cli_actor())
    print(f"released {hold.id}: {hold.release_reason}")
    _recompute_after(args, audit)
    return 0


def _holds_show(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target = f"hold:{args.hold_id}"
    hold = bootstrap.holds(settings).hold(args.hold_id)
    if args.json:
        print(hold.model_dump_json())
        return 0
    print(f"{hold.id}  {hold.status}  {hold.name}  (matter {hold.matter})")
    custodians = hold.custodians
    for label in ("addresses", "users", "departments"):
        values = getattr(custodians, label)
        if values:
            print(f"  {label}: {', '.join(values)}")
    if hold.query:
        print(f"  query: {hold.query}")
    if hold.sent_after or hold.sent_before:
        print(f"  sent from {hold.sent_after or '-'} to {hold.sent_before or '-'} (inclusive)")
    print(f"  created {hold.created_at:%Y-%m-%d %H:%M} by {hold.created_by or '-'}")
    if hold.released_at:
        print(
            f"  released {hold.released_at:%Y-%m-%d %H:%M} by {hold.released_by}: "
            f"{hold.release_reason}"
        )
    return 0


def _command(
    sub: Any, name: str, text: str, handler: Handler, command: str, action: str, target: str
) -> argparse.ArgumentParser:
    """A `retention` or `holds` subcommand, run through cmd_audited."""
    cmd: argparse.ArgumentParser = sub.add_parser(name, help=text)
    cmd.set_defaults(
        fn=cmd_audited,
        handler=handler,
        cli_command=command,
        audit_action=action,
        audit_target=target,
    )
    return cmd


def _add_retention_parsers(sub: Any) -> None:
    retention = sub.add_parser(
        "retention", help="retention policies, recompute, disposition runs"
    ).add_subparsers(dest="retention_command", required=True)
    read, change = "config_read", "retention_change"

    def add(
        parent: Any, name: str, text: str, handler: Handler, action: str, *, json_: bool = True
    ) -> argparse.ArgumentParser:
        prefix = "retention policy" if parent is not retention else "retention"
        cmd = _command(parent, name, text, handler, f"{prefix} {name}", action, "retention")
        if json_:
            cmd.add_argument("--json", action="store_true")
        return cmd

    add(
        retention,
        "policies",
        "the default policy and every policy in force",
        _retention_policies,
        read,
    )
    policy = retention.add_parser("policy", help="one retention policy").add_subparsers(
        dest="policy_command", required=True
    )
    show = add(policy, "show", "one policy (the latest version)", _retention_policy_show, read)
    show.add_argument("name")
    show.add_argument("--version", type=int, help="this version instead")
    add(
        policy, "history", "every version of a policy", _retention_policy_history, read
    ).add_argument("name")
    save = add(
        policy,
        "save",
        "save a new version (JSON file, name inside)",
        _retention_policy_save,
        change,
    )
    save.add_argument("file", help="a JSON file, or - for stdin")
    delete = add(
        policy,
        "delete",
        "delete a policy (a deleting version)",
        _retention_policy_delete,
        change,
        json_=False,
    )
    delete.add_argument("name")
    for cmd in (save, delete):
        cmd.add_argument(
            "--no-recompute", action="store_true", help="do not apply it to archived mail now"
        )
    preview = add(
        policy,
        "preview",
        "what saving a draft would change; saves nothing",
        _retention_policy_preview,
        read,
    )
    preview.add_argument("file", help="a JSON file, or - for stdin")

    recompute = add(
        retention,
        "recompute",
        "apply the policies and holds to all archived mail",
        _retention_recompute,
        change,
    )
    recompute.add_argument("--restart", action="store_true", help="do not resume, start over")
    add(retention, "status", "the last (or running) recompute", _retention_status, read)
    run = add(
        retention,
        "run",
        "plan a disposition run; delete at once within the approval limit",
        _retention_run,
        change,
    )
    run.add_argument("--dry-run", action="store_true", help="count and sample; delete nothing")
    add(retention, "runs", "disposition runs, newest first", _retention_runs, read)
    approve = add(
        retention,
        "approve",
        "approve a run over the limit (not its requester), then delete",
        _retention_approve,
        change,
        json_=False,
    )
    approve.add_argument("--no-execute", action="store_true", help="approve only")
    execute = add(
        retention,
        "execute",
        "delete what an approved run planned, or resume one",
        _retention_execute,
        change,
    )
    cancel = add(
        retention, "cancel", "cancel a run not started yet", _retention_cancel, change, json_=False
    )
    for cmd in (approve, execute, cancel):
        cmd.add_argument("run", help="run id (mailvault retention runs)")
    explain = add(
        retention, "explain", "why a message is kept as long as it is", _retention_explain, "view"
    )
    tombstones = add(
        retention, "tombstones", "what remains of a disposed message", _retention_tombstones, read
    )
    for cmd in (explain, tombstones):
        cmd.add_argument("message_id", type=_sha256, help="SHA-256 of the raw message")


def _add_holds_parsers(sub: Any) -> None:
    holds = sub.add_parser("holds", help="matters and legal holds").add_subparsers(
        dest="holds_command", required=True
    )
    read, change = "config_read", "hold_change"

    def add(
        parent: Any, name: str, text: str, handler: Handler, action: str, *, json_: bool = True
    ) -> argparse.ArgumentParser:
        prefix = "holds matter" if parent is not holds else "holds"
        cmd = _command(parent, name, text, handler, f"{prefix} {name}", action, "holds")
        if json_:
            cmd.add_argument("--json", action="store_true")
        return cmd

    add(holds, "matters", "every matter", _holds_matters, read)
    matter = holds.add_parser("matter", help="one matter").add_subparsers(
        dest="matter_command", required=True
    )
    create = add(matter, "create", "a new matter", _holds_matter_create, change)
    create.add_argument("--name", required=True)
    create.add_argument("--case-number", default="")
    create.add_argument("--description", default="")
    _many(create, "--owner", "USER")
    show = add(
        matter,
        "show",
        "a matter and the messages each of its holds covers",
        _holds_matter_show,
        read,
    )
    close = add(
        matter,
        "close",
        "close a matter (its holds released first)",
        _holds_matter_close,
        change,
        json_=False,
    )
    for cmd in (show, close):
        cmd.add_argument("matter_id")

    hold = add(
        holds, "add", "add a hold to a matter, then apply it to archived mail", _holds_add, change
    )
    hold.add_argument("matter_id")
    hold.add_argument("--name", required=True)
    _many(hold, "--address", "ADDRESS")
    _many(hold, "--user", "USER", "archive users: their addresses")
    _many(hold, "--department", "DEPARTMENT")
    hold.add_argument("--query", default="", help="in the search query language")
    hold.add_argument("--sent-after", type=_date, help="YYYY-MM-DD, inclusive")
    hold.add_argument("--sent-before", type=_date, help="YYYY-MM-DD, inclusive")
    release = add(
        holds, "release", "release a hold, with a reason", _holds_release, change, json_=False
    )
    release.add_argument("hold_id")
    release.add_argument("--reason", required=True)
    for cmd in (hold, release):
        cmd.add_argument(
            "--no-recompute", action="store_true", help="do not apply it to archived mail now"
        )
    add(holds, "show", "one hold", _holds_show, read).add_argument("hold_id")


def _many(cmd: argparse.ArgumentParser, flag: str, metavar: str, text: str = "") -> None:
    """A repeatable option taking one or more values: --owner a b, or --owner a --owner b."""
    cmd.add_argument(flag, metavar=metavar, action="extend", nargs="+", default=[], help=text)


def _date(text: str) -> str:
    """A YYYY-MM-DD day, passed on as text (the hold's model reads it)."""
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailvault", description="Mail archive and search")
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "init", help="create the bucket and the index, and the first admin user"
    ).set_defaults(fn=cmd_init)

    imp = sub.add_parser("import", help="import .eml files, directories, mbox files, Maildirs")
    imp.add_argument("paths", nargs="+")
    imp.add_argument("--json", action="store_true", help="print a JSON summary")
    imp.add_argument("--batch-size", type=int)
    imp.add_argument("--workers", type=int, help="parse/segment processes (default: cores)")
    imp.add_argument("--no-progress", action="store_true")
    imp.add_argument(
        "--all-files",
        action="store_true",
        help="in directories, archive every file, also those that do not look like mail",
    )
    imp.set_defaults(fn=cmd_import)

    search = sub.add_parser("search", help="search the archive")
    search.add_argument("query")
    search.add_argument("--json", action="store_true")
    search.add_argument("--page", type=int, default=1)
    search.add_argument("--size", type=int, default=10)
    search.add_argument("--sort", choices=["relevance", "date", "date_asc"], default="relevance")
    search.set_defaults(fn=cmd_search)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(fn=cmd_serve)

    worker = sub.add_parser("worker", help="run a Celery worker for the pipeline")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.set_defaults(fn=cmd_worker)

    smtp = sub.add_parser("smtp", help="run the journaling SMTP sink")
    smtp.add_argument("--host", help="listen address (default MAILVAULT_SMTP_HOST)")
    smtp.add_argument("--port", type=int, help="listen port (default MAILVAULT_SMTP_PORT)")
    smtp.set_defaults(fn=cmd_smtp)

    beat = sub.add_parser("beat", help="run the Celery beat scheduler (the reconciler)")
    beat.add_argument("--schedule", default="celerybeat-schedule", help="beat's state file")
    beat.set_defaults(fn=cmd_beat)

    rec = sub.add_parser("reconcile", help="index stored messages that are not indexed yet")
    rec.add_argument(
        "--min-age", type=float, default=0.0, help="skip marks younger than this (seconds)"
    )
    rec.add_argument(
        "--all", action="store_true", help="check every stored message, not only pending ones"
    )
    rec.set_defaults(fn=cmd_reconcile)

    sub.add_parser(
        "reindex",
        help="rebuild the search index from S3 with the current layout, then switch to it",
    ).set_defaults(fn=cmd_reindex)

    fail = sub.add_parser("failures", help="list pipeline tasks that gave up")
    fail.add_argument("--retry", action="store_true", help="send them to the pipeline again")
    fail.add_argument("--json", action="store_true", help="one JSON object per line")
    fail.set_defaults(fn=cmd_failures)

    imap = sub.add_parser("imap", help="archive IMAP mailboxes").add_subparsers(
        dest="imap_command", required=True
    )
    poll = imap.add_parser("poll", help="poll the configured accounts once")
    poll.add_argument("--account", help="only this account (default: all)")
    poll.add_argument("--json", action="store_true", help="print the summaries as JSON")
    poll.add_argument("--batch-size", type=int, help="messages per checkpoint")
    poll.set_defaults(fn=cmd_imap_poll)
    _add_tagging_parsers(sub)
    _add_audit_parsers(sub)

    _add_users_parsers(sub)
    _add_retention_parsers(sub)
    _add_holds_parsers(sub)
    from ingest.cli_exports import add_export_parsers  # it imports this module's helpers

    add_export_parsers(sub)
    return parser


def _add_tagging_parsers(sub: Any) -> None:
    rules = sub.add_parser("rules", help="tagging rules").add_subparsers(
        dest="rules_command", required=True
    )
    rules.add_parser("list", help="current rules").set_defaults(fn=cmd_rules)
    save = rules.add_parser("save", help="validate and save a rule (JSON file): a new version")
    save.add_argument("file")
    save.set_defaults(fn=cmd_rules)
    for name, text in (("preview", "what applying would change"), ("apply", "re-tag past mail")):
        cmd = rules.add_parser(name, help=text)
        cmd.add_argument("name", nargs="?" if name == "preview" else None)
        cmd.add_argument("--json", action="store_true")
        if name == "preview":
            cmd.add_argument("--file", help="preview an unsaved rule (JSON file)")
        else:
            cmd.add_argument("--restart", action="store_true", help="do not resume, start over")
        cmd.set_defaults(fn=cmd_rules)

    directory = sub.add_parser("directory", help="department directory").add_subparsers(
        dest="directory_command", required=True
    )
    imp = directory.add_parser("import", help="import people from a CSV or JSON file")
    imp.add_argument("file")
    imp.add_argument("--scope", choices=["sender", "participants"])
    imp.add_argument("--replace", action="store_true", help="the file is the whole directory")
    imp.add_argument("--apply", action="store_true", help="re-tag past mail at once")
    imp.set_defaults(fn=cmd_directory)
    directory.add_parser("apply", help="re-tag past mail by department").set_defaults(
        fn=cmd_directory
    )

    topics = sub.add_parser("topics", help="compute topics (keywords) of past mail")
    topics.add_argument("--restart", action="store_true")
    topics.set_defaults(fn=cmd_topics)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    fn: Callable[[argparse.Namespace], int] = args.fn
    try:
        return fn(args)
    except MailvaultError as exc:
        print(f"mailvault: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
