"""The ``mailvault`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from archiver import bootstrap, logs
from archiver.errors import MailvaultError
from archiver.imap_sync import PollSummary
from archiver.models import ImportSummary
from archiver.settings import get_settings


def cmd_init(args: argparse.Namespace) -> int:
    bootstrap.init_backends(get_settings())
    print("bucket and index ready")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ingest.files import total_bytes
    from ingest.importer import run_import

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
    try:
        summary = run_import(
            archiver,
            paths,
            batch_size=args.batch_size or settings.import_batch_size,
            max_bytes=settings.max_message_bytes,
            progress=bar.update if bar else None,
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
                include={"imported", "duplicates", "failed", "errors", "parse_errors"}
            )
        )
        return
    print(
        f"imported {summary.imported}, duplicates {summary.duplicates}, "
        f"failed {summary.failed} ({summary.parse_errors} stored with parse errors)"
    )
    for error in summary.errors[:20]:
        print(f"  {error['message']}: {error['error']}", file=sys.stderr)


def cmd_search(args: argparse.Namespace) -> int:
    from archiver.search import SearchService
    from archiver.segment import get_segmenter

    settings = get_settings()
    service = SearchService(bootstrap.search_index(settings), get_segmenter(settings.user_dict))
    result = service.search(args.query, page=args.page, size=args.size)
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
    from ingest.tasks import app

    app.worker_main(["worker", "--loglevel", "INFO", "--concurrency", str(args.concurrency)])
    return 0


def cmd_imap_poll(args: argparse.Namespace) -> int:
    from ingest.imap import poll_accounts

    summaries = poll_accounts(get_settings(), args.account, batch_size=args.batch_size)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailvault", description="Mail archive and search")
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="create the bucket and the index").set_defaults(fn=cmd_init)

    imp = sub.add_parser("import", help="import .eml files, directories, mbox files, Maildirs")
    imp.add_argument("paths", nargs="+")
    imp.add_argument("--json", action="store_true", help="print a JSON summary")
    imp.add_argument("--batch-size", type=int)
    imp.add_argument("--workers", type=int, help="parse/segment processes (default: cores)")
    imp.add_argument("--no-progress", action="store_true")
    imp.set_defaults(fn=cmd_import)

    search = sub.add_parser("search", help="search the archive")
    search.add_argument("query")
    search.add_argument("--json", action="store_true")
    search.add_argument("--page", type=int, default=1)
    search.add_argument("--size", type=int, default=10)
    search.set_defaults(fn=cmd_search)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(fn=cmd_serve)

    worker = sub.add_parser("worker", help="run a Celery worker for the pipeline")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.set_defaults(fn=cmd_worker)

    imap = sub.add_parser("imap", help="archive IMAP mailboxes").add_subparsers(
        dest="imap_command", required=True
    )
    poll = imap.add_parser("poll", help="poll the configured accounts once")
    poll.add_argument("--account", help="only this account (default: all)")
    poll.add_argument("--json", action="store_true", help="print the summaries as JSON")
    poll.add_argument("--batch-size", type=int, help="messages per checkpoint")
    poll.set_defaults(fn=cmd_imap_poll)
    return parser


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
