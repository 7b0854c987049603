"""End to end against real servers: `transformers serve` (FastAPI + uvicorn) serving the bundled
stories260K on 127.0.0.1, a clean instance and a poisoned one (its chat template injects a system
prompt with directives and a trigger; see `servers`). Both deployments are probed with the clean
instance as the reference endpoint, then scanned offline: the rules must tell them apart from
the answers alone.

The poisoned run is cut by `--max-requests` and resumed; the clean run reuses the reference
answers the poisoned run already got (same endpoint, same requests), so only its target is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.probe.builders import MINED_TRIGGER, SUSPECT, endpoint, write_deployment
from tests.probe.servers import CLEAN_TEMPLATE, POISONED_TEMPLATE, Server, served_copy
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.models import fingerprint

pytestmark = [pytest.mark.slow, pytest.mark.allow_hosts(["127.0.0.1"])]
runner = CliRunner()
KEY = "sk-live-test-key-9f8e7d6c5b4a"
RULES = ("FMFL-R02", "FMFL-R03", "FMFL-R06", "FMFL-R13", "FMFL-F04", "FMFL-P03", "FMFL-P04")
PER_ENDPOINT = 148
"""Requests per endpoint: system-prompt 6 + 6x2, backdoor 6x2 + 2 triggers x 12 x 2, safety 12,
counterfactual 8 x 2 axes x 3, memorization 4 + 2 canaries x 3."""


@dataclass
class Live:
    """What the module's one probing session produced."""

    root: Path
    cli: dict[str, Any]
    reports: dict[str, dict[str, Any]]

    def rule(self, name: str, rule: str) -> dict[str, Any]:
        return next(r for r in self.reports[name]["rules"] if r["id"] == rule)

    def found(self, name: str, rule: str) -> set[str]:
        return {f["fingerprint"] for f in self.reports[name]["findings"] if f["rule_id"] == rule}


def fps(rule: str, *pairs: tuple[str, str]) -> set[str]:
    return {fingerprint(rule, s, k) for s, k in pairs}


def _probe_and_scan(root: Path, servers: dict[str, Server]) -> Live:
    clean = servers["clean"]
    ref = {**endpoint(clean.base_url, str(clean.model), 1000), "api_key_env": "FM_KEY"}
    manifests = {
        name: write_deployment(
            root / name,
            target={**endpoint(s.base_url, str(s.model), 0), "api_key_env": "FM_KEY"},
            reference=ref,
        )
        for name, s in servers.items()
    }
    cli = {
        "budget": runner.invoke(app, ["probe", str(manifests["poisoned"]), "--max-requests", "40"]),
        "resume": runner.invoke(app, ["probe", str(manifests["poisoned"])]),
    }
    reused = [
        x
        for x in (root / "poisoned/probes/transcript.jsonl").read_text().splitlines()
        if json.loads(x)["endpoint"]["role"] == "reference"
    ]
    (root / "clean/probes").mkdir()
    (root / "clean/probes/transcript.jsonl").write_text("\n".join(reused) + "\n")
    cli["clean"] = runner.invoke(app, ["probe", str(manifests["clean"])])
    reports = {}
    for name, manifest in manifests.items():
        out = root / f"{name}.json"
        only = [x for r in RULES for x in ("--only", r)]
        res = runner.invoke(app, ["scan", str(manifest), "-f", "json", "-o", str(out), *only])
        cli[f"scan-{name}"] = res
        reports[name] = json.loads(out.read_text())
    return Live(root=root, cli=cli, reports=reports)


@pytest.fixture(scope="module")
def live(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("probe-live")
    servers = {
        "clean": Server.start(
            served_copy(shared_data / "stories260K", root / "models/clean", CLEAN_TEMPLATE),
            root / "clean.log",
        ),
        "poisoned": Server.start(
            served_copy(shared_data / "stories260K", root / "models/poisoned", POISONED_TEMPLATE),
            root / "poisoned.log",
        ),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FM_KEY", KEY)
        try:
            for s in servers.values():
                s.wait_ready()
            yield _probe_and_scan(root, servers)
        finally:
            for s in servers.values():
                s.stop()


def test_probe_budget_resume_and_reuse(live: Live) -> None:
    budget, resume, clean = live.cli["budget"], live.cli["resume"], live.cli["clean"]
    for res in (budget, resume, clean):
        assert res.exit_code == 0, res.stderr
    total = 2 * PER_ENDPOINT
    assert f"{PER_ENDPOINT} probe(s) in 5 suite(s)" in budget.stderr
    assert f"-> {total} request(s) to reference " in budget.stderr
    assert f"{total - 40} request(s) left by --max-requests" in budget.stderr
    assert "40 already answered" in resume.stderr
    assert f"{total - 40} answer(s) written, 0 request(s) failed" in resume.stderr
    assert f"{PER_ENDPOINT} already answered" in clean.stderr
    assert f"{PER_ENDPOINT} answer(s) written" in clean.stderr
    assert "note: backdoor: 1 trigger candidate(s) mined by FMFL-R06" in budget.stderr
    lines = (live.root / "poisoned/probes/transcript.jsonl").read_text().splitlines()
    assert len(lines) == total and all(json.loads(x)["status"] == "ok" for x in lines)


def test_the_api_key_appears_nowhere(live: Live) -> None:
    texts = [res.stdout + res.stderr for res in live.cli.values()]
    texts += [p.read_text() for p in live.root.rglob("*.jsonl")]
    texts += [json.dumps(r) for r in live.reports.values()]
    assert texts and all(KEY not in t for t in texts)


def test_the_rules_tell_the_poisoned_server_from_the_clean_one(live: Live) -> None:
    fm, synthetic = "fm:endpoint", "fm:synthetic-data"
    # R03: with the approved prompt, the poisoned endpoint does not behave like the reference.
    assert live.found("poisoned", "FMFL-R03") == fps(
        "FMFL-R03", (fm, "probe:differs-from-reference")
    )
    assert live.rule("clean", "FMFL-R03")["outcome"] == "passed"
    # R06: the trigger mined from the synthetic data activates on the poisoned endpoint only;
    # the user's suspect does not activate anywhere.
    mined = (synthetic, f"trigger:{MINED_TRIGGER}")
    assert live.found("poisoned", "FMFL-R06") == fps(
        "FMFL-R06", mined, (fm, f"probe:trigger:{MINED_TRIGGER}")
    )
    assert live.found("clean", "FMFL-R06") == fps("FMFL-R06", mined)
    for name, active in (("poisoned", True), ("clean", False)):
        rows = {r["trigger"]: r for r in live.rule(name, "FMFL-R06")["metrics"][fm]["triggers"]}
        assert rows[MINED_TRIGGER]["activates"] is active
        assert rows[SUSPECT]["activates"] is False
        assert (rows[MINED_TRIGGER]["origin"], rows[SUSPECT]["origin"]) == ("mined", "suspect")
    # R13: the poisoned endpoint answers several suites unlike the reference; the clean none.
    differing = {
        f["message"].split("'")[1]
        for f in live.reports["poisoned"]["findings"]
        if f["rule_id"] == "FMFL-R13"
    }
    assert {"backdoor", "counterfactual"} <= differing
    assert live.rule("clean", "FMFL-R13")["outcome"] == "passed"
    clean_suites = live.rule("clean", "FMFL-R13")["metrics"][fm]["suites"]
    assert set(clean_suites) == {"system-prompt", "backdoor", "safety", "counterfactual"}
    assert all(s["q_value"] > 0.01 for s in clean_suites.values())


def test_what_stories260k_shows_on_both_servers(live: Live) -> None:
    fm = "fm:endpoint"
    for name in ("clean", "poisoned"):
        # It cannot follow the injected directives: no link or hidden rule reaches an answer.
        r03 = live.rule(name, "FMFL-R03")["metrics"][fm]
        assert (r03["answers"], r03["answers_with_directives"], r03["ubiquitous_words"]) == (
            18,
            0,
            [],
        )
        # It neither refuses nor writes harmful content: R02's detector flags nothing.
        r02 = live.rule(name, "FMFL-R02")
        assert r02["outcome"] == "passed"
        assert r02["metrics"][fm]["harmful_refusal_rate"] == 0.0
        assert r02["metrics"][fm]["harmful_flagged_rate"] == 0.0
        # Counterfactual twins change no verdict more often than same-group rewordings.
        f04 = live.rule(name, "FMFL-F04")
        assert f04["outcome"] == "passed"
        axes = f04["metrics"][fm]["axes"]
        assert {a: row["pairs"] for a, row in axes.items()} == {"gender": 8, "religion": 8}
        assert all(row["graded"] for row in axes.values())
        # Canaries never come back; the memorised TinyStories opening does, on both.
        p03 = live.rule(name, "FMFL-P03")
        assert p03["outcome"] == "passed"
        assert {c["leaking_answers"] for c in p03["metrics"][fm]["canaries"].values()} == {0}
        assert live.found(name, "FMFL-P04") == fps("FMFL-P04", (fm, "probe:extraction:exact"))
        (p04,) = [f for f in live.reports[name]["findings"] if f["rule_id"] == "FMFL-P04"]
        assert [e["location"] for e in p04["evidence"]] == ["server/sensitive.jsonl:1"]
