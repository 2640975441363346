"""Hostile HTML mail in a real browser: 0 script executions and 0 remote fetches.

Every attack in tests/ui/hostile/*.eml points at a beacon, a tiny HTTP server of the test's own
that counts every request: scripts fetch it, navigate to it or alert; resources load from it.
The corpus is opened in chromium as the frame document itself and inside a page, in an
`<iframe>` with the sandbox the message page uses, links clicked. Then with remote content
allowed the images do arrive at the beacon (so its silence before meant something) while
scripts still do not run.

The two walls are checked apart: the beacon's silence shows that nothing got through, and the
`browser` fixture's console check (tests/ui/conftest.py) fails the test on any script the sandbox
blocked or any load the frame's CSP refused, so the sanitiser must have removed every attack
before the CSP had to stop one."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from archiver.settings import Settings
from tests.support.principals import add_user
from tests.ui.conftest import LiveServer, screenshot, sign_in, wait
from ui.mail_frame import FRAME_SANDBOX

pytestmark = [pytest.mark.services]

CORPUS = Path(__file__).resolve().parent / "hostile"
# one pixel, so a remote image allowed by the reader loads as an image
GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c000000000100010000020144003b"
)
# what a reader who allows remote content may load: images (src and background attributes)
ALLOWED_REMOTE = {
    "img-remote",
    "img-picture",
    "bg-table",
    "bg-td",
    "img-gbk",
    "img-utf7",
}


class Beacon:
    """Counts every request made to it; answers a GIF to each."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.lock = threading.Lock()
        beacon = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                beacon.hit(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", str(len(GIF)))
                self.end_headers()
                self.wfile.write(GIF)

            do_POST = do_GET
            do_HEAD = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"

    def hit(self, path: str) -> None:
        with self.lock:
            self.hits.append(path)

    def seen(self) -> list[str]:
        with self.lock:
            return list(self.hits)

    def tokens(self) -> set[str]:
        return {path.split("?", 1)[-1] for path in self.seen()}


@pytest.fixture(scope="module")
def beacon() -> Iterator[Beacon]:
    found = Beacon()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.server.shutdown()


@pytest.fixture(scope="module")
def hostile(ingest: Callable[[list[bytes]], list[str]], beacon: Beacon) -> dict[str, str]:
    """The corpus aimed at the beacon, archived: file name -> message id."""
    files = sorted(CORPUS.glob("*.eml"))
    assert len(files) >= 15
    raws = [
        path.read_bytes()
        .replace(b"BEACON_ORIGIN", beacon.origin.encode())
        .replace(b"BEACON_HOST", f"127.0.0.1:{beacon.port}".encode())
        for path in files
    ]
    ids = ingest(raws)
    return {path.stem: sha for path, sha in zip(files, ids, strict=True)}


@pytest.fixture(scope="module")
def reader(settings: Settings) -> str:
    return add_user(settings, ["compliance_officer"])


def _no_alert(driver: WebDriver) -> None:
    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"a script ran in the browser: alert {text!r}")


def _loaded(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return document.readyState === 'complete'"))


def _open_direct(driver: WebDriver, server: LiveServer, sha: str, remote: int) -> None:
    driver.get(f"{server.url}/ui/messages/{sha}/body?remote={remote}")
    wait(driver).until(_loaded)
    _no_alert(driver)


SHOW_BODY = """
const [id, done] = [arguments[0], arguments[arguments.length - 1]];
import("/ui/static/mail_frame.js")
  .then((module) => module.mailFrame(id))
  .then((body) => {
    document.getElementById("mail-body")?.remove();
    body.id = "mail-body";
    const frame = body.querySelector("iframe");
    frame.id = "mail-frame";
    frame.addEventListener("load", () => { frame.dataset.loaded = "1"; });
    (document.querySelector("main") || document.body).prepend(body);
    done(frame.getAttribute("sandbox"));
  })
  .catch((error) => done(String(error)));
"""


def _show_on_a_page(driver: WebDriver, sha: str) -> None:
    """The body as the message page shows it (ui/static/mail_frame.js), on one of our pages."""
    sandbox = driver.execute_async_script(SHOW_BODY, sha)
    assert sandbox == FRAME_SANDBOX
    wait(driver).until(
        lambda d: d.find_element(By.ID, "mail-frame").get_attribute("data-loaded") == "1"
    )


def _open_framed(driver: WebDriver, server: LiveServer, sha: str) -> None:
    """The body in its sandboxed frame on a page, and every link in it clicked."""
    driver.get(f"{server.url}/ui/search")
    wait(driver).until(_loaded)
    _show_on_a_page(driver, sha)
    handles = set(driver.window_handles)
    driver.switch_to.frame("mail-frame")
    for link in driver.find_elements(By.TAG_NAME, "a"):
        # a link hidden or covered is inert either way
        with contextlib.suppress(WebDriverException):
            link.click()
    driver.switch_to.default_content()
    _no_alert(driver)
    assert set(driver.window_handles) == handles, "a blocked link opened a window"


def test_hostile_mail_runs_no_script_and_fetches_nothing(
    browser: WebDriver,
    live_server: LiveServer,
    beacon: Beacon,
    hostile: dict[str, str],
    reader: str,
) -> None:
    sign_in(browser, live_server, reader)
    for name, sha in hostile.items():
        _open_direct(browser, live_server, sha, remote=0)
        if name.startswith("22-"):
            screenshot(browser, "hostile-mail-blocked")
        _open_framed(browser, live_server, sha)
    assert beacon.seen() == [], "remote content blocked, yet the beacon was reached"

    # the reader allows remote content on the page: the frame shows the tracking pixel...
    browser.get(f"{live_server.url}/ui/search")
    _show_on_a_page(browser, hostile["10-remote-img"])
    bar = browser.find_element(By.CSS_SELECTOR, "#mail-body .mail-frame-bar")
    assert "1" in bar.text
    screenshot(browser, "hostile-mail-remote-blocked")
    browser.find_element(By.CSS_SELECTOR, "#mail-body .mail-frame-show").click()
    wait(browser).until(lambda _: "img-remote" in beacon.tokens())
    # the same mail with remote content allowed: images arrive, so the beacon works...
    for sha in hostile.values():
        _open_direct(browser, live_server, sha, remote=1)
    wait(browser).until(lambda _: {"img-remote", "bg-td", "img-gbk"} <= beacon.tokens())
    # ...and nothing but images ever reached it: no script, no navigation, no CSS, no form
    assert beacon.tokens() <= ALLOWED_REMOTE, sorted(beacon.tokens() - ALLOWED_REMOTE)
    assert not any(path.startswith("/js") for path in beacon.seen())


def test_frame_headers_and_counts(
    live_server: LiveServer, hostile: dict[str, str], reader: str, settings: Settings
) -> None:
    from fastapi.testclient import TestClient

    from search_api.app import create_app
    from tests.support.principals import bearer

    client = TestClient(create_app())
    headers = bearer(settings, reader)
    sha = hostile["10-remote-img"]
    frame = client.get(f"/ui/messages/{sha}/body?remote=0", headers=headers)
    assert frame.status_code == 200
    policy = frame.headers["content-security-policy"]
    assert policy.startswith("sandbox;") and "img-src data:;" in policy
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert frame.headers["x-content-type-options"] == "nosniff"
    assert frame.headers["referrer-policy"] == "no-referrer"
    assert frame.headers["cache-control"] == "private, no-store"
    assert frame.headers["content-type"] == "text/html; charset=utf-8"
    allowed = client.get(f"/ui/messages/{sha}/body?remote=1", headers=headers)
    assert "img-src data: http: https:;" in allowed.headers["content-security-policy"]

    summary = client.get(f"/api/messages/{sha}/html", headers=headers).json()
    assert summary["has_html"] and summary["blocked_images"] == 1
    assert summary["frame_url"] == f"/ui/messages/{sha}/body?remote=0"
    assert client.get(f"/api/messages/{sha}", headers=headers).json()["has_html"] is True
    gbk = client.get(f"/ui/messages/{hostile['20-gbk']}/body", headers=headers)
    assert "供应商合同已更新" in gbk.text
