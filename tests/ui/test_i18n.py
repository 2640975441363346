"""Every string in both languages: the catalogs have the same keys, every key the templates and
scripts use exists, and placeholders agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ui.i18n import LANGUAGES, catalog, choose_language

UI = Path(__file__).resolve().parents[2] / "ui"
USED = re.compile(r"""\bt\(\s*["']([a-z_]+\.[A-Za-z0-9_.\-]+)["']""")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _used_keys() -> set[str]:
    sources = [*UI.glob("templates/**/*.html"), *UI.glob("static/**/*.js")]
    found = {key for path in sources for key in USED.findall(path.read_text("utf-8"))}
    return {key for key in found if not key.endswith((".", "_"))}  # t("x." + name): a prefix


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    chinese, english = catalog("zh-CN"), catalog("en")
    assert chinese.keys() == english.keys()
    for key, text in chinese.items():
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english[key])), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_used_exists(language: str) -> None:
    missing = _used_keys() - catalog(language).keys()
    assert not missing, f"{language} lacks {sorted(missing)}"


def test_every_page_in_the_nav_has_its_title_and_nav_label() -> None:
    from ui.pages import PAGES

    for page in PAGES.values():
        if page.built:
            for language in LANGUAGES:
                assert {f"{page.name}.title", f"{page.name}.nav"} <= catalog(language).keys()


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "zh-CN"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "zh-TW,zh;q=0.9,en;q=0.8", "zh-CN"),
        (None, "fr-FR, en;q=0.5", "en"),
        (None, "en;q=0, zh;q=0.1", "zh-CN"),
        ("en", "zh-CN", "en"),
        ("xx", "en", "en"),
        (None, "garbage;q=x, en", "en"),
    ],
)
def test_the_language_is_the_readers_choice_then_the_browsers_then_chinese(
    cookie: str | None, header: str | None, expected: str
) -> None:
    assert choose_language(cookie, header) == expected
