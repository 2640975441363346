"""Signing in through the page: local and LDAP accounts, clear refusals, sign-out, and the
language a reader chose."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from archiver import bootstrap
from archiver.access.signin import PrincipalCache, SignInService
from archiver.access.users import UserDirectory
from archiver.adapters.ldap import LdapProvider
from archiver.settings import Settings
from search_api import auth
from search_api.app import create_app
from tests.support.principals import add_user
from tests.support.slapd import DIRECTORY, GROUPS, Slapd, ldap_config
from tests.ui.conftest import LiveServer, screenshot, serving, sign_in, visible, wait

pytestmark = [pytest.mark.services]


def _refusal(driver: WebDriver) -> str:
    return str(visible(driver, "#sign-in-error").text)  # type: ignore[attr-defined]


def test_a_wrong_password_is_refused_clearly_and_a_right_one_lands_on_the_home_page(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    username = add_user(settings, ["compliance_officer"])
    browser.get(live_server.url + "/ui/")
    assert "/ui/sign-in" in browser.current_url
    screenshot(browser, "sign-in")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys("not the password")
    browser.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
    assert _refusal(browser) == "用户名或密码不正确。"
    assert browser.find_element(By.ID, "password").get_attribute("value") == ""
    sign_in(browser, live_server, username)
    assert browser.current_url.endswith("/ui/search")
    browser.find_element(By.ID, "sign-out").click()
    wait(browser).until(lambda d: "/ui/sign-in" in d.current_url)
    browser.get(live_server.url + "/ui/search")
    assert "/ui/sign-in?next=" in browser.current_url


def test_the_reader_can_switch_to_english_and_it_stays_so(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    browser.find_element(By.CSS_SELECTOR, ".languages a[lang=en]").click()
    wait(browser).until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
    assert "/ui/search" in browser.current_url
    assert browser.find_element(By.CSS_SELECTOR, "#search-form button.primary").text == "Search"
    browser.get(live_server.url + "/ui/account")
    assert browser.find_element(By.TAG_NAME, "h1").text == "My account"
    browser.find_element(By.CSS_SELECTOR, ".languages a[lang=zh-CN]").click()
    wait(browser).until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "我的账号")


@pytest.fixture(scope="module")
def ldap_server(slapd: Slapd, settings: Settings) -> Iterator[LiveServer]:
    """The app with LDAP sign-in against the private slapd (groups map to roles)."""
    directory = UserDirectory(
        bootstrap.json_store(settings),
        bootstrap.sign_in_limits(settings),
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )
    config = ldap_config(
        slapd, role_map={f"cn=compliance,{GROUPS}": ["compliance_officer"]}, department_map={}
    )
    service = SignInService(directory, [LdapProvider(config)], cache=PrincipalCache(0))
    app = create_app()
    for getter in (auth.get_sign_in, auth.get_authenticator, auth.get_principals):
        app.dependency_overrides[getter] = lambda: service
    app.dependency_overrides[auth.get_user_directory] = lambda: directory
    with serving(app) as server:
        yield server


def test_a_directory_account_signs_in_with_its_ldap_password(
    browser: WebDriver, ldap_server: LiveServer
) -> None:
    alice = next(u for u in DIRECTORY.users if u.uid == "alice")
    browser.get(ldap_server.url + "/ui/sign-in")
    assert "LDAP" in browser.find_element(By.CSS_SELECTOR, ".sign-in .hint").text
    sign_in(browser, ldap_server, alice.uid, alice.password)
    assert browser.current_url.endswith("/ui/search")
    assert browser.find_element(By.CSS_SELECTOR, "header .user").text == "alice"
