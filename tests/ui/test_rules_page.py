"""The rules page in a real browser: an administrator writes a rule, previews what it would tag,
saves and applies it to archived mail, and the search API then finds the tag; the directory is
imported from a file and its outcome shown."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from archiver.settings import Settings
from tests.support.principals import add_user, bearer
from tests.ui.conftest import LiveServer, screenshot, sign_in, text_of, visible, wait

pytestmark = [pytest.mark.services]


def _mail(n: int, marker: str) -> bytes:
    subject = base64.b64encode(f"项目周报 {marker} 第{n}期".encode()).decode()
    return (
        f"From: 王五 <wang.wu@rules.example.cn>\r\nTo: li.si@example.cn\r\n"
        f"Subject: =?utf-8?B?{subject}?=\r\nMessage-ID: <rules-{marker}-{n}@example.cn>\r\n"
        f"Date: Tue, 4 Jun 2024 10:0{n}:00 +0800\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"本周进展见附件。\r\n"
    ).encode()


def test_an_administrator_previews_saves_and_applies_a_rule_and_search_finds_the_tag(
    browser: WebDriver,
    live_server: LiveServer,
    settings: Settings,
    ingest: Callable[[list[bytes]], list[str]],
) -> None:
    marker = f"rk{uuid.uuid4().hex[:8]}"
    raws = [_mail(n, marker) for n in range(3)]
    ingest(raws)
    ingest(raws[:1])  # the same message again: archived once, counted once
    tag = f"project/{marker}"

    sign_in(browser, live_server, add_user(settings, ["admin"]), next_path="%2Fui%2Frules")
    assert "/ui/rules" in browser.current_url
    wait(browser).until(lambda d: text_of(d, "#rules-count") != "加载中…")
    browser.find_element(By.ID, "rule-name").send_keys(f"weekly-{marker}")
    browser.find_element(By.ID, "rule-description").send_keys("项目周报")
    Select(browser.find_element(By.ID, "rule-field")).select_by_value("subject")
    Select(browser.find_element(By.ID, "rule-op")).select_by_value("contains")
    browser.find_element(By.ID, "rule-value").send_keys(marker)
    browser.find_element(By.ID, "rule-tags").send_keys(tag)

    browser.find_element(By.ID, "preview-rule").click()
    wait(browser).until(
        lambda d: (
            d.execute_script(
                "const e = document.querySelector(`#preview li[data-tag='${arguments[0]}']`);"
                "return e ? e.dataset.gained : null",
                tag,
            )
            == "3"
        )
    )
    screenshot(browser, "rules")

    browser.find_element(By.CSS_SELECTOR, "#rule-form button[type=submit]").click()
    wait(browser).until(
        lambda d: d.execute_script(
            "return !!document.querySelector(`#rules-body tr[data-rule='${arguments[0]}']`)",
            f"weekly-{marker}",
        )
    )
    assert "rule=weekly-" in browser.current_url
    apply = browser.find_element(By.ID, "apply-rule")
    wait(browser).until(lambda d: apply.is_enabled())
    apply.click()
    wait(browser).until(
        lambda d: (
            d.execute_script("return document.getElementById('apply-progress').dataset.done")
            == "true"
        )
    )
    assert "3" in text_of(browser, "#apply-text")

    officer = bearer(settings, add_user(settings, ["compliance_officer"]))

    def tagged(_: object) -> bool:
        answer = httpx.get(
            f"{live_server.url}/api/search", params={"q": f"tag:{tag}"}, headers=officer
        )
        answer.raise_for_status()
        return bool(answer.json()["total"] == 3)

    wait(browser).until(tagged)
    browser.get(f"{live_server.url}/ui/rules?rule=weekly-{marker}")  # editing it again
    wait(browser).until(
        lambda d: d.find_element(By.ID, "rule-value").get_attribute("value") == marker
    )
    assert browser.find_element(By.ID, "rule-tags").get_attribute("value") == tag
    browser.set_window_size(800, 1000)  # a tablet
    try:
        screenshot(browser, "rules-tablet")
    finally:
        browser.set_window_size(1366, 900)
    # an administrator reads no mail: the tags list shows no counts of theirs, but it loads
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tags table, #tags .empty"))


def test_the_directory_is_imported_from_a_file_and_the_outcome_shown(
    browser: WebDriver,
    live_server: LiveServer,
    settings: Settings,
    tmp_path: Path,
    ingest: Callable[[list[bytes]], list[str]],
) -> None:
    marker = uuid.uuid4().hex[:8]
    ingest(
        [
            (
                f"From: zhao-{marker}@dir.example.cn\r\nTo: x@example.cn\r\nSubject: hi\r\n"
                f"Message-ID: <dir-{marker}@example.cn>\r\nDate: Tue, 4 Jun 2024 10:00:00 +0800"
                "\r\n\r\nbody\r\n"
            ).encode()
        ]
    )
    csv = tmp_path / "directory.csv"
    csv.write_text(
        f"邮箱,姓名,部门\nzhao-{marker}@dir.example.cn,赵六,研发部\n"
        f"qian-{marker}@dir.example.cn,钱七,财务部\n",
        encoding="utf-8",
    )
    sign_in(browser, live_server, add_user(settings, ["admin"]), next_path="%2Fui%2Frules")
    visible(browser, "#directory-file").send_keys(str(csv))  # type: ignore[attr-defined]
    browser.find_element(By.ID, "directory-apply").click()
    browser.find_element(By.CSS_SELECTOR, "#directory-form button[type=submit]").click()
    outcome = visible(browser, "#directory-outcome .outcome")
    assert "导入完成" in outcome.text  # type: ignore[attr-defined]
    # re-tagged at once: the one archived message from 赵六 gains 研发部
    gained = browser.find_element(
        By.CSS_SELECTOR, "#directory-outcome li[data-tag='department/研发部']"
    ).get_attribute("data-gained")
    assert gained is not None and int(gained) >= 1
    browser.find_element(By.ID, "directory-filter").send_keys(marker)
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#directory-body tr")) == 2)
    assert "研发部" in text_of(browser, "#directory-body")
    screenshot(browser, "rules-directory")


def test_a_rule_writer_who_may_search_everything_sees_sample_subjects_in_english(
    browser: WebDriver,
    live_server: LiveServer,
    settings: Settings,
    ingest: Callable[[list[bytes]], list[str]],
) -> None:
    marker = f"rs{uuid.uuid4().hex[:8]}"
    ingest([_mail(n, marker) for n in range(2)])
    sign_in(browser, live_server, add_user(settings, ["admin", "compliance_officer"]))
    browser.get(f"{live_server.url}/ui/language/en?next=%2Fui%2Frules")
    assert visible(browser, "h1").text == "Rules & directory"  # type: ignore[attr-defined]
    browser.find_element(By.ID, "rule-value").send_keys(marker)
    browser.find_element(By.ID, "rule-tags").send_keys(f"project/{marker}")
    browser.find_element(By.ID, "preview-rule").click()
    wait(browser).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#preview .samples li")) == 2
    )
    assert f"project/{marker}: 2 messages gain it" in text_of(browser, "#preview")
    assert f"项目周报 {marker} 第0期" in text_of(browser, "#preview .samples")
