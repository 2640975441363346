"""Real-browser fixtures: the app served by uvicorn on the session's real services, and Debian's
chromium driven headless through chromium-driver (Selenium).

Every test's page is checked for console errors when it ends: a script error, a refused
Content-Security-Policy or a missing translation fails the test that caused it."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from archiver.settings import Settings
from search_api.app import create_app
from tests.support.principals import PASSWORD

pytestmark = [pytest.mark.services]

CHROMIUM = Path(os.environ.get("MAILVAULT_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MAILVAULT_CHROMEDRIVER", "/usr/bin/chromedriver"))
ROOT = Path(__file__).resolve().parents[2]
# MAILVAULT_SCREENSHOTS=docs/screenshots refreshes the README's pictures
SCREENSHOTS = Path(os.environ.get("MAILVAULT_SCREENSHOTS", ROOT / "build" / "screenshots"))
WAIT_SECONDS = 20


@dataclass(frozen=True)
class LiveServer:
    url: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(app: FastAPI) -> Iterator[LiveServer]:
    """The app served by uvicorn in a thread on a free loopback port."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not started.wait(0.05):  # a condition, polled: uvicorn offers no event to wait on
        if server.started:
            started.set()
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
    # "localhost": Chromium counts it a secure context, so the Secure session cookie is kept
    yield LiveServer(f"http://localhost:{port}")
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(settings: Settings, backends: None) -> Iterator[LiveServer]:
    with serving(create_app()) as server:
        yield server


@pytest.fixture(scope="session")
def _driver() -> Iterator[WebDriver]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists() or shutil.which("chromium") is None:
        pytest.fail(
            f"chromium and chromium-driver are needed ({CHROMIUM}, {CHROMEDRIVER}): "
            "scripts/setup.sh installs them"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
        "--lang=zh-CN",
        "--disable-gpu",
    ):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()


def console_problems(driver: WebDriver) -> list[str]:
    """Console errors other than failed requests (a 400 or 403 the page handles is fine)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]
    ]


@pytest.fixture
def browser(_driver: WebDriver, live_server: LiveServer) -> Iterator[WebDriver]:
    _driver.get(live_server.url + "/ui/sign-in")
    _driver.delete_all_cookies()
    _driver.execute_script("sessionStorage.clear(); localStorage.clear();")
    _driver.get_log("browser")  # start the test with an empty console
    yield _driver
    problems = console_problems(_driver)
    assert not problems, f"the browser console reported: {problems}"


def wait(driver: WebDriver, seconds: float = WAIT_SECONDS) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, seconds)


def visible(driver: WebDriver, css: str, seconds: float = WAIT_SECONDS) -> object:
    return wait(driver, seconds).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def sign_in(
    driver: WebDriver,
    server: LiveServer,
    username: str,
    password: str = PASSWORD,
    next_path: str = "",
) -> None:
    """Sign in through the sign-in page, as a person does, and wait to land."""
    target = f"/ui/sign-in?next={next_path}" if next_path else "/ui/sign-in"
    driver.get(server.url + target)
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
    wait(driver).until(lambda d: "/ui/sign-in" not in d.current_url)


def screenshot(driver: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


@pytest.fixture(scope="session")
def ingest(archiver: object) -> Callable[[list[bytes]], list[str]]:
    """Archive raw messages in the session's archive, searchable on return; their ids."""
    from archiver.models import Source
    from archiver.pipeline.archiver import Incoming

    def archive(raws: list[bytes]) -> list[str]:
        source = Source(kind="import", detail="ui-tests", received_at=datetime.now(UTC))
        outcomes = archiver.ingest_many([Incoming(raw, source) for raw in raws])  # type: ignore[attr-defined]
        archiver.index.refresh()  # type: ignore[attr-defined]
        return [hashlib.sha256(raw).hexdigest() for raw in raws] if outcomes else []

    return archive


def text_of(driver: WebDriver, css: str) -> str:
    """The first match's text ('' if none), read in one script: pages re-render as answers
    arrive, so an element found in one call may be gone by the next."""
    text: str = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''", css
    )
    return text


def texts_of(driver: WebDriver, css: str) -> list[str]:
    texts: list[str] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", css
    )
    return texts


def fetch_in_page(driver: WebDriver, url: str) -> dict[str, Any]:
    """GET through the page's own session (cookie): status, X-Content-SHA256, the body's
    SHA-256, Content-Type and Content-Disposition."""
    result: dict[str, Any] = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: 'same-origin'}).then(async r => {
          const bytes = new Uint8Array(await r.arrayBuffer());
          const digest = await crypto.subtle.digest('SHA-256', bytes);
          done({status: r.status, sha: r.headers.get('X-Content-SHA256'),
                digest: [...new Uint8Array(digest)]
                  .map(b => b.toString(16).padStart(2, '0')).join(''),
                type: r.headers.get('Content-Type'),
                disposition: r.headers.get('Content-Disposition')});
        }).catch(e => done({status: -1, error: String(e)}));""",
        url,
    )
    return result


def fits_a_tablet(driver: WebDriver, name: str) -> None:
    """At a tablet's width (~800px) the page needs no sideways scrolling; a screenshot of it."""
    size = driver.get_window_size()
    driver.set_window_size(800, 1000)
    try:
        wait(driver).until(lambda d: d.execute_script("return window.innerWidth") <= 800)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        screenshot(driver, f"{name}-tablet")
        assert overflow <= 0, f"{name} is {overflow}px too wide at 800px"
    finally:
        driver.set_window_size(size["width"], size["height"])
