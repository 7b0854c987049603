"""FMFL-P05: membership inference against an FL model, with confidence intervals.

Attacks (a higher score means "member"):
- `loss`: minus the mean token NLL (causal LM) or the cross-entropy of the true label
  (sequence classifier) - Yeom et al. 2018;
- `reference`: minus (target loss - reference loss), the reference being the base FM
  (`reference: foundation_model`) or another manifest model; calibrates away records that are
  easy for any model (Carlini et al. 2022, "LiRA"-style offline calibration with one reference);
- `zlib` (causal LMs): minus the ratio of the model's summed NLL (bits) to the zlib-compressed size
  of the text (bits) - Carlini et al. 2021.

For each attack: ROC AUC (scikit-learn), and the TPR at 1% and 0.1% FPR (the best TPR whose FPR
does not exceed the level), each with a seeded percentile bootstrap interval (members and
non-members resampled separately; resamples use `fast_metrics`, the same quantities in closed
form, tested equal to scikit-learn's). TPR at 0.1% FPR needs >= 1000 non-members to mean
anything; the metrics say how many there were. A finding fires per attack whose AUC or TPR at
1% FPR exceeds the pack's thresholds. Scoring is batched and length-bucketed (`_lm_scoring`).
"""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.checkers.privacy._lm_scoring import (
    LoadedModel,
    causal_nll,
    classifier_nll,
    encode,
    label_index,
    load_model,
    reservoir,
)
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, FindingDraft, Metric

ATTACKS = ("loss", "reference", "zlib")


class MembershipParams(CheckerParams):
    """Settings of FMFL-P05."""

    max_auc: float = Field(default=0.6, ge=0.5, le=1)
    max_tpr_at_1pct_fpr: float = Field(default=0.05, ge=0, le=1)
    attacks: tuple[str, ...] = Field(
        default=ATTACKS, description="Subset of loss, reference, zlib."
    )
    bootstrap: int = Field(default=200, ge=0, le=10_000, description="Bootstrap resamples.")
    confidence_level: float = Field(default=0.95, gt=0.5, lt=1)
    max_records: int = Field(default=5000, ge=10, description="Per side, seeded sample.")
    min_records: int = Field(default=10, ge=2, description="Fewer per side: not measured.")
    max_length: int = Field(default=512, ge=8)
    batch_size: int = Field(default=64, ge=1)
    max_batch_tokens: int = Field(default=16384, ge=64)


def tpr_at_fpr(y: Any, score: Any, level: float) -> float:
    """The largest TPR whose FPR is at most `level` on the ROC curve."""
    import numpy as np
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, score)
    ok = fpr <= level + 1e-12
    return float(np.max(tpr[ok])) if ok.any() else 0.0


def fast_metrics(members: Any, non_members: Any) -> tuple[float, float, float]:
    """(AUC, TPR at 1% FPR, TPR at 0.1% FPR) in closed form: the same values as scikit-learn's
    `roc_auc_score` / `roc_curve` (Mann-Whitney U with mid-ranks for ties; the best TPR above the
    (floor(level * n0) + 1)-th highest non-member score), fast enough for bootstraps."""
    import numpy as np
    from scipy.stats import rankdata

    n1, n0 = len(members), len(non_members)
    ranks = rankdata(np.r_[members, non_members])
    auc = (ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    desc = np.sort(non_members)[::-1]
    tprs = []
    for level in (0.01, 0.001):
        fp_max = int(np.floor(level * n0 + 1e-9))
        tprs.append(1.0 if fp_max >= n0 else float(np.mean(members > desc[fp_max])))
    return float(auc), tprs[0], tprs[1]


def attack_metrics(
    members: Any, non_members: Any, *, bootstrap: int, level: float, seed: int
) -> dict[str, Any]:
    """AUC and TPR at 1% / 0.1% FPR with bootstrap intervals for member / non-member scores."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
    s = np.r_[members, non_members]
    out: dict[str, Any] = {
        "auc": round(float(roc_auc_score(y, s)), 4),
        "tpr_at_1pct_fpr": round(tpr_at_fpr(y, s, 0.01), 4),
        "tpr_at_0.1pct_fpr": round(tpr_at_fpr(y, s, 0.001), 4),
    }
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = np.array(
            [
                fast_metrics(
                    members[rng.integers(0, len(members), len(members))],
                    non_members[rng.integers(0, len(non_members), len(non_members))],
                )
                for _ in range(bootstrap)
            ]
        )
        lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
        for col, name in enumerate(("auc", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr")):
            out[f"{name}_ci"] = [
                round(float(np.percentile(draws[:, col], lo)), 4),
                round(float(np.percentile(draws[:, col], hi)), 4),
            ]
    return out


class MembershipChecker(Checker):
    """Ensure membership of training records cannot be inferred from the FL model."""

    id: ClassVar[str] = "FMFL-P05"
    title: ClassVar[str] = "Ensure membership of training records cannot be inferred"
    area: ClassVar[Area] = Area.PRIVACY
    threat: ClassVar[str] = "top-down disclosure"
    inputs: ClassVar[tuple[str, ...]] = (
        "models[].checkpoint",
        "models[].members",
        "models[].non_members",
    )
    Params = MembershipParams

    @staticmethod
    def _models(deployment: Deployment) -> list[Any]:
        return [
            m
            for m in deployment.manifest.models
            if m.kind in ("causal-lm", "sequence-classifier")
            and m.checkpoint is not None
            and m.members is not None
            and m.non_members is not None
        ]

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        if self._models(deployment):
            return []
        return ["models[].members and models[].non_members (on a causal-lm or classifier)"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, MembershipParams)
        out = CheckOutput()
        models = self._models(ctx.deployment)
        ctx.progress.set_total(len(models))
        for spec in models:
            self._one(ctx, params, spec, out)
            ctx.progress.advance()
        return out

    def _sample(
        self, ctx: CheckContext, params: MembershipParams, spec: Any, source: Any, tag: str
    ) -> tuple[list[Any], int]:
        stream = (r for batch in ctx.records(source) for r in batch)
        return reservoir(stream, params.max_records, ctx.rule_seed(spec.name, tag))

    def _losses(
        self, params: MembershipParams, lm: LoadedModel, records: list[Any]
    ) -> tuple[Any, Any]:
        """(per-record loss, per-record summed NLL or None)."""
        import numpy as np

        ids = encode(lm, [r.text or "" for r in records], max_length=params.max_length)
        if lm.kind == "sequence-classifier":
            labels = [label_index(lm, r.label) for r in records]
            ce = classifier_nll(
                lm,
                ids,
                labels,
                batch_size=params.batch_size,
                max_batch_tokens=params.max_batch_tokens,
            )
            return ce, None
        sums, counts = causal_nll(
            lm, ids, batch_size=params.batch_size, max_batch_tokens=params.max_batch_tokens
        )
        return sums / np.maximum(counts, 1), sums

    def _reference(self, ctx: CheckContext, spec: Any) -> tuple[LoadedModel | None, str]:
        manifest = ctx.deployment.manifest
        if spec.reference is None:
            return None, "no reference model declared"
        if spec.reference == "foundation_model":
            fm = manifest.foundation_model
            if spec.kind != "causal-lm":
                return None, "the FM reference is a causal LM; the target is a classifier"
            return load_model(ctx, fm.checkpoint.path, "causal-lm"), "foundation_model"  # type: ignore[union-attr]
        ref = next(m for m in manifest.models if m.name == spec.reference)
        if ref.kind != spec.kind or ref.checkpoint is None:
            return None, f"reference {ref.name!r} is not a {spec.kind} checkpoint"
        return load_model(ctx, ref.checkpoint.path, ref.kind), ref.name

    def _one(
        self, ctx: CheckContext, params: MembershipParams, spec: Any, out: CheckOutput
    ) -> None:
        import numpy as np

        members, n_mem = self._sample(ctx, params, spec, spec.members, "members")
        non, n_non = self._sample(ctx, params, spec, spec.non_members, "non-members")
        figures: dict[str, Any] = {
            "members": len(members),
            "non_members": len(non),
            "members_total": n_mem,
            "non_members_total": n_non,
        }
        out.metrics[spec.subject] = figures
        if min(len(members), len(non)) < params.min_records:
            out.notes.append(
                f"{spec.name}: fewer than {params.min_records} members or non-members; "
                "membership inference not measured"
            )
            return
        lm = load_model(ctx, spec.checkpoint.path, spec.kind)
        loss_m, sum_m = self._losses(params, lm, members)
        loss_n, sum_n = self._losses(params, lm, non)
        scores: dict[str, tuple[Any, Any]] = {}
        if "loss" in params.attacks:
            scores["loss"] = (-loss_m, -loss_n)
        if "reference" in params.attacks:
            ref, why = self._reference(ctx, spec)
            figures["reference"] = why
            if ref is not None:
                rm, _ = self._losses(params, ref, members)
                rn, _ = self._losses(params, ref, non)
                scores["reference"] = (-(loss_m - rm), -(loss_n - rn))
        if "zlib" in params.attacks and sum_m is not None:
            zm = np.array([_zlib_bits(r.text or "") for r in members])
            zn = np.array([_zlib_bits(r.text or "") for r in non])
            bits = 1 / np.log(2)
            scores["zlib"] = (-(sum_m * bits / zm), -(sum_n * bits / zn))
        attacks: dict[str, Any] = {}
        for name, (sm, sn) in scores.items():
            res = attack_metrics(
                np.asarray(sm),
                np.asarray(sn),
                bootstrap=params.bootstrap,
                level=params.confidence_level,
                seed=ctx.rule_seed(spec.name, name),
            )
            attacks[name] = res
            finding = self._finding(spec, name, res, params, len(members), len(non))
            if finding is not None:
                out.findings.append(finding)
        figures["attacks"] = attacks

    @staticmethod
    def _finding(
        spec: Any, attack: str, res: dict[str, Any], params: MembershipParams, n_m: int, n_n: int
    ) -> FindingDraft | None:
        auc, tpr = res["auc"], res["tpr_at_1pct_fpr"]
        ci = res.get("auc_ci")
        if auc > params.max_auc:
            metric = Metric(name=f"{attack}_attack_auc", value=auc, threshold=params.max_auc)
            sure = ci is not None and ci[0] > params.max_auc
        elif tpr > params.max_tpr_at_1pct_fpr:
            metric = Metric(
                name=f"{attack}_attack_tpr_at_1pct_fpr",
                value=tpr,
                threshold=params.max_tpr_at_1pct_fpr,
            )
            tci = res.get("tpr_at_1pct_fpr_ci")
            sure = tci is not None and tci[0] > params.max_tpr_at_1pct_fpr
        else:
            return None
        ci_text = f" ({params.confidence_level:.0%} CI {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
        return FindingDraft(
            subject=spec.subject,
            key=f"attack:{attack}",
            confidence=Confidence.HIGH if sure else Confidence.MEDIUM,
            message=(
                f"The {attack} membership-inference attack separates members from non-members of "
                f"model {spec.name}: AUC {auc:.3f}{ci_text}, TPR {tpr:.3f} at 1% FPR "
                f"({n_m} members, {n_n} non-members)"
            ),
            metric=metric,
        )


def _zlib_bits(text: str) -> float:
    return 8.0 * max(1, len(zlib.compress(text.encode("utf-8"), 9)))
