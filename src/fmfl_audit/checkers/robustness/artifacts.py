"""FMFL-R04: integrity of every model artifact the manifest names, checked without loading it.

Artifacts: `foundation_model.checkpoint`, `foundation_model.reference_checkpoint`,
`models[].checkpoint` and `clients[].update`.

- Digest pins: `checkpoint.sha256` against `fmfl_audit.inputs.checkpoints.checkpoint_digest`: for a
  single file the sha256 of its bytes; for a folder the sha256 of one line per regular file, sorted
  by POSIX relative path, each `<relative path>\\0<sha256 of the file>\\n` (symbolic links
  rejected).
  A checkpoint without a pin is a finding (client updates have no pin field: not held to one).
- Pickle-based files (.bin .pt .pth .pkl .pickle .ckpt .joblib, and any file whose first bytes are a
  pickle protocol header or a zip archive holding a `.pkl` member) are scanned at opcode level by
  picklescan, which reads the imports a pickle would perform without executing it. Dangerous
  imports (os.system, builtins.eval, subprocess ...) are critical; imports outside picklescan's
  known-safe set are high (a weights file has no reason to import them).
- Safetensors headers: offsets contiguous, starting at 0 and ending at the data size, dtypes known,
  shape x dtype size == byte length.
- `config.json` asking for remote code (`auto_map`, `trust_remote_code`) or Python files shipped in
  a checkpoint folder: high, the model cannot be loaded safely.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.errors import InputError
from fmfl_audit.inputs.checkpoints import (
    PICKLE_SUFFIXES,
    checkpoint_digest,
    iter_checkpoint_files,
)
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Severity

DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    "C64": 8,
}
"""Bytes per element of every safetensors dtype (F4 / F6 sub-byte types are reported as unknown)."""

_PICKLE_PROTOCOLS = {2, 3, 4, 5}


class ArtifactParams(CheckerParams):
    """Settings of FMFL-R04."""

    require_pins: bool = Field(default=True, description="Report checkpoints without sha256.")
    report_pickle_format: bool = Field(
        default=True, description="Report clean pickle-based weights (low): prefer safetensors."
    )


@dataclass(frozen=True)
class Artifact:
    """One artifact to check: its subject, path and pinned digest (None when unpinned)."""

    subject: str
    path: Path
    sha256: str | None
    pinnable: bool


def artifacts(deployment: Deployment) -> list[Artifact]:
    """Every artifact of the manifest, in manifest order."""
    m = deployment.manifest
    out = []
    if m.foundation_model is not None:
        for subject, ck in (
            ("fm", m.foundation_model.checkpoint),
            ("fm:reference", m.foundation_model.reference_checkpoint),
        ):
            if ck is not None:
                out.append(Artifact(subject, ck.path, ck.sha256, True))
    for model in m.models:
        if model.checkpoint is not None:
            out.append(
                Artifact(model.subject, model.checkpoint.path, model.checkpoint.sha256, True)
            )
    for c in m.clients:
        if c.update is not None:
            out.append(Artifact(f"{c.subject}:update", c.update, None, False))
    return out


def sniff_pickle(path: Path) -> bool:
    """True when the file starts like a pickle (PROTO opcode) or is a zip holding a .pkl member."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS:
        return True
    if head[:2] == b"PK":
        try:
            with zipfile.ZipFile(path) as zf:
                return any(n.endswith(".pkl") for n in zf.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
    return False


def scan_pickle(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]], bool]:
    """(dangerous imports, suspicious imports, scan error) of a pickle file, never loading it."""
    from picklescan.scanner import SafetyLevel, scan_bytes

    with path.open("rb") as fh:
        result = scan_bytes(fh, str(path), path.suffix.lower() or None)
    dangerous = sorted(
        {(g.module, g.name) for g in result.globals if g.safety == SafetyLevel.Dangerous}
    )
    suspicious = sorted(
        {(g.module, g.name) for g in result.globals if g.safety == SafetyLevel.Suspicious}
    )
    return dangerous, suspicious, bool(result.scan_err)


def safetensors_problems(path: Path) -> list[str]:
    """What is wrong with a safetensors file's header; empty when it is consistent."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return ["file shorter than the 8-byte header length"]
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            return [f"header length {n} exceeds the file"]
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return [f"header is not valid JSON ({exc})"]
    if not isinstance(header, dict):
        return ["header is not a JSON object"]
    data_len = size - 8 - n
    problems: list[str] = []
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            problems.append(f"{name}: entry is not an object")
            continue
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPE_BYTES:
            problems.append(f"{name}: unknown dtype {dtype!r}")
            continue
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            problems.append(f"{name}: invalid shape {shape!r}")
            continue
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]
        ):
            problems.append(f"{name}: invalid data_offsets {offsets!r}")
            continue
        expected = math.prod(shape) * DTYPE_BYTES[dtype]
        if offsets[1] - offsets[0] != expected:
            problems.append(
                f"{name}: {offsets[1] - offsets[0]} bytes for shape {shape} {dtype} "
                f"(expected {expected})"
            )
        spans.append((offsets[0], offsets[1], name))
    pos = 0
    for b, e, name in sorted(spans):
        if b != pos:
            kind = "overlaps the previous tensor" if b < pos else f"leaves a gap of {b - pos} bytes"
            problems.append(f"{name}: data {kind}")
        pos = max(pos, e)
    if pos != data_len:
        problems.append(f"tensor data ends at byte {pos} but the data section has {data_len}")
    return problems


def remote_code_needs(folder: Path) -> list[str]:
    """Why a checkpoint folder would need remote code to load; empty when it would not."""
    needs = []
    config = folder / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            data = {}
        if isinstance(data, dict):
            if data.get("auto_map"):
                needs.append("config.json has auto_map")
            if data.get("trust_remote_code"):
                needs.append("config.json sets trust_remote_code")
    py = sorted(p.name for p in folder.glob("*.py"))
    if py:
        needs.append(f"Python files in the checkpoint: {', '.join(py[:5])}")
    return needs


class ArtifactIntegrityChecker(Checker):
    """Ensure model artifacts are pinned and safe to load."""

    id: ClassVar[str] = "FMFL-R04"
    title: ClassVar[str] = "Ensure model artifacts are pinned and safe to load"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "external poisoning, supply chain"
    inputs: ClassVar[tuple[str, ...]] = ("every checkpoint",)
    Params = ArtifactParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return [] if artifacts(deployment) else ["checkpoints (foundation_model, models, updates)"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, ArtifactParams)
        out = CheckOutput(notes=["pickle files scanned at opcode level with picklescan"])
        items = artifacts(ctx.deployment)
        ctx.progress.set_total(len(items))
        for art in items:
            self._check(ctx, params, art, out)
            ctx.progress.advance()
        return out

    def _check(
        self, ctx: CheckContext, params: ArtifactParams, art: Artifact, out: CheckOutput
    ) -> None:
        display = ctx.display(art.path)
        try:
            files = [art.path] if art.path.is_file() else list(iter_checkpoint_files(art.path))
            digest = checkpoint_digest(art.path)
        except InputError as exc:
            out.findings.append(
                FindingDraft(
                    subject=art.subject,
                    key="unreadable",
                    severity=Severity.HIGH,
                    message=f"artifact {display} cannot be checked: {exc}",
                    evidence=(Evidence(location=display),),
                )
            )
            return
        n_pickle = n_st = 0
        dangerous_total = 0
        for f in files:
            rel = f.name if f == art.path else f.relative_to(art.path).as_posix()
            loc = display if f == art.path else f"{display}/{rel}"
            if f.suffix.lower() == ".safetensors":
                n_st += 1
                problems = safetensors_problems(f)
                if problems:
                    out.findings.append(
                        FindingDraft(
                            subject=art.subject,
                            key=f"safetensors:{rel}",
                            severity=Severity.HIGH,
                            message=f"malformed safetensors header in {loc}: {problems[0]}"
                            + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                            evidence=tuple(Evidence(location=loc, excerpt=p) for p in problems[:3]),
                        )
                    )
            elif f.suffix.lower() in PICKLE_SUFFIXES or sniff_pickle(f):
                n_pickle += 1
                dangerous_total += self._pickle(art, f, rel, loc, params, out)
        if art.path.is_dir():
            needs = remote_code_needs(art.path)
            if needs:
                out.findings.append(
                    FindingDraft(
                        subject=art.subject,
                        key="remote-code",
                        severity=Severity.HIGH,
                        message=f"checkpoint {display} needs remote code to load "
                        f"({'; '.join(needs)})",
                        evidence=(Evidence(location=f"{display}/config.json"),),
                    )
                )
        matches = None if art.sha256 is None else art.sha256 == digest
        out.metrics[art.subject] = {
            "path": display,
            "files": len(files),
            "pickle_files": n_pickle,
            "safetensors_files": n_st,
            "sha256": digest,
            "pinned": art.sha256 is not None,
            "digest_matches": matches,
            "dangerous_imports": dangerous_total,
        }
        if matches is False:
            out.findings.append(
                FindingDraft(
                    subject=art.subject,
                    key="digest-mismatch",
                    severity=Severity.HIGH,
                    message=(
                        f"checkpoint {display} does not match its pinned digest (pinned "
                        f"{(art.sha256 or '')[:12]}…, found {digest[:12]}…)"
                    ),
                    evidence=(Evidence(location=display),),
                )
            )
        elif art.sha256 is None and art.pinnable and params.require_pins:
            out.findings.append(
                FindingDraft(
                    subject=art.subject,
                    key="unpinned",
                    severity=Severity.MEDIUM,
                    message=f"checkpoint {display} has no sha256 pin; a swapped artifact would go "
                    "unseen",
                    evidence=(Evidence(location=display, excerpt=f"sha256: {digest}"),),
                )
            )

    def _pickle(
        self, art: Artifact, f: Path, rel: str, loc: str, params: ArtifactParams, out: CheckOutput
    ) -> int:
        dangerous, suspicious, err = scan_pickle(f)
        if dangerous:
            names = ", ".join(f"{m}.{n}" for m, n in dangerous[:5])
            out.findings.append(
                FindingDraft(
                    subject=art.subject,
                    key=f"unsafe-pickle:{rel}",
                    severity=Severity.CRITICAL,
                    message=f"pickle file {loc} imports dangerous callables ({names}): loading it "
                    "would execute code",
                    evidence=(Evidence(location=loc, excerpt=f"imports: {names}"),),
                )
            )
        elif err:
            out.findings.append(
                FindingDraft(
                    subject=art.subject,
                    key=f"unscannable-pickle:{rel}",
                    severity=Severity.HIGH,
                    confidence=Confidence.MEDIUM,
                    message=f"pickle file {loc} could not be fully scanned; treat it as unsafe",
                    evidence=(Evidence(location=loc),),
                )
            )
        elif suspicious:
            names = ", ".join(f"{m}.{n}" for m, n in suspicious[:5])
            out.findings.append(
                FindingDraft(
                    subject=art.subject,
                    key=f"suspicious-pickle:{rel}",
                    severity=Severity.HIGH,
                    confidence=Confidence.MEDIUM,
                    message=f"pickle file {loc} imports callables outside the known-safe set "
                    f"({names})",
                    evidence=(Evidence(location=loc, excerpt=f"imports: {names}"),),
                )
            )
        elif params.report_pickle_format:
            out.findings.append(
                FindingDraft(
                    subject=art.subject,
                    key=f"pickle-format:{rel}",
                    severity=Severity.LOW,
                    message=f"{loc} is a pickle-based weights file; convert it to safetensors",
                    evidence=(Evidence(location=loc),),
                )
            )
        return len(dangerous)
