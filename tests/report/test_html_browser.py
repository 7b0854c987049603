"""The HTML report in a real headless Chromium: it renders, its charts draw, its filters work,
and it makes no request beyond its own file. A screenshot lands in the test's tmp_path.

Skips only when /usr/bin/chromium (Debian's `chromium` package) is absent; CI installs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fmfl_audit.report.html import HtmlRenderer

from .builders import HOSTILE_SUBJECT, sample_report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)"
    ),
]


@dataclass
class Loaded:
    """The open page and what happened while it loaded."""

    page: Any
    url: str
    shot: Path
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    sync_api = pytest.importorskip("playwright.sync_api")
    folder = tmp_path_factory.mktemp("html")
    path = folder / "report.html"
    path.write_text(HtmlRenderer().render(sample_report()), encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        pg = browser.new_page(viewport={"width": 1300, "height": 900})
        state = Loaded(page=pg, url=path.as_uri(), shot=folder / "report.png")
        pg.on("request", lambda r: state.requests.append(r.url))
        pg.on("pageerror", lambda e: state.errors.append(str(e)))
        pg.on("console", lambda m: state.errors.append(m.text) if m.type == "error" else None)
        pg.goto(state.url)
        pg.screenshot(path=str(state.shot), full_page=True)
        yield state
        browser.close()


@pytest.fixture
def page(loaded: Loaded) -> Any:
    return loaded.page


def _visible_rows(pg: Any) -> int:
    return int(pg.locator("#findings tbody tr:visible").count())


def _select(pg: Any, name: str, value: str) -> None:
    pg.select_option(f"#filter-{name}", value)


def test_renders_without_errors_or_requests(loaded: Loaded) -> None:
    assert loaded.errors == []
    assert loaded.requests == [loaded.url]
    assert loaded.shot.stat().st_size > 20_000  # a real picture, not a blank page


def test_grade_cards(page: Any) -> None:
    cards = page.locator(".grade-card")
    assert cards.count() == 4
    assert page.locator('.grade-card[data-area="fairness"] .grade').inner_text() == "D"
    assert "capped" in page.locator('.grade-card[data-area="robustness"]').inner_text()


def test_charts_draw(page: Any) -> None:
    assert page.locator("figure svg").count() == 5
    assert page.locator("#chart-areas rect.bar").count() == 3
    assert page.locator("#chart-leakage rect.cell").count() == 12  # 4 sources x 3 receivers
    assert page.locator("#chart-fairness-model\\:global-clf-gender line.marker").count() == 1
    box = page.locator("#chart-areas svg").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 50


def test_filters_change_visible_rows(page: Any) -> None:
    assert _visible_rows(page) == 6
    _select(page, "severity", "high")
    assert _visible_rows(page) == 4
    _select(page, "area", "privacy")
    assert _visible_rows(page) == 2
    assert page.locator("#finding-count").inner_text() == "2 of 6 findings shown"
    _select(page, "severity", "")
    _select(page, "subject", HOSTILE_SUBJECT)
    assert _visible_rows(page) == 1
    _select(page, "area", "")
    _select(page, "subject", "")
    _select(page, "status", "waived")
    assert _visible_rows(page) == 1
    _select(page, "status", "")
    assert _visible_rows(page) == 6


def test_hostile_text_is_shown_not_run(page: Any) -> None:
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1
    assert '<script>alert("x")</script>' in page.locator("#findings").inner_text()
