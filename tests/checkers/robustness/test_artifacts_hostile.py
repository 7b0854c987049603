"""FMFL-R04 against the hostile artifacts of issue 16: each found, none hiding another.

Every case runs the real rule through the engine and asserts the exact set of findings. Hostile
bytes come from `tests/data/r04/hostile.py`; nothing here is ever unpickled (a marker file that
the payloads would create is checked to be absent).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest
from tests.data.r04.hostile import protocol0_system
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.models import Confidence, Severity

RunRule = Callable[..., Any]
MARKER = Path("/tmp/fmfl-r04-pwned")
EVIL = protocol0_system()


def _st(header: bytes | dict[str, Any], data: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _good_st() -> bytes:
    return _st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)


def _npy(payload: bytes) -> bytes:
    """An object-dtype .npy header followed by `payload` where numpy stores the pickle."""
    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "|O", "fortran_order": False, "shape": (2,)}
    )
    return buf.getvalue() + payload


def _write(folder: Path, files: dict[str | bytes, bytes]) -> Path:
    for rel, data in files.items():
        path = folder / (os.fsdecode(rel) if isinstance(rel, bytes) else rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def _models(*names: str) -> dict[str, Any]:
    return minimal_manifest(
        models=[{"name": n, "kind": "causal-lm", "checkpoint": n} for n in names]
    )


def _scan(tmp_path: Path, make: Callable[..., Path], run: RunRule, files: dict[Any, bytes]) -> Any:
    _write(tmp_path / "m", files)
    return run(make(_models("m")), "FMFL-R04")


@pytest.fixture(autouse=True)
def _never_executed() -> Any:
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), "a hostile payload was executed"


def test_protocol0_pickle_named_pth_tar_fails_the_gate(tmp_path: Path) -> None:
    _write(tmp_path / "m", {"model.pth.tar": EVIL})
    (tmp_path / "manifest.yaml").write_text(json.dumps(_models("m")))
    res = CliRunner().invoke(
        app,
        [
            "scan",
            str(tmp_path / "manifest.yaml"),
            *("--only", "FMFL-R04", "-f", "json", "--no-progress", "--no-color"),
        ],
    )
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    assert report["grade"] == "F"
    [unsafe] = [f for f in report["findings"] if f["severity"] == "critical"]
    assert unsafe["subject"] == "model:m"
    assert "m/model.pth.tar" in unsafe["message"] and "os.system" in unsafe["message"]


def test_protocol0_pickle_named_weights_is_critical(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models/model.weights").write_bytes(EVIL)
    manifest = minimal_manifest(
        models=[{"name": "m", "kind": "causal-lm", "checkpoint": "models/model.weights"}]
    )
    run = run_rule(make_deployment(manifest), "FMFL-R04")
    run.assert_exact({("model:m", "unsafe-pickle:model.weights"), ("model:m", "unpinned")})
    unsafe = run.one("model:m", "unsafe-pickle:model.weights")
    assert unsafe.severity == Severity.CRITICAL
    assert unsafe.evidence[0].location == "models/model.weights"
    assert unsafe.evidence[0].excerpt == "imports: os.system"
    assert run.result.metrics["model:m"]["dangerous_imports"] == 1


def test_object_dtype_npy_carries_a_scanned_pickle(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    import numpy as np

    clean = io.BytesIO()
    np.save(clean, np.array([1, "a"], dtype=object), allow_pickle=True)
    run = _scan(
        tmp_path,
        make_deployment,
        run_rule,
        {"evil.npy": _npy(EVIL), "clean.npy": clean.getvalue(), "ints.npy": _ints_npy()},
    )
    run.assert_exact(
        {
            ("model:m", "unsafe-pickle:evil.npy"),
            ("model:m", "pickle-format:clean.npy"),
            ("model:m", "unpinned"),
        }
    )
    assert "(numpy object array)" in run.one("model:m", "unsafe-pickle:evil.npy").message
    assert run.one("model:m", "pickle-format:clean.npy").severity == Severity.LOW


def _ints_npy() -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.arange(4))
    return buf.getvalue()


def test_remote_code_in_tokenizer_config_and_python_in_subfolders(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    tok = {"auto_map": {"AutoTokenizer": ["tok.Tok", None]}}
    run = _scan(
        tmp_path,
        make_deployment,
        run_rule,
        {
            "model.safetensors": _good_st(),
            "tokenizer_config.json": json.dumps(tok).encode(),
            "custom/modeling_x.py": b"import os\n",
        },
    )
    run.assert_exact({("model:m", "remote-code"), ("model:m", "unpinned")})
    remote = run.one("model:m", "remote-code")
    assert remote.severity == Severity.HIGH
    assert [e.location for e in remote.evidence] == [
        "m/custom/modeling_x.py",
        "m/tokenizer_config.json",
    ]
    assert "tokenizer_config.json sets auto_map" in remote.message


CRAFTED: dict[str, tuple[bytes | str, bytes, str, Severity, str]] = {
    # name: (file name, bytes, expected key, severity, text in the message)
    "safetensors header nested 200,000 deep": (
        "deep.safetensors",
        _st(b"[" * 200_000 + b"]" * 200_000),
        "safetensors:deep.safetensors",
        Severity.HIGH,
        "JSON nested 200000 levels deep",
    ),
    "5,000-digit integer in a header": (
        "bigint.safetensors",
        _st(b'{"w": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 4]}}'),
        "safetensors:bigint.safetensors",
        Severity.HIGH,
        "an integer with 5000 digits",
    ),
    "corrupt zip directory": (
        "corrupt.pt",
        b"PK\x03\x04" + b"\0" * 26 + b"PK\x05\x06" + b"\xff" * 18,
        "unparsable:corrupt.pt",
        Severity.HIGH,
        "corrupt zip",
    ),
    ".bin with 7z magic": (
        "archive.bin",
        b"7z\xbc\xaf\x27\x1c" + b"\0" * 64,
        "unscannable:archive.bin",
        Severity.HIGH,
        "7z archive",
    ),
    "non-UTF-8 file name": (
        b"\xff\xfe.safetensors",
        _good_st(),
        "file-name:\\xff\\xfe.safetensors",
        Severity.MEDIUM,
        "not valid UTF-8",
    ),
}


@pytest.mark.parametrize("case", list(CRAFTED), ids=list(CRAFTED))
def test_a_crafted_file_is_a_finding_and_hides_the_pickle_beside_it(
    case: str, tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    name, data, key, severity, text = CRAFTED[case]
    run = _scan(tmp_path, make_deployment, run_rule, {name: data, "evil.bin": EVIL})
    run.assert_exact(
        {("model:m", key), ("model:m", "unsafe-pickle:evil.bin"), ("model:m", "unpinned")}
    )
    crafted = run.one("model:m", key)
    assert crafted.severity == severity and text in crafted.message, crafted.message
    assert run.one("model:m", "unsafe-pickle:evil.bin").severity == Severity.CRITICAL


def test_one_hostile_artifact_hides_nothing_on_the_others(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    crafted = {name: data for name, data, _, _, _ in CRAFTED.values()}
    _write(tmp_path / "a", {**crafted, "evil.bin": EVIL})
    for other in ("b", "c"):
        _write(tmp_path / other, {"pytorch_model.bin": EVIL, "sub/evil.pkl": EVIL})
    run = run_rule(make_deployment(_models("a", "b", "c")), "FMFL-R04")
    expected = {("model:a", key) for _, _, key, _, _ in CRAFTED.values()}
    expected |= {("model:a", "unsafe-pickle:evil.bin")}
    for other in ("b", "c"):
        expected |= {
            (f"model:{other}", "unsafe-pickle:pytorch_model.bin"),
            (f"model:{other}", "unsafe-pickle:sub/evil.pkl"),
        }
    expected |= {(f"model:{n}", "unpinned") for n in "abc"}
    run.assert_exact(expected)
    assert run.result.metrics["model:a"]["unscanned_files"] == 2  # corrupt.pt, archive.bin


def _torch_file(state: dict[str, Any], **kwargs: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf, **kwargs)
    return buf.getvalue()


def test_index_pointing_outside_the_folder_is_critical(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    import torch

    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/weights.pt").write_bytes(_torch_file({"w": torch.ones(2)}))
    index = {"metadata": {}, "weight_map": {"w": "../outside/weights.pt"}}
    run = _scan(
        tmp_path,
        make_deployment,
        run_rule,
        {
            "config.json": b'{"model_type": "llama"}',
            "model.safetensors": _good_st(),
            "model.safetensors.index.json": json.dumps(index).encode(),
        },
    )
    run.assert_exact({("model:m", "index:model.safetensors.index.json"), ("model:m", "unpinned")})
    index_finding = run.one("model:m", "index:model.safetensors.index.json")
    assert index_finding.severity == Severity.CRITICAL
    assert "'../outside/weights.pt', outside the folder" in index_finding.message


def test_index_mapping_to_a_pickle_and_links_out_of_the_folder(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    import torch

    index = {"weight_map": {"w": "pytorch_model.bin", "v": "missing.safetensors"}}
    folder = _write(
        tmp_path / "m",
        {
            "model.safetensors.index.json": json.dumps(index).encode(),
            "pytorch_model.bin": _torch_file({"w": torch.ones(2)}),
        },
    )
    (tmp_path / "elsewhere.safetensors").write_bytes(_good_st())
    (folder / "linked.safetensors").symlink_to(tmp_path / "elsewhere.safetensors")
    (folder / "inner.safetensors").symlink_to("pytorch_model.bin")
    run = run_rule(make_deployment(_models("m")), "FMFL-R04")
    run.assert_exact(
        {
            ("model:m", "index:model.safetensors.index.json"),
            ("model:m", "pickle-format:pytorch_model.bin"),
            ("model:m", "symlink:linked.safetensors"),
            ("model:m", "symlink:inner.safetensors"),
            ("model:m", "unpinned"),
        }
    )
    index_finding = run.one("model:m", "index:model.safetensors.index.json")
    assert index_finding.severity == Severity.HIGH and "(+1 more)" in index_finding.message
    assert [e.excerpt for e in index_finding.evidence] == [
        "model.safetensors.index.json maps weights to 'missing.safetensors', which is missing",
        "model.safetensors.index.json maps weights to 'pytorch_model.bin', not a safetensors "
        "file (it would be unpickled)",
    ]
    assert run.one("model:m", "symlink:linked.safetensors").severity == Severity.CRITICAL
    assert run.one("model:m", "symlink:inner.safetensors").severity == Severity.HIGH
    assert run.result.metrics["model:m"]["sha256"] is None


def test_archives_nested_in_archives_are_opened_within_limits(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("archive/data.pkl", EVIL)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        info = tarfile.TarInfo("inner.zip")
        info.size = len(inner.getvalue())
        tf.addfile(info, io.BytesIO(inner.getvalue()))
    files = {"bundle.tar.gz": gzip.compress(tar.getvalue())}
    run = _scan(tmp_path, make_deployment, run_rule, files)
    key = "unsafe-pickle:bundle.tar.gz!bundle.tar!inner.zip!archive/data.pkl"
    run.assert_exact({("model:m", key), ("model:m", "unpinned")})
    shallow = run_rule(make_deployment(_models("m")), "FMFL-R04", max_archive_depth=2)
    shallow.assert_exact(
        {("model:m", "unscannable:bundle.tar.gz!bundle.tar!inner.zip"), ("model:m", "unpinned")}
    )
    limit = shallow.one("model:m", "unscannable:bundle.tar.gz!bundle.tar!inner.zip")
    assert "nested over 2 levels" in limit.message and limit.confidence == Confidence.MEDIUM


def test_a_zip_bomb_stops_at_the_byte_budget(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.pkl", b"\x80\x02" + b"N" * (3 << 20) + b".")
    _write(tmp_path / "m", {"bomb.zip": bomb.getvalue()})
    run = run_rule(make_deployment(_models("m")), "FMFL-R04", max_scan_mib=1)
    key = "unscannable-pickle:bomb.zip!data.pkl"
    run.assert_exact({("model:m", key), ("model:m", "unpinned")})
    assert "scan limit reached: more than 1 MiB read" in run.one("model:m", key).message


def test_a_fifo_is_reported_and_never_opened(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    folder = _write(tmp_path / "m", {"evil.bin": EVIL})
    os.mkfifo(folder / "weights.bin")  # opening it for reading would block the scan forever
    run = run_rule(make_deployment(_models("m")), "FMFL-R04")
    run.assert_exact(
        {
            ("model:m", "special-file:weights.bin"),
            ("model:m", "unsafe-pickle:evil.bin"),
            ("model:m", "unpinned"),
        }
    )
    assert run.one("model:m", "special-file:weights.bin").severity == Severity.MEDIUM
