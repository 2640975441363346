"""Web UI benchmark: how soon the search page is interactive, in a real browser.

Over the search benchmark's archive (bench/search.py builds it once, 100,000 generated messages
by default, kept between runs), serves `mailvault serve`, signs in with Debian's chromium
(headless, Selenium) and opens /ui/search?q=... for a mix of queries. For each load it reports
the time from navigation start to the results, facets and pager being on screen (the page's
`mv-results-shown` performance mark), and to the load event. Target: p95 under 500 ms.
Needs the services (scripts/services.sh up), chromium and chromium-driver (scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from urllib.parse import quote

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from archiver import bootstrap
from archiver.settings import get_settings
from bench.search import EN_WORDS, ZH_WORDS, alias_for, build_corpus, machine_line, start_api

TARGET_MS = 500.0
PASSWORD = "benchmark password for the ui"


def queries(n: int, seed: int) -> list[tuple[str, str]]:
    r = random.Random(seed)
    kinds = [
        ("simple", lambda: r.choice(ZH_WORDS)),
        ("two words", lambda: f"{r.choice(ZH_WORDS)} {r.choice(ZH_WORDS)}"),
        ("english", lambda: r.choice(EN_WORDS)),
        ("phrase", lambda: f'"{r.choice(ZH_WORDS)}{r.choice(ZH_WORDS)}"'),
        ("span", lambda: r.choice(ZH_WORDS)[1:] + r.choice(ZH_WORDS)[:1]),
        ("all mail", lambda: ""),
    ]
    return [(kind, make()) for kind, make in (kinds[i % len(kinds)] for i in range(n))]


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
        "--disable-gpu",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def timed_load(driver: webdriver.Chrome, url: str) -> tuple[float, float]:
    driver.get(url)  # returns after the load event
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return performance.getEntriesByName('mv-results-shown').length")
    )
    shown: float = driver.execute_script(
        "return performance.getEntriesByName('mv-results-shown')[0].startTime"
    )
    loaded: float = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd"
    )
    return shown, loaded


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000, help="messages in the archive")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loads", type=int, default=120, help="measured page loads")
    parser.add_argument("--warmup", type=int, default=12)
    args = parser.parse_args()

    alias = alias_for(args.count, args.seed)
    settings = get_settings().model_copy(
        update={"es_index": alias, "s3_bucket": alias, "session_cookie_secure": False}
    )
    print(machine_line())
    build_corpus(settings, args.count, args.seed, rebuild=False)
    username = f"bench-ui-{random.randrange(10**9)}"
    bootstrap.user_directory(settings).add(username, PASSWORD, roles=["compliance_officer"])
    os.environ["MAILVAULT_SESSION_COOKIE_SECURE"] = "false"
    server, url = start_api(settings)
    driver = browser()
    try:
        driver.get(f"{url}/ui/sign-in")
        driver.find_element(By.ID, "username").send_keys(username)
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
        WebDriverWait(driver, 30).until(lambda d: "/ui/sign-in" not in d.current_url)
        for _, q in queries(args.warmup, args.seed + 1):
            timed_load(driver, f"{url}/ui/search?q={quote(q)}")
        by_kind: dict[str, list[float]] = {}
        loaded_all: list[float] = []
        for kind, q in queries(args.loads, args.seed):
            shown, loaded = timed_load(driver, f"{url}/ui/search?q={quote(q)}")
            by_kind.setdefault(kind, []).append(shown)
            loaded_all.append(loaded)
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)
    shown_all = [v for values in by_kind.values() for v in values]
    print(f"search page over {args.count} messages, {len(shown_all)} loads (ms from navigation):")
    print(f"  {'query':<10} {'n':>4} {'p50':>7} {'p95':>7} {'max':>7}")
    for kind, values in by_kind.items():
        print(
            f"  {kind:<10} {len(values):>4} {statistics.median(values):7.0f} "
            f"{percentile(values, 95):7.0f} {max(values):7.0f}"
        )
    p95 = percentile(shown_all, 95)
    print(
        f"  {'all':<10} {len(shown_all):>4} {statistics.median(shown_all):7.0f} {p95:7.0f} "
        f"{max(shown_all):7.0f}   (load event p95 {percentile(loaded_all, 95):.0f} ms)"
    )
    met = p95 < TARGET_MS
    print(f"target: results interactive p95 < {TARGET_MS:.0f} ms: {'met' if met else 'NOT met'}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
