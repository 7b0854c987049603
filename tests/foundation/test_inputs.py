"""Streaming readers and safe checkpoint access."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from fmfl_audit.errors import InputError
from fmfl_audit.inputs.checkpoints import (
    checkpoint_digest,
    file_sha256,
    load_hf_model,
    load_state_dict,
    read_safetensors_header,
)
from fmfl_audit.inputs.records import ReadStats, iter_records
from fmfl_audit.manifest.model import DataSource


def read_all(path: Path, **kw) -> tuple[list, ReadStats]:
    src = DataSource.model_construct(
        path=path,
        format=None,
        text_field=kw.pop("text_field", "text"),
        label_field="label",
        id_field="id",
        sensitive_features=("gender",),
    )
    stats = ReadStats(path=path.name)
    recs = [
        r
        for batch in iter_records(src, display=path.name, stats=stats, batch_size=2, **kw)
        for r in batch
    ]
    return recs, stats


def test_jsonl_malformed_records_are_counted_with_locations(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_bytes(
        b'{"text": "a", "id": 7, "label": 1, "gender": "f"}\n'
        b"\n"
        b"not json\n"
        b"[1, 2]\n"
        b'{"txt": "b"}\n'
        b'{"text": 5}\n'
        b"\xff\xfe\n"
        b'{"text": "c"}\n'
    )
    recs, stats = read_all(p)
    assert [(r.text, r.location, r.record_id, r.label) for r in recs] == [
        ("a", "d.jsonl:1", "7", 1),
        ("c", "d.jsonl:8", None, None),
    ]
    assert recs[0].features == {"gender": "f"}
    assert (stats.records, stats.malformed, stats.complete) == (2, 5, True)
    assert [(i.location, i.reason) for i in stats.issues] == [
        ("d.jsonl:3", "invalid JSON: Expecting value"),
        ("d.jsonl:4", "expected a JSON object, found list"),
        ("d.jsonl:5", "missing text field 'text'"),
        ("d.jsonl:6", "text field 'text' is int"),
        ("d.jsonl:7", "not UTF-8"),
    ]


def test_csv_reader_short_rows_and_missing_column(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text('text,label\n"hello, world",1\nonly-one-field\n"multi\nline",0\n')
    recs, stats = read_all(p)
    assert [(r.text, r.label, r.location) for r in recs] == [
        ("hello, world", "1", "d.csv:2"),
        ("multi\nline", "0", "d.csv:5"),
    ]
    assert [(i.location, i.reason) for i in stats.issues] == [
        ("d.csv:3", "expected 2 fields, found 1")
    ]
    with pytest.raises(InputError, match=r"d.csv:1: column\(s\) 'prompt' not in the header"):
        read_all(p, text_field="prompt")


def test_parquet_reader_streams_batches(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    pq.write_table(
        pa.table({"text": ["a", None, "c", "d", "e"], "label": [0, 1, 0, 1, 0]}),
        p,
        row_group_size=2,
    )
    recs, stats = read_all(p)
    assert [r.text for r in recs] == ["a", "c", "d", "e"]
    assert [r.location for r in recs][:2] == ["d.parquet#0", "d.parquet#2"]
    assert stats.malformed == 1 and stats.issues[0].location == "d.parquet#1"
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_all(tmp_path / "bad.parquet")


def test_folder_digest_is_documented_formula(tmp_path: Path) -> None:
    import hashlib

    (tmp_path / "m" / "sub").mkdir(parents=True)
    (tmp_path / "m" / "b.txt").write_bytes(b"bee")
    (tmp_path / "m" / "sub" / "a.txt").write_bytes(b"ay")
    expected = hashlib.sha256(
        f"b.txt\0{hashlib.sha256(b'bee').hexdigest()}\nsub/a.txt\0{hashlib.sha256(b'ay').hexdigest()}\n".encode()
    ).hexdigest()
    assert checkpoint_digest(tmp_path / "m") == expected
    assert checkpoint_digest(tmp_path / "m" / "b.txt") == file_sha256(tmp_path / "m" / "b.txt")
    (tmp_path / "m" / "link").symlink_to(tmp_path / "m" / "b.txt")
    with pytest.raises(InputError, match="symbolic links are not allowed"):
        checkpoint_digest(tmp_path / "m")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_torch_files_are_read_weights_only_and_never_execute(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.bin"
    evil.write_bytes(pickle.dumps({"w": _Payload(marker)}, protocol=2))
    with pytest.raises(InputError, match="refused to load"):
        load_state_dict(evil)
    assert not marker.exists()
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(2)}, good)
    assert load_state_dict(good)["w"].tolist() == [1.0, 1.0]


def test_safetensors_header_and_roundtrip(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    p = tmp_path / "u.safetensors"
    save_file({"w": torch.zeros(2, 3)}, str(p))
    header = read_safetensors_header(p)
    assert header["w"]["shape"] == [2, 3] and header["w"]["dtype"] == "F32"
    assert load_state_dict(p)["w"].shape == (2, 3)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(InputError, match="header length"):
        read_safetensors_header(tmp_path / "junk.safetensors")


def test_hf_loading_refuses_remote_code_and_pickles(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "llama", "auto_map": {"AutoModel": "x.Y"}})
    )
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match="needs remote code"):
        load_hf_model(tmp_path, kind="causal-lm")
    (tmp_path / "model.safetensors").unlink()
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(InputError, match="does not unpickle checkpoints"):
        load_hf_model(tmp_path, kind="causal-lm")


@pytest.mark.slow
def test_hf_loading_real_model(shared_data: Path) -> None:
    model, tok = load_hf_model(shared_data / "stories260K", kind="causal-lm", device="cpu")
    assert model.training is False
    assert tok.pad_token is not None
    assert model.config.vocab_size == 512
