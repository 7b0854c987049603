"""The P01 prefilter and worker pool give exactly Presidio's own results, faster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmfl_audit.checkers.privacy._presidio import analyze_texts, build_analyzer, required_chars


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\b[0-9]{8,17}\b", {"<digit>"}),
        (r"\b(?:\d{3}-\d{2}-\d{4})\b", {"<digit>"}),
        (r"[a-z]+@[a-z]+\.com", {"@"}),  # '@' is rarer than '.'
        (r"(bc1|[13])[a-z0-9]{25,59}", {"<digit>"}),
        (r"abc|12", None),  # a branch without a requirement: no gate
        (r"[a-z]{3}\d?", None),  # optional digit: no gate
        (r"(?=\d)\w+", None),  # lookaheads are not part of the match
        (r"x[[:digit:]]", None),  # POSIX class: read differently by the stdlib parser
        (r"\p{Nd}+", None),  # not parseable by the stdlib parser
        (r"[0-9A-F]{2}:[0-9A-F]{2}", {":"}),  # hex digits include letters: the colon is required
    ],
)
def test_required_chars_table(pattern: str, expected: set[str] | None) -> None:
    got = required_chars(pattern, 0)
    assert (None if got is None else set(got)) == expected


@pytest.fixture(scope="module")
def analyzer():
    return build_analyzer(lang="en")


def _key(results: list[list]) -> list[list[tuple]]:
    return [
        sorted((r.start, r.end, r.entity_type, round(r.score, 6)) for r in rs) for rs in results
    ]


@pytest.mark.slow
def test_identical_to_batch_analyzer_engine_on_real_pii(analyzer, shared_data: Path) -> None:
    from presidio_analyzer import BatchAnalyzerEngine

    rows = json.loads((shared_data / "pii_presidio_synth" / "synth_dataset_v2.json").read_text())
    texts = [r["full_text"] for r in rows[:600]] + [
        "Once upon a time, there was a little girl named Lily.",
        "She counted 3 red balls and 12 blue ones.",
        "Mail me at tom@example.org tomorrow at 10:30.",
        "",
    ]
    exclude = ("URL", "DATE_TIME")
    wanted = analyzer.requested_entities(None, exclude)
    expected = BatchAnalyzerEngine(analyzer_engine=analyzer.engine).analyze_iterator(
        texts, language="en", batch_size=64, entities=wanted, score_threshold=0.4
    )
    for batch_size in (1, 64):
        got = analyze_texts(
            analyzer,
            texts,
            language="en",
            min_score=0.4,
            entities=None,
            exclude=exclude,
            batch_size=batch_size,
        )
        assert _key(got) == _key(expected)
    assert sum(map(len, expected)) > 80  # the comparison covers real findings
    pf = analyzer.prefilter(wanted)
    assert pf.select(["Once upon a time, there was a little girl named Lily."]) == [False]
