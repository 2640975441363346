"""Rendering a page: the Jinja2 environment, the boot data a page's script reads, and the
security headers every UI response carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from archiver.settings import get_settings
from search_api.auth import Credential
from ui.i18n import LANGUAGES, Translator

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# Scripts and styles only from the archive itself: no inline code, no inline style, so an
# injected fragment can neither run nor restyle the page. Message bodies are shown in a frame of
# their own with a stricter policy (ui/mail_frame.py).
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
    "Cache-Control": "no-store",
}

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: Request,
    template: str,
    t: Translator,
    found: Credential | None,
    *,
    page: str,
    params: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    from ui.pages import PAGES  # the nav lists the pages; pages import this module

    principal = found.principal if found is not None else None
    nav = [
        p
        for p in PAGES.values()
        if p.in_nav and p.built and principal is not None and p.open_to(principal)
    ]
    boot: dict[str, Any] = {
        "page": page,
        "lang": t.language,
        "tz": get_settings().display_timezone,
        "params": params,
        "messages": t.messages,
        "user": None,
    }
    if principal is not None:
        boot["user"] = {
            "username": principal.username,
            "roles": [r.name for r in principal.roles],
            "permissions": sorted(principal.permissions),
            "departments": sorted(principal.departments),
        }
    html = environment.get_template(template).render(
        t=t,
        lang=t.language,
        languages=LANGUAGES,
        page=page,
        page_script=(STATIC / "pages" / f"{page}.js").is_file(),
        page_style=(STATIC / "pages" / f"{page}.css").is_file(),
        params=params,
        nav=nav,
        user=boot["user"],
        csrf=found.session.csrf_token if found is not None and found.session else "",
        boot=boot,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
