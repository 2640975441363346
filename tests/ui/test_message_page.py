"""The message page in a real browser: opened from the results by keyboard, headers with the
original offset, the HTML body in its frame, attachments and their text, the conversation,
retention, tags added by hand with their provenance, and the raw download."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from archiver.settings import Settings
from tests.support.principals import add_user
from tests.ui.conftest import LiveServer, fetch_in_page, screenshot, sign_in, text_of, visible, wait

pytestmark = [pytest.mark.services]

ATTACHMENT = "付款计划：第一期 30%，第二期 70%。\n".encode()


def _thread(marker: str) -> list[bytes]:
    b64 = base64.b64encode(ATTACHMENT).decode()
    subject = base64.b64encode(f"付款计划 {marker}".encode()).decode()
    first = (
        f"From: 王芳 <wang.fang@example.cn>\r\nTo: 李雷 <li.lei@example.cn>\r\n"
        f"Cc: legal@example.cn\r\nSubject: =?utf-8?B?{subject}?=\r\n"
        f"Message-ID: <{marker}-1@example.cn>\r\nDate: Tue, 4 Jun 2024 09:30:00 +0800\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
        "--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
        f"--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n付款计划见附件。{marker}\r\n"
        f"--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f'<p>付款计划见<b>附件</b>。{marker}</p><img src="http://127.0.0.1:9/pixel.gif">\r\n'
        "--b2--\r\n"
        "--b1\r\nContent-Type: text/plain; charset=utf-8; name=plan.txt\r\n"
        "Content-Disposition: attachment; filename*=utf-8''%E8%AE%A1%E5%88%92.txt\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b1--\r\n"
    ).encode()
    reply = (
        f"From: 李雷 <li.lei@example.cn>\r\nTo: 王芳 <wang.fang@example.cn>\r\n"
        f"Subject: =?utf-8?B?{base64.b64encode(f'回复：付款计划 {marker}'.encode()).decode()}?=\r\n"
        f"Message-ID: <{marker}-2@example.cn>\r\nIn-Reply-To: <{marker}-1@example.cn>\r\n"
        f"References: <{marker}-1@example.cn>\r\nDate: Tue, 4 Jun 2024 10:00:00 -0700\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n收到。{marker}\r\n"
    ).encode()
    return [first, reply]


@pytest.fixture(scope="module")
def thread(ingest: Callable[[list[bytes]], list[str]]) -> tuple[str, list[str]]:
    marker = f"付{uuid.uuid4().hex[:6]}"
    return marker, ingest(_thread(marker))


def test_an_officer_opens_a_message_from_the_results_and_sees_all_of_it(
    browser: WebDriver, live_server: LiveServer, settings: Settings, thread: tuple[str, list[str]]
) -> None:
    marker, (first, _) = thread
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    browser.get(f"{live_server.url}/ui/search?q={marker}&sort=date_asc")
    wait(browser).until(lambda d: text_of(d, "#total") == "共 2 封邮件")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("j")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait(browser).until(lambda d: d.current_url.endswith(f"/ui/messages/{first}"))
    wait(browser).until(lambda d: text_of(d, "#subject") == f"付款计划 {marker}")
    headers = text_of(browser, "#headers")
    assert "王芳 <wang.fang@example.cn>" in headers and "legal@example.cn" in headers
    assert "2024-06-04 09:30 +0800" in headers  # as written, and in the display time zone
    # the HTML body is in its sandboxed frame, the remote image held back
    frame = visible(browser, "#body-html iframe.mail-frame")
    assert frame.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"  # type: ignore[attr-defined]
    assert "1" in text_of(browser, ".mail-frame-bar")
    # the attachment, downloaded: the bytes hashed at ingest
    link = browser.find_element(By.CSS_SELECTOR, "#attachments a")
    assert link.text == "计划.txt"
    got = fetch_in_page(browser, str(link.get_attribute("href")))
    digest = hashlib.sha256(ATTACHMENT).hexdigest()
    assert got["status"] == 200 and got["sha"] == got["digest"] == digest
    assert got["disposition"].startswith("attachment;")
    browser.find_element(By.CSS_SELECTOR, "#attachments button").click()
    wait(browser).until(lambda d: "第一期 30%" in text_of(d, "#attachment-text"))
    # the conversation, the retention decision, the raw message
    wait(browser).until(
        lambda d: marker in text_of(d, "#conversation") and "回复" in text_of(d, "#conversation")
    )
    wait(browser).until(lambda d: "原因" in text_of(d, "#retention"))
    raw = fetch_in_page(
        browser, str(browser.find_element(By.ID, "raw-download").get_attribute("href"))
    )
    assert raw["status"] == 200 and raw["digest"] == first
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "message")


def test_a_tag_added_by_hand_shows_who_added_it(
    browser: WebDriver, live_server: LiveServer, settings: Settings, thread: tuple[str, list[str]]
) -> None:
    _, (_, reply) = thread
    username = add_user(settings, ["compliance_officer"])
    sign_in(browser, live_server, username)
    browser.get(f"{live_server.url}/ui/messages/{reply}")
    box = visible(browser, "#new-tag")
    box.send_keys("project/付款", Keys.ENTER)  # type: ignore[attr-defined]
    wait(browser).until(lambda d: "project/付款" in text_of(d, "#tags"))
    assert username in text_of(browser, "#tag-events")
    # -0700 as written; the display time zone is a day later
    assert "2024-06-04 10:00 -0700" in text_of(browser, "#headers")


def test_a_department_lead_sees_nothing_of_another_departments_message(
    browser: WebDriver, live_server: LiveServer, settings: Settings, thread: tuple[str, list[str]]
) -> None:
    _, (first, _) = thread
    sign_in(browser, live_server, add_user(settings, ["department_lead"], ["销售部"]))
    browser.get(f"{live_server.url}/ui/messages/{first}")
    # the message is not tagged for their department: for them it does not exist
    wait(browser).until(lambda d: text_of(d, "#subject") == "找不到这封邮件，或您无权查看。")
    assert not browser.find_elements(By.ID, "raw-download")
    assert text_of(browser, "#headers") == ""
