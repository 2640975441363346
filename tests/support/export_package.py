"""Evidence export packages built by hand, as the design says they look (manifest.json streamed
one entry per line, manifest.sig, parts as zips), for tests of the verifier and of anything that
reads packages without the builder."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archiver.exports import verifier
from archiver.exports.mbox import write_mboxrd
from archiver.exports.signing import ManifestSigner

VERIFIER_SOURCE = Path(verifier.__file__).read_bytes()
SENT = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
LAST_PART_FILES = ("metadata.csv", "verify.py", "README.txt")


@dataclass
class Package:
    root: Path
    export_id: str
    slug: str
    signer: ManifestSigner
    # as built: which part each listed file went to, and the parts' names (zip_parts keeps to
    # them whatever a test does to manifest.json afterwards)
    part_of: dict[str, int] = field(default_factory=dict)
    part_names: list[str] = field(default_factory=list)

    @property
    def manifest_path(self) -> Path:
        return self.root / verifier.MANIFEST

    def manifest(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.manifest_path.read_bytes())
        return loaded


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """manifest.json as the builder streams it: one entry per line inside its arrays."""
    out = io.StringIO()
    head = {k: v for k, v in manifest.items() if k not in ("messages", "files")}
    out.write("{" + ", ".join(f"{json.dumps(k)}: {_dumps(v)}" for k, v in head.items()))
    for name in ("messages", "files"):
        entries = list(manifest.get(name, []))
        out.write(f',\n "{name}": [')
        out.write(",".join(f"\n  {_dumps(entry)}" for entry in entries))
        out.write("]")
    out.write("}\n")
    return out.getvalue().encode("utf-8")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


def write_manifest(package: Package, manifest: Mapping[str, Any]) -> bytes:
    """Replace manifest.json (not its signature: see sign)."""
    data = manifest_bytes(manifest)
    package.manifest_path.write_bytes(data)
    return data


def sign(package: Package, signer: ManifestSigner | None = None) -> dict[str, str]:
    """Write manifest.sig for the manifest.json on disk, with the package's key or another."""
    digest = hashlib.sha256(package.manifest_path.read_bytes()).hexdigest()
    signature = (signer or package.signer).sign_digest(digest)
    (package.root / verifier.SIGNATURE).write_text(json.dumps(signature, indent=1) + "\n")
    return signature


def build_package(
    root: Path,
    signer: ManifestSigner,
    *,
    emls: Mapping[str, bytes] | None = None,
    mboxes: Mapping[str, Sequence[bytes]] | None = None,
    parts: int = 1,
    export_id: str = "exp-0a1b2c3d4e",
    slug: str = "test-export",
) -> Package:
    """A signed package tree in `root`: the EML natives and mbox files given (the natives
    spread over `parts` parts in order), metadata.csv, verify.py, README.txt, manifest.json
    and manifest.sig in the last part, and a custody.log beside them."""
    emls = dict(emls or {})
    mboxes = {path: list(messages) for path, messages in (mboxes or {}).items()}
    root.mkdir(parents=True, exist_ok=True)
    messages: list[dict[str, Any]] = []
    natives: list[tuple[str, bytes]] = []
    for path, raw in emls.items():
        messages.append(_message(len(messages) + 1, raw, path))
        natives.append((path, raw))
    for path, raws in mboxes.items():
        out = io.BytesIO()
        for raw in raws:
            messages.append(_message(len(messages) + 1, raw, path))
            write_mboxrd(out, raw, "alice@example.com", SENT)
        natives.append((path, out.getvalue()))
    tree = [*natives, *_last_part_files(messages)]
    per_part = max(1, -(-len(natives) // parts))  # natives in order, a part closes when full
    files: list[dict[str, Any]] = []
    for position, (path, data) in enumerate(tree):
        part = min(position // per_part + 1, parts) if position < len(natives) else parts
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        sha256 = hashlib.sha256(data).hexdigest()
        files.append({"path": path, "size": len(data), "sha256": sha256, "part": part})
    names = [f"{slug}_{export_id}_part{n:03d}.zip" for n in range(1, parts + 1)]
    part_of = {str(f["path"]): int(f["part"]) for f in files}
    package = Package(root, export_id, slug, signer, part_of, names)
    manifest = {
        "format": verifier.MANIFEST_FORMAT,
        "version": 1,
        "export": {
            "id": export_id,
            "name": "Test export 测试",
            "kind": "query",
            "format": "mbox" if mboxes and not emls else "eml",
            "pdf": False,
            "load_file": False,
            "query": "from:alice",
            "scope": "whole archive",
            "requested_by": "alice",
            "requested_at": SENT.isoformat(),
            "built_by": "worker-1",
            "built_at": SENT.isoformat(),
        },
        "archive": {"public_key": signer.public_key_hex, "key_fingerprint": signer.fingerprint},
        "counts": {
            "messages": len(messages),
            "message_bytes": sum(m["size"] for m in messages),
            "files": len(files),
            "parts": parts,
        },
        "parts": [{"number": n, "name": name} for n, name in enumerate(names, 1)],
        "unsigned": [verifier.SIGNATURE, verifier.CUSTODY],
        "messages": messages,
        "files": files,
    }
    write_manifest(package, manifest)
    sign(package)
    (root / verifier.CUSTODY).write_text(f"{SENT.isoformat()} requested by alice\n")
    return package


def _message(number: int, raw: bytes, path: str) -> dict[str, Any]:
    sha256 = hashlib.sha256(raw).hexdigest()
    return {
        "number": number,
        "id": sha256,
        "stored_sha256": sha256,
        "md5": hashlib.md5(raw).hexdigest(),
        "size": len(raw),
        "path": path,
    }


def _last_part_files(messages: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\r\n")
    writer.writerow(["number", "id", "sha256", "md5", "path"])
    for m in messages:
        writer.writerow([m["number"], m["id"], m["stored_sha256"], m["md5"], m["path"]])
    readme = b"Run: python verify.py --public-key <the archive's key>\n"
    return [
        ("metadata.csv", "\ufeff".encode() + table.getvalue().encode("utf-8")),
        ("verify.py", VERIFIER_SOURCE),
        ("README.txt", readme),
    ]


def zip_parts(package: Package, out: Path) -> list[Path]:
    """The package tree in `root` as its part zips in `out`: each listed file in its part,
    manifest.json, manifest.sig and any unlisted file in the last part; custody.log stays out
    (it is delivered beside the parts)."""
    names, part_of = package.part_names, package.part_of
    out.mkdir(parents=True, exist_ok=True)
    contents: dict[int, list[tuple[str, Path]]] = {n: [] for n in range(1, len(names) + 1)}
    for file in sorted(p for p in package.root.rglob("*") if p.is_file()):
        path = file.relative_to(package.root).as_posix()
        if path == verifier.CUSTODY:
            continue
        contents[part_of.get(path, len(names))].append((path, file))
    zips = []
    for number, entries in contents.items():
        target = out / names[number - 1]
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for path, file in entries:
                info = zipfile.ZipInfo(path, (2024, 3, 1, 9, 30, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, file.read_bytes(), compresslevel=1)
        zips.append(target)
    return zips
