"""Translations: one catalog per language, merged from one JSON file per page.

A page's strings live beside the page (ui/locales/<lang>/<page>.json, keys `<page>.*`) so a
page can be added without touching a shared file; `common.json` holds the shared ones."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANGUAGE_COOKIE = "mailvault_lang"


@lru_cache(maxsize=len(LANGUAGES))
def catalog(language: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((LOCALES / language).glob("*.json")):
        merged.update(json.loads(path.read_text("utf-8")))
    return merged


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The reader's choice (cookie) first, then the browser's preference, then Chinese."""
    if cookie in LANGUAGES:
        return cookie
    for wanted in _preferences(accept_language or ""):
        for language in LANGUAGES:
            if wanted == language.lower() or wanted == language.split("-")[0].lower():
                return language
        if wanted.startswith("zh"):
            return "zh-CN"
    return DEFAULT_LANGUAGE


def _preferences(header: str) -> list[str]:
    """Accept-Language tags, most wanted first (q=0 means not wanted)."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip().lower()))
    return [tag for _, _, tag in sorted(weighted)]


class Translator:
    def __init__(self, language: str) -> None:
        self.language = language
        self.messages = catalog(language)

    def __call__(self, key: str, **values: object) -> str:
        text = self.messages.get(key)
        if text is None:  # a missing key shows itself; tests/ui/test_i18n.py finds every one
            return key
        return text.format(**values) if values else text
