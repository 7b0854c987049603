"""Unquoted keyword assignments (`password=...`, `export AWS_SECRET_ACCESS_KEY=...`): FMFL-P02
reports them as "Secret Assignment", and no rule's evidence or report shows their value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.checkers.privacy.conftest import audit, report_json
from tests.conftest import minimal_manifest, write_jsonl, write_manifest

from fmfl_audit.checkers.privacy.secrets import (
    DEFAULT_DISABLED,
    EXTRA_PATTERNS,
    SECRET_ASSIGNMENT,
    SecretScanner,
)
from fmfl_audit.models import Confidence, Severity

PASSWORD = "Hunter2SuperSecret!"
AWS_SECRET = "Zx8kQ2vN9pL4mR7tY1wE5uI3oP6aS0dF8gH2jK4l"


def _scan(text: str) -> list[tuple[str, str]]:
    scanner = SecretScanner(disabled=DEFAULT_DISABLED, extra=EXTRA_PATTERNS)
    return [(h.kind, text[h.start : h.end]) for h in scanner.scan(text)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (f"password={PASSWORD}", PASSWORD),
        (f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET),
        ("Password: hunter2x", "hunter2x"),
        ("passwd=hunter2", "hunter2"),
        ("api-key:abc123def", "abc123def"),
        ("db.client_secret = Ab1cD2eF3gH4 in prod", "Ab1cD2eF3gH4"),
        # The value runs to the next space: a trailing comma is masked too.
        ("db_password: s3cr3t-pass, user: bob", "s3cr3t-pass,"),
        ("callback https://x.example/cb?token=abc123xyz now", "abc123xyz"),
    ],
)
def test_unquoted_assignments_are_found_value_only(text: str, value: str) -> None:
    assert _scan(text) == [("Secret Assignment", value)]


@pytest.mark.parametrize(
    "text",
    [
        "Send me the password reset link please",
        "token: 3",  # too short
        "the secret is out",
        'api_key = os.environ["KEY"]',  # a reference to where the secret lives, not the secret
        "api_key=${API_KEY} and token={{ token }}",
        "password: required",  # a plain word
        "secret: Santa-Claus",  # words only: a words-only password is missed by design
        "max_tokens=100000",  # `tokens` is not the keyword; and a bare number is not a secret
        "token_count: 123456",
        "my passport: X1234567",
        "bypass=abcdef12",
        "password=<SECRET_ASSIGNMENT>",  # a redacted copy stays clean when scanned again
        "password=********",
        "token_id = tok.pad_token_id",  # code: attribute access, identifiers
        "api_key = self.api_key2, secret = get_secret_value(name)",
        "password = request.form['password']",
        "[GitHub Token: gh*************************************]",  # P02's own evidence mask
        "The password game was fun: Ben said the secret word and everyone laughed.",
    ],
)
def test_keyword_without_a_secret_value_is_not_reported(text: str) -> None:
    assert _scan(text) == []


def test_a_quoted_bare_number_is_not_an_assignment() -> None:
    # (detect-secrets' keyword plugin reports this JSON field itself, as `Secret Keyword`.)
    assert re.search(SECRET_ASSIGNMENT, '{"secret": "398259"}') is None
    assert re.search(SECRET_ASSIGNMENT, '{"secret": "3982x!"}') is not None


def test_quoted_assignments_stay_detect_secrets_keyword_hits() -> None:
    assert _scan('config password = "Tr0ub4dor&3xyz"') == [("Secret Keyword", "Tr0ub4dor&3xyz")]


def test_p02_reports_unquoted_assignments_and_no_report_shows_them(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "a/synthetic_data.jsonl",
        [{"text": f"Log in with password={PASSWORD} today."}],
    )
    write_jsonl(
        tmp_path / "a/prompts.jsonl",
        [{"text": f"Fix my script: export AWS_SECRET_ACCESS_KEY={AWS_SECRET}"}],
    )
    manifest = minimal_manifest(
        clients=[
            {"id": "a", "synthetic_data": "a/synthetic_data.jsonl", "prompts": "a/prompts.jsonl"}
        ]
    )
    rep = audit(write_manifest(tmp_path, manifest), "FMFL-P02")
    got = sorted((f.severity, f.confidence, f.message) for f in rep.findings)
    assert got == [
        (
            Severity.HIGH,
            Confidence.MEDIUM,
            "1 Secret Assignment secret(s) in the prompts of client a (1 of 1 records)",
        ),
        (
            Severity.HIGH,
            Confidence.MEDIUM,
            "1 Secret Assignment secret(s) in the synthetic data of client a (1 of 1 records)",
        ),
    ]
    assert [e.excerpt for f in rep.findings for e in f.evidence] == [
        "Log in with password=<SECRET_ASSIGNMENT> today. [Secret Assignment: Hu*****************]",
        "…my script: export AWS_SECRET_ACCESS_KEY=<SECRET_ASSIGNMENT> "
        "[Secret Assignment: Zx**************************************]",
    ]
    out = report_json(rep)
    for raw in (PASSWORD, AWS_SECRET, PASSWORD[2:], AWS_SECRET[2:]):
        assert raw not in out


def test_p01_evidence_masks_an_unquoted_assignment_next_to_the_pii(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "a/synthetic_data.jsonl",
        [{"text": f"Write to jane.doe@example.org with password={PASSWORD} soon."}],
    )
    manifest = minimal_manifest(clients=[{"id": "a", "synthetic_data": "a/synthetic_data.jsonl"}])
    rep = audit(write_manifest(tmp_path, manifest), "FMFL-P01")
    assert [e.excerpt for f in rep.findings for e in f.evidence] == [
        "Write to <EMAIL_ADDRESS> with password=<SECRET_ASSIGNMENT> soon."
    ]
    assert PASSWORD[2:] not in report_json(rep)
