"""Tests for the synthetic mail generator (bench/mailgen.py).

No services needed.  jieba is only used to check the keyword vocabulary.
"""

from __future__ import annotations

import email
import email.policy
import html
import logging
import mailbox
import re
from collections import Counter, defaultdict
from email.message import EmailMessage
from pathlib import Path

import jieba
import pytest

from bench import mailgen
from bench.mailgen import (
    BIG5_KEYWORDS,
    MIXED_EN_KEYWORD_TEMPLATES,
    MIXED_KEYWORD_SUBJECTS,
    MIXED_KEYWORD_TEMPLATES,
    POSITIVE_CASES,
    PRECISION_CASES,
    ZH_KEYWORD_SUBJECTS,
    ZH_KEYWORD_TEMPLATES,
    ZH_KEYWORDS,
    GeneratedMessage,
    generate,
    to_traditional,
    write_eml_dir,
    write_mbox,
)

jieba.setLogLevel(logging.WARNING)

SEED = 42
N_STATS = 2000  # corpus for mix statistics (generation only)
N_PARSE = 700  # corpus parsed with the stdlib email package


@pytest.fixture(scope="module")
def corpus() -> list[GeneratedMessage]:
    return list(generate(N_STATS, seed=SEED))


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _text_parts(msg: EmailMessage) -> list[EmailMessage]:
    return [
        p
        for p in msg.walk()
        if p.get_content_maintype() == "text" and p.get_content_disposition() != "attachment"
    ]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _html_to_text(src: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", src.split("<body>", 1)[-1]))


def _decoded_body(m: GeneratedMessage) -> str:
    """Decode the (first) displayable body using the TRUE charset."""
    msg = _parse(m.raw)
    parts = _text_parts(msg)
    assert parts, m.index
    part = parts[0]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    text = payload.decode(m.charset)
    if part.get_content_subtype() == "html":
        text = _html_to_text(text)
    return text


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes() -> None:
    a = [m.raw for m in generate(150, seed=7)]
    mailgen._plan.cache_clear()
    mailgen._paragraph_pool.cache_clear()
    b = [m.raw for m in generate(150, seed=7)]
    assert a == b
    c = [m.raw for m in generate(150, seed=8)]
    assert a != c


def test_start_offset_is_consistent() -> None:
    full = [m.raw for m in generate(120, seed=3)]
    mailgen._plan.cache_clear()
    tail = [m.raw for m in generate(40, seed=3, start=80)]
    assert tail == full[80:]
    assert [m.index for m in generate(3, seed=3, start=10)] == [10, 11, 12]


def test_attachment_ratio_only_changes_attachments() -> None:
    none = list(generate(60, seed=5, attachment_ratio=0.0))
    some = list(generate(60, seed=5, attachment_ratio=1.0))
    assert all(not m.attachment_names for m in none)
    assert all(m.attachment_names for m in some)
    assert [m.body_text for m in none] == [m.body_text for m in some]


# --------------------------------------------------------------------------- MIME validity


def test_raw_is_crlf_and_line_lengths(corpus: list[GeneratedMessage]) -> None:
    for m in corpus:
        assert b"\n" not in m.raw.replace(b"\r\n", b""), m.index
        head, sep, _ = m.raw.partition(b"\r\n\r\n")
        assert sep
        head.decode("ascii")  # headers are pure ASCII (RFC 2047 / 2231 encoded)
        assert max(len(line) for line in m.raw.split(b"\r\n")) <= 998, m.index


def test_every_message_parses_and_matches(corpus: list[GeneratedMessage]) -> None:
    for m in corpus[:N_PARSE]:
        msg = _parse(m.raw)
        assert msg["Message-ID"] == f"<{m.message_id}>"
        assert str(msg["Subject"]) == m.subject, m.index
        assert msg["From"].addresses[0].addr_spec == m.from_addr
        if m.date is None:
            assert msg["Date"] is None
        else:
            assert msg["Date"].datetime is not None
        for name in ("From", "To", "Cc", "Subject", "Date"):
            hdr = msg[name]
            if hdr is not None:
                assert not hdr.defects, (m.index, name, hdr.defects)
        if m.in_reply_to:
            assert msg["In-Reply-To"] == f"<{m.in_reply_to}>"
            assert f"<{m.in_reply_to}>" in str(msg["References"])

        # the body decoded with the TRUE charset equals body_text (modulo whitespace)
        text = _decoded_body(m)
        assert _squash(text) == _squash(m.body_text), m.index
        for kw in m.keywords:
            assert kw in text, (m.index, kw)

        declared = None
        for part in _text_parts(msg):
            declared = part.get_param("charset")
            assert (declared.lower() if isinstance(declared, str) else None) == m.declared_charset
            assert part["Content-Transfer-Encoding"] == m.transfer_encoding

        atts = list(msg.iter_attachments()) if msg.is_multipart() else []
        atts = [a for a in atts if a.get_content_disposition() == "attachment"]
        assert [a.get_filename() for a in atts] == m.attachment_names, m.index
        for part, (name, ctype, data) in zip(atts, m.attachments, strict=True):
            assert part.get_content_type() == ctype, name
            assert part.get_payload(decode=True) == data


def test_display_names_decode(corpus: list[GeneratedMessage]) -> None:
    names = Counter()
    for m in corpus[:300]:
        msg = _parse(m.raw)
        for hdr in ("From", "To", "Cc"):
            if msg[hdr] is None:
                continue
            for addr in msg[hdr].addresses:
                assert addr.domain in {
                    "example.com", "example.cn", "corp.example", "mail.example.cn",
                }  # fmt: skip
                if re.search(r"[\u4e00-\u9fff]", addr.display_name):
                    names["zh"] += 1
                elif addr.display_name:
                    names["en"] += 1
    assert names["zh"] > 100 and names["en"] > 50


# --------------------------------------------------------------------------- mix


def test_language_mix(corpus: list[GeneratedMessage]) -> None:
    c = Counter(m.language for m in corpus)
    assert 0.38 < c["zh"] / N_STATS < 0.52
    assert 0.18 < c["en"] / N_STATS < 0.32
    assert 0.23 < c["mixed"] / N_STATS < 0.37
    mixed = [m for m in corpus if m.language == "mixed"]
    assert all(re.search(r"[\u4e00-\u9fff]", m.body_text) for m in mixed)
    assert all(re.search(r"[A-Za-z]{4}", m.body_text) for m in mixed)
    en = [m for m in corpus if m.language == "en"]
    assert not any(re.search(r"[\u4e00-\u9fff]", m.body_text) for m in en)


def test_charset_and_encoding_mix(corpus: list[GeneratedMessage]) -> None:
    charsets = Counter(m.charset for m in corpus)
    assert set(mailgen.CHARSETS) <= set(charsets)
    for cs in mailgen.CHARSETS:
        assert charsets[cs] >= 20, charsets
    ctes = Counter(m.transfer_encoding for m in corpus)
    assert set(ctes) == {"base64", "quoted-printable", "8bit"}
    assert min(ctes.values()) > 100
    kinds = Counter(m.content_kind for m in corpus)
    assert kinds["plain"] > kinds["alternative"] > kinds["html"] > 50
    raw_all = b"\n".join(m.raw[:3000] for m in corpus)
    for token in (b"=?gb2312?B?", b"=?utf-8?Q?", b"=?big5?B?", b"=?UTF-8?B?", b"=?gbk?"):
        assert token in raw_all, token
    # some subjects are split into several encoded-words on folded lines
    assert re.search(rb"Subject: =\?[^?]+\?[BQ]\?[^?]*\?=\r\n =\?", raw_all)


def test_big5_bodies_are_traditional(corpus: list[GeneratedMessage]) -> None:
    big5 = [m for m in corpus if m.charset == "big5"]
    assert big5
    for m in big5:
        assert m.body_text.encode("big5")
        assert to_traditional(m.body_text) == m.body_text
        assert not re.search("[们这个会发说时为关]", m.body_text), m.index
        assert all(kw in BIG5_KEYWORDS for kw in m.keywords if not kw.isascii())


def test_mislabelled_cases(corpus: list[GeneratedMessage]) -> None:
    mis = [m for m in corpus if m.mislabel]
    ratio = len(mis) / N_STATS
    assert 0.03 < ratio < 0.08, ratio
    kinds = Counter(m.mislabel for m in mis)
    assert set(kinds) == {"gbk_as_gb2312", "gb18030_as_gb2312", "gbk_as_latin1", "no_charset"}
    assert {m.declared_charset for m in mis if m.mislabel == "gbk_as_latin1"} == {
        "iso-8859-1",
        "us-ascii",
    }
    for m in mis:
        assert m.charset != m.declared_charset
        payload = _parse(m.raw).get_body(("plain",)).get_payload(decode=True)
        assert payload.decode(m.charset)
        if m.mislabel.endswith("_as_gb2312"):
            # really outside GB2312: a decoder trusting the label fails
            assert m.declared_charset == "gb2312"
            with pytest.raises(UnicodeDecodeError):
                payload.decode("gb2312")
            with pytest.raises(UnicodeEncodeError):
                m.body_text.encode("gb2312")
        if m.mislabel == "gb18030_as_gb2312":
            with pytest.raises(UnicodeEncodeError):
                m.body_text.encode("gbk")
        if m.mislabel == "no_charset":
            assert m.declared_charset is None
            assert b"charset" not in m.raw.split(b"\r\n\r\n", 1)[0].lower()
    # correctly labelled messages tell the truth
    for m in corpus:
        if not m.mislabel:
            assert m.declared_charset == m.charset


def test_sizes_threads_dates_attachments(corpus: list[GeneratedMessage]) -> None:
    sizes = [len(m.body_text.encode("utf-8")) for m in corpus]
    small = sum(1 for s in sizes if s < 6_000)
    assert small / N_STATS > 0.8
    assert any(10_000 <= s <= 60_000 for s in sizes)
    assert any(s >= 150_000 for s in sizes)
    assert any("\n> " in m.body_text for m in corpus)
    assert any("\n-- \n" in m.body_text for m in corpus)
    ids = {m.message_id for m in corpus}
    assert len(ids) == N_STATS
    replies = [m for m in corpus if m.in_reply_to]
    assert 0.1 < len(replies) / N_STATS < 0.3
    assert all(m.in_reply_to in ids for m in replies)
    missing_date = sum(1 for m in corpus if m.date is None)
    assert 0 < missing_date < 0.05 * N_STATS
    offsets = Counter(m.date.split()[5] for m in corpus if m.date)
    assert offsets["+0800"] > N_STATS / 2 and len(offsets) >= 5
    with_att = [m for m in corpus if m.attachment_names]
    assert 0.1 < len(with_att) / N_STATS < 0.2
    raw = b"".join(m.raw for m in with_att)
    assert b"filename*=UTF-8''%E" in raw or b"filename*0*=UTF-8''%E" in raw
    assert b'filename="=?UTF-8?B?' in raw
    names = {n for m in with_att for n in m.attachment_names}
    assert {"季度报告.pdf", "合同草案.docx"} <= names


# --------------------------------------------------------------------------- keywords


def test_keyword_pools_are_single_jieba_tokens() -> None:
    assert len(set(ZH_KEYWORDS)) == len(ZH_KEYWORDS)
    assert not set(ZH_KEYWORDS) & set(BIG5_KEYWORDS)
    for kw in (*ZH_KEYWORDS, *BIG5_KEYWORDS):
        assert jieba.lcut(kw) == [kw], kw
    for kw in BIG5_KEYWORDS:
        assert to_traditional(kw) == kw
        kw.encode("big5")
        kw.encode("gb2312")
    pool = (*ZH_KEYWORDS, *BIG5_KEYWORDS)
    for a in pool:  # no keyword hides inside another one
        assert not any(a != b and a in b for b in pool), a


def test_keyword_survives_segmentation_in_templates() -> None:
    zh_templates = [*ZH_KEYWORD_TEMPLATES, *MIXED_KEYWORD_TEMPLATES]
    zh_templates += [*ZH_KEYWORD_SUBJECTS, *MIXED_KEYWORD_SUBJECTS]
    for kw in ZH_KEYWORDS:
        for tpl in zh_templates:
            sentence = tpl.replace("{kw}", kw)
            assert kw in jieba.lcut(sentence), (kw, sentence, jieba.lcut(sentence))
    for kw in BIG5_KEYWORDS:
        for tpl in zh_templates:
            sentence = to_traditional(tpl).replace("{kw}", kw)
            assert kw in jieba.lcut(sentence), (kw, sentence, jieba.lcut(sentence))
    for tpl in MIXED_EN_KEYWORD_TEMPLATES:
        kw = mailgen.english_keyword(SEED, 1, 0)
        assert kw in jieba.lcut(tpl.replace("{kw}", kw))


def test_keywords_in_generated_lines_are_jieba_tokens(corpus: list[GeneratedMessage]) -> None:
    checked = 0
    for m in corpus[:400]:
        for kw in m.keywords:
            if kw.isascii():
                continue
            for line in m.body_text.splitlines():
                if kw in line:
                    assert kw in jieba.lcut(line), (m.index, kw, line)
                    checked += 1
    assert checked > 300


def test_keywords_are_rare_and_exclusive(corpus: list[GeneratedMessage]) -> None:
    owners: dict[str, set[int]] = defaultdict(set)
    for m in corpus:
        assert 1 <= len(m.keywords) <= 3, m.keywords
        for kw in m.keywords:
            owners[kw].add(m.index)
    assert max(len(v) for v in owners.values()) <= 30
    en_counts = [len(v) for k, v in owners.items() if k.isascii()]
    assert max(en_counts) <= 4  # codenames: the message and its replies
    # a keyword never shows up in a message that does not list it
    zh_pat = re.compile("|".join(sorted((k for k in owners if not k.isascii()), key=len)[::-1]))
    en_pat = re.compile(r"\b(" + "|".join(k for k in owners if k.isascii()) + r")\b")
    for m in corpus:
        text = m.subject + "\n" + m.body_text
        found = set(zh_pat.findall(text)) | set(en_pat.findall(text))
        assert found <= set(m.keywords), (m.index, found - set(m.keywords))


# --------------------------------------------------------------------------- precision fixtures


def test_precision_cases_cross_word_boundaries() -> None:
    assert len(PRECISION_CASES) >= 5
    for text, query in PRECISION_CASES:
        assert query in text
        assert jieba.lcut(query) == [query], query
        assert query not in jieba.lcut(text), (text, jieba.lcut(text))
        assert query not in jieba.lcut_for_search(text), (text, jieba.lcut_for_search(text))


def test_positive_cases_are_tokens() -> None:
    assert len(POSITIVE_CASES) >= 5
    for text, query in POSITIVE_CASES:
        assert jieba.lcut(query) == [query]
        assert query in jieba.lcut(text), (text, jieba.lcut(text))
        assert query in jieba.lcut_for_search(text)


# --------------------------------------------------------------------------- writers


def _unquote_mboxrd(data: bytes) -> bytes:
    return re.sub(rb"(?m)^>(>*From )", rb"\1", data)


def test_write_mbox_round_trip(tmp_path: Path, corpus: list[GeneratedMessage]) -> None:
    msgs = corpus[:300]
    # make sure the From-quoting path is exercised
    assert any(re.search(rb"(?m)^From ", m.raw) for m in msgs)
    path = tmp_path / "out.mbox"
    assert write_mbox(path, msgs) == len(msgs)
    box = mailbox.mbox(str(path), create=False)
    try:
        keys = list(box.keys())
        assert len(keys) == len(msgs)
        for key, m in zip(keys, msgs, strict=True):
            data = box.get_bytes(key)
            assert _unquote_mboxrd(data) == m.raw, m.index
            parsed = _parse(data)
            assert parsed["Message-ID"] == f"<{m.message_id}>"
            body = parsed.get_body(("plain", "html"))
            assert body is not None
            text = body.get_payload(decode=True).decode(m.charset)
            for kw in m.keywords:
                assert kw in text
    finally:
        box.close()


def test_write_eml_dir(tmp_path: Path) -> None:
    msgs = list(generate(25, seed=11))
    assert write_eml_dir(tmp_path / "eml", iter(msgs)) == 25
    files = sorted((tmp_path / "eml").glob("*.eml"))
    assert len(files) == 25
    assert [f.read_bytes() for f in files] == [m.raw for m in msgs]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.mbox"
    assert mailgen.main(["--count", "30", "--seed", "9", "--out", str(out)]) == 0
    assert "wrote 30 messages" in capsys.readouterr().out
    assert len(mailbox.mbox(str(out))) == 30
    assert mailgen.main(["--count", "5", "--out", str(tmp_path / "d"), "--format", "eml"]) == 0
    assert len(list((tmp_path / "d").glob("*.eml"))) == 5
