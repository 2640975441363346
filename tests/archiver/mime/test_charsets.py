"""Charset policy: mislabelled and unlabelled Chinese text, RFC 2047 header values."""

from __future__ import annotations

import base64

import pytest

from archiver.mime.charsets import (
    cjk_score,
    decode_bytes,
    decode_header_value,
    decode_header_value_with_warnings,
    normalize_charset,
)

SIMPLIFIED = "朱镕基、王喆和张堃今天来公司开会，请大家准时参加。"
TRADITIONAL = "這是一個繁體中文的郵件，請大家注意時間。"


def b64_word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("gb2312", "gb18030"),
        ("GB_2312-80", "gb18030"),
        ("euc-cn", "gb18030"),
        ("x-gbk", "gb18030"),
        ("GBK", "gb18030"),
        ("cp936", "gb18030"),
        ('"big5"', "big5hkscs"),
        ("big5-tw", "big5hkscs"),
        ("x-big5", "big5hkscs"),
        ("cp950", "big5hkscs"),
        ("ks_c_5601-1987", "cp949"),
        ("UTF8", "utf-8"),
        ("iso-8859-1", "cp1252"),
        ("x-unknown", None),
        ("utf8mb4", None),
        ("base64", None),  # a bytes-to-bytes codec is not a charset
        ("rot13", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_charset(label: str | None, codec: str | None) -> None:
    assert normalize_charset(label) == codec


def test_gbk_labelled_gb2312_decodes_as_gb18030_with_warning() -> None:
    data = SIMPLIFIED.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("gb2312")  # 镕 喆 堃 are not GB2312
    text, used, warnings = decode_bytes(data, "gb2312")
    assert text == SIMPLIFIED
    assert used == "gb18030"
    assert warnings == ["charset declared gb2312, decoded as gb18030"]


def test_clean_gb2312_needs_no_warning() -> None:
    text, used, warnings = decode_bytes("我们今天开会。".encode("gb2312"), "GB2312")
    assert (text, used, warnings) == ("我们今天开会。", "gb18030", [])


def test_gb18030_four_byte_characters() -> None:
    sample = "中文𠀀测试㐀内容€"  # U+20000 and U+3400 are four-byte sequences in GB18030
    data = sample.encode("gb18030")
    assert len(data) > len(sample) * 2
    text, used, _ = decode_bytes(data, "gb2312")
    assert text == sample
    assert used == "gb18030"


def test_big5_with_hkscs_characters() -> None:
    sample = "香港特別行政區，這是測試：㗎嘅"  # 㗎 嘅 are HKSCS, not Big5
    data = sample.encode("big5hkscs")
    text, used, warnings = decode_bytes(data, "big5")
    assert text == sample
    assert used == "big5hkscs"
    assert warnings == ["charset declared big5, decoded as big5hkscs"]


def test_gbk_declared_iso_8859_1_is_detected() -> None:
    text, used, warnings = decode_bytes(SIMPLIFIED.encode("gbk"), "iso-8859-1")
    assert text == SIMPLIFIED
    assert used == "gb18030"
    assert "declared iso-8859-1" in warnings[0]


def test_real_latin1_stays_latin() -> None:
    for sample in ("Die Hasen und die Frösche", "Je prépare mon été zéro complexe !", "Grüße"):
        text, _, warnings = decode_bytes(sample.encode("latin-1"), "iso-8859-1")
        assert text == sample
        assert warnings == []


def test_missing_charset_gbk() -> None:
    text, used, warnings = decode_bytes(SIMPLIFIED.encode("gbk"), None)
    assert (text, used) == (SIMPLIFIED, "gb18030")
    assert warnings == ["charset missing, detected gb18030"]


def test_missing_charset_big5() -> None:
    text, used, warnings = decode_bytes(TRADITIONAL.encode("big5"), None)
    assert (text, used) == (TRADITIONAL, "big5hkscs")
    assert warnings == ["charset missing, detected big5hkscs"]


def test_big5_is_not_taken_for_gb_and_back() -> None:
    gb_score, _ = cjk_score(TRADITIONAL.encode("big5").decode("gb18030"))
    big5_score, _ = cjk_score(TRADITIONAL)
    assert big5_score > 0.8 > 0.3 > gb_score


def test_missing_charset_ascii_is_quiet() -> None:
    assert decode_bytes(b"hello", None) == ("hello", "ascii", [])


def test_utf8_declared_gb2312() -> None:
    text, used, warnings = decode_bytes(SIMPLIFIED.encode("utf-8"), "gb2312")
    assert (text, used) == (SIMPLIFIED, "utf-8")
    assert warnings and "declared gb2312" in warnings[0]


def test_short_utf8_declared_gb2312() -> None:
    text, used, _ = decode_bytes("你好".encode(), "gb2312")
    assert (text, used) == ("你好", "utf-8")


@pytest.mark.parametrize("label", ["x-unknown", "utf8mb4", "us-ascii"])
def test_bad_labels_are_detected(label: str) -> None:
    text, _, warnings = decode_bytes(SIMPLIFIED.encode("utf-8"), label)
    assert text == SIMPLIFIED
    assert warnings and label in warnings[0]


def test_us_ascii_with_gbk_bytes() -> None:
    text, used, _ = decode_bytes(SIMPLIFIED.encode("gbk"), "us-ascii")
    assert (text, used) == (SIMPLIFIED, "gb18030")


def test_damaged_utf8_stays_utf8() -> None:
    data = ("Быстрее вкладывайте в золото! " * 20).encode() + b"\xd1f" + "конец".encode()
    text, used, warnings = decode_bytes(data, "utf-8")
    assert text.startswith("Быстрее") and text.endswith("конец")
    assert text.count("\ufffd") == 1
    assert used.startswith("utf-8")
    assert warnings


def test_last_resort_replaces() -> None:
    text, _, warnings = decode_bytes(b"\xff\xfe\xfa", "utf-8")
    assert isinstance(text, str)
    assert warnings


def test_utf16_without_nul_is_not_guessed() -> None:
    text, used, _ = decode_bytes("Heinz Müller <m@example.com>".encode("latin-1"), None)
    assert text == "Heinz Müller <m@example.com>"
    assert used == "cp1252"


# --- headers -----------------------------------------------------------------------------------


def test_header_gb2312_b() -> None:
    assert decode_header_value("=?GB2312?B?tPq/qrj3tdjU9ta1y7C3osax?=") == "代开各地增值税发票"


def test_header_split_across_folded_lines_with_character_split_between_words() -> None:
    data = SIMPLIFIED.encode("gbk")
    first, second = data[:7], data[7:]  # splits a two-byte character between the two words
    value = (
        f"=?gb2312?B?{base64.b64encode(first).decode()}?=\r\n"
        f"\t=?gb2312?B?{base64.b64encode(second).decode()}?="
    )
    text, warnings = decode_header_value_with_warnings(value)
    assert text == SIMPLIFIED
    assert warnings == ["charset declared gb2312, decoded as gb18030"]


def test_header_big5() -> None:
    assert decode_header_value(b64_word(TRADITIONAL, "big5")) == TRADITIONAL


def test_header_utf8_q() -> None:
    assert decode_header_value("=?utf-8?Q?caf=C3=A9_=E4=BD=A0=E5=A5=BD?=") == "café 你好"


def test_header_adjacent_words_without_whitespace() -> None:
    assert decode_header_value("=?utf-8?B?5L2g?==?utf-8?B?5aW9?=") == "你好"


def test_header_words_in_different_charsets_and_text() -> None:
    value = f"Re: {b64_word('你好', 'gb2312')} {b64_word('世界', 'utf-8')} end"
    assert decode_header_value(value) == "Re: 你好世界 end"


def test_header_space_between_word_and_text_kept() -> None:
    assert decode_header_value("=?utf-8?Q?a?= b =?utf-8?Q?c?=") == "a b c"


def test_header_raw_8bit_gbk_and_utf8() -> None:
    assert decode_header_value(SIMPLIFIED.encode("gbk")) == SIMPLIFIED
    assert decode_header_value(SIMPLIFIED.encode("utf-8")) == SIMPLIFIED
    # what the email package hands over for raw bytes: surrogate escapes
    escaped = SIMPLIFIED.encode("gbk").decode("ascii", "surrogateescape")
    assert decode_header_value(escaped) == SIMPLIFIED


def test_header_malformed_words_left_as_is() -> None:
    for value in ("=?utf-8?B?5L2g5aW9", "=?utf-8?X?abc?=", "=??Q?abc?=", "a =? b ?= c"):
        assert decode_header_value(value) == value


def test_header_unknown_charset_word() -> None:
    assert (
        decode_header_value("=?x-unknown?B?" + base64.b64encode("中文".encode()).decode() + "?=")
        == "中文"
    )


def test_header_language_suffix() -> None:
    assert decode_header_value("=?utf-8*zh?B?5Lit5paH?=") == "中文"
