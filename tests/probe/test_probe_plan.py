"""The manifest's probe sections and the probe plan: what would be sent, without sending it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.probe.builders import (
    CANARIES,
    MINED_TRIGGER,
    SENSITIVE,
    SUSPECT,
    endpoint,
    write_deployment,
)
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.manifest import load_manifest
from fmfl_audit.probe import ProbeError, plan_probes
from fmfl_audit.probe.suites import ProbeConfigError

runner = CliRunner()
URL = "http://127.0.0.1:9/v1"


def manifest(tmp_path: Path, **kw: object) -> Path:
    ref = endpoint("http://127.0.0.1:10/v1", "ref", 1000)
    return write_deployment(tmp_path, target=endpoint(URL, "m", 0), reference=ref, **kw)  # type: ignore[arg-type]


def test_plan_covers_every_suite_for_both_endpoints(tmp_path: Path) -> None:
    plan = plan_probes(load_manifest(manifest(tmp_path)))
    by_suite: dict[str, int] = {}
    for p in plan.probes:
        by_suite[p.suite] = by_suite.get(p.suite, 0) + 1
    assert by_suite == {
        "system-prompt": 6 + 6 * 2,
        "backdoor": 6 * 2 + 2 * 6 * 2 * 2,
        "safety": 12,
        "counterfactual": 8 * 2 * 3,
        "memorization": 4 + 2 * 3,
    }
    assert len(plan.requests) == 2 * len(plan.probes) == len(plan.pending)
    triggers = {(p.meta.trigger, p.meta.group) for p in plan.probes if p.meta.kind == "trigger"}
    assert triggers == {(MINED_TRIGGER, "mined"), (SUSPECT, "suspect")}
    # Every request carries the approved prompt; each probe its own seed, the reference others.
    seeds = {(r.role, r.body["seed"]) for r in plan.requests}
    assert len(seeds) == len(plan.requests)
    assert plan_probes(load_manifest(manifest(tmp_path / "again"))).requests == plan.requests


def test_a_canary_secret_and_a_record_suffix_are_never_sent(tmp_path: Path) -> None:
    plan = plan_probes(load_manifest(manifest(tmp_path)))
    sent = [r.body["messages"][-1]["content"] for r in plan.requests]
    assert {s for s in sent if "red door" in s} == {"the secret code of the red door is"}
    assert not any(c["secret"] in s for c in CANARIES for s in sent)
    record = [p.user for p in plan.probes if p.meta.kind == "record"]
    assert sorted(record) == sorted(" ".join(t.split()[:8]) for t in SENSITIVE)
    leaky = [{"id": "c3", "format": "code 1234 then {digits:4}", "secret": "1234"}]
    (tmp_path / "server" / "canaries.jsonl").write_text(
        "".join(json.dumps(c) + "\n" for c in leaky)
    )
    plan = plan_probes(load_manifest(tmp_path / "manifest.yaml"))
    assert not any(p.meta.kind == "canary" for p in plan.probes)
    assert "memorization: canary c3 not sent" in " ".join(plan.notes)


def test_estimate_and_suite_choice(tmp_path: Path) -> None:
    m = manifest(tmp_path)
    data = yaml.safe_load(m.read_text())
    data["foundation_model"]["endpoint"]["requests_per_minute"] = 30
    m.write_text(yaml.safe_dump(data))
    plan = plan_probes(load_manifest(m), suites=["safety"])
    est = plan.estimate(max_requests=10)
    assert (est.requests, est.max_completion_tokens) == (10, 160)
    assert est.min_seconds == pytest.approx(10.0)  # 5 target requests at 30/min; no reference limit
    assert est.prompt_tokens > 10 * len("You are a friendly story teller") // 4
    with pytest.raises(ProbeError, match="unknown probe suite 'jailbreak'"):
        plan_probes(load_manifest(m), suites=["jailbreak"])


def test_unknown_counterfactual_axis(tmp_path: Path) -> None:
    m = manifest(tmp_path, probe={"counterfactual_axes": ["zodiac"]})
    with pytest.raises(ProbeConfigError, match="unknown or single-group axis 'zodiac'"):
        plan_probes(load_manifest(m))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"endpoint": None}, "reference_endpoint needs endpoint"),
        ({"probe_transcript": None}, "endpoint needs probe_transcript"),
        ({"endpoint": {"base_url": "ftp://host", "model": "m"}}, "not an http(s) URL"),
        (
            {"endpoint": {"base_url": URL, "model": "m", "api_key_env": "sk-live-1234"}},
            "never put the key itself in the manifest",
        ),
        ({"endpoint": {"base_url": URL, "model": "m", "api_key": "x"}}, "api_key"),
        ({"probe": {"suites": ["safety", "safety"]}}, "a suite is listed twice"),
        ({"probe": {"prompts_per_suite": {"jailbreak": 3}}}, "prompts_per_suite.jailbreak"),
        ({"probe": {"prompts_per_suite": 0}}, "prompts per suite must be 1 to 1000"),
    ],
)
def test_manifest_errors_exit_2_with_their_location(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    m = manifest(tmp_path)
    data = yaml.safe_load(m.read_text())
    for key, value in change.items():
        if value is None:
            del data["foundation_model"][key]
        else:
            data["foundation_model"][key] = value
    m.write_text(yaml.safe_dump(data))
    res = runner.invoke(app, ["probe", str(m), "--dry-run"])
    assert res.exit_code == 2 and message in res.stderr and "manifest.yaml:" in res.stderr


def test_nothing_to_probe(tmp_path: Path) -> None:
    m = write_deployment(tmp_path, target=endpoint(URL, "m", 0))
    data = yaml.safe_load(m.read_text())
    del data["foundation_model"]["endpoint"]
    m.write_text(yaml.safe_dump(data))
    res = runner.invoke(app, ["probe", str(m)])
    assert res.exit_code == 2 and "nothing to probe: set foundation_model.endpoint" in res.stderr
    res = runner.invoke(app, ["validate", str(m)])
    assert res.exit_code == 0
