"""The standalone verifier against packages built by hand, tampered with one way at a time: in
an unzipped folder and straight from the part zips."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from archiver.exports import verifier
from archiver.exports.signing import ManifestSigner, generate_key
from archiver.exports.verifier import Report, main, verify
from tests.support.export_package import (
    Package,
    build_package,
    sign,
    write_manifest,
    zip_parts,
)

EML_A = "alice@example.com/2024-03-01_alice_hello_1f2e3d4c5b6a.eml"
EML_B = "李雷@example.cn/2024-03-01_li_会议纪要_0a9b8c7d6e5f.eml"
MBOX = "bob@example.com.mbox"
EMLS = {
    EML_A: b"From: alice@example.com\r\nSubject: hello\r\n\r\nFrom here on\r\n",
    EML_B: "From: 李雷 <li@example.cn>\nSubject: 会议纪要\n\n你好\n".encode(),
}
MBOX_MESSAGES = [
    b"Subject: one\n\nFrom the start\n>From quoted\n",
    b"Subject: two\r\n\r\nno final newline",
    b"",
]
Tamper = Callable[[Package, ManifestSigner], None]
Expected = set[tuple[str, str]]


@pytest.fixture(scope="module")
def signer() -> ManifestSigner:
    return ManifestSigner(generate_key())


@pytest.fixture(scope="module")
def intruder() -> ManifestSigner:
    return ManifestSigner(generate_key())


@pytest.fixture
def package(tmp_path: Path, signer: ManifestSigner) -> Package:
    mboxes = {MBOX: MBOX_MESSAGES}
    return build_package(tmp_path / "package", signer, emls=EMLS, mboxes=mboxes, parts=2)


def target(package: Package, mode: str, tmp_path: Path) -> Path:
    """What a reviewer verifies: the unzipped folder, or the folder of part zips."""
    if mode == "folder":
        return package.root
    out = tmp_path / "zips"
    zip_parts(package, out)
    return out


def found(report: Report) -> Expected:
    return {(p.kind, p.path) for p in report.problems}


# -- the tampering ---------------------------------------------------------------------------


def replace_in(path: str, old: bytes, new: bytes) -> Tamper:
    def tamper(package: Package, _: ManifestSigner) -> None:
        file = package.root / path
        data = file.read_bytes()
        assert data.count(old) == 1 and len(old) == len(new)
        file.write_bytes(data.replace(old, new))

    return tamper


def delete(path: str) -> Tamper:
    def tamper(package: Package, _: ManifestSigner) -> None:
        (package.root / path).unlink()

    return tamper


def add(path: str) -> Tamper:
    def tamper(package: Package, _: ManifestSigner) -> None:
        (package.root / path).parent.mkdir(parents=True, exist_ok=True)
        (package.root / path).write_bytes(b"From: mallory@example.com\r\n\r\nplanted\r\n")

    return tamper


def edit_manifest(change: Callable[[dict[str, Any]], None]) -> Tamper:
    """Edit manifest.json and leave manifest.sig as it was."""

    def tamper(package: Package, _: ManifestSigner) -> None:
        manifest = package.manifest()
        change(manifest)
        write_manifest(package, manifest)

    return tamper


def entry(manifest: dict[str, Any], path: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in manifest["files"] if f["path"] == path)
    return found


def resize(manifest: dict[str, Any]) -> None:
    entry(manifest, EML_A)["size"] += 1


def rehash(manifest: dict[str, Any]) -> None:
    entry(manifest, "metadata.csv")["sha256"] = "0" * 64


def rename(manifest: dict[str, Any]) -> None:
    entry(manifest, EML_A)["path"] = "alice@example.com/renamed.eml"


def add_entry(manifest: dict[str, Any]) -> None:
    manifest["files"].append({"path": "ghost.txt", "size": 1, "sha256": "0" * 64, "part": 2})


def forge(*, claim_key: bool) -> Tamper:
    """Change an EML, fix its hashes in the manifest and sign it with another key; with
    claim_key, also put that key in the manifest as the archive's."""

    def tamper(package: Package, other: ManifestSigner) -> None:
        replace_in(EML_A, b"here", b"HERE")(package, other)
        manifest = package.manifest()
        digest = hashlib.sha256((package.root / EML_A).read_bytes()).hexdigest()
        entry(manifest, EML_A)["sha256"] = digest
        next(m for m in manifest["messages"] if m["path"] == EML_A)["stored_sha256"] = digest
        if claim_key:
            manifest["archive"]["public_key"] = other.public_key_hex
            manifest["archive"]["key_fingerprint"] = other.fingerprint
        write_manifest(package, manifest)
        sign(package, other)

    return tamper


def edit_signature(change: Callable[[dict[str, str]], None]) -> Tamper:
    def tamper(package: Package, _: ManifestSigner) -> None:
        file = package.root / "manifest.sig"
        value = json.loads(file.read_text())
        change(value)
        file.write_text(json.dumps(value))

    return tamper


def flip_signature(value: dict[str, str]) -> None:
    raw = bytearray(base64.b64decode(value["signature"]))
    raw[10] ^= 0x01
    value["signature"] = base64.b64encode(bytes(raw)).decode()


def other_digest(value: dict[str, str]) -> None:
    value["manifest_sha256"] = hashlib.sha256(b"another manifest").hexdigest()


def garble(path: str) -> Tamper:
    def tamper(package: Package, _: ManifestSigner) -> None:
        (package.root / path).write_text("{not json")

    return tamper


MANIFEST_EDITED = ("manifest", "manifest.json")
SIGNATURE_BAD = ("signature", "manifest.sig")
# (tamper, problems without the archive's key, problems with it)
CASES: dict[str, tuple[Tamper, Expected, Expected]] = {}


def case(name: str, tamper: Tamper, without: Expected, given: Expected | None = None) -> None:
    CASES[name] = (tamper, without, without if given is None else given)


case("eml byte", replace_in(EML_A, b"hello", b"jello"), {("changed", EML_A), ("message", EML_A)})
case("chinese eml byte", replace_in(EML_B, "你好".encode(), "您好".encode()),
     {("changed", EML_B), ("message", EML_B)})  # fmt: skip
case("metadata.csv byte", replace_in("metadata.csv", b"number", b"Number"),
     {("changed", "metadata.csv")})  # fmt: skip
case("mbox message byte", replace_in(MBOX, b"two", b"twx"), {("changed", MBOX), ("message", MBOX)})
case("mbox message split", replace_in(MBOX, b">From the start", b"From the start!"),
     {("changed", MBOX), ("message", MBOX)})  # fmt: skip
case("missing file", delete(EML_B), {("missing", EML_B)})
case("missing verify.py", delete("verify.py"), {("missing", "verify.py")})
case("added file", add("extra.eml"), {("added", "extra.eml")})
case("added in a new folder", add("new folder/新/x.eml"), {("added", "new folder/新/x.eml")})
case("manifest size", edit_manifest(resize), {MANIFEST_EDITED, ("changed", EML_A)})
case("manifest hash", edit_manifest(rehash), {MANIFEST_EDITED, ("changed", "metadata.csv")})
case("manifest path", edit_manifest(rename),
     {MANIFEST_EDITED, ("missing", "alice@example.com/renamed.eml"), ("added", EML_A),
      ("manifest", EML_A)})  # fmt: skip
case("manifest entry", edit_manifest(add_entry), {MANIFEST_EDITED, ("missing", "ghost.txt")})
case("manifest garbled", garble("manifest.json"), {MANIFEST_EDITED})
case("manifest deleted", delete("manifest.json"), {MANIFEST_EDITED})
case("re-signed, key claimed", forge(claim_key=True), set(),
     {("key", "manifest.sig"), SIGNATURE_BAD, ("key", "manifest.json")})  # fmt: skip
case("re-signed, key kept", forge(claim_key=False), {("key", "manifest.json")},
     {("key", "manifest.sig"), SIGNATURE_BAD})  # fmt: skip
case("signature flipped", edit_signature(flip_signature), {SIGNATURE_BAD})
case("signed digest edited", edit_signature(other_digest), {SIGNATURE_BAD, MANIFEST_EDITED})
case("signature deleted", delete("manifest.sig"), {SIGNATURE_BAD})
case("signature garbled", garble("manifest.sig"), {SIGNATURE_BAD})


@pytest.mark.parametrize("mode", ["folder", "zips"])
def test_an_untouched_package_verifies(
    package: Package, signer: ManifestSigner, mode: str, tmp_path: Path
) -> None:
    path = target(package, mode, tmp_path)

    report = verify(path, signer.public_key_hex)

    assert report.ok and report.problems == [], report.to_text()
    assert report.key_trusted and report.key_fingerprint == signer.fingerprint
    assert report.files_checked == len(package.manifest()["files"]) == 6
    assert report.messages_checked == len(EMLS) + len(MBOX_MESSAGES)
    assert report.export_id == package.export_id
    untrusted = verify(path)
    assert untrusted.ok and not untrusted.key_trusted
    assert untrusted.key_fingerprint == signer.fingerprint
    assert "NOT checked against the archive" in untrusted.to_text()


@pytest.mark.parametrize("mode", ["folder", "zips"])
@pytest.mark.parametrize("name", list(CASES))
def test_each_tampering_is_caught(
    package: Package,
    signer: ManifestSigner,
    intruder: ManifestSigner,
    name: str,
    mode: str,
    tmp_path: Path,
) -> None:
    tamper, without_key, with_key = CASES[name]
    tamper(package, intruder)
    path = target(package, mode, tmp_path)

    given = verify(path, signer.public_key_hex)
    alone = verify(path)

    assert found(given) == with_key, given.to_text()
    assert not given.ok
    assert found(alone) == without_key, alone.to_text()
    assert alone.ok == (not without_key)
    assert not alone.key_trusted
    text = given.to_text()
    for problem in given.problems:
        assert problem.to_text() in text


@pytest.mark.parametrize("mode", ["folder", "zips"])
def test_a_forgery_with_its_own_key_shows_that_key(
    package: Package, signer: ManifestSigner, intruder: ManifestSigner, mode: str, tmp_path: Path
) -> None:
    forge(claim_key=True)(package, intruder)

    report = verify(target(package, mode, tmp_path))

    # every check passes, but the fingerprint is not the archive's: the reviewer compares it
    assert report.ok and not report.key_trusted
    assert report.key_fingerprint == intruder.fingerprint != signer.fingerprint
    assert intruder.fingerprint in report.to_text()


def test_parts_unzipped_beside_their_zips_verify(package: Package, signer: ManifestSigner) -> None:
    zip_parts(package, package.root)  # the reviewer unzipped the parts where they lay

    assert verify(package.root, signer.public_key_hex).ok


def test_the_zips_can_be_given_one_by_one(
    package: Package, signer: ManifestSigner, tmp_path: Path
) -> None:
    zips = zip_parts(package, tmp_path / "zips")

    assert verify([str(z) for z in zips], signer.public_key_hex).ok
    last_only = verify(zips[-1:], signer.public_key_hex)
    first_only = verify(zips[:1], signer.public_key_hex)

    assert ("missing", package.part_names[0]) in found(last_only)
    assert ("missing", EML_A) in found(last_only)
    assert found(first_only) == {("manifest", "manifest.json")}  # it rides in the last part


def test_a_missing_part_is_named(package: Package, signer: ManifestSigner, tmp_path: Path) -> None:
    zips = zip_parts(package, tmp_path / "zips")
    zips[0].unlink()

    report = verify(tmp_path / "zips", signer.public_key_hex)

    assert ("missing", zips[0].name) in found(report)
    assert ("missing", EML_A) in found(report)  # the natives of part 1
    assert ("missing", "metadata.csv") not in found(report)


def test_a_corrupt_zip_entry_is_reported(
    package: Package, signer: ManifestSigner, tmp_path: Path
) -> None:
    zips = zip_parts(package, tmp_path / "zips")
    with zipfile.ZipFile(zips[0]) as archive:
        info = archive.getinfo(EML_A)
    data = bytearray(zips[0].read_bytes())
    # the entry's data follows its 30-byte local header, name and extra field
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    zips[0].write_bytes(bytes(data))

    report = verify(tmp_path / "zips", signer.public_key_hex)

    assert found(report) == {("changed", EML_A)}
    assert "unreadable" in report.problems[0].detail


def test_a_file_in_two_parts_is_reported(
    package: Package, signer: ManifestSigner, tmp_path: Path
) -> None:
    zips = zip_parts(package, tmp_path / "zips")
    with zipfile.ZipFile(zips[1], "a") as archive:
        archive.writestr(EML_A, EMLS[EML_A])

    assert found(verify(tmp_path / "zips", signer.public_key_hex)) == {("added", EML_A)}


# -- the command -----------------------------------------------------------------------------


def test_main_exit_codes(
    package: Package, signer: ManifestSigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(package.root), "--public-key", signer.public_key_hex]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("OK")

    replace_in(EML_A, b"hello", b"jello")(package, signer)
    assert main([str(package.root)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:-2]] == ["CHANGED", "MESSAGE"]
    assert lines[-1].startswith("FAILED: 2 problem(s)")

    assert main([str(tmp_path / "nowhere")]) == 2
    assert main([str(package.root), "--public-key", "not-a-key"]) == 2
    assert main(["--no-such-option"]) == 2
    assert "usage" in capsys.readouterr().err


def test_main_json_and_key_files(
    package: Package, signer: ManifestSigner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = tmp_path / "archive.pem"
    pem.write_bytes(
        Ed25519PrivateKey.from_private_bytes(generate_key())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    hex_file = tmp_path / "archive.hex"
    hex_file.write_text(signer.public_key_hex + "\n")
    api_file = tmp_path / "pubkey.json"
    api_file.write_text(json.dumps({"public_key": signer.public_key_hex}))
    raw_file = tmp_path / "archive.key"
    raw_file.write_bytes(signer.public_key)

    for key_file in (hex_file, api_file, raw_file):
        assert main([str(package.root), "--public-key", str(key_file), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["ok"] and report["key_trusted"]
        assert report["key_fingerprint"] == signer.fingerprint
    assert main([str(package.root), "--public-key", str(pem), "--json"]) == 1  # another key
    report = json.loads(capsys.readouterr().out)
    assert {p["kind"] for p in report["problems"]} == {"key", "signature"}


def test_a_pem_public_key_is_read(signer: ManifestSigner, tmp_path: Path) -> None:
    public = Ed25519PrivateKey.from_private_bytes(generate_key()).public_key()
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    assert verifier.read_public_key(str(pem)) == raw.hex()


def test_verify_py_runs_alone_on_a_bare_python(package: Package, signer: ManifestSigner) -> None:
    """As a reviewer runs it: the package's own verify.py, with no site-packages (-S: no
    cryptography, so the pure-Python signature check), from another directory, PATH defaulting
    to the folder holding it."""
    verify_py = package.root / "verify.py"
    assert verify_py.read_bytes() == Path(verifier.__file__).read_bytes()
    bare = [sys.executable, "-I", "-S", "-B"]

    probe = subprocess.run(
        [*bare, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import verify; "
         "print(verify.HAVE_CRYPTOGRAPHY)", str(package.root)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    ran = subprocess.run(
        [*bare, str(verify_py), "--public-key", signer.public_key_hex],
        capture_output=True, text=True, cwd=package.root.parent,
    )  # fmt: skip

    assert probe.stdout.strip() == "False"
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "OK" in ran.stdout and signer.fingerprint in ran.stdout
    (package.root / EML_B).unlink()
    failed = subprocess.run([*bare, str(verify_py)], capture_output=True, text=True)
    assert failed.returncode == 1
    assert f"MISSING   {EML_B}" in failed.stdout


def test_names_are_matched_whatever_their_unicode_normalisation(
    tmp_path: Path, signer: ManifestSigner
) -> None:
    composed = "café/résumé.eml"  # as the archive names it (NFC)
    package = build_package(tmp_path / "p", signer, emls={composed: EMLS[EML_A]})
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    (package.root / "café").rename(package.root / unicodedata.normalize("NFD", "café"))
    (package.root / unicodedata.normalize("NFD", "café") / "résumé.eml").rename(
        package.root / decomposed
    )  # as macOS may have unzipped it

    assert verify(package.root, signer.public_key_hex).ok

    (package.root / "café").mkdir()
    (package.root / composed).write_bytes(EMLS[EML_A])  # both spellings: one is extra
    assert found(verify(package.root, signer.public_key_hex)) == {("added", composed)}


def test_a_copy_of_the_tree_verifies_wherever_it_lies(
    package: Package, signer: ManifestSigner, tmp_path: Path
) -> None:
    copy = shutil.copytree(package.root, tmp_path / "elsewhere" / "审阅")

    assert verify(copy, signer.public_key_hex).ok


# -- standard library only -------------------------------------------------------------------


def test_the_verifier_imports_only_the_standard_library() -> None:
    # feature_version: the grammar of Python 3.9, the oldest a reviewer may run it on
    tree = ast.parse(Path(verifier.__file__).read_text(encoding="utf-8"), feature_version=(3, 9))
    optional: set[int] = set()  # ids of import nodes guarded by `except ImportError`
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            optional |= {id(n) for n in node.body if isinstance(n, ast.Import | ast.ImportFrom)}
    imported: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [(alias.name.split(".")[0], id(node) in optional) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, "no relative imports"
            imported.append((node.module.split(".")[0], id(node) in optional))

    allowed = set(sys.stdlib_module_names) | {"__future__"}
    outside = {name for name, guarded in imported if name not in allowed}
    assert outside == {"cryptography"}
    assert all(guarded for name, guarded in imported if name == "cryptography")
    assert "archiver" not in {name for name, _ in imported}
