"""The static pickle analysis behind FMFL-R04, on public scanner bypasses (never unpickled).

- `tests/data/r04/hostile.py`: bypasses reported against picklescan, modelscan and fickling,
  rebuilt opcode by opcode;
- `tests/data/r04/picklescan/`: picklescan's own regression files (MIT), scanned end to end by
  the rule with the exact finding expected for every file.
"""

from __future__ import annotations

import copyreg
import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest
from tests.data.r04.hostile import CASES, ext_code

from fmfl_audit.inputs import pickles
from fmfl_audit.inputs.pickles import Danger, classify, scan_pickle
from fmfl_audit.models import Severity

RunRule = Callable[..., Any]
CORPUS = Path(__file__).resolve().parents[2] / "data" / "r04" / "picklescan"


def _verdict(report: pickles.PickleReport) -> str:
    if report.dangerous:
        return "dangerous"
    if report.unknown:
        return "unknown"
    return "anomaly" if report.anomalies else "clean"


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_every_public_bypass_is_resolved_to_its_real_import(case: str) -> None:
    data, verdict, names = CASES[case]
    report = scan_pickle(io.BytesIO(data))
    assert _verdict(report) == verdict
    assert set(names) <= {i.dotted for i in report.imports}, report.imports
    assert report.error is None and report.pickles == 1


def test_memo_tricks_resolve_as_the_unpickler_does() -> None:
    mixed = scan_pickle(io.BytesIO(CASES["memo_mix"][0]))
    # A scanner counting MEMOIZE from 0 would read torch._utils._rebuild_tensor_v2 here.
    assert [i.dotted for i in mixed.imports] == ["os.system"]
    missing = scan_pickle(io.BytesIO(CASES["missing_memo"][0]))
    assert missing.anomalies == ("BINGET reads memo key 7, never stored",)
    assert missing.imports[0].danger == Danger.UNRESOLVED
    build = scan_pickle(io.BytesIO(CASES["build_setattr"][0]))
    assert build.anomalies == ("BUILD changes the imported object numpy.prod",)


def test_extension_codes_resolve_through_copyreg() -> None:
    unregistered = scan_pickle(io.BytesIO(ext_code(0x4243)))
    assert [(i.dotted, i.danger) for i in unregistered.imports] == [
        ("<unresolved: unregistered extension code 16963>", Danger.UNRESOLVED)
    ]
    copyreg.add_extension("os", "system", 0x4243)
    try:
        registered = scan_pickle(io.BytesIO(ext_code(0x4243)))
    finally:
        copyreg.remove_extension("os", "system", 0x4243)
    assert [(i.dotted, i.opcode, i.danger) for i in registered.imports] == [
        ("os.system", "EXT2", Danger.DANGEROUS)
    ]


@pytest.mark.parametrize(
    ("module", "name", "danger"),
    [
        ("torch._utils", "_rebuild_tensor_v2", Danger.SAFE),
        ("collections", "OrderedDict", Danger.SAFE),
        ("numpy._core.multiarray", "_reconstruct", Danger.SAFE),
        ("copy_reg", "_reconstructor", Danger.SAFE),  # fix_imports maps Python 2 names
        ("__builtin__", "set", Danger.SAFE),
        ("torch", "float8_e4m3fn", Danger.SAFE),
        ("collections", "OrderedDict.__init__", Danger.DANGEROUS),
        ("torch._utils", "_rebuild_tensor_v2.__globals__", Danger.DANGEROUS),
        ("__builtin__", "eval", Danger.DANGEROUS),
        ("builtins", "getattr", Danger.DANGEROUS),
        ("torch.utils.collect_env", "run", Danger.DANGEROUS),
        ("pip._internal.cli.main", "main", Danger.DANGEROUS),
        ("pandas", "read_csv", Danger.DANGEROUS),
        ("importlib", "import_module", Danger.DANGEROUS),
        ("numpy", "load", Danger.DANGEROUS),
        ("__main__", "Net", Danger.UNKNOWN),
        ("sklearn.linear_model", "LogisticRegression", Danger.UNKNOWN),
        ("numpy", "prod", Danger.UNKNOWN),
    ],
)
def test_classify(module: str, name: str, danger: Danger) -> None:
    assert classify(module, name) == danger


def test_torch_checkpoints_are_clean_in_both_formats() -> None:
    import zipfile

    import torch

    state = torch.nn.Linear(4, 2).state_dict()  # an OrderedDict carrying _metadata (BUILD)
    legacy = io.BytesIO()
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    report = scan_pickle(io.BytesIO(legacy.getvalue()))
    # Five pickles (magic, protocol, sys info, state, storage keys), then raw storage bytes.
    assert (report.pickles, report.error, _verdict(report)) == (5, None, "clean")
    modern = io.BytesIO()
    torch.save(state, modern)
    with zipfile.ZipFile(modern) as zf:
        data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    report = scan_pickle(io.BytesIO(data))
    assert {i.dotted for i in report.imports} == {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch.FloatStorage",
    }
    assert _verdict(report) == "clean"


@pytest.mark.parametrize(
    "text",
    [b"checkpoint: model\nname: tiny\n", b"cos system\nrm -rf\n", b"hello world.", b"# notes\n"],
)
def test_text_is_not_taken_for_a_protocol0_pickle(text: bytes) -> None:
    assert not scan_pickle(io.BytesIO(text), claimed=False).imports


def test_padding_after_a_payload_does_not_hide_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pickles, "MAX_OPCODES", 30)
    data = CASES["stack_global_system"][0][:-1] + b"N0" * 100 + b"N."
    report = scan_pickle(io.BytesIO(data))
    assert report.error == "scan limit reached: more than 30 opcodes"
    assert [i.dotted for i in report.dangerous] == ["os.system"]


# The rule over picklescan's regression files: the exact finding every file must produce.
_UNSAFE = "unsafe-pickle"
PICKLESCAN_EXPECTED: dict[str, str] = {
    **{f"data/malicious{n}.pkl": _UNSAFE for n in (0, 3, 6, 7, 8, 9, 10, 11, 12, 14)},
    **{f"data/malicious{n}.pkl": _UNSAFE for n in ("13a", "13b", "15a", "15b", 16, 17, 18, 19)},
    **{f"data/malicious{n}_v{v}.pkl": _UNSAFE for n in (1, 2) for v in (0, 3, 4)},
    "data/malicious20.pkl": _UNSAFE,
    "data/malicious4.pickle": _UNSAFE,
    "data/malicious5.pickle": _UNSAFE,
    "data/malicious-invalid-bytes.pkl": _UNSAFE,
    "data/broken_model.pkl": _UNSAFE,
    "data/sys_module_override_sploit.pkl": _UNSAFE,
    "data/pytorch_magic_bypass.pt": _UNSAFE,
    "data/malicious1.zip!data.pkl": _UNSAFE,
    "data/malicious1_wrong_ext.zip!data.txt": _UNSAFE,
    # Zip tricks: Python's zipfile refuses the entry (a finding), the raw entry is still read.
    "data/malicious1_central_directory.zip!data.pkl": "unparsable",
    "data/malicious1_central_directory.zip!datap.kl": _UNSAFE,
    "data/malicious1_0x1.zip!model/config.pkl": "unscannable",  # and unsafe, same key space:
    "data/malicious1_0x20.zip!model/config.pkl": "unparsable",
    "data/malicious1_0x40.zip!model/config.pkl": "unparsable",
    "data/malicious1.7z": "unscannable",
    "data/benign_password_protected.zip!test.txt": "unscannable",
    "data/bad_pytorch.pt": "unparsable",  # a PNG named .pt
    "data/not_a_pickle.bin": "unparsable",
    "data/benign0_v0.pkl": "pickle-format",
    "data/benign0_v3.pkl": "pickle-format",
    "data/benign0_v4.pkl": "pickle-format",
    "data/new_pytorch_model.bin": "pickle-format",
    "data2/malicious1_crc.zip!data.pkl": "unparsable",
    "data2/dns_exfiltration.npy": _UNSAFE,
    "data2/object_array.npy": "pickle-format",
    "data2/object_arrays.npz": "pickle-format",
    "data2/object_arrays_compressed.npz": "pickle-format",
}
_ALSO_UNSAFE = (
    "data/malicious1_0x1.zip!model/config.pkl",
    "data/malicious1_0x20.zip!model/config.pkl",
    "data/malicious1_0x40.zip!model/config.pkl",
    "data2/malicious1_crc.zip!data.pkl",
)
_CLEAN = ("data2/int_array.npy", "data2/int_arrays.npz", "data2/int_arrays_compressed.npz")


def test_r04_reports_every_picklescan_regression_file(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    shutil.copytree(CORPUS / "data", tmp_path / "m/data")
    shutil.copytree(CORPUS / "data2", tmp_path / "m/data2")
    expected = {("model:m", f"{kind}:{where}") for where, kind in PICKLESCAN_EXPECTED.items()}
    expected |= {("model:m", f"{_UNSAFE}:{where}") for where in _ALSO_UNSAFE}
    for path in sorted((CORPUS / "data2").glob("GHSA-*")):
        expected.add(("model:m", f"{_UNSAFE}:data2/{path.name}"))
    for name in (
        "cloudpickle_codeinjection",
        "io_FileIO",
        "keyerror-exploit",
        "logging_FileHandler",
        "malicious21",
        "malicious22",
        "malicious23",
        "type-confusion-exploit",
        "types_CodeType",
        "urllib_request_urlopen",
    ):
        expected.add(("model:m", f"{_UNSAFE}:data2/{name}.pkl"))
    expected.add(("model:m", "unpinned"))
    manifest = minimal_manifest(models=[{"name": "m", "kind": "causal-lm", "checkpoint": "m"}])
    run = run_rule(make_deployment(manifest), "FMFL-R04")
    run.assert_exact(expected)
    files = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()}
    mentioned = {w.split("!")[0] for _, k in expected for w in [k.split(":", 1)[-1]]}
    assert files - mentioned - {"LICENSE"} == set(_CLEAN)
    unsafe = [f for f in run.findings if f.severity == Severity.CRITICAL]
    assert len(unsafe) == sum(1 for _, k in expected if k.startswith(_UNSAFE))
