"""Markdown report: text from the audited data is inert (no live link, image, HTML or emphasis)."""

from __future__ import annotations

import re

from fmfl_audit.models import Evidence
from fmfl_audit.report.formats import OutputFormat, renderer_for

from .builders import findings, sample_report

IMAGE = "![t](https://evil.example/x.png?q=1)"
LINK = "[click](javascript:alert(1))"
HTML = '<a href="https://evil.example">x</a><img src=x>'


def _hostile_report():  # type: ignore[no-untyped-def]
    raw = findings()
    raw[1] = raw[1].model_copy(
        update={
            "subject": "client:b` " + IMAGE + " `",
            "message": f"37 values {IMAGE} and {LINK} **bold** _it_ # h ~~s~~ {HTML}",
            "evidence": (
                Evidence(location=f"clients/{LINK}.jsonl:1", excerpt=f"see {IMAGE} {LINK} {HTML}"),
            ),
        }
    )
    report = sample_report(findings_override=raw)
    return report.model_copy(
        update={
            "warnings": (f"warning {LINK}",),
            "deployment": report.deployment.model_copy(update={"name": f"demo {IMAGE}"}),
        }
    )


def _outside_code_spans(md: str) -> str:
    """`md` without its code spans (whose content GFM shows literally, never as Markdown)."""
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", md)


def test_data_derived_markdown_is_inert() -> None:
    md = renderer_for(OutputFormat.MARKDOWN, color=False).render(_hostile_report())
    outside = _outside_code_spans(md)
    assert "](" not in outside
    assert "<img" not in outside and "<a " not in outside and "<script" not in outside
    assert "**bold**" not in md and "~~s~~" not in md
    # Each hostile string is still shown, escaped, so a reviewer can read it.
    assert r"\!\[t\]\(https://evil.example/x.png?q=1)" in md
    assert r"\[click\]\(javascript:alert(1))" in md
    assert '&lt;a href="https://evil.example"&gt;x&lt;/a&gt;&lt;img src=x&gt;' in md
    assert md.startswith(r"# fmfl-audit report: demo \!\[t\]\(https://evil.example/x.png?q=1)")
    assert r"- warning \[click\]\(javascript:alert(1))" in md


def test_code_spans_cannot_be_closed_by_the_data() -> None:
    md = renderer_for(OutputFormat.MARKDOWN, color=False).render(_hostile_report())
    # The subject holds a backtick: it is fenced with two, padded, so it stays one code span.
    assert "- **FMFL-P01** `` client:b` " + IMAGE + " ` ``: " in md
    assert "  - evidence: `clients/" + LINK + ".jsonl:1` — see " in md
    # Outside code spans no `[`, `]` or `![` is left unescaped (no link or image can start).
    outside = _outside_code_spans(md)
    assert "evil.example/x.png" in outside and "javascript:alert" in outside
    assert not re.search(r"(?<!\\)[\[\]]", outside), outside


def test_our_own_formatting_is_kept() -> None:
    md = renderer_for(OutputFormat.MARKDOWN, color=False).render(sample_report())
    assert "**Overall grade F (score 50.0, coverage 78%)** — gate **FAILED**" in md
    # Only syntax is escaped: `EMAIL_ADDRESS`, `value(s)` stay as written.
    assert "- **FMFL-P01** `client:school-b`: 37 EMAIL_ADDRESS value(s) in" in md
    assert "  - EMAIL_ADDRESS_count = 37 (threshold 0)" in md
    assert "| FMFL-R02 | skipped | missing input: clients\\[\\].update |" in md
    assert "| Area | Grade | Coverage | Rules run |" in md


def test_a_commonmark_renderer_makes_no_link_image_or_html_from_the_data() -> None:
    from markdown_it import MarkdownIt  # rich's own dependency

    md = renderer_for(OutputFormat.MARKDOWN, color=False).render(_hostile_report())
    page = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)
    assert re.findall(r"<(?:a|img|script|s)\b[^>]*>", page) == []
    assert "values ![t](https://evil.example/x.png?q=1) and [click](javascript:alert(1)) " in page
    assert " **bold** _it_ # h ~~s~~ &lt;a href=" in page
    assert "<li>warning [click](javascript:alert(1))</li>" in page
    assert "see ![t](https://evil.example/x.png?q=1) [click](javascript:alert(1)) &lt;a" in page
