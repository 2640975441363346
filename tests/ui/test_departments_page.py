"""A department lead's home in a real browser: their department's tags and months with counts
that lead to the same number of messages in the search, and nothing of another department."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from archiver.settings import Settings
from search_api.app import create_app
from tests.support.mail import raw_mail
from tests.support.principals import add_user, as_role
from tests.ui.conftest import LiveServer, screenshot, sign_in, text_of, wait

pytestmark = [pytest.mark.services]


@pytest.fixture(scope="module")
def marker(settings: Settings, ingest: Callable[[list[bytes]], list[str]]) -> str:
    """Three messages: two of 销售部 (one about project 凤凰), one of 财务部."""
    word = f"部{uuid.uuid4().hex[:6]}"
    ids = ingest([raw_mail(n, f"季度报价 {word} {n}", f"{word[1:]}.example.cn") for n in range(3)])
    officer = TestClient(create_app(), headers=as_role(settings, "compliance_officer"))
    for message, tags in zip(
        ids,
        [["department/销售部", "project/凤凰"], ["department/销售部"], ["department/财务部"]],
        strict=True,
    ):
        response = officer.post(f"/api/messages/{message}/tags", json={"add": tags})
        assert response.status_code == 200, response.text
    return word


def test_a_lead_sees_their_department_and_its_counts_lead_to_the_messages(
    browser: WebDriver, live_server: LiveServer, settings: Settings, marker: str
) -> None:
    sign_in(browser, live_server, add_user(settings, ["department_lead"], ["销售部"]))
    assert browser.current_url.endswith("/ui/departments")  # a lead's home
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-department]"))
    sections = [
        e.get_attribute("data-department")
        for e in browser.find_elements(By.CSS_SELECTOR, "[data-department]")
    ]
    assert sections == ["销售部"]
    assert "财务部" not in browser.find_element(By.ID, "main").text
    screenshot(browser, "departments")
    link = browser.find_element(By.XPATH, "//ul[@class='tree']//a[span[1][text()='凤凰']]")
    shown = int(link.find_element(By.CSS_SELECTOR, ".count").text.replace(",", ""))
    link.click()
    wait(browser).until(
        lambda d: "/ui/search" in d.current_url and text_of(d, "#total") != "加载中…"
    )
    assert text_of(browser, "#total") == f"共 {shown} 封邮件"
    # the other department's message is not there for them, by any search
    browser.get(f"{live_server.url}/ui/search?q={marker}")
    wait(browser).until(lambda d: text_of(d, "#total") == "共 2 封邮件")


def test_an_officer_sees_every_department(
    browser: WebDriver, live_server: LiveServer, settings: Settings, marker: str
) -> None:
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    browser.get(f"{live_server.url}/ui/departments")
    wait(browser).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-department]")) >= 2)
    names = {
        e.get_attribute("data-department")
        for e in browser.find_elements(By.CSS_SELECTOR, "[data-department]")
    }
    assert {"销售部", "财务部"} <= names
