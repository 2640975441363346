"""The users page in a real browser: an administrator makes a department-scoped role and a local
user with it, disables the user, and the user's sign-in then fails; someone without
manage_users gets the forbidden page and no Users link."""

from __future__ import annotations

import uuid

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from archiver import bootstrap
from archiver.settings import Settings
from tests.support.principals import PASSWORD, add_user
from tests.ui.conftest import LiveServer, screenshot, sign_in, visible, wait

pytestmark = [pytest.mark.services]


def _exists(driver: WebDriver, css: str) -> bool:
    return bool(driver.execute_script("return !!document.querySelector(arguments[0])", css))


def test_an_administrator_creates_a_scoped_user_disables_them_and_their_sign_in_fails(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    marker = uuid.uuid4().hex[:8]
    role, username = f"scoped-{marker}", f"u-sales-{marker}"
    sign_in(browser, live_server, add_user(settings, ["admin"]), next_path="%2Fui%2Fusers")
    assert "/ui/users" in browser.current_url
    wait(browser).until(lambda d: _exists(d, "#roles-body tr[data-role='admin']"))

    visible(browser, "#role-name").send_keys(role)  # type: ignore[attr-defined]
    browser.find_element(By.ID, "role-description").send_keys("销售部负责人")
    for permission in ("search", "view"):
        browser.find_element(By.ID, f"perm-{permission}").click()
    browser.find_element(By.ID, "role-scoped").click()
    browser.find_element(By.CSS_SELECTOR, "#role-form button[type=submit]").click()
    wait(browser).until(lambda d: _exists(d, f"#new-roles input[data-role='{role}']"))
    saved = bootstrap.user_directory(settings).roles()[role]
    assert saved.department_scoped and set(saved.permissions) == {"search", "view"}

    browser.find_element(By.ID, "new-username").send_keys(username)
    browser.find_element(By.ID, "new-display-name").send_keys("孙八")
    browser.find_element(By.ID, "new-user-password").send_keys(PASSWORD)
    browser.find_element(By.ID, f"new-role-{role}").click()
    browser.find_element(By.ID, "new-departments").send_keys("销售部")
    browser.find_element(By.CSS_SELECTOR, "#new-user-form button[type=submit]").click()
    wait(browser).until(lambda d: _exists(d, f"#users-body tr[data-user='{username}']"))
    row = browser.find_element(By.CSS_SELECTOR, f"#users-body tr[data-user='{username}']")
    assert role in row.text and "销售部" in row.text and "本地" in row.text
    assert "$" not in browser.find_element(By.TAG_NAME, "body").text  # no password hash shown
    screenshot(browser, "users")

    row.find_element(By.CSS_SELECTOR, "button").click()
    assert f"user={username}" in browser.current_url
    departments = visible(browser, "#edit-departments")
    departments.clear()  # type: ignore[attr-defined]
    departments.send_keys("销售部，市场部")  # type: ignore[attr-defined]
    browser.find_element(By.CSS_SELECTOR, "#edit-user-form button[type=submit]").click()
    wait(browser).until(
        lambda d: (
            "市场部"
            in d.execute_script(
                "return document.querySelector(`#users-body tr[data-user='${arguments[0]}']`)"
                ".textContent",
                username,
            )
        )
    )
    assert set(bootstrap.user_directory(settings).get(username).departments) == {"销售部", "市场部"}
    new_password = f"{PASSWORD} {marker}"
    browser.find_element(By.ID, "new-password").send_keys(new_password)
    browser.find_element(By.CSS_SELECTOR, "#password-form button[type=submit]").click()
    wait(browser).until(
        lambda d: d.find_element(By.ID, "notice").text == f"{username} 的密码已设置，其会话已结束"
    )
    assert browser.find_element(By.ID, "new-password").get_attribute("value") == ""
    browser.set_window_size(800, 1000)  # a tablet
    try:
        screenshot(browser, "users-tablet")
    finally:
        browser.set_window_size(1366, 900)
    browser.find_element(By.ID, "toggle-disabled").click()
    wait(browser).until(ec.alert_is_present()).accept()
    wait(browser).until(lambda d: _exists(d, f"#users-body tr.disabled[data-user='{username}']"))
    assert bootstrap.user_directory(settings).get(username).disabled

    browser.delete_all_cookies()
    browser.get(live_server.url + "/ui/sign-in")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(new_password)
    browser.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
    problem = visible(browser, "#sign-in-error")
    assert problem.text == "该账号已停用。"  # type: ignore[attr-defined]
    assert "/ui/sign-in" in browser.current_url


def test_without_manage_users_the_page_is_forbidden_and_not_in_the_nav(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    assert not browser.find_elements(By.CSS_SELECTOR, "header nav a[href='/ui/users']")
    browser.get(live_server.url + "/ui/users")
    heading = visible(browser, ".error-page h1")
    assert heading.text == "您没有权限打开此页面"  # type: ignore[attr-defined]
    assert not browser.find_elements(By.CSS_SELECTOR, "header nav a[href='/ui/users']")
    assert not browser.find_elements(By.ID, "users-table")


def test_a_generated_password_is_shown_once_and_names_stay_text(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    admin = add_user(settings, ["admin"])
    username = f"u-new-{uuid.uuid4().hex[:8]}"
    hostile = "<img src=x onerror=alert(1)>"
    sign_in(browser, live_server, admin, next_path="%2Fui%2Fusers")
    wait(browser).until(lambda d: _exists(d, "#new-roles input[data-role='auditor']"))
    browser.find_element(By.ID, "new-username").send_keys(username)
    browser.find_element(By.ID, "new-display-name").send_keys(hostile)
    browser.find_element(By.ID, "new-role-auditor").click()
    browser.find_element(By.CSS_SELECTOR, "#new-user-form button[type=submit]").click()
    generated = visible(browser, "#generated code").text  # type: ignore[attr-defined]
    assert generated
    row = browser.find_element(By.CSS_SELECTOR, f"#users-body tr[data-user='{username}']")
    assert hostile in row.text and not row.find_elements(By.TAG_NAME, "img")
    # the generated password signs the new user in
    browser.delete_all_cookies()
    sign_in(browser, live_server, username, password=generated)
    assert "/ui/sign-in" not in browser.current_url

    # an administrator cannot disable themselves from the page
    browser.delete_all_cookies()
    sign_in(browser, live_server, admin, next_path=f"%2Fui%2Fusers%3Fuser%3D{admin}")
    wait(browser).until(
        lambda d: (
            d.find_element(By.ID, "edit-user").is_displayed()
            and not d.find_element(By.ID, "toggle-disabled").is_enabled()
        )
    )
