"""`mailvault export ...`: evidence exports at the command line, each command audited as the
operating system user (the CLI acts for the whole archive, like its other commands)."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from archiver.access.model import Permission, Principal, Role
from archiver.errors import InvalidExport
from archiver.exports.model import ExportJob, ExportRequest
from archiver.settings import Settings
from ingest.cli import Handler, _Audit, _cli_actor, _command, _print_json, _sha256

EXPORT = "export"
POLL_SECONDS = 1.0  # how often --wait looks at the job


def cli_principal() -> Principal:
    """The operator at the command line: every permission, the whole archive."""
    role = Role(name="cli", permissions=frozenset(Permission), builtin=True)
    return Principal(username=_cli_actor(), roles=(role,))


def _request(args: argparse.Namespace) -> ExportRequest:
    ids: tuple[str, ...] = ()
    if args.ids is not None:
        text = sys.stdin.read() if args.ids == "-" else Path(args.ids).read_text("utf-8")
        try:
            ids = tuple(_sha256(word) for word in text.split())
        except argparse.ArgumentTypeError as exc:
            raise InvalidExport("ids", str(exc)) from exc
    kind = "query" if args.query is not None else "matter" if args.matter else "ids"
    return ExportRequest(
        name=args.name or f"{kind} export",
        kind=kind,
        query=args.query or "",
        matter=args.matter or "",
        ids=ids,
        format=args.format,
        pdf=args.pdf,
        load_file=args.load_file,
    )


def _progress_line(job: ExportJob) -> str:
    p = job.progress
    done = p.written + p.in_part
    total = f"{done}/{p.selected}" if job.status == "building" else f"{done}"
    return f"{job.id}\t{job.status}\t{total} messages\t{len(job.parts)} parts"


def _print_job(job: ExportJob, as_json: bool) -> None:
    if as_json:
        print(job.model_dump_json())
        return
    print(_progress_line(job))
    if job.progress.missing:
        print(f"  not found or not visible: {job.progress.missing} ids", file=sys.stderr)
    for part in job.parts:
        print(f"  part {part.number}\t{part.name}\t{part.size} bytes\tsha256 {part.sha256}")
    if job.expires_at:
        print(f"  expires {job.expires_at:%Y-%m-%d %H:%M} UTC")
    if job.error:
        print(f"  error: {job.error}", file=sys.stderr)


def _export_create(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    request = _request(args)
    audit.details.update({"step": "requested", "kind": request.kind, "format": request.format})
    if args.here:
        service = bootstrap.exports(settings)
    else:
        from ingest.tasks import enqueue_export

        service = bootstrap.exports(settings, enqueue_export)
    job = service.create(request, cli_principal(), "local")
    audit.target = job.id
    if args.here:
        job = bootstrap.export_builder(settings).build(job.id)
    elif args.wait or args.out:
        job = _wait(settings, job.id, args.timeout)
    _print_job(job, args.json)
    if job.status != "done":
        return 0 if not (args.wait or args.here or args.out) else 1
    if args.out:
        return _download(settings, job.id, Path(args.out), extract=args.extract)
    return 0


def _wait(settings: Settings, export_id: str, timeout: float) -> ExportJob:
    from archiver import bootstrap

    service = bootstrap.exports(settings)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        job = service.job(export_id, cli_principal())
        line = _progress_line(job)
        if line != last:
            print(line, file=sys.stderr)
            last = line
        if job.finished or time.monotonic() > deadline:
            return job
        time.sleep(POLL_SECONDS)


def _download(settings: Settings, export_id: str, out: Path, *, extract: bool) -> int:
    """Every part into `out`, each checked against its recorded SHA-256, and custody.log."""
    from archiver import bootstrap

    service = bootstrap.exports(settings)
    principal = cli_principal()
    job = service.job(export_id, principal)
    out.mkdir(parents=True, exist_ok=True)
    for part in job.parts:
        download = service.download(export_id, part.number, principal, "local")
        target = out / download.name
        digest = hashlib.sha256()
        with target.open("wb") as file:
            for chunk in download.chunks:
                digest.update(chunk)
                file.write(chunk)
        if digest.hexdigest() != download.sha256:
            raise InvalidExport("download", f"{target} does not match its recorded SHA-256")
        print(f"{target}\t{part.size} bytes", file=sys.stderr)
        if extract:
            with zipfile.ZipFile(target) as archive:
                archive.extractall(out / "package")
    custody = service.custody_log(export_id, principal)
    (out / "custody.log").write_text(custody, encoding="utf-8")
    if extract:
        (out / "package" / "custody.log").write_text(custody, encoding="utf-8")
    return 0


def _export_status(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target, audit.details["step"] = args.export_id, "status"
    _print_job(bootstrap.exports(settings).job(args.export_id, cli_principal()), args.json)
    return 0


def _export_list(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target, audit.details["step"] = "exports", "list"
    jobs = bootstrap.exports(settings).jobs_for(cli_principal())
    if args.json:
        _print_json([j.model_dump(mode="json") for j in jobs])
        return 0
    for job in jobs:
        print(f"{_progress_line(job)}\t{job.request.name}\t{job.requested_by}")
    return 0


def _export_download(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    audit.target, audit.details["step"] = args.export_id, "download"
    return _download(settings, args.export_id, Path(args.out), extract=args.extract)


def _export_cancel(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target, audit.details["step"] = args.export_id, "cancel"
    job = bootstrap.exports(settings).cancel(args.export_id, cli_principal(), "local")
    _print_job(job, False)
    return 0


def _export_build(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target, audit.details["step"] = args.export_id, "build"
    _print_job(bootstrap.export_builder(settings).build(args.export_id), args.json)
    return 0


def _export_verify(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap
    from archiver.exports.verifier import verify

    key = args.public_key or bootstrap.export_signer(settings).public_key_hex
    report = verify(Path(args.path), public_key_hex=key)
    audit.target = str(Path(args.path).resolve())
    audit.details.update(
        {"step": "verify", "ok": report.ok, "problems": len(report.problems), "key": key}
    )
    print(report.to_text())
    return 0 if report.ok else 1


def _export_pubkey(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target = "export-signing-key"
    signer = bootstrap.export_signer(settings)
    if args.json:
        _print_json({"public_key": signer.public_key_hex, "fingerprint": signer.fingerprint})
    else:
        print(f"{signer.public_key_hex}\t{signer.fingerprint}")
    return 0


def _export_expire(args: argparse.Namespace, settings: Settings, audit: _Audit) -> int:
    from archiver import bootstrap

    audit.target, audit.details["step"] = "exports", "expire"
    expired = bootstrap.exports(settings).expire(_cli_actor())
    audit.details["expired"] = expired
    for export_id in expired:
        print(f"expired {export_id}")
    return 0


def add_export_parsers(sub: Any) -> None:
    exports = sub.add_parser("export", help="evidence exports").add_subparsers(
        dest="export_command", required=True
    )

    def add(name: str, text: str, handler: Handler, *, json_: bool = True) -> Any:
        cmd = _command(exports, name, text, handler, f"export {name}", EXPORT, "exports")
        if json_:
            cmd.add_argument("--json", action="store_true")
        return cmd

    create = add("create", "start an export of a search, a matter or a list of ids", _export_create)
    what = create.add_mutually_exclusive_group(required=True)
    what.add_argument("--query", help="a search in the query language")
    what.add_argument("--matter", help="a matter id: the mail its active holds cover")
    what.add_argument("--ids", metavar="FILE", help="message ids, one per line ('-': stdin)")
    create.add_argument("--name", default="", help="the export's name")
    create.add_argument("--format", choices=["eml", "mbox", "pdf"], default="eml")
    create.add_argument("--pdf", action="store_true", help="PDF renderings beside the natives")
    create.add_argument("--load-file", action="store_true", help="an EDRM-style DAT load file")
    create.add_argument("--wait", action="store_true", help="wait for a worker to build it")
    create.add_argument("--here", action="store_true", help="build it in this process")
    create.add_argument("--out", metavar="DIR", help="then download it into DIR (implies --wait)")
    create.add_argument("--extract", action="store_true", help="and unzip the parts in DIR")
    create.add_argument("--timeout", type=float, default=24 * 3600, help="seconds to wait")
    for name, text, handler in (
        ("status", "an export's status and parts", _export_status),
        ("build", "build (or resume) an export in this process", _export_build),
    ):
        add(name, text, handler).add_argument("export_id")
    add("list", "the exports", _export_list)
    download = add("download", "download every part and custody.log", _export_download)
    download.add_argument("export_id")
    download.add_argument("--out", metavar="DIR", required=True)
    download.add_argument("--extract", action="store_true", help="and unzip the parts in DIR")
    add("cancel", "cancel an export", _export_cancel, json_=False).add_argument("export_id")
    verify = add("verify", "verify a downloaded package", _export_verify, json_=False)
    verify.add_argument("path", help="the package folder, or the folder of its parts")
    verify.add_argument("--public-key", help="hex (default: this archive's key)")
    add("pubkey", "the archive's export signing key", _export_pubkey)
    add("expire", "delete expired packages now", _export_expire, json_=False)
