"""safe_html: the HTML body part found and decoded by the MIME layer, sanitised, cut off from the
network unless the reader allows it; generated hostile HTML never yields script, handlers,
script URLs or (blocked) remote URLs."""

from __future__ import annotations

import base64
from html import unescape
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.mime.html_view import MAX_INLINE_IMAGE_BYTES, SafeHtml, safe_html

FORBIDDEN_TAGS = {
    "script", "style", "iframe", "frame", "object", "embed", "applet", "form", "input",
    "button", "textarea", "select", "meta", "link", "base", "svg", "math", "video", "audio",
    "source", "track", "picture", "template", "noscript", "isindex", "image", "animate", "set",
    "foreignobject", "xmp", "title", "area", "map",
}  # fmt: skip
URL_ATTRIBUTES = {
    "href", "src", "background", "action", "formaction", "poster", "srcset", "data", "ping",
    "xlink:href", "lowsrc", "dynsrc", "codebase", "cite", "longdesc", "usemap",
}  # fmt: skip
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAIA4rOh+QAAAABJRU5ErkJggg=="
)


def _mail(html: str, charset: str = "utf-8", encoding: str | None = None) -> bytes:
    body = html.encode(encoding or charset)
    return (
        b"From: a@example.cn\r\nTo: b@example.cn\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain\r\n"
        b"--B\r\nContent-Type: text/html; charset="
        + charset.encode()
        + b"\r\n\r\n"
        + body
        + b"\r\n"
        b"--B--\r\n"
    )


def _safe(html: str, allow_remote: bool = False) -> SafeHtml:
    found = safe_html(_mail(html), allow_remote)
    assert found is not None
    return found


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def _tags(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser.tags


def _squeezed(value: str) -> str:
    # what a browser ignores inside a URL's scheme: whitespace and control characters
    return "".join(c for c in unescape(value) if c > " ").lower()


def _assert_safe(html: str, allow_remote: bool) -> None:
    for tag, attrs in _tags(html):
        assert tag not in FORBIDDEN_TAGS, (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, html)
            squeezed = _squeezed(value)
            if name in URL_ATTRIBUTES:
                assert not squeezed.startswith(("javascript:", "vbscript:", "livescript:"))
                if squeezed.startswith("data:"):
                    assert tag == "img" and squeezed.startswith("data:image/"), (tag, value)
                    assert not squeezed.startswith("data:image/svg"), value
                if not allow_remote:
                    assert not squeezed.startswith(("http:", "https:", "//")), (tag, name, value)
            if name == "style":
                assert "url(" not in squeezed and "expression" not in squeezed, value
                assert "@import" not in squeezed and "\\" not in squeezed, value


# ---------------------------------------------------------------------------------------------


def test_a_message_without_html_has_none() -> None:
    raw = b"From: a@example.cn\r\nSubject: t\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    assert safe_html(raw, False) is None


def test_script_handlers_and_forms_are_gone() -> None:
    found = _safe(
        '<p onclick="x()">hi</p><script>alert(1)</script><form action="http://e/"><input '
        'name=q><button>go</button></form><iframe src="http://e/"></iframe>'
    )
    assert found.html == "<p>hi</p>"


def test_remote_images_and_css_are_blocked_and_counted() -> None:
    found = _safe(
        '<img src="http://e.example/t.gif" alt="t"><table><tr><td background="https://e.example/b.png">'
        '<p style="color: red; background-image: url(http://e.example/c.png)">x</p></td></tr></table>'
    )
    assert "e.example" not in found.html
    assert 'style="color:red"' in found.html
    assert found.blocked_images == 3


def test_remote_links_become_inert_with_the_url_as_title() -> None:
    found = _safe('<a href="https://e.example/?a=1&amp;b=2">go</a> <a href="mailto:x@e.cn">m</a>')
    links = [attrs for tag, attrs in _tags(found.html) if tag == "a"]
    assert "href" not in links[0] and links[0]["title"] == "https://e.example/?a=1&b=2"
    assert links[1]["href"] == "mailto:x@e.cn"
    assert found.blocked_links == 1


def test_allowed_remote_content_opens_links_in_a_new_tab() -> None:
    found = _safe('<a href="https://e.example/">go</a><img src="https://e.example/i.png">', True)
    (_, link), (_, image) = _tags(found.html)
    assert link == {
        "href": "https://e.example/",
        "target": "_blank",
        "rel": "noopener noreferrer",
    }
    assert image["src"] == "https://e.example/i.png"
    assert found.blocked_images == found.blocked_links == 0


def test_cid_images_are_inlined_as_data_urls_and_big_ones_dropped() -> None:
    big = b"\x89PNG" + b"\0" * (MAX_INLINE_IMAGE_BYTES + 1)
    raw = (
        b"From: a@example.cn\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/related; boundary="R"\r\n\r\n'
        b'--R\r\nContent-Type: text/html\r\n\r\n<img src="cid:logo@x"><img src="cid:big@x">'
        b'<img src="cid:none@x">\r\n'
        b"--R\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PNG) + b"\r\n"
        b"--R\r\nContent-Type: image/png\r\nContent-ID: <big@x>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(big) + b"\r\n--R--\r\n"
    )
    found = safe_html(raw, False)
    assert found is not None
    sources = [attrs.get("src") for _, attrs in _tags(found.html)]
    assert sources == ["data:image/png;base64," + base64.b64encode(PNG).decode(), None, None]
    assert found.inline_images == 1


def test_gbk_and_mislabelled_bodies_are_decoded_by_the_charset_layer() -> None:
    text = "<p>供应商合同已更新，请审阅。</p>"
    assert text in _safe_raw(_mail(text, "gbk")).html
    # declared Latin-1, sent as UTF-8: the charset layer's detection, not mojibake
    assert "供应商合同" in _safe_raw(_mail(text, "iso-8859-1", encoding="utf-8")).html


def _safe_raw(raw: bytes) -> SafeHtml:
    found = safe_html(raw, False)
    assert found is not None
    return found


def test_an_attached_message_is_not_the_body() -> None:
    raw = (
        b"From: a@example.cn\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="M"\r\n\r\n'
        b"--M\r\nContent-Type: text/plain\r\n\r\nouter\r\n"
        b"--M\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nContent-Type: text/html\r\n\r\n<p>inner</p>\r\n--M--\r\n"
    )
    assert safe_html(raw, False) is None


# ---------------------------------------------------------------------------------------------
# generated hostile HTML

_SCRIPT_URLS = st.sampled_from(
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "jav&#x09;ascript:alert(1)",
        "&#106;avascript:alert(1)",
        "java\nscript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:image/svg+xml,<svg onload=alert(1)>",
        "http://e.example/x",
        "https://e.example/x",
        "//e.example/x",
        "cid:nothing",
        "relative/x.png",
    ]
)
_TAG_NAMES = st.sampled_from(
    sorted(FORBIDDEN_TAGS | {"a", "img", "p", "div", "table", "td", "span", "font", "body"})
)
_ATTR_NAMES = st.sampled_from(
    sorted(URL_ATTRIBUTES | {"onload", "onerror", "onclick", "ONMOUSEOVER", "style", "title"})
)
_STYLES = st.sampled_from(
    [
        "background:url(http://e.example/x)",
        "background-image: url('//e.example/x')",
        "width: expression(alert(1))",
        "color: red; background: u\\72l(http://e.example/x)",
        "behavior: url(x.htc)",
        "@import 'http://e.example/x.css'",
        "color: blue",
    ]
)


@st.composite
def _element(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(_TAG_NAMES)
    attrs = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(_ATTR_NAMES)
        value = draw(_STYLES) if name == "style" else draw(_SCRIPT_URLS)
        quote = draw(st.sampled_from(['"', "'", ""]))
        value = value if quote else value.replace(" ", "")
        attrs.append(f" {name}={quote}{value}{quote}")
    inner = draw(st.lists(st.text(max_size=8), max_size=2))
    children = (
        "".join(draw(st.lists(_element(depth + 1), max_size=2)))
        if depth < 3 and draw(st.booleans())
        else ""
    )
    closing = draw(st.sampled_from([f"</{tag}>", "", f"</{tag} >"]))
    return f"<{tag}{''.join(attrs)}>{''.join(inner)}{children}{closing}"


@settings(max_examples=300, deadline=None)
@given(st.lists(_element(), min_size=1, max_size=5), st.booleans())
def test_generated_hostile_html_never_yields_script_or_blocked_urls(
    elements: list[str], allow_remote: bool
) -> None:
    found = _safe("".join(elements), allow_remote)
    _assert_safe(found.html, allow_remote)
    # and sanitising the output again changes nothing that matters
    _assert_safe(_safe(found.html, allow_remote).html, allow_remote)
