"""A message's HTML body made safe to show: sanitised with nh3 and cut off from the network.

The sanitiser is the first wall and the frame's CSP the second (ui/mail_frame.py): what comes out
of here carries no script, no event handler, no form, no frame, no SVG and no URL the reader did
not allow. Remote images, backgrounds and CSS urls are dropped while remote content is blocked
(counted, so the UI can offer to show them), and remote links become inert text with the URL as
their title. Images sent with the message (cid:) become data: URLs, so the frame fetches nothing.
"""

from __future__ import annotations

import base64
import email
import re
from dataclasses import dataclass
from email.message import Message
from email.policy import compat32
from html import escape, unescape

import nh3

from archiver.mime.charsets import decode_bytes
from archiver.mime.parsing import payload_bytes

__all__ = ["SafeHtml", "safe_html"]

_MAX_DEPTH = 32
_MAX_PARTS = 2_000
# html5ever and the filter callback cost a few microseconds per tag: bound the work per message
MAX_HTML_CHARS = 4_000_000
# a cid: image is inlined as a data: URL only up to these sizes (the frame document carries them)
MAX_INLINE_IMAGE_BYTES = 2_000_000
MAX_INLINE_TOTAL_BYTES = 10_000_000

# raster images only: an SVG is a document that may carry script and fetch
_INLINE_IMAGE_TYPES = frozenset(
    {"image/png", "image/gif", "image/jpeg", "image/jpg", "image/webp", "image/bmp"}
)
_DATA_IMAGE = re.compile(r"^data:image/(?:png|gif|jpe?g|webp|bmp);base64,[A-Za-z0-9+/=\s]*$", re.I)
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)

_TAGS = frozenset(
    {
        "a", "abbr", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "caption",
        "center", "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl",
        "dt", "em", "figcaption", "figure", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
        "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small",
        "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
        "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip
# dropped with everything inside them (the others not allowed lose the tag, keep the text)
_DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "title", "template", "noscript", "head", "svg", "math", "object",
        "embed", "iframe", "frame", "frameset", "noframes", "applet", "audio", "video",
        "select", "textarea", "button", "canvas", "xmp", "noembed",
    }
)  # fmt: skip
_CELL = {"align", "valign", "width", "height", "bgcolor", "background", "colspan", "rowspan",
         "nowrap", "headers", "scope"}  # fmt: skip
_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "title", "dir", "lang", "align"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height", "border", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {
        "width",
        "height",
        "border",
        "cellpadding",
        "cellspacing",
        "bgcolor",
        "background",
        "valign",
    },
    "tr": {"valign", "bgcolor", "background", "height"},
    "td": _CELL,
    "th": _CELL,
    "col": {"span", "width", "valign"},
    "colgroup": {"span", "width", "valign"},
    "div": {"background"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
    "hr": {"width", "size", "noshade", "color"},
    "blockquote": {"cite"},
    "del": {"datetime"},
    "ins": {"datetime"},
    "time": {"datetime"},
}
# none of these takes a URL, so no declaration can fetch anything
_STYLE_PROPERTIES = frozenset(
    {
        "color", "background-color", "font", "font-family", "font-size", "font-style",
        "font-weight", "font-variant", "line-height", "letter-spacing", "word-spacing",
        "text-align", "text-decoration", "text-indent", "text-transform", "white-space",
        "vertical-align", "direction", "width", "height", "min-width", "max-width",
        "min-height", "max-height", "margin", "margin-top", "margin-right", "margin-bottom",
        "margin-left", "padding", "padding-top", "padding-right", "padding-bottom",
        "padding-left", "border", "border-top", "border-right", "border-bottom", "border-left",
        "border-color", "border-style", "border-width", "border-collapse", "border-spacing",
        "border-radius", "display", "float", "clear", "list-style-type", "table-layout",
        "word-break", "word-wrap", "overflow-wrap",
    }
)  # fmt: skip
# in a declaration's value: a fetch (url, image-set, @import), an old script hook (expression,
# behavior) or an escape or comment that could hide one from the checks
_STYLE_DANGER = re.compile(r"url\s*\(|image|expression|@|\\|/\*|javascript|behavior|binding", re.I)
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_ANCHOR = re.compile(r'<a((?:\s+[^\s=>"]+="[^"]*")*)\s*>')
_ATTR = re.compile(r'([^\s=>"]+)="([^"]*)"')


@dataclass(frozen=True)
class SafeHtml:
    """The sanitised HTML body (a fragment for a document's body), and what was held back."""

    html: str
    blocked_images: int  # remote images, backgrounds and CSS urls removed
    blocked_links: int  # remote links made inert
    remote_allowed: bool
    charset: str  # the codec the part was decoded with
    inline_images: int  # cid: images shown from the message itself
    warnings: tuple[str, ...] = ()


@dataclass
class _Parts:
    html: Message | None = None
    images: dict[str, Message] | None = None
    seen: int = 0


def _content_id(part: Message) -> str | None:
    value = part.get("content-id")
    if value is None:
        return None
    cid = str(value).strip().strip("<>").strip()
    return cid or None


def _disposition(part: Message) -> str:
    try:
        return part.get_content_disposition() or ""
    except Exception:
        return ""


def _collect(part: Message, found: _Parts, depth: int) -> None:
    """The first HTML body part and every part with a Content-ID, outside attached messages
    (an attached message is an attachment: its body is not this message's)."""
    found.seen += 1
    if depth > _MAX_DEPTH or found.seen > _MAX_PARTS:
        return
    ctype = part.get_content_type()
    payload = part.get_payload()
    if isinstance(payload, list):
        if ctype.startswith("message/"):
            return
        for child in payload:
            if isinstance(child, Message):
                _collect(child, found, depth + 1)
        return
    cid = _content_id(part)
    if cid is not None and found.images is not None:
        found.images.setdefault(cid, part)
    if (
        found.html is None
        and ctype == "text/html"
        and _disposition(part) != "attachment"
        and not part.get_filename()
    ):
        found.html = part


class _Rewriter:
    """The nh3 attribute callback: every URL-bearing attribute and every style decided here."""

    def __init__(
        self, images: dict[str, Message], allow_remote: bool, links_inert: bool = False
    ) -> None:
        self.images = images
        self.allow_remote = allow_remote
        self.links_inert = links_inert
        self.blocked_images = 0
        self.inline_images = 0
        self.inline_bytes = 0
        self.inlined: dict[str, str | None] = {}

    def __call__(self, tag: str, attribute: str, value: str) -> str | None:
        if attribute == "style":
            return self._style(value)
        if attribute == "href":
            # remote links are made inert after sanitising (they keep their URL as a title)
            schemes = ("mailto:",) if self.links_inert else _LINK_SCHEMES
            return value if value.strip().lower().startswith(schemes) else None
        if attribute in ("src", "background"):
            return self._image(value)
        return value

    def _style(self, value: str) -> str | None:
        kept: list[str] = []
        for declaration in value.split(";"):
            if not declaration.strip():
                continue
            if _STYLE_DANGER.search(unescape(declaration)):
                if not self.allow_remote and re.search(r"url\s*\(|image", declaration, re.I):
                    self.blocked_images += 1
                continue
            kept.append(declaration.strip())
        return "; ".join(kept) or None

    def _image(self, value: str) -> str | None:
        url = value.strip()
        lowered = url.lower()
        if lowered.startswith("cid:"):
            return self._inline(url[4:])
        if _DATA_IMAGE.match(url):
            return url
        if _REMOTE.match(url):
            if self.allow_remote and lowered.startswith(("http:", "https:")):
                return url
            self.blocked_images += 1
        return None

    def _inline(self, cid: str) -> str | None:
        cid = cid.strip().strip("<>")
        if cid in self.inlined:
            return self.inlined[cid]
        part = self.images.get(cid)
        data_url: str | None = None
        if part is not None and part.get_content_type() in _INLINE_IMAGE_TYPES:
            data = payload_bytes(part)
            if (
                len(data) <= MAX_INLINE_IMAGE_BYTES
                and self.inline_bytes + len(data) <= MAX_INLINE_TOTAL_BYTES
            ):
                self.inline_bytes += len(data)
                self.inline_images += 1
                ctype = part.get_content_type().replace("image/jpg", "image/jpeg")
                data_url = f"data:{ctype};base64,{base64.b64encode(data).decode('ascii')}"
        self.inlined[cid] = data_url
        return data_url


def _cleaner(rewriter: _Rewriter) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
        attribute_filter=rewriter,
        url_schemes={"http", "https", "mailto", "cid", "data"},
        url_relative="deny",  # relative to the frame: our own origin, with the reader's cookie
        filter_style_properties=set(_STYLE_PROPERTIES),
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


def _inert_links(html: str) -> tuple[str, int]:
    """Remote links without their href, the URL kept as the title. Works on nh3's output, whose
    serialisation is fixed: every attribute is name="value" with the quote escaped."""
    blocked = 0

    def rewrite(match: re.Match[str]) -> str:
        nonlocal blocked
        attributes = dict(_ATTR.findall(match.group(1)))
        href = attributes.pop("href", None)
        if href is None or unescape(href).strip().lower().startswith("mailto:"):
            return match.group(0)
        blocked += 1
        attributes["title"] = href  # still escaped as nh3 wrote it
        return "<a" + "".join(f' {name}="{value}"' for name, value in attributes.items()) + ">"

    return _ANCHOR.sub(rewrite, html), blocked


def safe_html(raw: bytes, allow_remote: bool) -> SafeHtml | None:
    """The message's HTML body, safe to show; None when it has no HTML body part."""
    msg = email.message_from_bytes(raw, policy=compat32)
    found = _Parts(images={})
    _collect(msg, found, 0)
    if found.html is None:
        return None
    try:
        charset = found.html.get_content_charset()
    except Exception:
        charset = None
    text, codec, notes = decode_bytes(payload_bytes(found.html), charset)
    warnings = list(notes)
    if len(text) > MAX_HTML_CHARS:
        text = text[:MAX_HTML_CHARS]
        warnings.append(f"HTML body cut at {MAX_HTML_CHARS} characters")
    rewriter = _Rewriter(found.images or {}, allow_remote)
    cleaned = _cleaner(rewriter).clean(text.replace("\x00", ""))
    blocked_links = 0
    if not allow_remote:
        cleaned, blocked_links = _inert_links(cleaned)
        # once more through the same walls: the rewrite above can only have removed an href,
        # and this keeps the guarantee that what leaves here is nh3's own output
        final = _Rewriter(found.images or {}, allow_remote=False, links_inert=True)
        cleaned = _cleaner(final).clean(cleaned)
    return SafeHtml(
        html=cleaned,
        blocked_images=rewriter.blocked_images,
        blocked_links=blocked_links,
        remote_allowed=allow_remote,
        charset=codec,
        inline_images=rewriter.inline_images,
        warnings=tuple(warnings),
    )


def frame_document(body: SafeHtml, lang: str = "") -> str:
    """A complete HTML document around the sanitised body, for the sandboxed frame."""
    lang_attr = f' lang="{escape(lang)}"' if lang else ""
    return (
        f'<!doctype html><html{lang_attr}><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        "<style>body{margin:8px;font-family:sans-serif;overflow-wrap:anywhere}"
        "img{max-width:100%;height:auto}</style>"
        f"</head><body>{body.html}</body></html>"
    )
