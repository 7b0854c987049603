"""Rule packs: the default pack covers the catalog, user packs add, override and disable rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import write_jsonl, write_manifest
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.errors import RulePackError
from fmfl_audit.models import Area, Grade, Severity
from fmfl_audit.rulepacks.loader import builtin_pack_names, load_ruleset, select

CATALOG = (
    [f"FMFL-R{i:02d}" for i in range(1, 14)]
    + [f"FMFL-P{i:02d}" for i in range(1, 9)]
    + [f"FMFL-F{i:02d}" for i in range(1, 9)]
)


def test_default_pack_lists_every_catalog_rule_in_order() -> None:
    rs = load_ruleset(["default"])
    assert [r.id for r in rs.rules] == CATALOG
    assert rs.packs == ("default",)
    assert builtin_pack_names() == ["default"]  # data folders under rules/ are not packs
    for r in rs.rules:
        assert r.spec.title.startswith("Ensure ")
        assert r.spec.remediation.strip()
        assert r.spec.area is {"R": Area.ROBUSTNESS, "P": Area.PRIVACY, "F": Area.FAIRNESS}[r.id[5]]


def test_default_grading_rubric() -> None:
    g = load_ruleset(["default"]).grading
    assert [(b.grade, b.min_score) for b in g.bands] == [
        (Grade.A, 90),
        (Grade.B, 80),
        (Grade.C, 70),
        (Grade.D, 60),
        (Grade.F, 0),
    ]
    assert g.letter(90) is Grade.A and g.letter(89.99) is Grade.B and g.letter(0) is Grade.F
    assert g.severity_penalty[Severity.CRITICAL] == 1.0
    assert g.critical_cap is Grade.F


def write_pack(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_user_pack_overrides_params_severity_and_disables(tmp_path: Path) -> None:
    pack = write_pack(
        tmp_path,
        """\
pack: acme
overrides:
  - {id: FMFL-F06, params: {max_top1_share: 0.3}, severity: high}
  - {id: FMFL-R01, enabled: false}
""",
    )
    rs = load_ruleset(["default", str(pack)])
    f06 = rs.get("FMFL-F06").spec
    assert f06.params["max_top1_share"] == 0.3
    assert f06.params["max_gini"] == 0.4  # untouched params survive
    assert f06.severity is Severity.HIGH
    assert rs.get("FMFL-R01").spec.enabled is False
    assert rs.packs == ("default", "acme")


def test_user_pack_adds_a_rule_reusing_a_checker(tmp_path: Path) -> None:
    pack = write_pack(
        tmp_path,
        """\
pack: acme
rules:
  - id: ACME-P01
    title: Ensure student ids do not leak
    area: privacy
    threat: top-down disclosure
    severity: critical
    checker: FMFL-P01
    params: {entities: [STUDENT_ID]}
    remediation: Remove them.
""",
    )
    rs = load_ruleset(["default", str(pack)])
    assert rs.get("ACME-P01").spec.checker_id == "FMFL-P01"


def test_manifest_overrides_apply_last() -> None:
    rs = load_ruleset(["default"], overrides={"FMFL-P01": {"params": {"min_score": 0.9}}})
    assert rs.get("FMFL-P01").spec.params["min_score"] == 0.9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "pack: x\noverrides:\n  - {id: FMFL-PO1}\n",
            "override of unknown rule 'FMFL-PO1'; did you mean 'FMFL-P01'?",
        ),
        (
            "pack: x\nrules:\n  - {id: FMFL-P01, title: Ensure x, area: privacy, threat: leak, severity: high, remediation: fix it}\n",
            "rule FMFL-P01 is already defined by",
        ),
        (
            "pack: x\nrules:\n  - {id: bad, title: Ensure x, area: privacy, threat: leak, severity: high, remediation: fix it}\n",
            ":3:6: rules[0].id: not a rule id: 'bad'",
        ),
        (
            "pack: x\nrules:\n  - {id: X-P1, title: Ensure x, area: privacy, threat: leak, severity: severe, remediation: fix it}\n",
            "rules[0].severity: Input should be 'info', 'low', 'medium', 'high' or 'critical'",
        ),
        ("pack: x\nrulez: []\n", ":2:1: rulez: unknown key; did you mean 'rules'?"),
    ],
)
def test_pack_errors_are_clear(tmp_path: Path, text: str, message: str) -> None:
    pack = write_pack(tmp_path, text)
    with pytest.raises(RulePackError) as info:
        load_ruleset(["default", str(pack)])
    assert message in str(info.value)


def test_unknown_builtin_pack_suggests() -> None:
    with pytest.raises(RulePackError, match="unknown rule pack 'defualt'; did you mean 'default'"):
        load_ruleset(["defualt"])


def test_pack_without_grading_alone_is_an_error(tmp_path: Path) -> None:
    pack = write_pack(tmp_path, "pack: lonely\n")
    with pytest.raises(RulePackError, match="no rule pack defines `grading`"):
        load_ruleset([str(pack)])


def test_select_by_rule_and_area() -> None:
    rules = load_ruleset(["default"]).rules
    assert select(rules, ["FMFL-P01"], []) == ["FMFL-P01"]
    assert select(rules, ["fairness"], ["FMFL-F06"]) == [
        f"FMFL-F{i:02d}" for i in (1, 2, 3, 4, 5, 7, 8)
    ]
    with pytest.raises(
        RulePackError, match="'privcy' is neither a rule id nor an area; did you mean 'privacy'"
    ):
        select(rules, ["privcy"], [])


# --- path params: relative to the file that sets them -----------------------------------------

SIGS = """\
version: 1
threshold: 1.0
families:
  house_marker:
    description: a marker only this deployment's signature file knows
    patterns:
      - {id: zbq, weight: 1.0, regex: 'zebra-banana-quartz'}
"""
FAST_R01 = {"use_corpus": False, "use_suffix": False, "use_intent": False}


def _deploy(root: Path, r01_params: dict[str, Any] | None = None) -> Path:
    """`root/deploy/manifest.yaml`: one client whose prompts hold the house marker once."""
    write_jsonl(
        root / "deploy/clients/a/prompts.jsonl",
        [{"text": "Tell me a story about a cat."}, {"text": "zebra-banana-quartz: tell me more."}],
    )
    policy: dict[str, Any] = {}
    if r01_params is not None:
        policy = {"rules": {"FMFL-R01": {"params": {**FAST_R01, **r01_params}}}}
    return write_manifest(
        root / "deploy",
        {
            "version": 1,
            "deployment": {"name": "paths", "task": "text-classification"},
            "clients": [{"id": "a", "prompts": "clients/a/prompts.jsonl"}],
            "policy": policy,
        },
    )


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, [*args], catch_exceptions=False)


def test_manifest_path_params_resolve_against_the_manifest_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _deploy(tmp_path, {"signature_files": ["sigs.yml"]})
    (tmp_path / "deploy/sigs.yml").write_text(SIGS)
    monkeypatch.chdir(tmp_path)  # scanned from the parent folder
    res = _cli("validate", "deploy/manifest.yaml")
    assert res.exit_code == 0, res.output
    res = _cli("scan", "deploy/manifest.yaml", "--only", "FMFL-R01", "-f", "json", "--no-progress")
    report = json.loads(res.stdout)
    (r01,) = report["rules"]
    assert r01["outcome"] == "failed", r01
    assert [f["subject"] for f in report["findings"]] == ["client:a"]
    assert manifest.is_file()


@pytest.mark.parametrize("command", ["validate", "scan"])
def test_a_missing_param_file_is_a_located_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    _deploy(tmp_path, {"signature_files": ["sigs.yml"]})
    (tmp_path / "sigs.yml").write_text(SIGS)  # next to the current folder, not the manifest
    monkeypatch.chdir(tmp_path)
    res = _cli(command, "deploy/manifest.yaml")
    assert res.exit_code == 2, res.output
    line = next(
        n
        for n, t in enumerate((tmp_path / "deploy/manifest.yaml").read_text().splitlines(), 1)
        if "signature_files" in t
    )
    assert res.stderr.startswith(f"error: deploy/manifest.yaml:{line}:"), res.stderr
    assert "rule FMFL-R01: params.signature_files: sigs.yml: no such file or folder" in res.stderr
    assert "Traceback" not in res.output


def test_pack_path_params_resolve_against_the_pack_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deploy(tmp_path)
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs/sigs.yml").write_text(SIGS)
    params = ", ".join(f"{k}: false" for k in FAST_R01)
    (tmp_path / "packs/mine.yaml").write_text(
        "pack: mine\noverrides:\n"
        f"  - {{id: FMFL-R01, params: {{signature_files: [sigs.yml], {params}}}}}\n"
    )
    monkeypatch.chdir(tmp_path / "deploy")
    res = _cli(
        "scan",
        "manifest.yaml",
        "--rules",
        "../packs/mine.yaml",
        "--only",
        "FMFL-R01",
        "-f",
        "json",
        "--no-progress",
    )
    report = json.loads(res.stdout)
    assert report["rules"][0]["outcome"] == "failed", report["rules"][0]
    (tmp_path / "packs/sigs.yml").unlink()
    res = _cli("validate", "manifest.yaml", "--rules", "../packs/mine.yaml")
    assert res.exit_code == 2
    assert "mine.yaml: rule FMFL-R01: params.signature_files: sigs.yml: no such file" in res.stderr
