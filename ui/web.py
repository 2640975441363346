"""The UI on the app: its pages, its static files, and errors answered as pages."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from ui import mail_frame, pages
from ui.i18n import LANGUAGE_COOKIE, Translator, choose_language
from ui.render import STATIC, render

UI_PREFIX = "/ui"


def is_ui(request: Request) -> bool:
    return request.url.path == UI_PREFIX or request.url.path.startswith(UI_PREFIX + "/")


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """A domain error on a page, as a page (the API answers JSON for the same error)."""
    kind = {403: "forbidden", 404: "not_found"}.get(status, "failed")
    t = Translator(
        choose_language(
            request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
        )
    )
    return render(
        request,
        "error.html",
        t,
        None,
        page="error",
        params={"kind": kind, "message": message},
        status_code=status,
    )


def mount(app: FastAPI) -> None:
    app.include_router(pages.router)
    app.include_router(mail_frame.router)
    app.mount(f"{UI_PREFIX}/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/", status_code=307)
