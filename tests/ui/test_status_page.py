"""The Status page in a real browser: an administrator sees each service's health and the
figures; nobody else may open it."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from archiver.settings import Settings
from tests.support.principals import add_user
from tests.ui.conftest import LiveServer, screenshot, sign_in, visible, wait

pytestmark = [pytest.mark.services]


def test_an_administrator_sees_the_health_of_every_service_and_the_figures(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    sign_in(browser, live_server, add_user(settings, ["admin"]), next_path="/ui/status")
    assert browser.current_url.endswith("/ui/status")

    wait(browser).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#services tr[data-up='1']")) == 3
    )
    rows = browser.find_elements(By.CSS_SELECTOR, "#services tbody tr")
    assert [r.get_attribute("data-service") for r in rows] == ["elasticsearch", "s3", "redis"]
    assert [r.find_element(By.CSS_SELECTOR, ".badge").text for r in rows] == ["正常"] * 3
    assert "Elasticsearch" in rows[0].text
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#ingest dt")]
    assert "已归档邮件" in labels and "投递到可搜索，95百分位" in labels
    assert browser.find_elements(By.CSS_SELECTOR, "#queues dd")
    assert browser.find_element(By.ID, "checked-at").get_attribute("datetime")
    assert not browser.find_element(By.ID, "status-errors").is_displayed()
    nav = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "header nav a")]
    assert "状态" in nav
    screenshot(browser, "status")


@pytest.mark.parametrize("role", ["auditor", "compliance_officer"])
def test_other_roles_may_not_open_it(
    browser: WebDriver, live_server: LiveServer, settings: Settings, role: str
) -> None:
    sign_in(browser, live_server, add_user(settings, [role]))
    browser.get(live_server.url + "/ui/status")
    visible(browser, "main")
    assert not browser.find_elements(By.ID, "services")
    nav = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "header nav a")]
    assert "状态" not in nav
