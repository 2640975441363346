"""Page shells as a matrix of pages × roles: who may open which page, what the nav offers, the
headers every page carries, and sign-in redirects that go nowhere but this UI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from archiver.access.model import BUILTIN_ROLES
from archiver.settings import Settings
from search_api.app import create_app
from tests.support.principals import PASSWORD, add_user
from ui.pages import PAGES, safe_next

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("backends")]

ROLES = sorted(BUILTIN_ROLES)
SAMPLE_PARAMS = {"message_id": "0" * 64, "matter_id": "m1", "export_id": "e1"}


@pytest.fixture(scope="module")
def browsers(settings: Settings) -> Iterator[dict[str, TestClient]]:
    signed_in = {}
    for role in ROLES:
        client = TestClient(create_app(), base_url="https://testserver")
        username = add_user(settings, [role], ["销售部"] if role == "department_lead" else [])
        response = client.post("/api/session", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        signed_in[role] = client
    yield signed_in


def _path(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PARAMS[m.group(1)], template)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(n for n, p in PAGES.items() if p.built))
def test_a_page_opens_for_exactly_the_roles_its_permissions_allow(
    browsers: dict[str, TestClient], role: str, name: str
) -> None:
    page = PAGES[name]
    response = browsers[role].get(_path(page.path), follow_redirects=False)
    allowed = any(p in BUILTIN_ROLES[role].permissions for p in page.permissions)
    assert response.status_code == (200 if allowed else 403), response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert (
        "frame-ancestors 'self'" in csp and response.headers["x-content-type-options"] == "nosniff"
    )
    if allowed:
        assert f'src="/ui/static/pages/{name}.js"' in response.text or not page.built
    # the nav offers exactly the pages this role may open
    offered = set(re.findall(r'<li><a href="(/ui/[^"]+)"', response.text))
    expected = {
        p.path
        for p in PAGES.values()
        if p.in_nav and p.built and any(x in BUILTIN_ROLES[role].permissions for x in p.permissions)
    }
    assert offered == expected


def test_no_page_has_inline_script_or_style(browsers: dict[str, TestClient]) -> None:
    for name, page in PAGES.items():
        if not page.built:
            continue
        html = browsers["compliance_officer"].get(_path(page.path)).text
        assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))", html), name
        assert not re.search(r"\s(style|on[a-z]+)=", html), name


def test_the_boot_data_cannot_close_its_script_element(settings: Settings) -> None:
    client = TestClient(create_app(), base_url="https://testserver")
    hostile = "</script><script>alert(1)</script>"
    page = client.get("/ui/sign-in", params={"next": f"/ui/search?q={hostile}"})
    boot = page.text.split('id="mv-boot">', 1)[1].split("</script>", 1)[0]
    assert "<" not in boot and "alert(1)" in unquote(boot.replace("\\u003c", "<"))


@given(st.text(max_size=60))
def test_after_sign_in_the_reader_goes_only_to_a_page_of_this_ui(target: str) -> None:
    result = safe_next(target)
    assert result.startswith("/ui/") and not result.startswith("//")
    assert "\\" not in result


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/ui/",
        "//evil.example/ui/",
        "/\\evil.example",
        "/ui/../api",
        "javascript:x",
        "/ui/search?q=1",
    ],
)
def test_outside_targets_fall_back_to_the_start(target: str) -> None:
    expected = "/ui/search?q=1" if target == "/ui/search?q=1" else "/ui/"
    assert safe_next(target) == expected


def test_every_field_on_every_page_has_a_label(browsers: dict[str, TestClient]) -> None:
    for name, page in PAGES.items():
        if not page.built:
            continue
        html = browsers["compliance_officer"].get(_path(page.path)).text
        labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
            if 'type="hidden"' in tag or "aria-label=" in tag:
                continue
            field = re.search(r'\bid="([^"]+)"', tag)
            wrapped = field is None  # a field inside its <label> needs no id
            assert wrapped or field.group(1) in labelled, f"{name}: {tag}"
