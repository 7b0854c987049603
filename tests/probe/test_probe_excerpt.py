"""The probes' answer excerpts are masked before they are cut (a cut value matches no mask)."""

from __future__ import annotations

import fmfl_audit.checkers.registry  # noqa: F401  (loads the checkers in their import order)
from fmfl_audit.checkers.probes._common import EXCERPT_CHARS, excerpt
from fmfl_audit.redact import cut_masked, redact_spans

LEAD = "Sure, here is what you asked for. " * 4  # 136 characters


def test_an_email_straddling_the_cut_is_masked_whole() -> None:
    text = LEAD + "mail jonathan.apple@example-corp.com for the rest of the list, thanks"
    assert text.index("jonathan") < EXCERPT_CHARS < text.index(".com")
    # The cut counts characters of the masked text.
    assert excerpt(text) == LEAD + "mail <EMAIL> for the res…"


def test_a_number_straddling_the_cut_is_masked_whole() -> None:
    text = LEAD + "his SSN: 219-09-9999 and more words after it"
    assert excerpt(text) == LEAD + "his SSN: <NUMBER> and mo…"


def test_a_long_answer_is_cut_and_marked() -> None:
    text = "word " * 100
    assert excerpt(text) == ("word " * 32) + "…"
    assert excerpt("a short answer") == "a short answer"


def test_kept_hosts_survive_masking_before_the_cut() -> None:
    text = "see https://evil.example/collect?t=abcdef mail jane@example.org " + "x " * 70
    assert excerpt(text) == "see https://evil.example/… mail <EMAIL> " + "x " * 60 + "…"


def test_cut_masked_never_splits_a_placeholder() -> None:
    assert cut_masked("abc <EMAIL_ADDRESS> def", 8) == "abc <EMAIL_ADDRESS>…"
    assert cut_masked("abc <EMAIL_ADDRESS>", 8) == "abc <EMAIL_ADDRESS>"
    assert cut_masked("abc def ghi", 5) == "abc d…"
    assert cut_masked("abc", 5) == "abc" and cut_masked("abc", 5, more=True) == "abc…"


def test_redact_spans_clips_outside_placeholders() -> None:
    text = "a" * 50 + " jane@example.org " + "b" * 30 + " 555-0100-22 " + "c" * 50
    s = text.index("jane")
    n = text.index("555")
    out = redact_spans(text, [(s, s + 16, "EMAIL_ADDRESS"), (n, n + 11, "PHONE_NUMBER")])
    # 40 characters of context after the e-mail placeholder end inside the phone placeholder:
    # the clip takes it whole.
    assert out == "…" + "a" * 39 + " <EMAIL_ADDRESS> " + "b" * 30 + " <PHONE_NUMBER>…"
