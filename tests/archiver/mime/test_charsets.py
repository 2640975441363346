"""Charset policy: mislabelled and unlabelled Chinese, Korean and Japanese text, RFC 2047 header
values (folded, split, glued)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from archiver.mime.charsets import (
    COMMON_CJK,
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


# --- encoded-words broken by folding, split between words, glued to text --------------------


def q_word(data: bytes, charset: str) -> str:
    escaped = "".join(chr(b) if chr(b).isalnum() and b < 128 else f"={b:02X}" for b in data)
    return f"=?{charset}?Q?{escaped}?="


def b_bytes_word(data: bytes, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?gb2312?B?xPq6\r\n w6Oh?=", "您好！"),  # the fold inside the base64 text
        ("=?gb2312?B?xPq6w6Oh?\r\n =", "您好！"),  # ... inside the closing "?="
        ("=\r\n ?gb23\r\n\t12?B\r\n ?xPq6w6Oh?=", "您好！"),  # ... in the opening and label
        ("=?utf-8?Q?=E4=BD=A0=E5=A5\r\n =BD?=", "你好"),  # ... inside a Q escape
        ("=?utf-8?Q?caf\r\n =C3=A9?= au lait", "café au lait"),
        ("Re: =?big5?B?s2+s\r\n T6RA?=", "Re: 這是一"),
        # the header unfolded before decoding (address display names): only the blank is left
        ("=?gb2312?B?xPq6 w6Oh?=", "您好！"),
    ],
)
def test_header_word_broken_by_a_fold(value: str, expected: str) -> None:
    assert decode_header_value_with_warnings(value) == (expected, [])


def test_header_character_split_between_words_in_b_and_q() -> None:
    for charset, text in (("gbk", SIMPLIFIED), ("big5", TRADITIONAL), ("utf-8", SIMPLIFIED)):
        data = text.encode(charset)
        cut = 5 if charset != "utf-8" else 4  # inside a two- or three-byte character
        value = f"{b_bytes_word(data[:cut], charset)}\r\n {q_word(data[cut:], charset)}"
        assert decode_header_value(value) == text, charset


def test_header_split_character_joins_across_gb_labels() -> None:
    data = "镕基".encode("gbk")
    value = f"{b_bytes_word(data[:1], 'gb2312')} {b_bytes_word(data[1:], 'GBK')}"
    assert decode_header_value(value) == "镕基"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Re:=?gb2312?B?xPq6w6Oh?=", "Re:您好！"),
        ("=?gb2312?B?xPq6w6Oh?=(转发)", "您好！(转发)"),
        ("[Fwd]=?utf-8?B?5L2g?==?utf-8?Q?=E5=A5=BD?=!", "[Fwd]你好!"),
    ],
)
def test_header_words_glued_to_text(value: str, expected: str) -> None:
    assert decode_header_value(value) == expected


_GB_ALPHABET = "".join(sorted(COMMON_CJK)) + "镕喆堃"


def _fold(value: str, positions: list[int], folds: list[str]) -> str:
    """value with folds put in at positions (taken modulo its length), never inside a line break
    already there (that would not be folding but a bare CR or an empty line: the header's end)."""
    places = [p % (len(value) + 1) for p in positions]
    for at, fold in sorted(zip(places, folds, strict=False), reverse=True):
        while at and value[at - 1] in "\r\n":
            at -= 1
        value = value[:at] + fold + value[at:]
    return value


@st.composite
def encoded_header(
    draw: st.DrawFn, charset: str, alphabet: st.SearchStrategy[str]
) -> tuple[str, str]:
    """(text, the text as encoded-words in charset, split at arbitrary bytes and folded at
    arbitrary places, even inside a word)."""
    text = draw(st.text(alphabet, min_size=1, max_size=40))
    data = text.encode(charset)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=6)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    words = [
        (q_word if draw(st.booleans()) else b_bytes_word)(chunk, charset)
        for chunk in chunks
        if chunk
    ]
    separators = draw(st.lists(st.sampled_from(["", " ", "\r\n ", "\r\n\t"]), min_size=len(words)))
    value = "".join(w + sep for w, sep in zip(words, separators, strict=False))
    positions = draw(st.lists(st.integers(0, 10_000), max_size=4))
    folds = draw(st.lists(st.sampled_from(["\r\n ", "\r\n\t", "\n "]), min_size=len(positions)))
    return text, _fold(value, positions, folds)


@settings(max_examples=300, deadline=None)
@given(encoded_header("utf-8", st.characters(codec="utf-8")))
@example(("您好！", "=?utf-8?B?5oKo\r\n 5aW977yB?="))
def test_folded_utf8_words_decode_to_the_original(case: tuple[str, str]) -> None:
    text, value = case
    assert decode_header_value(value) == text.strip()


@settings(max_examples=300, deadline=None)
@given(encoded_header("gbk", st.sampled_from(_GB_ALPHABET) | st.characters(codec="ascii")))
def test_folded_gbk_words_decode_to_the_original(case: tuple[str, str]) -> None:
    text, value = case
    assert decode_header_value(value) == text.strip()


@settings(max_examples=200, deadline=None)
@given(encoded_header("gbk", st.characters(codec="gbk")))
def test_folding_and_splitting_do_not_change_any_gbk_decode(case: tuple[str, str]) -> None:
    """For any GBK text, even one the charset policy reads otherwise (rare characters whose bytes
    are valid UTF-8), splitting and folding give what one unfolded word gives."""
    text, value = case
    assert decode_header_value(value) == decode_header_value(
        b_bytes_word(text.encode("gbk"), "gbk")
    )


_HEADER_SOUP = st.lists(
    st.sampled_from(
        [b"=?", b"?=", b"?B?", b"?q?", b"gb2312", b"utf-8*zh", b"\r\n ", b"\n", b"=E4", b"_", b" "]
    )
    | st.binary(max_size=12),
    max_size=30,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=300)
    | _HEADER_SOUP
    | st.text(max_size=200)
    | st.text(st.characters(categories=["Cs", "Lo", "Zs"]), max_size=50)
)
@example("=?utf-8?Q?a?=\ud800\udc80")  # a lone surrogate (no byte) and an escaped 0x80
def test_decoding_any_header_never_raises(value: bytes | str) -> None:
    text, warnings = decode_header_value_with_warnings(value)
    assert isinstance(text, str)
    assert all(isinstance(w, str) for w in warnings)


# --- Korean and Japanese ------------------------------------------------------------------------

KOREAN_SUBJECT = "(광고)신선한 제철 과일을 집에서 받아보세요"
KOREAN_BODY = (
    "안녕하세요, 고객님.\n이번 주 특가 상품을 소개해 드립니다. 신선한 과일과 채소를 "
    "최대 50% 할인된 가격으로 만나보세요. 수신을 원하지 않으시면 수신거부를 클릭해 주세요."
)
JAPANESE_SUBJECT = "【重要】パスワード変更のお知らせ"
JAPANESE_BODY = (
    "いつもお世話になっております。\n明日の打ち合わせの件ですが、会議室の予約が取れましたので"
    "ご連絡いたします。資料は添付ファイルをご確認ください。よろしくお願いいたします。"
)


def test_the_korean_mojibake_is_euc_kr() -> None:
    assert "(±¤°í)½Å¼±ÇÑ".encode("latin-1").decode("euc-kr") == "(광고)신선한"


@pytest.mark.parametrize(
    ("text", "charset", "codec"),
    [
        (KOREAN_SUBJECT, "euc-kr", "cp949"),
        ("(광고)신선한", "euc-kr", "cp949"),
        ("회의 일정 변경 안내", "euc-kr", "cp949"),
        ("감사합니다", "euc-kr", "cp949"),
        (JAPANESE_SUBJECT, "shift_jis", "cp932"),
        ("ご注文ありがとうございます", "shift_jis", "cp932"),
        ("会議の日程について", "shift_jis", "cp932"),
        ("見積書を送付いたします", "euc-jp", "euc_jp"),
    ],
)
def test_raw_8bit_korean_and_japanese_subjects(text: str, charset: str, codec: str) -> None:
    value, warnings = decode_header_value_with_warnings(text.encode(charset))
    assert value == text
    assert warnings == [f"charset missing, detected {codec}"]  # flagged as a guess


@pytest.mark.parametrize(
    ("text", "charset", "codec"),
    [
        (KOREAN_BODY, "euc-kr", "cp949"),
        (JAPANESE_BODY, "shift_jis", "cp932"),
        (JAPANESE_BODY, "euc-jp", "euc_jp"),
    ],
)
def test_unlabelled_korean_and_japanese_bodies(text: str, charset: str, codec: str) -> None:
    assert decode_bytes(text.encode(charset), None) == (
        text,
        codec,
        [f"charset missing, detected {codec}"],
    )


def test_korean_labelled_latin1_is_detected() -> None:
    text, used, warnings = decode_bytes(KOREAN_BODY.encode("euc-kr"), "iso-8859-1")
    assert (text, used) == (KOREAN_BODY, "cp949")
    assert warnings == ["charset declared iso-8859-1, decoded as cp949 (content looks like Korean)"]


def test_declared_euc_kr_valid_as_utf8_stays_korean() -> None:
    data = "징징".encode("euc-kr")
    assert data.decode("utf-8") == "¡¡"  # valid UTF-8, but scored as Korean it is Korean
    assert decode_bytes(data, "euc-kr") == ("징징", "cp949", [])


CHINESE_SAMPLES = [
    SIMPLIFIED,
    TRADITIONAL,
    "代开各地增值税发票",
    "发票",
    "会议纪要",
    "周末愉快",
    "您的订单已发货",
    "明天下午三点开会",
    "沙山商上少设社身深神",
]


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        (text, charset)
        for text in CHINESE_SAMPLES
        for charset in ("gb2312", "gbk", "gb18030", "big5")
        if text.encode(charset, "replace").decode(charset) == text
    ],
)
def test_chinese_still_wins_over_korean_and_japanese(text: str, charset: str) -> None:
    data = text.encode(charset)
    expected = "big5hkscs" if charset == "big5" else "gb18030"
    assert decode_bytes(data, None)[:2] == (text, expected)
    assert decode_header_value(data) == text
