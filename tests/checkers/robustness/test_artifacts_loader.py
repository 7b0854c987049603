"""`load_hf_model` refuses a folder transformers would load unsafely, before transformers sees it.

The issue-16 reproducer: a `model.safetensors.index.json` mapping a weight to
`../outside/weights.pt` made transformers `torch.load` a pickle outside the folder. Here the
outside file is a pickle that would create a marker file if it were ever unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from fmfl_audit.errors import InputError
from fmfl_audit.inputs.checkpoints import load_hf_model, read_safetensors_header


class _Touch:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.fixture
def model(tmp_path: Path, shared_data: Path) -> Path:
    """A copy of stories260K (a loadable HF folder) to break in each test."""
    return Path(shutil.copytree(shared_data / "stories260K", tmp_path / "model"))


def _index(folder: Path, target: str) -> None:
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": {"lm_head.weight": target}})
    )


def _refused(folder: Path, match: str) -> None:
    with pytest.raises(InputError, match=match):
        load_hf_model(folder, kind="causal-lm")


def test_index_pointing_outside_is_refused_and_nothing_is_unpickled(
    model: Path, tmp_path: Path
) -> None:
    import pickle

    marker = tmp_path / "PWNED"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/weights.pt").write_bytes(pickle.dumps({"w": _Touch(marker)}))
    _index(model, "../outside/weights.pt")
    _refused(model, r"maps weights to '\.\./outside/weights\.pt', outside the folder")
    _index(model, str(tmp_path / "outside/weights.pt"))
    _refused(model, "outside the folder")
    assert not marker.exists()


def test_index_to_a_pickle_or_a_missing_shard_is_refused(model: Path) -> None:
    (model / "pytorch_model.bin").write_bytes(b"\x80\x02N.")
    _index(model, "pytorch_model.bin")
    _refused(model, "not a safetensors file")
    _index(model, "model-00009.safetensors")
    _refused(model, "which is missing")
    (model / "model.safetensors.index.json").write_text("[" * 1000 + "]" * 1000)
    _refused(model, "JSON nested 1000 levels deep")


def test_links_out_of_the_folder_are_refused(model: Path, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.replace(model / "tokenizer.json", tmp_path / "real/tokenizer.json")
    (model / "tokenizer.json").symlink_to(tmp_path / "real/tokenizer.json")
    _refused(model, "tokenizer.json is a symbolic link out of the checkpoint folder")


@pytest.mark.parametrize(
    ("config", "content", "match"),
    [
        ("tokenizer_config.json", {"auto_map": {"AutoTokenizer": ["t.T", None]}}, "needs remote"),
        ("config.json", {"model_type": "llama", "custom_pipelines": {"x": {}}}, "needs remote"),
        ("tokenizer_config.json", {"tokenizer_file": "../../x.json"}, "points outside"),
        ("config.json", {"model_type": "llama", "v": int("9" * 50)}, "50 digits"),
    ],
)
def test_configs_asking_for_code_or_outside_files_are_refused(
    model: Path, config: str, content: dict[str, Any], match: str
) -> None:
    (model / config).write_text(json.dumps(content))
    _refused(model, match)


def test_adapter_folders_are_refused(model: Path) -> None:
    (model / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/x"}))
    _refused(model, "adapter folders are not loaded")


def test_crafted_safetensors_headers_are_input_errors(tmp_path: Path) -> None:
    import struct

    for name, header in {
        "deep": b"[" * 200_000 + b"]" * 200_000,
        "bigint": b'{"w": {"shape": [' + b"9" * 5000 + b"]}}",
    }.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(struct.pack("<Q", len(header)) + header)
        with pytest.raises(InputError, match=r"nested 200000|5000 digits"):
            read_safetensors_header(path)


@pytest.mark.slow
def test_a_safe_sharded_folder_still_loads(model: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(str(model / "model.safetensors"))
    names = sorted(state)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half]}
    shards["model-00002-of-00002.safetensors"] = names[half:]
    for shard, keys in shards.items():
        save_file({k: state[k].contiguous() for k in keys}, str(model / shard))
    (model / "model.safetensors").unlink()
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    (model / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    loaded, _ = load_hf_model(model, kind="causal-lm")
    assert torch.equal(loaded.state_dict()["model.norm.weight"], state["model.norm.weight"])
