"""Builders for the robustness checker tests: run one rule end to end through the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import Finding, RuleResult, fingerprint


@dataclass(frozen=True)
class RuleRun:
    """One rule's result and its findings from a real scan."""

    result: RuleResult
    findings: tuple[Finding, ...]

    def assert_exact(self, expected: set[tuple[str, str]]) -> None:
        """The findings are exactly `expected` (subject, key) pairs, matched by fingerprint."""
        got = {f.fingerprint for f in self.findings}
        want = {fingerprint(self.result.id, s, k) for s, k in expected}
        assert len(self.findings) == len(expected), [(f.subject, f.message) for f in self.findings]
        assert got == want, [(f.subject, f.message) for f in self.findings]

    def one(self, subject: str, key: str) -> Finding:
        """The finding with this subject and key."""
        fp = fingerprint(self.result.id, subject, key)
        matches = [f for f in self.findings if f.fingerprint == fp]
        assert matches, [(f.subject, f.message) for f in self.findings]
        return matches[0]


def _run_rule(manifest: Path, rule: str, **params: Any) -> RuleRun:
    """Scan `manifest` with only `rule` (pack params overridden by `params`)."""
    dep = load_manifest(manifest)
    if params:
        import yaml

        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
        data.setdefault("policy", {}).setdefault("rules", {})[rule] = {"params": params}
        manifest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        dep = load_manifest(manifest)
    report = Auditor(dep, only=[rule], device="cpu").run()
    result = report.rule(rule)
    if result.error is not None:
        pytest.fail(f"{rule} errored: {result.error}")
    return RuleRun(result, tuple(f for f in report.findings if f.rule_id == rule))


RunRule = Callable[..., RuleRun]


@pytest.fixture
def run_rule() -> RunRule:
    """`run_rule(manifest, rule_id, **params)`: scan with that rule only, return its result."""
    return _run_rule


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """An untrained 1-layer Llama sequence classifier (stories260K config and tokenizer) whose
    class 1 is named INJECTION: enough to exercise the optional classifier layer's plumbing."""
    import torch
    import transformers

    folder = tmp_path_factory.mktemp("clf")
    src = shared_data / "stories260K"
    cfg = transformers.AutoConfig.from_pretrained(str(src), local_files_only=True)
    cfg.num_labels, cfg.num_hidden_layers = 2, 1
    cfg.id2label, cfg.label2id = {0: "SAFE", 1: "INJECTION"}, {"SAFE": 0, "INJECTION": 1}
    torch.manual_seed(0)
    transformers.LlamaForSequenceClassification(cfg).save_pretrained(str(folder))
    transformers.AutoTokenizer.from_pretrained(str(src), local_files_only=True).save_pretrained(
        str(folder)
    )
    return folder
