"""The ``mailvault`` command."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver import logs
from archiver.errors import InvalidUser, MailvaultError
from archiver.settings import get_settings

if TYPE_CHECKING:
    from archiver.imap.sync import PollSummary
    from archiver.models import ImportSummary

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


def _audit_cli(settings: Any, target: str, details: dict[str, Any], action: str = "") -> None:
    """An audit record of a change made at the command line, by the operating system user."""
    from archiver import bootstrap
    from archiver.audit.records import AuditAction

    kind = AuditAction(action) if action else AuditAction.USER_CHANGE
    bootstrap.audit_log(settings).record(
        kind, actor=_cli_actor(), client="local", target=target, details=details
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
