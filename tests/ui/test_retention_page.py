"""The retention page in a real browser: an officer previews a draft policy and sees what it
would change (by department and month) before the page lets them save it, then saves it; a dry
run of disposition; a run over the approval limit approved by a second person, never by the
one who asked for it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from archiver import bootstrap
from archiver.audit.log import AuditLog
from archiver.models import Source
from archiver.pipeline.archiver import Incoming
from archiver.retention.disposition import Disposition, DispositionRun
from archiver.settings import Settings
from bench.cleanup import throwaway_archive, throwaway_settings
from search_api import deps
from search_api.app import create_app
from search_api.audit import get_audit_log
from tests.support.fakes import InMemoryAuditStore
from tests.support.principals import add_user
from tests.ui.conftest import (
    LiveServer,
    fits_a_tablet,
    screenshot,
    serving,
    sign_in,
    text_of,
    visible,
    wait,
)

pytestmark = [pytest.mark.services]


def _mail(marker: str, n: int) -> bytes:
    return (
        f"From: 王五 <wang.wu@{marker}.example.cn>\r\nTo: li.si@example.cn\r\n"
        f"Subject: 年度预算 {marker} {n}\r\n"
        f"Message-ID: <ret-{marker}-{n}@example.cn>\r\n"
        f"Date: {4 + n} Jun 2024 10:00:00 +0800\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n预算草案，编号 {marker}。\r\n"
    ).encode()


@pytest.fixture(scope="module")
def marker(ingest: Callable[[list[bytes]], list[str]]) -> str:
    """Two messages of June 2024 that carry a made-up word, and nothing else does."""
    word = f"ret{uuid.uuid4().hex[:8]}"
    ingest([_mail(word, n) for n in range(2)])
    return word


def _run_status(driver: WebDriver, run_id: str) -> str:
    status: str = driver.execute_script(
        "const r = document.querySelector(`tr[data-run='${arguments[0]}']`);"
        "return r ? r.dataset.status : ''",
        run_id,
    )
    return status


def test_an_officer_previews_a_policy_and_sees_the_counts_before_saving_it(
    browser: WebDriver, live_server: LiveServer, settings: Settings, marker: str
) -> None:
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    browser.get(f"{live_server.url}/ui/retention")
    visible(browser, "#policy-rows tr")
    browser.find_element(By.ID, "new-policy").click()
    name = f"ui-{marker}"
    visible(browser, "#p-name").send_keys(name)  # type: ignore[attr-defined]
    browser.find_element(By.ID, "p-description").send_keys("年度预算草案，到达一天后删除")
    browser.find_element(By.ID, "p-query").send_keys(marker)
    browser.find_element(By.ID, "p-amount").send_keys("1")
    browser.find_element(By.CSS_SELECTOR, "#p-unit option[value='days']").click()
    browser.find_element(By.CSS_SELECTOR, "#p-basis option[value='arrival']").click()
    save = browser.find_element(By.ID, "save-policy")
    assert not save.is_enabled()  # nothing is saved unseen

    browser.find_element(By.ID, "preview-policy").click()
    wait(browser).until(lambda d: text_of(d, "#preview [data-count=changed]") == "2")
    assert text_of(browser, "#preview [data-count=matched]") == "2"
    assert text_of(browser, "#preview [data-count=shorter]") == "2"
    assert text_of(browser, "#by-month tr[data-key='2024-06'] td.num") == "2"
    assert text_of(browser, "#by-department tbody td") == "（无部门）"
    assert save.is_enabled()
    screenshot(browser, "retention")

    # a change after the preview needs a preview of its own before it can be saved
    browser.find_element(By.ID, "p-amount").send_keys("0")
    assert not save.is_enabled()
    browser.find_element(By.ID, "preview-policy").click()
    wait(browser).until(lambda d: save.is_enabled())
    save.click()
    row = visible(browser, f"#policy-rows tr[data-policy='{name}']")
    assert "10" in row.text and "删除" in row.text  # type: ignore[attr-defined]
    saved = bootstrap.retention(settings).policy(name, None)
    assert saved.policy is not None and saved.policy.period is not None
    assert (saved.policy.period.amount, saved.policy.period.unit) == (10, "days")
    assert saved.policy.criteria.query == marker and saved.policy.basis == "arrival"
    assert not browser.find_element(By.ID, "editor").is_displayed()

    # its versions, then deleting it (a deleting version: it is no longer in force)
    row.find_element(By.CSS_SELECTOR, "button.history").click()  # type: ignore[attr-defined]
    versions = visible(browser, f"tr[data-versions-of='{name}']")
    assert "v1" in versions.text  # type: ignore[attr-defined]
    browser.find_element(By.CSS_SELECTOR, f"tr[data-policy='{name}'] button.delete").click()
    wait(browser).until(ec.alert_is_present()).accept()
    wait(browser).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"tr[data-policy='{name}']"))
    assert bootstrap.retention(settings).policy(name, 2).policy is None
    fits_a_tablet(browser, "retention")


def test_a_dry_run_counts_what_is_due_and_deletes_nothing(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    browser.get(f"{live_server.url}/ui/retention")
    before = len(bootstrap.disposition(settings).runs())
    visible(browser, "#dry-run").click()  # type: ignore[attr-defined]
    heading = visible(browser, "#dry-run-result h3")
    assert "封邮件已到期待删除" in heading.text  # type: ignore[attr-defined]
    assert len(bootstrap.disposition(settings).runs()) == before  # a dry run is not kept


def test_a_run_over_the_limit_is_approved_by_a_second_person_not_its_requester(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    requester = add_user(settings, ["compliance_officer"])
    approver = add_user(settings, ["compliance_officer"])
    # a run as planned over the limit, of nothing (planned 0): approving it deletes nothing
    # from the archive the other tests share
    now = datetime.now(UTC)
    run = DispositionRun(
        status="awaiting_approval",
        requested_by=requester,
        requested_at=now,
        cutoff=now,
        approval_limit=0,
    )
    bootstrap.retention(settings).state.save_run(run.id, run, etag=None)

    sign_in(browser, live_server, requester, next_path="%2Fui%2Fretention")
    row = visible(browser, f"tr[data-run='{run.id}']")
    assert row.find_elements(By.CSS_SELECTOR, "button.approve") == []  # type: ignore[attr-defined]
    assert "须由另一人批准" in row.text  # type: ignore[attr-defined]

    browser.delete_all_cookies()
    sign_in(browser, live_server, approver, next_path="%2Fui%2Fretention")
    visible(browser, f"tr[data-run='{run.id}'] button.approve").click()  # type: ignore[attr-defined]
    wait(browser).until(ec.alert_is_present()).accept()
    wait(browser).until(lambda d: _run_status(d, run.id) == "done")
    done = bootstrap.disposition(settings).run(run.id)
    assert (done.approved_by, done.deleted) == (approver, 0)


def test_the_page_in_english(
    browser: WebDriver, live_server: LiveServer, settings: Settings
) -> None:
    sign_in(browser, live_server, add_user(settings, ["compliance_officer"]))
    browser.get(f"{live_server.url}/ui/language/en?next=%2Fui%2Fretention")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Retention"
    visible(browser, "#policy-rows tr[data-policy='default']")
    assert "Keep" in browser.find_element(By.ID, "policy-rows").text


@pytest.fixture
def own_archive(settings: Settings, backends: None) -> Iterator[LiveServer]:
    """The app on an archive of its own with an approval limit of 1 and two old newsletters a
    policy lets go: a real run deletes them without touching the mail other tests share."""
    own = throwaway_settings(settings, f"{settings.es_index}-uiret").model_copy(
        update={"retention_approval_limit": 1}
    )
    with throwaway_archive(own) as archiver:
        retention = bootstrap.retention(own)
        # saved before the mail arrives, so the default's rolling storage lock does not keep it
        retention.save_policy(
            {
                "name": "newsletters",
                "criteria": {"query": "newsletter"},
                "period": {"amount": 1, "unit": "years"},
                "action": "delete",
            },
            "fixture",
        )
        raws = [
            (
                f"Message-ID: <uiret-{n}@letters.example>\r\nFrom: news@letters.example\r\n"
                f"To: b@example.cn\r\nSubject: newsletter {n}\r\n"
                "Date: Mon, 3 Jun 2019 10:00:00 +0800\r\n\r\nnewsletter 正文\r\n"
            ).encode()
            for n in (1, 2)
        ]
        source = Source(kind="import", detail="ui-retention", received_at=datetime.now(UTC))
        archiver.ingest_many([Incoming(raw, source) for raw in raws])
        archiver.index.refresh()
        disposition = Disposition(
            retention, AuditLog(InMemoryAuditStore()), bootstrap.spooled_messages(own)
        )
        app = create_app()
        app.dependency_overrides |= {
            deps.get_index: lambda: archiver.index,
            deps.get_retention: lambda: retention,
            deps.get_disposition: lambda: disposition,
            get_audit_log: lambda: AuditLog(InMemoryAuditStore(), bootstrap.audit_index(own)),
        }
        with serving(app) as server:
            yield server


def test_a_real_run_waits_for_a_second_person_then_deletes_what_the_dry_run_counted(
    browser: WebDriver, settings: Settings, own_archive: LiveServer
) -> None:
    requester = add_user(settings, ["compliance_officer"])
    sign_in(browser, own_archive, requester, next_path="%2Fui%2Fretention")
    assert not browser.find_element(By.ID, "start-run").is_enabled()  # a dry run comes first
    visible(browser, "#dry-run").click()  # type: ignore[attr-defined]
    heading = visible(browser, "#dry-run-result h3")
    assert heading.text.startswith("2 封邮件已到期待删除")  # type: ignore[attr-defined]
    assert text_of(browser, "#run-by-month tr[data-key='2019-06'] td.num") == "2"
    assert text_of(browser, "#run-by-policy tbody td").startswith("newsletters@v")
    assert "须由另一人批准" in text_of(browser, "#dry-run-result")
    browser.find_element(By.ID, "start-run").click()
    wait(browser).until(ec.alert_is_present()).accept()
    row = visible(browser, "#run-rows tr[data-status='awaiting_approval']")
    run_id = row.get_attribute("data-run")  # type: ignore[attr-defined]
    assert row.find_elements(By.CSS_SELECTOR, "button.approve") == []  # type: ignore[attr-defined]
    screenshot(browser, "retention-runs")

    browser.delete_all_cookies()
    sign_in(browser, own_archive, add_user(settings, ["compliance_officer"]))
    browser.get(f"{own_archive.url}/ui/retention")
    visible(browser, f"tr[data-run='{run_id}'] button.approve").click()  # type: ignore[attr-defined]
    wait(browser).until(ec.alert_is_present()).accept()
    wait(browser).until(lambda d: _run_status(d, str(run_id)) == "done")
    assert "已删除 2 / 2" in text_of(browser, f"tr[data-run='{run_id}'] .run-figures")
