"""Matters, holds and exports in a real browser: a legal user creates a matter and holds (the
live count is exactly the unique mail ingested for it), releases a hold with a reason, exports
the matter, follows the build to its end, downloads the part through the browser's session and
finds the download in the custody log; an export of a search is cancelled while queued."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from archiver import bootstrap
from archiver.settings import Settings
from tests.support.principals import add_user
from tests.ui.conftest import (
    LiveServer,
    console_problems,
    screenshot,
    sign_in,
    text_of,
    texts_of,
    visible,
    wait,
)

pytestmark = [pytest.mark.services]


@dataclass(frozen=True)
class Mail:
    marker: str  # a made-up word in the subject and body of the matter's mail
    custodian: str  # the address all of it is from


def _mail(n: int, sender: str, subject: str) -> bytes:
    encoded = base64.b64encode(subject.encode()).decode()
    return (
        f"From: 王芳 <{sender}>\r\nTo: legal@example.cn\r\nSubject: =?utf-8?B?{encoded}?=\r\n"
        f"Message-ID: <ui-matter-{uuid.uuid4().hex}-{n}@example.cn>\r\n"
        f"Date: Tue, 4 Jun 2024 1{n}:00:00 +0800\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{subject}，请保留全部往来邮件。\r\n"
    ).encode()


@pytest.fixture(scope="module")
def mail(ingest: Callable[[list[bytes]], list[str]]) -> Mail:
    """Three messages of the custodian about the marker, one of hers about something else, and
    one about the marker from someone else: a hold on her and the marker covers exactly 3."""
    marker = f"诉{uuid.uuid4().hex[:6]}"
    custodian = f"wang.fang.{uuid.uuid4().hex[:6]}@example.cn"
    raws = [_mail(n, custodian, f"供货纠纷 {marker} 第{n}封") for n in range(3)]
    raws.append(_mail(3, custodian, "周五午饭"))
    raws.append(_mail(4, f"other.{uuid.uuid4().hex[:6]}@example.cn", f"供货纠纷 {marker}"))
    ingest(raws)
    return Mail(marker, custodian)


def _fill(driver: WebDriver, values: dict[str, str]) -> None:
    for element_id, value in values.items():
        field = driver.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(value)


def _add_hold(driver: WebDriver, name: str, values: dict[str, str], covers: int) -> None:
    _fill(driver, {"hold-name": name, **values})
    # the live count: asked once typing pauses, by the hold's own query
    wait(driver).until(
        lambda d: d.find_element(By.ID, "hold-count").get_attribute("data-matching") == str(covers)
    )
    before = len(texts_of(driver, "#hold-rows .hold-row"))
    driver.find_element(By.CSS_SELECTOR, "#hold-form button[type=submit]").click()
    wait(driver).until(lambda d: len(texts_of(d, "#hold-rows .hold-row")) == before + 1)


def test_legal_creates_a_matter_and_holds_releases_one_and_exports_the_matter(
    browser: WebDriver, live_server: LiveServer, settings: Settings, mail: Mail
) -> None:
    sign_in(browser, live_server, add_user(settings, ["legal"]), next_path="/ui/matters")
    assert "/ui/matters" in browser.current_url
    wait(browser).until(lambda d: text_of(d, "#matters-count").startswith("共"))
    name = f"供货纠纷案 {mail.marker}"
    _fill(browser, {"matter-name": name, "matter-case": "(2026)京01民初1号"})
    browser.find_element(By.ID, "matter-description").send_keys("与供应商的合同纠纷")
    browser.find_element(By.CSS_SELECTOR, "#matter-form button[type=submit]").click()
    wait(browser).until(lambda d: "/ui/matters/matter-" in d.current_url)
    matter_id = browser.current_url.rsplit("/", 1)[1]
    wait(browser).until(lambda d: text_of(d, "#matter-name") == name)

    # the count follows the criteria as they are typed: the custodian alone has 4 messages
    _fill(browser, {"hold-addresses": mail.custodian})
    wait(browser).until(
        lambda d: d.find_element(By.ID, "hold-count").get_attribute("data-matching") == "4"
    )
    _add_hold(browser, "王芳 供货纠纷", {"hold-query": mail.marker}, 3)
    assert text_of(browser, "#hold-count") == ""  # the form starts again
    _add_hold(browser, "王芳 午饭", {"hold-addresses": mail.custodian, "hold-query": "午饭"}, 1)
    # a bad query is shown with its position, and nothing is counted
    _fill(browser, {"hold-query": f"{mail.marker} from:"})
    problem = visible(browser, "#hold-problem")
    assert problem.text  # type: ignore[attr-defined]
    browser.find_element(By.ID, "hold-query").clear()
    browser.find_element(By.ID, "hold-addresses").clear()
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "matter")

    # releasing needs a reason
    rows = browser.find_elements(By.CSS_SELECTOR, "#hold-rows .hold-row")
    lunch = next(r for r in rows if "午饭" in r.text)
    lunch_id = lunch.get_attribute("data-hold")
    lunch.find_element(By.CSS_SELECTOR, "button.release-hold").click()
    reason = visible(browser, "#release-reason")
    reason.send_keys("   ")  # type: ignore[attr-defined]
    browser.find_element(By.CSS_SELECTOR, "#release-form button[type=submit]").click()
    wait(browser).until(
        lambda d: "error" in (d.find_element(By.ID, "notice").get_attribute("class") or "")
    )
    reason.send_keys("与本案无关")  # type: ignore[attr-defined]
    browser.find_element(By.CSS_SELECTOR, "#release-form button[type=submit]").click()
    released = f"#hold-rows .hold-row[data-hold='{lunch_id}'] .release-reason"
    wait(browser).until(lambda d: text_of(d, released) == "与本案无关")
    assert not browser.find_elements(
        By.CSS_SELECTOR, f"#hold-rows .hold-row[data-hold='{lunch_id}'] button.release-hold"
    )
    wait(browser).until(lambda d: "1 个生效 / 共 2 个保全" in text_of(d, "#holds-count"))
    # the background recompute applies the holds; the page follows it to the end
    wait(browser).until(
        lambda d: sorted(texts_of(d, "#hold-rows .held")) == ["0", "已保全 3 · 匹配 3"]
    )

    # export the matter: its one active hold, 3 messages
    browser.find_element(By.ID, "export-matter").click()
    wait(browser).until(lambda d: "/ui/exports/exp-" in d.current_url)
    export_id = browser.current_url.rsplit("/", 1)[1]
    wait(browser).until(lambda d: text_of(d, "#export-name") == name)
    assert text_of(browser, "#export-status") == "排队中"
    assert browser.find_element(By.ID, "cancel-export").is_displayed()
    # no worker runs in the tests: build it here, as `mailvault export create --here` does
    job = bootstrap.export_builder(settings).build(export_id)
    assert job.status == "done" and job.progress.selected == 3, job
    wait(browser).until(lambda d: text_of(d, "#export-status") == "已完成")
    progress = browser.find_element(By.ID, "export-progress")
    assert progress.get_attribute("value") == "100"
    assert "3 / 3" in text_of(browser, "#progress-text")
    assert not browser.find_element(By.ID, "cancel-export").is_displayed()
    wait(browser).until(lambda d: text_of(d, "#verification") == "清单已由本归档的密钥签名")
    assert job.key_fingerprint in text_of(browser, "#verify-fields")
    link = wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "a.part-link")))
    assert job.parts[0].sha256 in text_of(browser, "#part-rows")
    built = "#custody-rows .custody-row[data-event='built']"
    wait(browser).until(lambda d: len(texts_of(d, built)) == 1)
    screenshot(browser, "export")

    # the part, fetched through the browser's own session
    fetched = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: "same-origin"}).then(async (response) => {
          const bytes = new Uint8Array(await response.arrayBuffer());
          let binary = "";
          for (let i = 0; i < bytes.length; i += 0x8000) {
            binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
          }
          done({status: response.status, sha: response.headers.get("X-Content-SHA256"),
                body: btoa(binary)});
        }).catch((error) => done({status: 0, sha: String(error), body: ""}));
        """,
        link.get_attribute("href"),
    )
    body = base64.b64decode(fetched["body"])
    assert fetched["status"] == 200, fetched["sha"]
    assert fetched["sha"] == hashlib.sha256(body).hexdigest() == job.parts[0].sha256
    browser.find_element(By.ID, "custody-refresh").click()
    download = "#custody-rows .custody-row[data-event='download']"
    wait(browser).until(lambda d: len(texts_of(d, download)) == 1)
    assert "下载" in text_of(browser, download) and job.parts[0].name in text_of(browser, download)

    # the exports list shows it finished, with its expiry
    browser.get(f"{live_server.url}/ui/exports")
    row = f"#export-rows .export-row[data-export='{export_id}']"
    wait(browser).until(lambda d: "已完成" in text_of(d, row))
    assert browser.find_element(By.CSS_SELECTOR, f"{row} progress").get_attribute("value") == "100"
    screenshot(browser, "exports")
    browser.get(f"{live_server.url}/ui/matters")
    wait(browser).until(lambda d: name in text_of(d, "#matter-rows"))
    screenshot(browser, "matters")
    assert matter_id


def test_an_export_of_a_search_is_created_and_cancelled_while_it_waits(
    browser: WebDriver, live_server: LiveServer, settings: Settings, mail: Mail
) -> None:
    sign_in(browser, live_server, add_user(settings, ["legal"]), next_path="/ui/exports")
    # the list holds every export this user could have asked for (the whole archive's)
    wait(browser).until(lambda d: text_of(d, "#exports-count").startswith("共"))
    _fill(browser, {"export-name": f"检索导出 {mail.marker}", "export-query": mail.marker})
    browser.find_element(By.ID, "export-load-file").click()
    browser.find_element(By.CSS_SELECTOR, "#export-form button[type=submit]").click()
    wait(browser).until(lambda d: "/ui/exports/exp-" in d.current_url)
    wait(browser).until(lambda d: text_of(d, "#export-status") == "排队中")
    assert "DAT" in text_of(browser, "#export-fields")
    cancel = browser.find_element(By.ID, "cancel-export")
    cancel.click()
    browser.switch_to.alert.accept()
    wait(browser).until(lambda d: text_of(d, "#export-status") == "已取消")
    wait(browser).until(
        lambda d: len(texts_of(d, "#custody-rows .custody-row[data-event='cancelled']")) == 1
    )
    assert not browser.find_element(By.ID, "cancel-export").is_displayed()

    # in English, at a tablet's width: one column, nothing wider than the screen
    export_path = urlsplit(browser.current_url).path
    browser.get(f"{live_server.url}/ui/language/en?next={export_path}")
    wait(browser).until(lambda d: text_of(d, "#export-status") == "Cancelled")
    assert "Chain of custody" in text_of(browser, "main")
    browser.set_window_size(800, 1000)
    try:
        browser.get(f"{live_server.url}/ui/exports")
        wait(browser).until(lambda d: text_of(d, "#exports-count").endswith("exports"))
        wide: bool = browser.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth"
        )
        assert not wide
        form = browser.find_element(By.ID, "export-form").rect
        table = browser.find_element(By.ID, "export-rows").rect
        assert form["y"] > table["y"]  # the form below the list, not squeezed beside it
        screenshot(browser, "exports-tablet")
    finally:
        browser.set_window_size(1366, 900)


def test_the_pages_are_closed_to_a_role_without_the_permission(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    sign_in(browser, live_server, add_user(settings, ["auditor"]))
    nav = text_of(browser, "header nav")
    assert "案件与保全" not in nav and "证据导出" not in nav
    browser.get(f"{live_server.url}/ui/matters")
    assert "matters-count" not in browser.page_source
    console_problems(browser)  # the page's 403 is expected: drained, not a failure
