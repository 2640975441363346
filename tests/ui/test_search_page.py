"""The search page in a real browser: sign in, search in Chinese, refine by a facet, a query
error shown at its position, the keyboard, and a session that ends mid-search."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from archiver import bootstrap
from archiver.settings import Settings
from tests.support.principals import add_user
from tests.ui.conftest import LiveServer, fits_a_tablet, screenshot, sign_in, visible, wait

pytestmark = [pytest.mark.services]


def _mail(n: int, word: str, subject: str, domain: str, body: str) -> bytes:
    return (
        f"From: 张三 <zhang.san@{domain}>\r\nTo: li.si@example.cn\r\n"
        f"Subject: =?utf-8?B?{__import__('base64').b64encode(subject.encode()).decode()}?=\r\n"
        f"Message-ID: <ui-{word}-{n}@{domain}>\r\nDate: Mon, 3 Jun 2024 1{n % 10}:00:00 +0800\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture(scope="module")
def word(ingest: Callable[[list[bytes]], list[str]]) -> str:
    """A made-up marker word and six messages about a 供应商合同 that carry it: four from one
    sender domain, two from another."""
    marker = f"审{uuid.uuid4().hex[:6]}"
    raws = [
        _mail(
            n,
            marker,
            f"关于供应商合同的审批 {n}",
            "north.example.cn" if n < 4 else "south.example.cn",
            f"各位同事：请审阅供应商合同，编号 {marker}。付款条款在第三页。",
        )
        for n in range(6)
    ]
    ingest(raws)
    return marker


def _total(driver: WebDriver) -> str:
    text: str = driver.execute_script("return document.getElementById('total').textContent")
    return text


def _results(driver: WebDriver) -> list[str]:
    # read in one script: the list is re-rendered as results arrive
    texts: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#results .hit .subject')].map(e => e.textContent)"
    )
    return texts


def test_an_officer_searches_in_chinese_refines_by_a_facet_and_pages_by_keyboard(
    browser: WebDriver, live_server: LiveServer, settings: Settings, word: str
) -> None:
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    assert "/ui/search" in browser.current_url
    box = visible(browser, "#q")
    box.send_keys(f"供应商合同 {word}", Keys.ENTER)  # type: ignore[attr-defined]
    wait(browser).until(lambda d: _total(d) == "共 6 封邮件" and len(_results(d)) == 6)
    marks = browser.find_elements(By.CSS_SELECTOR, "#results .snippet mark")
    assert any("供应商合同" in m.text or "供应商" in m.text for m in marks)
    # Chinese is shown as written: no spaces inserted between the characters
    assert "供应商合同" in browser.find_element(By.CSS_SELECTOR, "#results .snippet").text
    screenshot(browser, "search")

    domain = browser.find_element(
        By.XPATH, "//section[@class='facet']//button[.//span[text()='south.example.cn']]"
    )
    domain.click()
    wait(browser).until(lambda d: _total(d) == "共 2 封邮件" and len(_results(d)) == 2)
    assert "from:south.example.cn" in parse_qs(urlsplit(browser.current_url).query)["q"][0]
    assert (
        browser.find_element(By.CSS_SELECTOR, ".facet-value.active").get_attribute("aria-pressed")
        == "true"
    )

    # the keyboard: j moves to the first result, k stays on it, / goes back to the box
    browser.find_element(By.TAG_NAME, "body").send_keys("j")
    first = browser.switch_to.active_element
    assert first.get_attribute("data-item") is not None
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    assert browser.switch_to.active_element.get_attribute("id") == "q"


def test_a_syntax_error_is_shown_at_its_position_and_a_pasted_subject_is_searched_as_text(
    browser: WebDriver, live_server: LiveServer, settings: Settings, word: str
) -> None:
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    box = visible(browser, "#q")
    box.send_keys(f"{word} from:", Keys.ENTER)  # type: ignore[attr-defined]
    problem = visible(browser, "#query-problem")
    marked = problem.find_element(By.CSS_SELECTOR, ".at")  # type: ignore[attr-defined]
    echo = problem.find_element(By.ID, "query-echo").text  # type: ignore[attr-defined]
    assert echo.startswith(word) and marked.is_displayed()
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys(f"关于供应商合同的审批 1) {word}", Keys.ENTER)
    note = visible(browser, "#query-note")
    assert note.text  # type: ignore[attr-defined]
    wait(browser).until(lambda d: len(_results(d)) >= 1)


def test_a_session_that_ends_brings_the_reader_back_to_the_same_search(
    browser: WebDriver, live_server: LiveServer, settings: Settings, word: str
) -> None:
    username = add_user(settings, ["compliance_officer"])
    sign_in(browser, live_server, username)
    browser.get(f"{live_server.url}/ui/search?q={word}&sort=date")
    wait(browser).until(lambda d: len(_results(d)) == 6)
    sessions = bootstrap.sessions(settings)
    cookie = browser.get_cookie(settings.session_cookie_name)
    assert cookie is not None
    found = sessions.lookup(cookie["value"])
    assert found is not None
    sessions.revoke(found)  # as the idle timeout would
    browser.find_element(By.CSS_SELECTOR, "#sort option[value='date_asc']").click()
    wait(browser).until(lambda d: "/ui/sign-in" in d.current_url)
    assert visible(browser, "#sign-in-error").text  # type: ignore[attr-defined]
    browser.find_element(By.ID, "username").send_keys(username)
    from tests.support.principals import PASSWORD

    browser.find_element(By.ID, "password").send_keys(PASSWORD, Keys.ENTER)
    wait(browser).until(lambda d: "/ui/search" in d.current_url)
    query = parse_qs(urlsplit(browser.current_url).query)
    assert query["q"] == [word] and query["sort"] == ["date_asc"]
    wait(browser).until(lambda d: len(_results(d)) == 6)


def test_every_signed_out_page_leads_to_sign_in_and_back(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    browser.get(f"{live_server.url}/ui/search?q=合同")
    assert "/ui/sign-in?next=" in browser.current_url
    sign_in(
        browser,
        live_server,
        add_user(settings, ["compliance_officer"]),
        next_path="%2Fui%2Fsearch%3Fq%3D%E5%90%88%E5%90%8C",
    )
    assert parse_qs(urlsplit(browser.current_url).query)["q"] == ["合同"]


HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    '<a href="javascript:window.__pwned=3">点我</a>',
    '<em onmouseover="window.__pwned=4">强调</em>',
    '"><svg onload="window.__pwned=5">',
]


@pytest.mark.parametrize("markup", HOSTILE)
def test_hostile_subjects_and_snippets_are_shown_as_text(
    browser: WebDriver,
    live_server: LiveServer,
    settings: Settings,
    ingest: Callable[[list[bytes]], list[str]],
    markup: str,
) -> None:
    marker = f"恶{uuid.uuid4().hex[:6]}"
    ingest([_mail(0, marker, f"{markup} {marker}", "evil.example", f"{markup} 正文 {marker}")])
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    browser.get(f"{live_server.url}/ui/search?q={marker}")
    wait(browser).until(lambda d: _total(d) == "共 1 封邮件")
    assert markup.split(">")[0] in _results(browser)[0]  # the markup, as characters
    made: dict[str, int] = browser.execute_script(
        "const r = document.getElementById('results');"
        "return {pwned: window.__pwned || 0, elements: r.querySelectorAll("
        "'img, script, svg, a[href^=javascript], [onmouseover], [onload], [onerror]').length}"
    )
    assert made == {"pwned": 0, "elements": 0}


def test_dates_are_in_the_display_time_zone_and_the_page_fits_a_tablet(
    browser: WebDriver, live_server: LiveServer, settings: Settings, word: str
) -> None:
    assert settings.display_timezone == "Asia/Shanghai"  # the messages say +0800: same clock
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    browser.get(f"{live_server.url}/ui/search?q={word}&sort=date_asc")
    wait(browser).until(lambda d: len(_results(d)) == 6)
    times: list[str] = browser.execute_script(
        "return [...document.querySelectorAll('#results time')].map(e => e.textContent)"
    )
    assert [t[-5:] for t in times] == ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]
    fits_a_tablet(browser, "search")
