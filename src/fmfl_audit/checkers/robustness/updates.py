"""FMFL-R12: client update anomalies, and the consistent-poisoning case outlier checks miss.

Updates (`clients[].update`, safetensors) are streamed one tensor at a time across all clients, so
memory holds one tensor per client. From the streamed Gram matrix G (dot products of the flattened
updates) and the running dot products with the coordinate-wise median update: norms, cosine to the
mean update, cosine to the median update, pairwise squared distances and Krum scores (sum of the
squared distances to the n - f - 2 nearest other updates, f = assumed Byzantine clients). A client
is an outlier when the robust z-score (median/MAD) of its norm or Krum score exceeds `max_z`, or of
its cosine to the median falls below -`max_z`.

Consistent poisoning: when the labelled synthetic data holds backdoor trigger candidates (the
FMFL-R06 mining, shared and cached) while no update is an outlier, outlier-based defenses are
blind to the poison: the finding says so. (R07 activation is not rerun here: it needs a model.)
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.robustness._common import robust_z
from fmfl_audit.checkers.robustness._triggers import mine
from fmfl_audit.errors import CheckerError
from fmfl_audit.inputs.records import ReadStats
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity


class UpdateParams(CheckerParams):
    """Settings of FMFL-R12."""

    max_z: float = Field(default=3.5, gt=0, description="Robust z-score beyond which = outlier.")
    min_clients: int = Field(default=4, ge=3, description="Clients needed for outlier tests.")
    byzantine: int | None = Field(
        default=None, ge=0, description="Assumed Byzantine clients f for Krum; (n-3)//2 if null."
    )
    consistent_poisoning: bool = Field(default=True, description="Run the R06 cross-check.")
    min_support: int = Field(default=5, ge=2)
    min_purity: float = Field(default=0.95, gt=0.5, le=1)
    fdr: float = Field(default=0.01, gt=0, lt=1)
    min_context_disagreement: float = Field(default=0.2, ge=0, le=1)


def non_finite_tensors(path: Any) -> list[tuple[str, int]]:
    """(tensor name, count) of the tensors of a safetensors file holding NaN or infinite values:
    one such value in an update poisons a FedAvg sum, and it would poison these statistics too."""
    import numpy as np
    from safetensors import safe_open

    bad = []
    with safe_open(str(path), framework="numpy") as handle:
        for name in sorted(handle.keys()):
            arr = handle.get_tensor(name)
            if arr.dtype.kind not in "fc":
                continue
            count = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if count:
                bad.append((name, count))
    return bad


def validate_updates(ctx: CheckContext, clients: list[Any]) -> list[Any]:
    """The clients whose update is usable; the others are counted as malformed inputs (one record
    per update file), so the engine holds them against the policy like any unreadable file."""
    usable = []
    for c in clients:
        stats = ReadStats(path=ctx.display(c.update), complete=True)
        try:
            bad = non_finite_tensors(c.update)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            stats.bad(stats.path, f"not a readable safetensors file ({type(exc).__name__})")
        else:
            if bad:
                total = sum(n for _, n in bad)
                names = ", ".join(name for name, _ in bad[:3])
                stats.bad(stats.path, f"{total} non-finite value(s) (NaN/inf) in tensor(s) {names}")
            else:
                stats.records = 1
                usable.append(c)
        ctx.ledger.commit(stats)
        ctx.reads.add(stats)
    return usable


def update_statistics(ctx: CheckContext, paths: list[Any]) -> dict[str, Any]:
    """Gram matrix, dot products with the median update and its squared norm, streamed."""
    import numpy as np
    from safetensors import safe_open

    n = len(paths)
    gram = np.zeros((n, n))
    dot_med = np.zeros(n)
    med_sq = 0.0
    with ExitStack() as stack:
        handles = [stack.enter_context(safe_open(str(p), framework="numpy")) for p in paths]
        keys = [set(h.keys()) for h in handles]
        common = sorted(set.intersection(*keys))
        mismatched = sorted(set.union(*keys) - set(common))
        shape_mismatch = []
        ctx.progress.set_total(len(common))
        for name in common:
            ctx.progress.advance()
            arrays = [h.get_tensor(name) for h in handles]
            if len({a.shape for a in arrays}) > 1:
                shape_mismatch.append(name)
                continue
            x = np.stack([a.astype(np.float64).ravel() for a in arrays])
            gram += x @ x.T
            med = np.median(x, axis=0)
            dot_med += x @ med
            med_sq += float(med @ med)
    return {
        "gram": gram,
        "dot_med": dot_med,
        "med_sq": med_sq,
        "tensors": len(common),
        "key_mismatch": mismatched,
        "shape_mismatch": shape_mismatch,
    }


def krum_scores(sqdist: Any, f: int) -> list[float]:
    """Krum score per update: sum of squared distances to its n - f - 2 nearest others."""
    n = sqdist.shape[0]
    k = max(1, n - f - 2)
    scores = []
    for i in range(n):
        others = sorted(float(sqdist[i, j]) for j in range(n) if j != i)
        scores.append(sum(others[:k]))
    return scores


class UpdateAnomalyChecker(Checker):
    """Ensure client updates show no anomalies, and flag poison they cannot show."""

    id: ClassVar[str] = "FMFL-R12"
    title: ClassVar[str] = "Ensure client updates show no anomalies"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "defense limits"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].update",)
    Params = UpdateParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return (
            []
            if len(clients_with(deployment, "update")) >= 2
            else ["clients[].update (at least two clients)"]
        )

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, UpdateParams)
        import numpy as np

        declared = clients_with(ctx.deployment, "update")
        clients = validate_updates(ctx, declared)
        out = CheckOutput()
        for c in declared:
            if c not in clients:
                out.metrics[c.subject] = {"usable": False}
        if len(clients) < 2:
            out.notes.append(f"{len(clients)} usable update(s): nothing to compare")
            return out
        try:
            st = update_statistics(ctx, [c.update for c in clients])
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise CheckerError(f"cannot read client updates as safetensors ({exc})") from None
        gram, n = st["gram"], len(clients)
        norms = np.sqrt(np.clip(np.diag(gram), 0, None))
        mean_dot = gram.mean(axis=1)
        mean_norm = float(np.sqrt(max(gram.sum() / n**2, 0.0)))
        med_norm = float(np.sqrt(st["med_sq"]))
        cos_mean = [
            float(mean_dot[i] / (norms[i] * mean_norm)) if norms[i] and mean_norm else 0.0
            for i in range(n)
        ]
        cos_med = [
            float(st["dot_med"][i] / (norms[i] * med_norm)) if norms[i] and med_norm else 0.0
            for i in range(n)
        ]
        diag = np.diag(gram)
        sqdist = np.clip(diag[:, None] + diag[None, :] - 2 * gram, 0, None)
        f = params.byzantine if params.byzantine is not None else max(0, (n - 3) // 2)
        krum = krum_scores(sqdist, f)
        z_norm, z_krum, z_cos = robust_z(list(norms)), robust_z(krum), robust_z(cos_med)
        test = n >= params.min_clients
        if not test:
            out.notes.append(f"{n} updates: outlier tests need at least {params.min_clients}")
        outliers = []
        for i, c in enumerate(clients):
            reasons = []
            if test and z_norm[i] > params.max_z:
                reasons.append(f"norm z={z_norm[i]:.1f}")
            if test and z_krum[i] > params.max_z:
                reasons.append(f"Krum score z={z_krum[i]:.1f}")
            if test and z_cos[i] < -params.max_z:
                reasons.append(f"cosine-to-median z={z_cos[i]:.1f}")
            out.metrics[c.subject] = {
                "norm": round(float(norms[i]), 6),
                "cosine_to_mean": round(cos_mean[i], 6),
                "cosine_to_median": round(cos_med[i], 6),
                "krum_score": round(krum[i], 6),
                "outlier": bool(reasons),
            }
            if reasons:
                outliers.append(c.id)
                worst = max(abs(z_norm[i]), abs(z_krum[i]), abs(z_cos[i]))
                out.findings.append(
                    FindingDraft(
                        subject=c.subject,
                        key="update-outlier",
                        confidence=Confidence.MEDIUM if n < 8 else Confidence.HIGH,
                        message=f"client {c.id}'s update is an outlier ({'; '.join(reasons)})",
                        metric=Metric(
                            name="robust_z", value=round(min(worst, 1e9), 4), threshold=params.max_z
                        ),
                        evidence=(Evidence(location=ctx.display(c.update)),),
                    )
                )
        out.metrics["federation"] = {
            "updates": n,
            "tensors": st["tensors"],
            "byzantine_assumed": f,
            "outliers": outliers,
            "key_mismatch": st["key_mismatch"][:20],
            "shape_mismatch": st["shape_mismatch"][:20],
        }
        if st["key_mismatch"] or st["shape_mismatch"]:
            out.findings.append(
                FindingDraft(
                    subject="federation",
                    key="update-structure",
                    severity=Severity.MEDIUM,
                    message=(
                        f"client updates disagree in structure: {len(st['key_mismatch'])} tensor "
                        f"name(s) not in every update, {len(st['shape_mismatch'])} shape "
                        "mismatch(es)"
                    ),
                    evidence=(
                        Evidence(
                            excerpt=", ".join((st["key_mismatch"] + st["shape_mismatch"])[:5])
                        ),
                    ),
                )
            )
        if params.consistent_poisoning and test and not outliers:
            self._consistent(ctx, params, out)
        return out

    def _consistent(self, ctx: CheckContext, params: UpdateParams, out: CheckOutput) -> None:
        if not clients_with(ctx.deployment, "synthetic_data"):
            return
        m = mine(
            ctx,
            min_support=params.min_support,
            min_purity=params.min_purity,
            fdr=params.fdr,
            min_context_disagreement=params.min_context_disagreement,
        )
        out.metrics["federation"]["trigger_candidates"] = len(m.candidates)
        if not m.candidates:
            return
        top = m.candidates[0]
        out.findings.append(
            FindingDraft(
                subject="federation",
                key="consistent-poisoning",
                message=(
                    f"the synthetic data holds {len(m.candidates)} backdoor trigger candidate(s) "
                    f"(top: {top.ngram!r} -> {top.label!r} in {top.support} records) yet no "
                    "client update is an outlier: the poison is consistent across clients and "
                    "outlier-based aggregation cannot see it"
                ),
                metric=Metric(name="trigger_candidates", value=len(m.candidates), threshold=0),
                evidence=(
                    Evidence(
                        location=top.first_location, excerpt=f"{top.ngram!r} -> {top.label!r}"
                    ),
                ),
            )
        )
