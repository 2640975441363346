"""manifest.json, its signature and the package's README: what the last part says of the whole.

The manifest is written as a stream (the messages and files one per line, read back from the
parts' work files), and hashed as it goes: the signature is over that hash, so neither the list
nor the package is ever held in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from archiver.exports.model import ExportJob
from archiver.exports.parts import part_name
from archiver.exports.signing import ManifestSigner

UNSIGNED = ("manifest.sig", "custody.log")  # the only files of a package the manifest omits


class _Out(Protocol):
    def write(self, data: bytes) -> int: ...


README = """This folder is a mailvault evidence export ({export_id}, "{name}").

Unzip every part ({parts}) into one folder, then, in it, run:

    python3 verify.py --public-key {public_key}

verify.py needs only Python 3.9 or later. It checks the signature of manifest.json against the
archive's public key (the archive publishes it: `mailvault export pubkey`, or
GET /api/exports/pubkey; fingerprint {fingerprint}), then every file's size and SHA-256, that no
file is missing or was added, and that every message is byte-for-byte the message the archive
stores.

custody.log (beside the parts) records who asked for, built and downloaded this package.
"""


def readme(job: ExportJob, parts: int, signer: ManifestSigner) -> bytes:
    return README.format(
        export_id=job.id,
        name=job.request.name,
        parts=", ".join(part_name(job, n) for n in range(1, parts + 1)),
        public_key=signer.public_key_hex,
        fingerprint=signer.fingerprint,
    ).encode()


def manifest_head(
    job: ExportJob, signer: ManifestSigner, built_at: datetime, parts: int, files: int
) -> dict[str, Any]:
    """Everything the manifest says before its lists: parameters, who and when, counts."""
    request = job.request
    return {
        "format": "mailvault-export-manifest",
        "version": 1,
        "export": {
            "id": job.id,
            "name": request.name,
            "kind": request.kind,
            "format": request.format,
            "pdf": request.with_pdf,
            "load_file": request.load_file,
            "query": request.query,
            "matter": request.matter,
            "ids": len(request.ids),
            "scope": "whole archive" if job.scope_everything else sorted(job.scope_tags),
            "requested_by": job.requested_by,
            "requested_at": job.requested_at.isoformat(),
            "built_by": job.built_by,
            "built_at": built_at.isoformat(),
        },
        "archive": {"public_key": signer.public_key_hex, "key_fingerprint": signer.fingerprint},
        "counts": {
            "messages": job.progress.selected,
            "message_bytes": job.progress.selected_bytes,
            "files": files,
            "parts": parts,
            "missing_ids": job.progress.missing,
        },
        "parts": [{"number": n, "name": part_name(job, n)} for n in range(1, parts + 1)],
        "unsigned": list(UNSIGNED),
    }


def message_entry(line: Mapping[str, Any]) -> dict[str, Any]:
    """A message as the manifest lists it, from a part's item line."""
    item = line["item"]
    return {
        "number": item["number"],
        "id": item["id"],
        "stored_sha256": item["id"],
        "md5": line["md5"],
        "size": item["size"],
        "path": item["path"],
    }


def write_manifest(
    out: _Out,
    head: Mapping[str, Any],
    messages: Iterable[Mapping[str, Any]],
    files: Iterable[bytes],
) -> None:
    """The manifest as valid JSON, its lists one entry per line (files: as the parts' work
    files hold them, already JSON)."""
    opening = json.dumps(head, ensure_ascii=False, indent=1)
    out.write(opening[: opening.rindex("}")].rstrip().encode() + b',\n "messages": [\n')
    for n, message in enumerate(messages):
        out.write((b",\n" if n else b"") + json.dumps(message, ensure_ascii=False).encode())
    out.write(b'\n ],\n "files": [\n')
    for n, entry in enumerate(files):
        out.write((b",\n" if n else b"") + entry)
    out.write(b"\n ]\n}\n")


def signature_file(signer: ManifestSigner, manifest_sha256: str) -> bytes:
    return json.dumps(signer.sign_digest(manifest_sha256), indent=2).encode() + b"\n"
