"""HTML report structure, read with the standard library's parser (the browser test is separate)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fmfl_audit.models import AuditReport, RuleResult
from fmfl_audit.report.html import (
    HtmlRenderer,
    contribution_bars,
    fairness_panels,
    leakage_axes,
    leakage_matrix,
    pii_rows,
)
from fmfl_audit.report.rule_docs import rule_doc_url

from .builders import HOSTILE_SUBJECT, sample_report


class _Collect(HTMLParser):
    """Start tags with their attributes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Collect()
    p.feed(text)
    return p.tags


def _with_metrics(report: AuditReport, rule_id: str, metrics: dict) -> AuditReport:
    rules = tuple(
        r.model_copy(update={"metrics": metrics}) if r.id == rule_id else r for r in report.rules
    )
    return report.model_copy(update={"rules": rules})


def _without(report: AuditReport, rule_id: str) -> AuditReport:
    rules: tuple[RuleResult, ...] = tuple(r for r in report.rules if r.id != rule_id)
    return report.model_copy(update={"rules": rules})


def test_structure() -> None:
    text = HtmlRenderer().render(sample_report())
    tags = _tags(text)
    cards = [a for t, a in tags if "grade-card" in (a.get("class") or "")]
    assert [(c["data-area"], c["data-grade"]) for c in cards] == [
        ("overall", "F"),
        ("robustness", "F"),
        ("privacy", "F"),
        ("fairness", "D"),
    ]
    figures = [a["id"] for t, a in tags if t == "figure"]
    assert figures == [
        "chart-areas",
        "chart-pii",
        "chart-leakage",
        "chart-fairness-model:global-clf-gender",
        "chart-contribution",
    ]
    assert sum(1 for t, _ in tags if t == "svg") == 5
    rows = [a for t, a in tags if t == "tr" and "finding" in (a.get("class") or "")]
    assert len(rows) == 6
    assert [r["data-status"] for r in rows].count("waived") == 1
    for sel in ("filter-area", "filter-severity", "filter-subject", "filter-status"):
        assert any(t == "select" and a.get("id") == sel for t, a in tags)
    assert "capped: critical finding" in text


def test_self_contained_and_offline() -> None:
    text = HtmlRenderer().render(sample_report())
    tags = _tags(text)
    csp = next(a for t, a in tags if t == "meta" and a.get("http-equiv"))
    assert "default-src 'none'" in (csp.get("content") or "")
    links = []
    for t, a in tags:
        assert "src" not in a, f"<{t} src=...> would load something"
        if "href" in a:
            # Only links a reader follows by clicking: rule ids to their documentation pages.
            assert t == "a" and a.get("rel") == "noopener noreferrer", f"<{t} href=...>"
            links.append(a["href"])
    assert links and all(h == rule_doc_url(Path(h).stem) for h in links), links
    assert not re.search(r"@import|url\(", text)
    rest = re.sub(r'href="[^"]*"', "", text).replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in rest


def test_hostile_strings_are_escaped() -> None:
    text = HtmlRenderer().render(sample_report())
    assert '<script>alert("x")</script>' not in text
    assert "<img" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    # Exactly one real script element: ours.
    assert sum(1 for t, _ in _tags(text) if t == "script") == 1
    subjects = [a.get("data-subject") for t, a in _tags(text) if a.get("data-subject")]
    assert HOSTILE_SUBJECT in subjects  # the attribute round-trips intact


def test_waivers_and_skipped_sections() -> None:
    text = HtmlRenderer().render(sample_report())
    assert 'id="waivers"' in text and 'class="badge expired"' in text
    assert 'id="not-run"' in text
    assert "missing input: clients[].update" in text
    assert "fm/system_prompt.txt: not UTF-8 from byte 12" in text


def test_chart_data() -> None:
    report = sample_report()
    rows, colors = pii_rows(report)
    by = {r.label: {s.name: s.value for s in r.segments} for r in rows}
    assert by["school-b"] == {"EMAIL_ADDRESS": 37, "PERSON": 12, "PHONE_NUMBER": 4}
    assert by["school-a"] == {}
    assert list(colors) == ["EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"]
    matrix = leakage_matrix(report)
    assert matrix == {
        "school-a": {"school-c": 5},
        "school-b": {"school-a": 1},
        "server": {"school-b": 2},
    }
    assert leakage_axes(report, matrix) == (
        ["school-a", "school-b", "school-c", "server"],
        ["school-a", "school-b", "school-c"],
    )
    ((subject, feature, bars, marker),) = fairness_panels(report)
    assert (subject, feature) == ("model:global-clf", "gender")
    assert marker is not None and marker.value == pytest.approx(0.8 * 0.52)
    colors_by = {b.label: b.color for b in bars}
    # Issue 16.17: a group is labelled with its feature ("gender=0" means something, "0" not).
    assert colors_by["gender=female"] == "#c62828"  # below four-fifths of the top rate
    assert colors_by["gender=male"] == "#4e79a7"
    assert colors_by["gender=nonbinary"] == "#9e9e9e"  # too small to grade
    cbars, cmarker, tiers = contribution_bars(report)
    assert [(b.label, b.value) for b in cbars] == [
        ("school-a", 0.62),
        ("school-b", 0.23),
        ("school-c", 0.15),
    ]
    assert cmarker is not None and cmarker.value == pytest.approx(1 / 3)
    assert set(tiers) == {"abundant", "constrained"}


def test_leakage_matrix_list_form() -> None:
    report = _with_metrics(
        sample_report(),
        "FMFL-P06",
        {"federation": {"leakage_matrix": {"clients": ["a", "b"], "matrix": [[0, 3], [1, 0]]}}},
    )
    assert leakage_matrix(report) == {"a": {"a": 0, "b": 3}, "b": {"a": 1, "b": 0}}


@pytest.mark.parametrize(
    "raw",
    [None, "text", [1, 2], {"a": 3}, {"clients": ["a"], "matrix": "x"}, {"a": {"b": "many"}}],
)
def test_malformed_leakage_matrix_leaves_the_chart_out(raw: object) -> None:
    report = _with_metrics(sample_report(), "FMFL-P06", {"federation": {"leakage_matrix": raw}})
    assert 'id="chart-leakage"' not in HtmlRenderer().render(report)


def test_missing_rules_leave_their_charts_out() -> None:
    report = sample_report()
    for rule in ("FMFL-P01", "FMFL-P06", "FMFL-F03", "FMFL-F06"):
        report = _without(report, rule)
    text = HtmlRenderer().render(report)
    figures = [a["id"] for t, a in _tags(text) if t == "figure"]
    assert figures == ["chart-areas"]


def test_malformed_metrics_do_not_crash() -> None:
    report = _with_metrics(
        sample_report(),
        "FMFL-F03",
        {"model:m": {"gender": {"groups": 5}, "age": {"groups": {"x": 1}}, "records": 3}},
    )
    report = _with_metrics(report, "FMFL-P01", {"client:a": {"entities": ["x"]}})
    report = _with_metrics(report, "FMFL-F06", {"client:a": {"weight_share": "lots"}})
    text = HtmlRenderer().render(report)
    assert 'id="chart-fairness' not in text and 'id="chart-contribution"' not in text


def test_findings_table_is_sorted_by_severity_first() -> None:
    # Issue 16.17: the reader meets the worst finding first, whatever the rule order.
    page = HtmlRenderer().render(sample_report())
    order = re.findall(
        r'<tr class="finding [a-z]+" data-area="[a-z]+" data-severity="([a-z]+)"', page
    )
    ranks = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
    assert len(order) == len(sample_report().findings) >= 3
    assert [ranks[s] for s in order] == sorted((ranks[s] for s in order), reverse=True)
