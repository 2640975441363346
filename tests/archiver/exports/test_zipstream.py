"""The package part's ZIP writer: what it writes reads back whole (with zipfile and with
Info-ZIP's unzip), names keep their UTF-8, the same files give the same bytes, and a zip that
went wrong sends nothing more."""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import subprocess
import zipfile
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from archiver.exports.zipstream import FILE_ATTR, PackageZip
from tests.support.fakes import InMemoryPackageStore, InMemoryPackageWriter

WHEN = datetime(2024, 3, 1, 9, 30, 12, tzinfo=UTC)
EML = "Subject: 合同审查\r\nFrom: 张伟 <zhang@example.com>\r\n\r\n请看附件。\r\n".encode()
NAMES = [
    "法务部 (hold-7)/zhang@example.com/2024-03-01_zhang_合同审查_0123456789ab.eml",
    "legal/li@example.com.mbox",
    "metadata.csv",
]


def build() -> tuple[bytes, PackageZip]:
    """A small part: an EML, an mbox written in pieces of unknown total size, a CSV."""
    store = InMemoryPackageStore()
    writer = store.writer("p/part001.zip")
    package = PackageZip(writer, part=3)
    package.add(NAMES[0], EML, WHEN)
    with package.entry(NAMES[1], WHEN + timedelta(seconds=3), md5=True) as mbox:
        for n in range(200):
            mbox.write(b"From MAILER-DAEMON Thu Jan  1 00:00:00 2024\n" + b"line %d\n\n" % n)
    package.add(NAMES[2], "\ufeffnumber,path\r\n1,a\r\n".encode(), WHEN)
    package.close()
    writer.close()
    return b"".join(store.read("p/part001.zip")), package


def test_the_zip_reads_back_whole_with_the_hashes_it_reported() -> None:
    data, package = build()
    with zipfile.ZipFile(io.BytesIO(data)) as back:
        assert back.testzip() is None
        infos = back.infolist()
        assert [i.filename for i in infos] == NAMES
        for info, listed in zip(infos, package.files, strict=True):
            content = back.read(info)
            assert listed.path == info.filename and listed.part == 3
            digest = hashlib.sha256(content).hexdigest()
            assert (listed.size, listed.sha256) == (len(content), digest)
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.external_attr == FILE_ATTR
            assert info.flag_bits & 0x08  # a data descriptor: written without seeking
        assert back.read(NAMES[0]) == EML
        assert infos[1].date_time == (2024, 3, 1, 9, 30, 14)  # zip keeps even seconds
    assert package.bytes_written == len(data)


def test_an_entry_reports_its_md5_when_asked_and_the_file_after_its_block() -> None:
    package = PackageZip(InMemoryPackageStore().writer("k"))
    with package.entry("a.eml", WHEN, size=len(EML), md5=True) as out:
        out.write(EML[:10])
        with pytest.raises(ValueError, match="still being written"):
            _ = out.file
        out.write(EML[10:])
    assert out.md5 == hashlib.md5(EML).hexdigest()
    assert out.file.sha256 == hashlib.sha256(EML).hexdigest() and out.file.size == len(EML)
    with package.entry("b.eml", WHEN) as plain:
        plain.write(b"x")
    assert plain.md5 == ""


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP unzip is not installed")
def test_info_zip_unzip_tests_it_and_extracts_the_chinese_names(tmp_path: Path) -> None:
    data, _ = build()
    part = tmp_path / "part001.zip"
    part.write_bytes(data)
    tested = subprocess.run(["unzip", "-t", str(part)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "No errors detected" in tested.stdout
    out = tmp_path / "out"
    subprocess.run(["unzip", "-q", str(part), "-d", str(out)], check=True, capture_output=True)
    assert (out / NAMES[0]).read_bytes() == EML  # UTF-8 flag honoured: the name as written
    assert (out / NAMES[0]).stat().st_mode & 0o777 == 0o644


def test_non_ascii_names_carry_the_utf8_flag_and_ascii_names_do_not() -> None:
    data, _ = build()
    with zipfile.ZipFile(io.BytesIO(data)) as back:
        flags = {i.filename: i.flag_bits & 0x800 for i in back.infolist()}
    assert flags == {NAMES[0]: 0x800, NAMES[1]: 0, NAMES[2]: 0}
    # in the local header too (what a streaming unzipper reads), not only the central directory
    assert struct.unpack_from("<H", data, 6)[0] & 0x800
    assert data[30 : 30 + len(NAMES[0].encode())] == NAMES[0].encode()


def test_the_same_files_give_the_same_bytes_whatever_the_sink() -> None:
    first, _ = build()
    second, _ = build()
    assert first == second
    seekable = io.BytesIO()  # a seekable sink must not change the format (no header rewrite)
    package = PackageZip(seekable, part=3)
    package.add(NAMES[0], EML, WHEN)
    package.close()
    alone = InMemoryPackageStore()
    writer = alone.writer("k")
    again = PackageZip(writer, part=3)
    again.add(NAMES[0], EML, WHEN)
    again.close()
    writer.close()
    assert seekable.getvalue() == b"".join(alone.read("k"))


def test_dates_are_utc_and_clamped_to_what_zip_can_hold() -> None:
    sink = io.BytesIO()
    package = PackageZip(sink)
    package.add("epoch.eml", b"a", datetime(1970, 1, 1, tzinfo=UTC))
    beijing = timezone(timedelta(hours=8))
    package.add("beijing.eml", b"b", datetime(2024, 1, 1, 8, 0, tzinfo=beijing))
    package.add("far.eml", b"c", datetime(2200, 1, 1, tzinfo=UTC))
    package.close()
    with zipfile.ZipFile(sink) as back:
        assert [i.date_time for i in back.infolist()] == [
            (1980, 1, 1, 0, 0, 0),
            (2024, 1, 1, 0, 0, 0),
            (2107, 12, 31, 23, 59, 58),
        ]


def test_an_entry_of_unknown_size_is_zip64_and_reads_back() -> None:
    sink = io.BytesIO()
    package = PackageZip(sink)
    with package.entry("stream.mbox", WHEN) as out:  # size unknown: it may pass 4 GiB
        out.write(b"From x\n" * 1000)
    package.add("small.eml", EML, WHEN)
    package.close()
    data = sink.getvalue()
    # the local header announces zip64 (extra field 0x0001) before the data it sizes
    name_length, extra_length = struct.unpack_from("<HH", data, 26)
    assert extra_length and struct.unpack_from("<H", data, 30 + name_length)[0] == 0x0001
    with zipfile.ZipFile(io.BytesIO(data)) as back:
        assert back.testzip() is None
        assert back.read("stream.mbox") == b"From x\n" * 1000
        assert back.read("small.eml") == EML


@pytest.mark.parametrize(
    "path", ["", "../evil.eml", "/etc/passwd", "a\\b.eml", "C:/x.eml", "a//b.eml", "a/./b.eml"]
)
def test_a_path_that_could_extract_outside_the_folder_is_refused(path: str) -> None:
    package = PackageZip(io.BytesIO())
    with pytest.raises(ValueError, match="not a safe relative path"):
        package.add(path, b"x", WHEN)
    package.add("fine/name.eml", b"x", WHEN)  # the zip goes on
    with pytest.raises(ValueError, match="in the package already"):
        package.add("fine/name.eml", b"y", WHEN)


def test_a_failed_entry_abandons_the_zip_and_sends_nothing_more() -> None:
    store = InMemoryPackageStore()
    writer: InMemoryPackageWriter = store.writer("k")
    package = PackageZip(writer)
    package.add("first.eml", EML, WHEN)
    with pytest.raises(RuntimeError, match="raw store gone"):  # noqa: SIM117
        with package.entry("second.eml", WHEN) as out:
            out.write(b"partial")
            raise RuntimeError("raw store gone")
    sent = writer.tell()
    with pytest.raises(ValueError, match="abandoned"):
        package.add("third.eml", EML, WHEN)
    with pytest.raises(ValueError, match="abandoned"):
        package.close()
    del package  # zipfile's own close on collection writes nowhere either
    assert writer.tell() == sent
    writer.abort()
    assert store.keys("") == [] and store.pending == []


def test_an_entry_shorter_than_announced_is_an_error() -> None:
    package = PackageZip(io.BytesIO())
    with (
        pytest.raises(ValueError, match="3 bytes written, 4 announced"),
        package.entry("short.eml", WHEN, size=4) as out,
    ):
        out.write(b"abc")
    with pytest.raises(ValueError, match="abandoned"):
        package.add("next.eml", EML, WHEN)


def test_bytes_written_grows_with_each_file_and_ends_at_the_zip_size() -> None:
    sink = io.BytesIO()
    package = PackageZip(sink)
    seen = [package.bytes_written]
    for n in range(5):
        package.add(f"m{n}.eml", EML * (n + 1), WHEN)
        seen.append(package.bytes_written)
        assert seen[-1] == len(sink.getvalue())  # exact between entries
    assert seen == sorted(set(seen))
    assert package.close() == package.bytes_written == len(sink.getvalue())


def test_entries_are_deflated_at_level_1() -> None:
    text = EML * 500
    sink = io.BytesIO()
    package = PackageZip(sink)
    package.add("a.eml", text, WHEN)
    package.close()
    fast = zlib.compressobj(1, zlib.DEFLATED, -15)  # raw DEFLATE, as in a zip
    with zipfile.ZipFile(sink) as back:
        assert back.getinfo("a.eml").compress_size == len(fast.compress(text) + fast.flush())
