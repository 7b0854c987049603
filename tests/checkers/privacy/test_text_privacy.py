"""FMFL-P01 (extensions), P02, P07, P08: must-fire and must-not-fire cases with exact findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.checkers.privacy.conftest import audit, report_json
from tests.conftest import minimal_manifest, write_jsonl, write_manifest

from fmfl_audit.checkers.privacy.propagation import normalise_value
from fmfl_audit.checkers.privacy.secrets import DEFAULT_DISABLED, EXTRA_PATTERNS, SecretScanner
from fmfl_audit.models import Outcome, Severity

CLEAN = [
    "Lily had a little cat. They went to the park and played with a red ball.",
    "Tom found a key under the mat and opened the old door to the garden.",
    "The password game was fun: Ben said the secret word and everyone laughed.",
]
EMAIL, PHONE, SSN = "jane.doe@example.org", "(212) 555-0147", "536-90-4399"
AWS = "AKIAIOSFODNN7EXAMPLE"
GHP = "ghp_aBcdEfGhIjKlMnOpQrStUvWxYz0123456789"
URL_PW = "https://admin:Hunter2Secret@db.example.com/prod"


def _write(tmp: Path, clients: list[dict[str, Any]], **sections: Any) -> Path:
    specs = []
    for c in clients:
        spec: dict[str, Any] = {"id": c["id"]}
        for part in ("prompts", "synthetic_data", "private_sample"):
            if part in c:
                rel = f"{c['id']}/{part}.jsonl"
                write_jsonl(tmp / rel, [{"text": t} for t in c[part]])
                spec[part] = rel
        specs.append(spec)
    manifest = minimal_manifest(clients=specs, **sections)
    return write_manifest(tmp, manifest)


def _got(rep: Any) -> list[tuple[str, str, Any]]:
    return sorted((f.subject, f.metric.name if f.metric else "", f.severity) for f in rep.findings)


THIRD_PARTY = {
    "name": "acme",
    "placement": "third-party-api",
    "provider": {"name": "acme-llm", "third_party": True},
}


# -- FMFL-P01 extensions ----------------------------------------------------------------------------


@pytest.mark.slow
def test_p01_scans_teacher_outputs_and_third_party_prompts(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "teacher.jsonl",
        [
            {"text": f"The answer, mail {EMAIL}", "label": 1},
            {"label": 0, "prob": 0.9},
            {"text": CLEAN[0], "label": 0},
        ],
    )
    fm = {**THIRD_PARTY, "teacher_predictions": "teacher.jsonl"}
    path = _write(
        tmp_path,
        [
            {
                "id": "a",
                "prompts": [f"Write a story for the kid whose SSN is {SSN}", CLEAN[1]],
                "synthetic_data": CLEAN,
            },
        ],
        foundation_model=fm,
    )
    rep = audit(path, "FMFL-P01")
    assert _got(rep) == [
        ("client:a", "prompts_US_SSN_count", Severity.CRITICAL),
        ("fm", "teacher_EMAIL_ADDRESS_count", Severity.HIGH),
    ]
    m = rep.rule("FMFL-P01").metrics
    assert m["fm"] == {
        "teacher_records_scanned": 2,
        "teacher_records_with_pii": 1,
        "teacher_pii_rate": 0.5,
        "teacher_entities": {"EMAIL_ADDRESS": 1},
        "teacher_records_without_text": 1,
    }
    assert m["client:a"]["records_with_pii"] == 0
    assert m["client:a"]["prompts_records_with_pii"] == 1
    out = report_json(rep)
    assert SSN not in out and EMAIL not in out


@pytest.mark.slow
def test_p01_does_not_scan_prompts_for_an_in_house_fm(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {"id": "a", "prompts": [f"My SSN is {SSN}"], "synthetic_data": CLEAN},
        ],
        foundation_model={"name": "local", "placement": "server"},
    )
    rep = audit(path, "FMFL-P01")
    assert rep.findings == () and rep.rule("FMFL-P01").outcome is Outcome.PASSED
    assert not any(k.startswith("prompts_") for k in rep.rule("FMFL-P01").metrics["client:a"])


@pytest.mark.slow
def test_p01_pack_recognizers_need_context(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {
                "id": "a",
                "synthetic_data": [
                    "Her student number is S1234567, said the teacher.",
                    "Patient chart MRN: 00123456 was updated.",
                    "The robot S1234567 beeped twice.",  # no context word: not a student id
                ],
            }
        ],
    )
    rep = audit(path, "FMFL-P01")
    m = rep.rule("FMFL-P01").metrics["client:a"]
    assert m["entities"] == {"MEDICAL_RECORD_NUMBER": 1, "STUDENT_ID": 1}
    assert _got(rep) == [
        ("client:a", "MEDICAL_RECORD_NUMBER_count", Severity.CRITICAL),
        ("client:a", "STUDENT_ID_count", Severity.MEDIUM),
    ]
    assert "S1234567" not in report_json(rep)


# -- FMFL-P02 -----------------------------------------------------------------------------------------


def test_p02_fires_per_client_source_and_type(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {
                "id": "a",
                "synthetic_data": [f"Use the key {AWS} to log in.", CLEAN[0]],
                "prompts": [f"Connect with {URL_PW} and summarise", f"token {GHP}"],
            },
            {"id": "b", "synthetic_data": CLEAN, "prompts": CLEAN},
        ],
    )
    rep = audit(path, "FMFL-P02")
    got = sorted((f.subject, f.message.split(" secret")[0], f.severity) for f in rep.findings)
    assert got == [
        ("client:a", "1 AWS Access Key", Severity.CRITICAL),
        ("client:a", "1 Basic Auth Credentials", Severity.CRITICAL),
        ("client:a", "1 GitHub Token", Severity.CRITICAL),
    ]
    m = rep.rule("FMFL-P02").metrics
    assert m["client:a"]["synthetic_secrets"] == {"AWS Access Key": 1}
    assert m["client:a"]["prompts_secrets"] == {"Basic Auth Credentials": 1, "GitHub Token": 1}
    assert m["client:b"] == {
        "synthetic_records_scanned": 3,
        "synthetic_records_with_secrets": 0,
        "synthetic_secrets": {},
        "prompts_records_scanned": 3,
        "prompts_records_with_secrets": 0,
        "prompts_secrets": {},
    }
    out = report_json(rep)
    for secret in (AWS, GHP, "Hunter2Secret", AWS[4:], GHP[6:]):
        assert secret not in out
    ev = next(f for f in rep.findings if "AWS" in f.message).evidence[0]
    assert ev.location == "a/synthetic_data.jsonl:1"
    assert (
        ev.excerpt
        == "Use the key <AWS_ACCESS_KEY> to log in. [AWS Access Key: AK******************]"
    )


def test_p02_clean_text_passes(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"id": "a", "synthetic_data": CLEAN, "prompts": CLEAN}])
    rep = audit(path, "FMFL-P02")
    assert rep.findings == () and rep.rule("FMFL-P02").outcome is Outcome.PASSED


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        (
            "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\n-----END RSA PRIVATE KEY-----",
            ["Private Key"],
        ),
        ('config password = "Tr0ub4dor&3xyz"', ["Secret Keyword"]),
        ("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD", ["OpenAI Project Key"]),
        ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH is my token", ["Hugging Face Token"]),
        ("redis://default:p4ssw0rd!@cache.internal:6379", ["Password in URL"]),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", ["Bearer Token"]),
        ("Tom had a key to the secret garden and a token for the bus.", []),
        ("Call 10.0.0.1 or 8.8.8.8 for help", []),
    ],
)
def test_secret_scanner_cases(text: str, kinds: list[str]) -> None:
    scanner = SecretScanner(disabled=DEFAULT_DISABLED, extra=EXTRA_PATTERNS)
    hits = scanner.scan(text)
    assert sorted(h.kind for h in hits) == kinds
    for h in hits:  # the whole secret token is covered
        assert "p4ssw0rd" not in text[: h.start] + text[h.end :]
        assert "MIIEow" not in text[: h.start] + text[h.end :]


# -- FMFL-P07 -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_p07_fires_for_values_from_another_clients_prompts(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {
                "id": "a",
                "prompts": [f"Write to {EMAIL} or call {PHONE} about Lily.", CLEAN[0]],
                "synthetic_data": [f"Lily's mum reads mail at {EMAIL}."],
            },  # a's own value: not leaked
            {
                "id": "b",
                "prompts": CLEAN,
                "synthetic_data": [
                    "Call 212.555.0147 today!",
                    f"Mail {EMAIL.upper()} now",
                    CLEAN[1],
                ],
            },
            {"id": "c", "synthetic_data": CLEAN},
        ],
    )
    rep = audit(path, "FMFL-P07")
    assert [(f.subject, f.metric.name, f.metric.value) for f in rep.findings] == [  # type: ignore[union-attr]
        ("client:b", "propagated_values", 2)
    ]
    f = rep.findings[0]
    assert "from client a's prompts" in f.message and f.severity is Severity.CRITICAL
    m = rep.rule("FMFL-P07").metrics
    assert m["client:a"]["propagated_values_from"] == {}
    assert m["client:b"]["propagated_values_from"] == {"a": 2}
    assert m["client:c"]["propagated_values_from"] == {}
    assert m["client:a"]["prompt_pii_values"] == 2
    out = report_json(rep)
    for raw in (EMAIL, EMAIL.upper(), PHONE, "212.555.0147", "2125550147"):
        assert raw not in out


@pytest.mark.slow
def test_p07_silent_without_cross_client_values(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {"id": "a", "prompts": [f"Call {PHONE}"], "synthetic_data": [f"Call {PHONE} now"]},
            {"id": "b", "prompts": CLEAN, "synthetic_data": ["Call (646) 555-0199 now", *CLEAN]},
        ],
    )
    rep = audit(path, "FMFL-P07")
    assert rep.findings == () and rep.rule("FMFL-P07").outcome is Outcome.PASSED


def test_normalise_value() -> None:
    assert normalise_value("(212) 555-0147") == normalise_value("212.555.0147") == "2125550147"
    assert normalise_value("Jane.Doe@Example.org") == "janedoeexampleorg"


# -- FMFL-P08 -----------------------------------------------------------------------------------------


def _keys(rep: Any) -> list[tuple[str, str, Severity]]:
    from fmfl_audit.models import fingerprint

    # Keys are not in the report; recover them from the fingerprint, which hashes the key.
    candidates = [
        "dp:absent",
        "dp:epsilon",
        "secure-aggregation:absent",
        "provider:isolation",
        "provider:retention",
        "provider:trains-on-prompts",
        "prompts-pii",
    ]
    out = []
    for f in rep.findings:
        key = next(k for k in candidates if fingerprint(f.rule_id, f.subject, k) == f.fingerprint)
        out.append((f.subject, key, f.severity))
    return sorted(out)


@pytest.mark.slow
def test_p08_flags_each_problem_with_its_own_key(tmp_path: Path) -> None:
    fm = {
        **THIRD_PARTY,
        "shared_across_clients": True,
        "provider": {
            "name": "acme-llm",
            "third_party": True,
            "isolation": "shared",
            "trains_on_prompts": True,
        },
    }
    path = _write(
        tmp_path,
        [
            {"id": "a", "prompts": [f"Story for the kid with SSN {SSN}"]},
            {"id": "b", "prompts": CLEAN},
        ],
        foundation_model=fm,
        federation={"aggregator": "fedavg", "differential_privacy": {"epsilon": 20, "delta": 1e-5}},
    )
    rep = audit(path, "FMFL-P08")
    assert _keys(rep) == [
        ("client:a", "prompts-pii", Severity.HIGH),
        ("federation", "dp:epsilon", Severity.MEDIUM),
        ("federation", "secure-aggregation:absent", Severity.MEDIUM),
        ("fm", "provider:isolation", Severity.HIGH),
        ("fm", "provider:retention", Severity.MEDIUM),
        ("fm", "provider:trains-on-prompts", Severity.HIGH),
    ]
    assert rep.rule("FMFL-P08").metrics["client:b"]["prompts_with_pii"] == 0
    assert SSN not in report_json(rep)


def test_p08_dp_absent(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"id": "a"}], federation={"secure_aggregation": True})
    rep = audit(path, "FMFL-P08")
    assert _keys(rep) == [("federation", "dp:absent", Severity.HIGH)]


def test_p08_good_configuration_passes(tmp_path: Path) -> None:
    fm = {
        "name": "acme",
        "placement": "third-party-api",
        "shared_across_clients": True,
        "provider": {
            "name": "acme-llm",
            "third_party": True,
            "isolation": "per-client",
            "retention_days": 0,
            "trains_on_prompts": False,
        },
    }
    path = _write(
        tmp_path,
        [{"id": "a", "prompts": CLEAN}],
        foundation_model=fm,
        federation={
            "differential_privacy": {"epsilon": 4.0, "delta": 1e-5},
            "secure_aggregation": True,
        },
    )
    rep = audit(path, "FMFL-P08")
    assert rep.findings == () and rep.rule("FMFL-P08").outcome is Outcome.PASSED
    assert rep.rule("FMFL-P08").metrics["federation"] == {
        "differential_privacy": True,
        "epsilon": 4.0,
        "delta": 1e-5,
        "secure_aggregation": True,
    }


@pytest.mark.slow
def test_privacy_area_scan_never_reports_raw_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fmfl_audit.report.formats import OutputFormat, renderer_for

    monkeypatch.setenv("FMFL_AUDIT_FINGERPRINT_KEY", "k")
    leaked = "the quiet boy in room nine failed his reading test again on friday"
    path = _write(
        tmp_path,
        [
            {"id": "a", "prompts": [f"About {leaked}: mail {EMAIL}, SSN {SSN}."]},
            {
                "id": "b",
                "synthetic_data": [f"Story: {leaked}. Write {EMAIL}. Key {AWS}.", CLEAN[0]],
            },
        ],
        foundation_model=THIRD_PARTY,
    )
    rep = audit(path, "privacy")
    fired = {f.rule_id for f in rep.findings}
    assert {"FMFL-P01", "FMFL-P02", "FMFL-P06", "FMFL-P07", "FMFL-P08"} <= fired
    assert rep.rule("FMFL-P03").outcome is Outcome.SKIPPED
    for fmt in OutputFormat:
        text = renderer_for(fmt, color=False).render(rep)
        for raw in (EMAIL, SSN, AWS, AWS[2:]):
            assert raw not in text, (fmt, raw)
    # Other rules' excerpts may quote ordinary words; P06 masks the leaked span itself.
    p06 = next(f for f in rep.findings if f.rule_id == "FMFL-P06")
    excerpt = p06.evidence[0].excerpt or ""
    assert excerpt.startswith("Story: <LEAKED_FROM:a>. Write <EMAIL_ADDRESS>. Key <AWS_")
