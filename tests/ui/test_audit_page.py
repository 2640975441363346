"""The audit page in a real browser: an auditor finds the search a unique user made moments
before, exports the same records as CSV, JSON and PDF through the page's own session, and sees
the chain verified; a tampered log is shown broken at its first altered record."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from archiver.audit.log import AuditLog
from archiver.audit.records import AuditAction
from archiver.settings import Settings
from search_api.app import create_app
from search_api.audit import get_audit_log
from tests.support.fakes import InMemoryAuditStore
from tests.support.principals import add_user
from tests.ui.conftest import LiveServer, fits_a_tablet, screenshot, serving, sign_in, visible, wait

# the whole session's log is verified: a few hundred records by the suite's end, on a loaded machine
CHAIN_SECONDS = 120

pytestmark = [pytest.mark.services]
TEMPLATE = Path(__file__).resolve().parents[2] / "ui" / "templates" / "pages" / "audit.html"

# fetch a URL with the page's session, as a click on the export link would download it
FETCH = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {credentials: "same-origin"})
  .then(async (r) => done({status: r.status, type: r.headers.get("content-type"),
                           body: await r.text()}))
  .catch((e) => done({status: 0, type: "", body: String(e)}));
"""


def _rows(driver: WebDriver) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = driver.execute_script(
        "return [...document.querySelectorAll('#audit-rows tr[data-seq]')]"
        ".map(r => ({...r.dataset}))"
    )
    return rows


def _found(driver: WebDriver, actor: str) -> bool:
    """The user's searches are listed, and nothing else. The list reads the log's search copy,
    which may trail the log by a moment, so the filter is applied again until it is."""
    rows = _rows(driver)  # the rows of this filter only, not the unfiltered first page's
    if rows and all((r["actor"], r["action"]) == (actor, "search") for r in rows):
        return True
    driver.find_element(By.CSS_SELECTOR, "#audit-form button[type=submit]").click()
    return False


def _chain_verified(driver: WebDriver) -> str:
    """The chain check's result once it has finished, which must be "intact"; otherwise the
    failure says what the page showed."""
    wait(driver, CHAIN_SECONDS).until(
        lambda d: d.execute_script(
            "const b = document.getElementById('chain');"
            "return b.classList.contains('intact') || b.classList.contains('broken')"
            " || document.getElementById('notice').textContent.trim() !== ''"
        )
    )
    shown: dict[str, str] = driver.execute_script(
        "return {box: document.getElementById('chain').className,"
        " status: document.getElementById('chain-status').textContent,"
        " issues: document.getElementById('chain-issues').textContent,"
        " notice: document.getElementById('notice').textContent}"
    )
    assert "intact" in shown["box"].split(), shown
    return shown["status"]


def _download(driver: WebDriver, link_id: str) -> dict[str, Any]:
    href = driver.find_element(By.ID, link_id).get_attribute("href")
    result: dict[str, Any] = driver.execute_async_script(FETCH, href)
    return result


def test_the_action_filter_offers_every_action() -> None:
    offered = set(re.findall(r'"(\w+)"', TEMPLATE.read_text("utf-8").split("{% for action in")[1]))
    assert {a.value for a in AuditAction} <= offered


def test_an_auditor_finds_a_users_search_exports_it_and_sees_the_chain_verified(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    searcher = add_user(settings, ["compliance_officer"])
    word = f"aud{uuid.uuid4().hex[:8]}"
    # straight to the search: the home page's own all-mail search, still answering after the
    # browser moved on, would be audited after this one
    sign_in(browser, live_server, searcher, next_path=quote(f"/ui/search?q={word}", safe=""))
    assert word in browser.current_url
    wait(browser).until(
        lambda d: (
            d.execute_script("return document.getElementById('total').textContent")
            not in ("", "加载中…")
        )
    )

    browser.delete_all_cookies()
    sign_in(browser, live_server, add_user(settings, ["auditor"]))
    assert "/ui/audit" in browser.current_url  # the auditor's only page is their home
    assert re.match(r"哈希链完整，直至第 [\d,]+ 条记录", _chain_verified(browser))

    visible(browser, "#f-actor").send_keys(searcher)  # type: ignore[attr-defined]
    browser.find_element(By.CSS_SELECTOR, "#f-action option[value='search']").click()
    wait(browser).until(lambda d: _found(d, searcher))
    assert {(r["actor"], r["action"]) for r in _rows(browser)} == {(searcher, "search")}
    assert f"actor={searcher}" in browser.current_url
    row = browser.find_element(By.CSS_SELECTOR, "#audit-rows tr[data-seq]")
    row.find_element(By.TAG_NAME, "summary").click()
    assert word in row.find_element(By.TAG_NAME, "pre").text  # the query, in the details
    screenshot(browser, "audit")

    csv = _download(browser, "export-csv")
    assert csv["status"] == 200 and csv["type"].startswith("text/csv")
    assert searcher in csv["body"] and word in csv["body"]
    exported = _download(browser, "export-json")
    assert exported["status"] == 200 and exported["type"] == "application/json"
    assert searcher in exported["body"] and "audit_search" not in exported["body"]
    pdf = _download(browser, "export-pdf")
    assert pdf["status"] == 200 and pdf["type"] == "application/pdf"
    assert pdf["body"].startswith("%PDF")
    fits_a_tablet(browser, "audit")


def test_times_are_typed_in_the_display_time_zone(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    sign_in(browser, live_server, add_user(settings, ["auditor"]))
    convert = """
    const done = arguments[arguments.length - 1];
    import("/ui/static/pages/audit-lib.js").then((m) => done([
      m.zonedToIso("2026-12-02T10:30", "Asia/Shanghai"),
      m.zonedToIso("2026-03-08T03:30", "America/New_York"),
      m.zonedToIso("2026-11-01T12:00", "America/New_York"),
      m.zonedToIso("", "Asia/Shanghai"),
    ]));
    """
    assert browser.execute_async_script(convert) == [
        "2026-12-02T02:30:00.000Z",
        "2026-03-08T07:30:00.000Z",  # the first hour of summer time
        "2026-11-01T17:00:00.000Z",  # back on standard time
        "",
    ]
    # a range in the future: nothing yet
    browser.execute_script("document.getElementById('f-since').value = '2999-01-01T00:00'")
    browser.find_element(By.CSS_SELECTOR, "#audit-form button[type=submit]").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "audit-total").text == "共 0 条记录")
    assert visible(browser, "#audit-rows .empty").text == "没有符合条件的记录。"  # type: ignore[attr-defined]


def test_the_page_in_english(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    sign_in(browser, live_server, add_user(settings, ["auditor"]))
    browser.get(f"{live_server.url}/ui/language/en?next=%2Fui%2Faudit")
    assert _chain_verified(browser).startswith("Chain intact up to record ")
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#audit-rows tr[data-seq]"))


@pytest.fixture
def tampered(settings: Settings, backends: None) -> Iterator[tuple[LiveServer, InMemoryAuditStore]]:
    """The app on an audit log of its own, whose stored records a test may alter as someone
    with write access to the bucket could (the session's log stays intact for the others)."""
    store = InMemoryAuditStore()
    app = create_app()
    app.dependency_overrides[get_audit_log] = lambda: AuditLog(store, None, seal_every=0)
    with serving(app) as server:
        yield server, store


def test_a_broken_chain_is_shown_with_the_first_record_at_fault(
    browser: WebDriver, settings: Settings, tampered: tuple[LiveServer, InMemoryAuditStore]
) -> None:
    server, store = tampered
    sign_in(browser, server, add_user(settings, ["auditor"]))  # record 1: the sign-in
    first = json.loads(store.records[1])
    store.records[1] = json.dumps({**first, "actor": "someone-else"}).encode()
    browser.get(f"{server.url}/ui/audit")
    status = visible(browser, "#chain.broken #chain-status")
    assert status.text.startswith("哈希链在第 1 条记录处断开")  # type: ignore[attr-defined]
    issues = visible(browser, "#chain-issues")
    assert "记录被修改" in issues.text  # type: ignore[attr-defined]
    visible(browser, "#notice.error")  # this log has no search copy: the list says so
    screenshot(browser, "audit-broken")
