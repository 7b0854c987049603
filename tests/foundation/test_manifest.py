"""Manifest loading: a valid manifest, one case per class of error, and fuzzing for tracebacks."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmfl_audit.errors import ManifestError
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import Grade, Severity

VALID = """\
version: 1
deployment: {name: reading-tutor, task: text-classification}
foundation_model:
  name: stories260K
  placement: server
  provider: {name: acme-llm, third_party: true}
  roles: [synthetic-data, distillation]
  checkpoint: {path: fm/}
federation:
  aggregator: fedavg
  rounds: 3
  differential_privacy: {epsilon: 8.0, delta: 1.0e-5}
  participation_log: part.csv
clients:
  - id: school-a
    resources: {tier: abundant, fm_access: local}
    synthetic_data: a.jsonl
    prompts: {path: p.jsonl, text_field: prompt}
models:
  - name: global-lm
    kind: causal-lm
    checkpoint: fm/
    reference: foundation_model
evaluation: {data: a.jsonl, sensitive_features: [gender]}
policy:
  fail_on: critical
  fail_under: D
  waivers:
    - {rule: FMFL-F06, subject: "client:school-a", reason: "pilot phase", expires: 2027-03-31}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "fm").mkdir()
    (tmp_path / "fm" / "config.json").write_text("{}")
    for name in ("a.jsonl", "p.jsonl"):
        (tmp_path / name).write_text('{"text": "x", "prompt": "y"}\n')
    (tmp_path / "part.csv").write_text("round,client_id,num_samples,weight\n1,school-a,1,1\n")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "manifest.yaml"
    path.write_text(text)
    return path


def error_of(folder: Path, text: str) -> str:
    with pytest.raises(ManifestError) as info:
        load_manifest(write(folder, text))
    return str(info.value)


def test_valid_manifest_resolves_paths_relative_to_manifest(folder: Path) -> None:
    dep = load_manifest(write(folder, VALID))
    m = dep.manifest
    assert m.deployment.name == "reading-tutor"
    assert m.clients[0].synthetic_data is not None
    assert m.clients[0].synthetic_data.path == folder / "a.jsonl"
    assert m.clients[0].prompts is not None and m.clients[0].prompts.text_field == "prompt"
    assert m.foundation_model is not None and m.foundation_model.checkpoint is not None
    assert m.foundation_model.checkpoint.path == folder / "fm"
    assert m.policy.fail_on is Severity.CRITICAL and m.policy.fail_under is Grade.D
    assert m.policy.waivers[0].expires.isoformat() == "2027-03-31"
    assert m.policy.packs == ("default",)
    assert len(dep.sha256) == 64


def test_unknown_key_is_located_with_suggestion(folder: Path) -> None:
    text = VALID.replace(
        "    synthetic_data: a.jsonl\n", "    synthetic_data: a.jsonl\n    prompt: x\n"
    )
    msg = error_of(folder, text)
    assert (
        msg
        == f"{folder / 'manifest.yaml'}:18:5: clients[0].prompt: unknown key; did you mean 'prompts'?"
    )


def test_unknown_top_level_key(folder: Path) -> None:
    msg = error_of(folder, VALID + "federaton: {}\n")
    assert msg.endswith(":30:1: federaton: unknown key; did you mean 'federation'?")


def test_missing_required_key_points_at_parent(folder: Path) -> None:
    msg = error_of(
        folder,
        VALID.replace(
            "deployment: {name: reading-tutor, task: text-classification}\n",
            "deployment: {task: x}\n",
        ),
    )
    assert msg.endswith(":2:1: deployment.name: required key is missing")


def test_wrong_enum_value(folder: Path) -> None:
    msg = error_of(folder, VALID.replace("aggregator: fedavg", "aggregator: fedsgd"))
    assert ":10:3: federation.aggregator: Input should be 'fedavg'" in msg


def test_wrong_type(folder: Path) -> None:
    msg = error_of(folder, VALID.replace("rounds: 3", "rounds: many"))
    assert msg.endswith(
        ":11:3: federation.rounds: Input should be a valid integer, unable to parse string as an integer"
    )


def test_missing_file(folder: Path) -> None:
    msg = error_of(folder, VALID.replace("part.csv", "nope.csv"))
    assert msg.endswith(":13:3: federation.participation_log: file not found: nope.csv")


def test_file_given_for_folder_kind(folder: Path) -> None:
    msg = error_of(folder, VALID.replace("synthetic_data: a.jsonl", "synthetic_data: fm"))
    assert msg.endswith(":17:5: clients[0].synthetic_data: expected a file, found a folder: fm")


def test_duplicate_key(folder: Path) -> None:
    msg = error_of(folder, VALID + "policy: {}\n")
    assert msg.endswith(":30:1: duplicate key 'policy'")


def test_yaml_syntax_error(folder: Path) -> None:
    msg = error_of(folder, "version: 1\nclients: [a, b\n")
    assert msg.startswith(f"{folder / 'manifest.yaml'}:3:1: invalid YAML")


def test_not_a_mapping(folder: Path) -> None:
    assert error_of(folder, "- 1\n- 2\n").endswith(
        ":1:1: expected a mapping at the top of the manifest, found list"
    )
    assert error_of(folder, "").endswith(
        ":1:1: expected a mapping at the top of the manifest, found empty"
    )


def test_duplicate_client_ids(folder: Path) -> None:
    text = VALID.replace("models:", "  - id: school-a\nmodels:")
    assert "clients: duplicate client id 'school-a'" in error_of(folder, text)


def test_bad_model_reference(folder: Path) -> None:
    msg = error_of(folder, VALID.replace("reference: foundation_model", "reference: teacher"))
    assert (
        "model 'global-lm': reference 'teacher' is neither 'foundation_model' nor another model's name"
        in msg
    )


def test_bad_waiver_rule_and_date(folder: Path) -> None:
    msg = error_of(
        folder, VALID.replace("rule: FMFL-F06", "rule: F06").replace("2027-03-31", "someday")
    )
    assert "policy.waivers[0].rule: not a rule id: 'F06'" in msg
    assert "policy.waivers[0].expires: Input should be a valid date" in msg


def test_several_errors_are_all_reported_in_document_order(folder: Path) -> None:
    text = VALID.replace("rounds: 3", "rounds: 0").replace("tier: abundant", "tier: rich")
    lines = error_of(folder, text).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "federation.rounds",
        "clients[0].resources.tier",
    ]


def test_missing_manifest_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="file not found"):
        load_manifest(tmp_path / "absent.yaml")


def test_unsafe_yaml_tags_are_rejected(folder: Path) -> None:
    msg = error_of(folder, "version: !!python/object/apply:os.system ['touch pwned']\n")
    assert msg.endswith(
        ":1:10: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"
    )
    assert not (folder / "pwned").exists()


# -- fuzzing: whatever the input, only ManifestError (exit 2) comes out, never a traceback ---------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
_keys = st.sampled_from(
    [
        "version",
        "deployment",
        "clients",
        "id",
        "name",
        "federation",
        "policy",
        "models",
        "kind",
        "path",
        "rounds",
        "waivers",
        "fail_on",
        "foundation_model",
        "evaluation",
        "x",
        "resources",
    ]
)
_data = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=5)
    ),
    max_leaves=25,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_random_text_never_tracebacks(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(ManifestError):
        load_manifest(path)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.dictionaries(_keys, _data, max_size=6))
def test_random_manifest_shaped_data_never_tracebacks(tmp_path: Path, data: dict) -> None:
    data = {"version": 1, **data}
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        load_manifest(path)
    except ManifestError as exc:
        assert str(exc).startswith(str(path))
