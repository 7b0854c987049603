"""FMFL-R05: the deployed FM's weights against its published reference checkpoint.

Tensors are read from safetensors one at a time (`safe_open`), so memory stays at two tensors.
Per tensor: relative difference ||a - b|| / ||b|| (float64; ||a - b|| when ||b|| is 0); tensors
above `max_relative_difference` are changed; tensors missing from or extra in the deployed FM,
and shape or dtype mismatches, are reported apart.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.errors import CheckerError, InputError
from fmfl_audit.inputs.checkpoints import read_safetensors_header
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Evidence, FindingDraft, Metric, Severity

SUBJECT = "fm"


class TamperParams(CheckerParams):
    """Settings of FMFL-R05."""

    max_relative_difference: float = Field(default=1e-6, ge=0)
    max_examples: int = Field(default=5, ge=1, le=50)


def tensor_index(path: Path) -> dict[str, tuple[Path, str, tuple[int, ...]]]:
    """name -> (file, dtype, shape) over a checkpoint file or the safetensors files of a folder."""
    files = [path] if path.is_file() else sorted(path.rglob("*.safetensors"))
    if not files or any(f.suffix != ".safetensors" for f in files):
        raise CheckerError(f"{path}: no safetensors weights to compare (pickle files are not read)")
    index: dict[str, tuple[Path, str, tuple[int, ...]]] = {}
    for f in files:
        try:
            header = read_safetensors_header(f)
        except InputError as exc:
            raise CheckerError(str(exc)) from None
        for name, info in header.items():
            if name != "__metadata__" and isinstance(info, dict):
                index[name] = (f, str(info.get("dtype")), tuple(info.get("shape") or ()))
    return index


def relative_difference(a: Any, b: Any) -> float:
    """||a - b|| / ||b|| in float64 (||a - b|| when b is all zeros)."""
    import torch

    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    diff = float(torch.linalg.vector_norm(a64 - b64))
    base = float(torch.linalg.vector_norm(b64))
    return diff / base if base > 0 else diff


class TamperingChecker(Checker):
    """Ensure the deployed FM matches its published reference weights."""

    id: ClassVar[str] = "FMFL-R05"
    title: ClassVar[str] = "Ensure the deployed FM matches its published reference weights"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "external poisoning"
    inputs: ClassVar[tuple[str, ...]] = (
        "foundation_model.checkpoint",
        "foundation_model.reference_checkpoint",
    )
    Params = TamperParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        fm = deployment.manifest.foundation_model
        missing = []
        if fm is None or fm.checkpoint is None:
            missing.append("foundation_model.checkpoint")
        if fm is None or fm.reference_checkpoint is None:
            missing.append("foundation_model.reference_checkpoint")
        return missing

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, TamperParams)
        from safetensors import safe_open

        fm = ctx.deployment.manifest.foundation_model
        assert fm is not None and fm.checkpoint and fm.reference_checkpoint
        deployed = tensor_index(fm.checkpoint.path)
        reference = tensor_index(fm.reference_checkpoint.path)
        common = sorted(set(deployed) & set(reference))
        missing = sorted(set(reference) - set(deployed))
        extra = sorted(set(deployed) - set(reference))
        mismatched = [n for n in common if deployed[n][1:] != reference[n][1:]]
        changed: list[tuple[float, str]] = []
        max_rel = 0.0
        ctx.progress.set_total(len(common))
        handles: dict[Path, Any] = {}
        with ExitStack() as stack:
            for name in common:
                ctx.progress.advance()
                if name in mismatched:
                    continue
                for f in (deployed[name][0], reference[name][0]):
                    if f not in handles:
                        handles[f] = stack.enter_context(safe_open(str(f), framework="pt"))
                rel = relative_difference(
                    handles[deployed[name][0]].get_tensor(name),
                    handles[reference[name][0]].get_tensor(name),
                )
                max_rel = max(max_rel, rel)
                if rel > params.max_relative_difference:
                    changed.append((rel, name))
        changed.sort(key=lambda t: (-t[0], t[1]))
        display = ctx.display(fm.checkpoint.path)
        ref_display = ctx.display(fm.reference_checkpoint.path)
        out = CheckOutput()
        out.metrics[SUBJECT] = {
            "tensors_deployed": len(deployed),
            "tensors_reference": len(reference),
            "tensors_compared": len(common) - len(mismatched),
            "tensors_changed": len(changed),
            "max_relative_difference": max_rel,
            "missing_tensors": len(missing),
            "extra_tensors": len(extra),
            "shape_or_dtype_mismatches": len(mismatched),
            "changed": [
                {"tensor": n, "relative_difference": r} for r, n in changed[: params.max_examples]
            ],
        }
        if changed:
            out.findings.append(
                FindingDraft(
                    subject=SUBJECT,
                    key="changed-tensors",
                    message=(
                        f"{len(changed)} of {len(common)} FM tensors differ from the reference "
                        f"checkpoint {ref_display} (largest relative difference "
                        f"{changed[0][0]:.3g} in {changed[0][1]})"
                    ),
                    metric=Metric(
                        name="max_relative_difference",
                        value=changed[0][0],
                        threshold=params.max_relative_difference,
                    ),
                    evidence=tuple(
                        Evidence(location=f"{display}:{n}", excerpt=f"relative difference {r:.3g}")
                        for r, n in changed[: params.max_examples]
                    ),
                )
            )
        if missing or extra:
            names = [f"-{n}" for n in missing] + [f"+{n}" for n in extra]
            out.findings.append(
                FindingDraft(
                    subject=SUBJECT,
                    key="tensor-set",
                    severity=Severity.HIGH,
                    message=(
                        f"the deployed FM's tensors differ from the reference: {len(missing)} "
                        f"missing, {len(extra)} extra"
                    ),
                    metric=Metric(
                        name="missing_or_extra_tensors",
                        value=len(missing) + len(extra),
                        threshold=0,
                    ),
                    evidence=(Evidence(location=display, excerpt=", ".join(names[:10])),),
                )
            )
        if mismatched:
            out.findings.append(
                FindingDraft(
                    subject=SUBJECT,
                    key="shape-dtype",
                    severity=Severity.HIGH,
                    message=f"{len(mismatched)} FM tensor(s) differ in shape or dtype from the "
                    "reference",
                    metric=Metric(
                        name="shape_or_dtype_mismatches", value=len(mismatched), threshold=0
                    ),
                    evidence=tuple(
                        Evidence(
                            location=f"{display}:{n}",
                            excerpt=f"{deployed[n][1]}{list(deployed[n][2])} vs "
                            f"{reference[n][1]}{list(reference[n][2])}",
                        )
                        for n in mismatched[:5]
                    ),
                )
            )
        return out
