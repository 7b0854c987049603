"""FMFL-R11: whether the configured defenses cover FM-borne threats (from the manifest alone).

Poison from a shared FM makes every client's update move the same way, so outlier-based robust
aggregation (Krum, multi-Krum, trimmed mean, median, norm clipping) sees nothing, and plain FedAvg /
FedProx has no defense at all. What covers FM-borne threats is on the FM side: a digest-pinned
checkpoint, a reference checkpoint to compare with (FMFL-R05), and an approved system prompt.

Findings: an FM with roles (synthetic data, distillation, initialization) whose FM-side controls
are incomplete; a shared FM (a single point of failure for every client) without an integrity pin;
a third-party FM without digest pins.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fmfl_audit.checkers.base import CheckContext, Checker, CheckOutput, NoParams
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Evidence, FindingDraft, Severity

OUTLIER_BASED = frozenset({"krum", "multi-krum", "trimmed-mean", "median", "norm-clipping"})
"""Aggregators that reject outlying updates; blind to poison that is consistent across clients."""


def fm_controls(deployment: Deployment) -> tuple[list[str], list[str]]:
    """(present, missing) FM-side controls."""
    fm = deployment.manifest.foundation_model
    assert fm is not None
    checks = {
        "checkpoint digest pin": fm.checkpoint is not None and fm.checkpoint.sha256 is not None,
        "reference checkpoint": fm.reference_checkpoint is not None,
    }
    if fm.system_prompt is not None:
        checks["approved system prompt"] = (
            fm.system_prompt.approved_sha256 is not None
            or fm.system_prompt.approved_path is not None
        )
    return [k for k, v in checks.items() if v], [k for k, v in checks.items() if not v]


class DefenseCoverageChecker(Checker):
    """Ensure aggregation defenses cover FM-borne threats."""

    id: ClassVar[str] = "FMFL-R11"
    title: ClassVar[str] = "Ensure aggregation defenses cover FM-borne threats"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "defense limits"
    inputs: ClassVar[tuple[str, ...]] = ("foundation_model", "federation")
    Params = NoParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        m = deployment.manifest
        return [
            name
            for name, v in (("foundation_model", m.foundation_model), ("federation", m.federation))
            if v is None
        ]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        m = ctx.deployment.manifest
        fm, fed = m.foundation_model, m.federation
        assert fm is not None and fed is not None
        present, missing = fm_controls(ctx.deployment)
        outlier = fed.aggregator in OUTLIER_BASED
        third_party = fm.placement == "third-party-api" or bool(
            fm.provider and fm.provider.third_party
        )
        pinned = fm.checkpoint is not None and fm.checkpoint.sha256 is not None
        shared = fm.shared_across_clients and len(m.clients) > 1
        out = CheckOutput()
        out.metrics["federation"] = {
            "aggregator": fed.aggregator,
            "outlier_based": outlier,
            "fm_roles": list(fm.roles),
            "fm_shared": shared,
            "fm_third_party": third_party,
            "fm_pinned": pinned,
            "fm_controls_present": present,
            "fm_controls_missing": missing,
        }
        ev = (Evidence(location=ctx.display(ctx.deployment.path)),)
        if fm.roles and missing:
            if outlier:
                why = (
                    f"the {fed.aggregator} aggregator only rejects outlying updates, and poison "
                    "from a shared FM is consistent across clients"
                )
            else:
                why = f"the {fed.aggregator} aggregator has no robustness defense at all"
            out.findings.append(
                FindingDraft(
                    subject="federation",
                    key="fm-borne-uncovered",
                    severity=Severity.MEDIUM if outlier else Severity.HIGH,
                    message=(
                        f"the FM plays {', '.join(fm.roles)} but FM-borne poison is not covered: "
                        f"{why}; missing FM-side controls: {', '.join(missing)}"
                    ),
                    evidence=ev,
                )
            )
        if shared and not pinned:
            out.findings.append(
                FindingDraft(
                    subject="fm",
                    key="single-point-of-failure",
                    message=(
                        f"one FM is shared by all {len(m.clients)} clients without an integrity "
                        "pin: a single tampered model poisons every client at once"
                    ),
                    evidence=ev,
                )
            )
        if third_party and not pinned:
            who = fm.provider.name if fm.provider else fm.placement
            out.findings.append(
                FindingDraft(
                    subject="fm",
                    key="third-party-unpinned",
                    severity=Severity.HIGH,
                    message=(
                        f"the FM is run by a third party ({who}) and no digest pins the model "
                        "version clients receive"
                    ),
                    evidence=ev,
                )
            )
        return out
