"""Verify a mailvault evidence export offline: ``python verify.py [PATH] [--public-key KEY]``.

This file is copied into every package as ``verify.py``. It checks that manifest.json is the one
the archive signed (Ed25519, manifest.sig), that every file the manifest lists is present with the
same size and SHA-256, that no file was added, and that every message (an EML file, or a message
split out of an mbox) has the SHA-256 the archive stored. PATH is the folder the parts were
unzipped into, or the folder holding the part zips (``*_partNNN.zip``), or the zips themselves;
it defaults to the folder holding this file.

It needs Python 3.9 or later and nothing else: a reviewer runs it on a bare Python. The optional
``cryptography`` package only makes the signature check faster. So: standard library imports
only, and nothing here may use a feature newer than Python 3.9.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import sys
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol, Union

try:  # optional, only for speed: the pure-Python check below gives the same answers
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the reviewer's machine
    HAVE_CRYPTOGRAPHY = False

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CUSTODY = "custody.log"
UNLISTED = frozenset({MANIFEST, SIGNATURE, CUSTODY})  # the files manifest.json cannot list
MANIFEST_FORMAT = "mailvault-export-manifest"
SIGNED_PREFIX = b"mailvault-export-manifest-v1:"
PART_NAME = re.compile(r"_part(\d{3,})\.zip$")
CHUNK = 1 << 20
# what reading a damaged file or zip entry raises (a bad CRC, broken deflate data, a short file)
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error)

PathArg = Union[str, "os.PathLike[str]"]


# -- Ed25519 signature verification (RFC 8032) ------------------------------------------------
# Written out because the verifier must run with the standard library alone. Verification only:
# nothing secret is handled here, so constant time does not matter. Points are extended
# homogeneous coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z (RFC 8032 section 5.1.4).

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493  # the order of the base point
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]


def _add(p: _Point, q: _Point) -> _Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _multiply(scalar: int, point: _Point) -> _Point:
    result: _Point = (0, 1, 1, 0)  # the neutral element
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _encode(point: _Point) -> bytes:
    z_inverse = pow(point[2], _P - 2, _P)
    x, y = point[0] * z_inverse % _P, point[1] * z_inverse % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _decode(data: bytes) -> _Point | None:
    """The point a 32-byte encoding names; None when it names none (RFC 8032 section 5.1.3)."""
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P or (x == 0 and sign):
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y, 1, x * y % _P


_BASE = _decode((4 * pow(5, _P - 2, _P) % _P).to_bytes(32, "little"))


def verify_ed25519_pure(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """RFC 8032 verification as OpenSSL does it: S below the group order, and [S]B - [k]A
    encodes to exactly the signature's R."""
    point = _decode(public_key)
    if point is None or _BASE is None or len(signature) != 64:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little")
    negated: _Point = (-point[0] % _P, point[1], point[2], -point[3] % _P)
    return _encode(_add(_multiply(s, _BASE), _multiply(k % _L, negated))) == signature[:32]


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> bool:
    if not HAVE_CRYPTOGRAPHY:
        return verify_ed25519_pure(public_key, signature, message)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def fingerprint(public_key: bytes) -> str:
    """What `mailvault export pubkey` prints beside the key, to compare by eye."""
    return "sha256:" + hashlib.sha256(public_key).hexdigest()


def signed_message(manifest_sha256_hex: str) -> bytes:
    """The bytes manifest.sig signs: the manifest's digest, so a builder can sign a manifest it
    streamed without holding it."""
    return SIGNED_PREFIX + manifest_sha256_hex.encode("ascii")


# -- mboxrd ------------------------------------------------------------------------------------

_QUOTED_FROM = re.compile(rb">+From ")


class LineReader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def split_mboxrd(stream: LineReader) -> Iterator[bytes]:
    """The messages of an mboxrd file, byte-exact as written: split at lines starting "From ",
    the From_ line dropped, one trailing newline removed, one ">" taken off lines matching
    ">+From ". Reads line by line: only one message is held at a time. ValueError when the data
    does not start with a From_ line (no message to put it in)."""
    lines: list[bytes] | None = None
    for line in iter(stream.readline, b""):
        if line.startswith(b"From "):
            if lines is not None:
                yield _message(lines)
            lines = []
        elif lines is None:
            raise ValueError("not an mbox: the data does not start with a 'From ' line")
        else:
            lines.append(line[1:] if _QUOTED_FROM.match(line) else line)
    if lines is not None:
        yield _message(lines)


def _message(lines: list[bytes]) -> bytes:
    data = b"".join(lines)
    return data[:-1] if data.endswith(b"\n") else data


# -- the report ---------------------------------------------------------------------------------


@dataclass
class Problem:
    kind: str  # changed, missing, added, manifest, signature, key, message
    path: str
    detail: str

    def to_text(self) -> str:
        return f"{self.kind.upper():<9} {self.path}: {self.detail}"


@dataclass
class Report:
    ok: bool
    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0
    messages_checked: int = 0
    key_fingerprint: str = ""
    key_trusted: bool = False  # the signature verified with the key the caller gave
    key_given: bool = False  # the caller gave the archive's key
    source: str = ""
    export_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        lines = [f"Verifying {self.export_id or 'a mailvault export'} in {self.source}"]
        lines += [problem.to_text() for problem in self.problems]
        if not self.key_fingerprint:
            lines.append("Signature: no signing key found")
        elif self.key_trusted:
            lines.append(f"Signature: valid, by the archive's key {self.key_fingerprint}")
        elif self.key_given:
            lines.append(f"Signature: NOT valid for the archive's key {self.key_fingerprint}")
        else:
            lines.append(
                f"Signature key: {self.key_fingerprint} (taken from manifest.sig: NOT checked "
                "against the archive; compare it with `mailvault export pubkey`, or run again "
                "with --public-key)"
            )
        verdict = "OK" if self.ok else f"FAILED: {len(self.problems)} problem(s)"
        lines.append(
            f"{verdict} - {self.files_checked} file(s) and {self.messages_checked} message(s) "
            "checked"
        )
        return "\n".join(lines) + "\n"


# -- where the package's files are: a folder, or part zips ---------------------------------------


class _Source:
    """The package's files by path (posix, relative to the package root)."""

    description = ""

    def paths(self) -> Iterable[str]:
        raise NotImplementedError

    def open(self, path: str) -> IO[bytes]:
        raise NotImplementedError

    def problems(self) -> list[Problem]:
        return []


class _Folder(_Source):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)
        # NFC: macOS may store unzipped names decomposed; the manifest's are as the archive wrote
        self._files: dict[str, Path] = {}
        self._problems: list[Problem] = []
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                full = Path(folder, name)
                relative = unicodedata.normalize("NFC", full.relative_to(root).as_posix())
                if relative in self._files:  # the same name twice, differently normalised
                    self._problems.append(Problem("added", relative, f"a second copy: {full}"))
                    continue
                self._files[relative] = full

    def paths(self) -> Iterable[str]:
        return self._files

    def open(self, path: str) -> IO[bytes]:
        return self._files[path].open("rb")

    def problems(self) -> list[Problem]:
        return list(self._problems)


class _Zips(_Source):
    def __init__(self, zips: Sequence[Path]) -> None:
        self.description = ", ".join(str(z) for z in zips)
        self.parts: dict[str, Path] = {z.name: z for z in zips}
        self._files: dict[str, tuple[zipfile.ZipFile, zipfile.ZipInfo]] = {}
        self._problems: list[Problem] = []
        self._open: list[zipfile.ZipFile] = []
        for part in zips:
            try:
                archive = zipfile.ZipFile(part)
            except (OSError, zipfile.BadZipFile) as exc:
                self._problems.append(Problem("changed", part.name, f"not a readable zip: {exc}"))
                continue
            self._open.append(archive)
            for info in archive.infolist():
                if info.is_dir():
                    continue
                name = unicodedata.normalize("NFC", info.filename)
                if name in self._files:
                    first = self._files[name][0].filename or "?"
                    self._problems.append(
                        Problem(
                            "added",
                            name,
                            f"a second copy in {part.name} (first in {Path(first).name})",
                        )
                    )
                    continue
                self._files[name] = (archive, info)

    def paths(self) -> Iterable[str]:
        return self._files

    def open(self, path: str) -> IO[bytes]:
        archive, info = self._files[path]
        return archive.open(info)

    def problems(self) -> list[Problem]:
        return list(self._problems)

    def close(self) -> None:
        for archive in self._open:
            archive.close()


def _source(paths: Sequence[Path]) -> _Source:
    if len(paths) == 1 and paths[0].is_dir():
        root = paths[0]
        zips = sorted(p for p in root.iterdir() if p.is_file() and PART_NAME.search(p.name))
        if (root / MANIFEST).exists() or not zips:
            return _Folder(root)
        return _Zips(zips)
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not a package folder or a part zip")
    return _Zips(list(paths))


# -- verification -------------------------------------------------------------------------------


def verify(path: PathArg | Sequence[PathArg], public_key_hex: str | None = None) -> Report:
    """Check the package at `path` (see the module's text) against its signed manifest, and the
    signature against `public_key_hex` (the archive's key) when given."""
    given = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    trusted = _key_bytes(public_key_hex) if public_key_hex is not None else None
    for item in given:
        if not Path(item).exists():
            raise FileNotFoundError(f"{item}: no such file or folder")
    source = _source([Path(item) for item in given])
    try:
        return _Verification(source, trusted).run()
    finally:
        if isinstance(source, _Zips):
            source.close()


def _key_bytes(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError("a public key is 64 hex digits (32 bytes)")
    return key


class _Verification:
    def __init__(self, source: _Source, trusted: bytes | None) -> None:
        self.source = source
        self.trusted = trusted
        self.problems: list[Problem] = source.problems()
        self.report = Report(ok=False, source=source.description, key_given=trusted is not None)
        self.present = {
            p for p in source.paths() if not (isinstance(source, _Folder) and _ignored(p))
        }
        self.hashes: dict[str, str] = {}  # sha256 of each listed file found
        # the messages split out of each mbox as it was hashed: sha256 -> count, or why not
        self.split: dict[str, Counter[str] | str] = {}

    def problem(self, kind: str, path: str, detail: str) -> None:
        self.problems.append(Problem(kind, path, detail))

    def run(self) -> Report:
        manifest = self.check_signature()
        if manifest is not None:
            self.check_files(manifest)
            self.check_messages(manifest)
        self.report.problems = self.problems
        self.report.ok = not self.problems
        return self.report

    def read_small(self, path: str) -> bytes | None:
        if path not in self.present:
            return None
        try:
            with self.source.open(path) as stream:
                return stream.read()
        except _READ_ERRORS as exc:
            self.problem("changed", path, f"unreadable: {exc}")
            return None

    def check_signature(self) -> dict[str, Any] | None:
        """manifest.sig against manifest.json and the key; the parsed manifest, or None when
        there is none to check the files against."""
        data = self.read_small(MANIFEST)
        if data is None:
            self.problem("manifest", MANIFEST, "missing: nothing to check the package against")
            return None
        digest = hashlib.sha256(data).hexdigest()
        signature = self._signature_file()
        key = self.trusted
        if signature is not None:
            stated = signature.get("public_key")
            stated_key = _hex32(stated)
            if key is None:
                key = stated_key
            elif stated_key is not None and stated_key != key:
                self.problem(
                    "key",
                    SIGNATURE,
                    f"signed with key {fingerprint(stated_key)}, not the archive's key "
                    f"{fingerprint(key)}",
                )
            signed_digest = signature.get("manifest_sha256")
            raw_signature = _base64(signature.get("signature"))
            if signature.get("algorithm") != "Ed25519" or not isinstance(signed_digest, str):
                self.problem("signature", SIGNATURE, "not an Ed25519 signature of a manifest")
            elif key is None or raw_signature is None:
                self.problem("signature", SIGNATURE, "no valid public key or signature in it")
            elif not verify_ed25519(key, raw_signature, signed_message(signed_digest)):
                self.problem("signature", SIGNATURE, f"does not verify with key {fingerprint(key)}")
            elif self.trusted is not None:
                self.report.key_trusted = True
            if isinstance(signed_digest, str) and signed_digest != digest:
                self.problem(
                    "manifest",
                    MANIFEST,
                    f"changed after signing: its sha256 is {digest}, manifest.sig signed "
                    f"{signed_digest}",
                )
        if key is not None:
            self.report.key_fingerprint = fingerprint(key)
        try:
            manifest = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            self.problem("manifest", MANIFEST, f"not valid JSON: {exc}")
            return None
        if (
            not isinstance(manifest, dict)
            or manifest.get("format") != MANIFEST_FORMAT
            or manifest.get("version") != 1
        ):
            self.problem("manifest", MANIFEST, f"not a {MANIFEST_FORMAT} version 1")
            return None
        self.report.export_id = str(_dict(manifest.get("export")).get("id", ""))
        archive_key = _hex32(_dict(manifest.get("archive")).get("public_key"))
        whose = "the archive's" if self.trusted is not None else "the signing"
        if key is not None and archive_key != key:
            self.problem(
                "key",
                MANIFEST,
                f"archive.public_key ({fingerprint(archive_key) if archive_key else 'none'}) is "
                f"not {whose} key ({fingerprint(key)})",
            )
        return manifest

    def _signature_file(self) -> dict[str, Any] | None:
        data = self.read_small(SIGNATURE)
        if data is None:
            self.problem("signature", SIGNATURE, "missing: the manifest is not signed")
            return None
        try:
            parsed = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            self.problem("signature", SIGNATURE, f"not valid JSON: {exc}")
            return None
        if not isinstance(parsed, dict):
            self.problem("signature", SIGNATURE, "not a JSON object")
            return None
        return parsed

    def check_files(self, manifest: dict[str, Any]) -> None:
        listed: set[str] = set()
        files = _list(manifest.get("files"))
        mboxes = {m.get("path") for m in _list(manifest.get("messages")) if _is_mbox(m.get("path"))}
        for entry in files:
            path = entry.get("path")
            if not isinstance(path, str) or not _safe(path):
                self.problem(
                    "manifest", str(path), "a file entry without a path inside the package"
                )
                continue
            if path in listed:
                self.problem("manifest", path, "listed twice")
                continue
            listed.add(path)
            if path not in self.present:
                self.problem("missing", path, "listed in the manifest, not in the package")
                continue
            self.check_file(path, entry, path in mboxes)
        parts = {str(p.get("name")): p.get("number") for p in _list(manifest.get("parts"))}
        # the part zips themselves, when unzipped into the folder that holds them
        exempt = UNLISTED | (set(parts) if isinstance(self.source, _Folder) else set())
        for path in sorted(self.present - listed - exempt):
            self.problem("added", path, "in the package, not in the manifest")
        if isinstance(self.source, _Zips):
            given = {_part_number(name) for name in self.source.parts} | {
                parts.get(name) for name in self.source.parts
            }
            for name, number in parts.items():
                if name not in self.source.parts and number not in given:
                    self.problem("missing", name, f"part {number} of the package was not given")
        counts = _dict(manifest.get("counts"))
        if counts.get("files") != len(files):
            self.problem(
                "manifest", MANIFEST, f"counts.files is {counts.get('files')}, lists {len(files)}"
            )

    def check_file(self, path: str, entry: dict[str, Any], mbox: bool) -> None:
        """Hash the file as a stream; an mbox is split into messages in the same pass (one read
        of a large file, one decompression of a zip entry)."""
        try:
            with self.source.open(path) as stream:
                reader = _HashingReader(stream)
                if mbox:
                    self.split[path] = _split_hashes(reader)
                for _ in iter(lambda: reader.read(CHUNK), b""):
                    pass
        except _READ_ERRORS as exc:
            self.problem("changed", path, f"unreadable: {exc}")
            return
        self.report.files_checked += 1
        self.hashes[path] = reader.digest.hexdigest()
        size = reader.size
        if size != entry.get("size"):
            self.problem("changed", path, f"{size} bytes, the manifest says {entry.get('size')}")
        elif self.hashes[path] != entry.get("sha256"):
            self.problem(
                "changed",
                path,
                f"sha256 {self.hashes[path]}, the manifest says {entry.get('sha256')}",
            )

    def check_messages(self, manifest: dict[str, Any]) -> None:
        messages = _list(manifest.get("messages"))
        listed_files = {e.get("path") for e in _list(manifest.get("files"))}
        by_path: dict[str, list[dict[str, Any]]] = {}
        for message in messages:
            by_path.setdefault(str(message.get("path")), []).append(message)
        for path, group in by_path.items():
            if path not in listed_files:
                self.problem("manifest", path, f"message(s) {_numbers(group)} in no listed file")
            elif path in self.hashes:  # present and readable
                if _is_mbox(path):
                    self.check_mbox(path, group)
                else:
                    self.check_native(path, group)
        counts = _dict(manifest.get("counts"))
        if counts.get("messages") != len(messages):
            self.problem(
                "manifest",
                MANIFEST,
                f"counts.messages is {counts.get('messages')}, lists {len(messages)}",
            )

    def check_native(self, path: str, group: list[dict[str, Any]]) -> None:
        for message in group:
            self.report.messages_checked += 1
            if message.get("stored_sha256") != self.hashes[path]:
                self.problem(
                    "message",
                    path,
                    f"message {message.get('number')}: sha256 {self.hashes[path]}, the archive "
                    f"stored {message.get('stored_sha256')}",
                )

    def check_mbox(self, path: str, group: list[dict[str, Any]]) -> None:
        expected = Counter(str(m.get("stored_sha256")) for m in group)
        found = self.split[path]
        if isinstance(found, str):
            self.problem("message", path, f"cannot be split into messages: {found}")
            return
        self.report.messages_checked += len(group)
        missing, lost = expected - found, []
        for message in group:
            digest = str(message.get("stored_sha256"))
            if missing[digest] > 0:
                missing[digest] -= 1
                lost.append(message)
        unknown = sum((found - expected).values())
        if lost:
            self.problem("message", path, f"message(s) {_numbers(lost)} not in it as stored")
        if unknown:
            self.problem("message", path, f"{unknown} message(s) in it are not in the manifest")
        if sum(found.values()) != len(group):
            self.problem(
                "message", path, f"{sum(found.values())} messages, the manifest lists {len(group)}"
            )


class _HashingReader:
    """A binary stream that hashes and counts what is read from it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def _seen(self, data: bytes) -> bytes:
        self.digest.update(data)
        self.size += len(data)
        return data

    def read(self, size: int = -1) -> bytes:
        return self._seen(self.stream.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._seen(self.stream.readline(size))


def _split_hashes(reader: _HashingReader) -> Counter[str] | str:
    found: Counter[str] = Counter()
    try:
        for raw in split_mboxrd(reader):
            found[hashlib.sha256(raw).hexdigest()] += 1
    except ValueError as exc:  # not an mbox; the caller still reads the rest, to hash it
        return str(exc)
    return found


def _is_mbox(path: object) -> bool:
    return isinstance(path, str) and path.endswith(".mbox")


def _part_number(name: str) -> int | None:
    found = PART_NAME.search(name)
    return int(found.group(1)) if found else None


def _numbers(group: list[dict[str, Any]]) -> str:
    return ", ".join(str(m.get("number")) for m in group)


def _ignored(path: str) -> bool:
    # Python's byte-code cache of this file, when a reviewer imported it rather than ran it
    return path.startswith("__pycache__/verify.")


def _safe(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and ".." not in parts and "\\" not in path


def _hex32(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        key = bytes.fromhex(value)
    except ValueError:
        return None
    return key if len(key) == 32 else None


def _base64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# -- the command --------------------------------------------------------------------------------

_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # DER of an Ed25519 SubjectPublicKeyInfo


def read_public_key(value: str) -> str:
    """--public-key: 64 hex digits, or a file holding them, the raw 32 bytes, a PEM public key,
    or a JSON object with "public_key". The key as hex; ValueError when none is found."""
    if re.fullmatch(r"\s*[0-9a-fA-F]{64}\s*", value):
        return value.strip().lower()
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"{value}: neither 64 hex digits nor a readable file")
    data = path.read_bytes()
    if len(data) == 32:
        return data.hex()
    text = data.decode("utf-8", "replace").strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return text.lower()
    if text.startswith("-----BEGIN PUBLIC KEY-----"):
        body = "".join(line for line in text.splitlines() if not line.startswith("-----"))
        der = _base64(body) or b""
        if der.startswith(_SPKI_PREFIX) and len(der) == len(_SPKI_PREFIX) + 32:
            return der[len(_SPKI_PREFIX) :].hex()
    if text.startswith("{"):
        try:
            key = _hex32(json.loads(text).get("public_key"))
        except (ValueError, AttributeError):
            key = None
        if key is not None:
            return key.hex()
    raise ValueError(f"{value}: no Ed25519 public key found in it")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify.py",
        description="Verify a mailvault evidence export: signature, files and messages.",
    )
    parser.add_argument(
        "path",
        nargs="*",
        help="the unzipped package folder, the folder holding the part zips, or the part zips "
        "(default: the folder holding this file)",
    )
    parser.add_argument(
        "--public-key",
        metavar="HEX_OR_FILE",
        help="the archive's public key (`mailvault export pubkey`), to check the signature "
        "against it",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (2) or --help (0): an exit code, not an exit
        return exc.code if isinstance(exc.code, int) else 2
    paths = args.path or [str(Path(__file__).resolve().parent)]
    try:
        key = read_public_key(args.public_key) if args.public_key is not None else None
        report = verify(paths, key)
    except (ValueError, OSError) as exc:
        print(f"verify.py: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(report.to_text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
