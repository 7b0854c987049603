"""Probing the live FM through its OpenAI-compatible endpoint (`fmfl-audit probe`).

The one part of fmfl-audit that uses the network, and only towards the endpoints the manifest
names. It writes a transcript (`transcript`) that the rules read at scan time, offline.

    from fmfl_audit.manifest import load_manifest
    from fmfl_audit.probe import plan_probes, run_probes

    plan = plan_probes(load_manifest("deploy/manifest.yaml"))
    print(plan.estimate())
    run_probes(plan, max_requests=500)
"""

from __future__ import annotations

from fmfl_audit.probe.client import ProbeError
from fmfl_audit.probe.runner import (
    Estimate,
    NullProbeObserver,
    ProbeObserver,
    ProbePlan,
    ProbeRun,
    Request,
    plan_probes,
    run_probes,
)

__all__ = [
    "Estimate",
    "NullProbeObserver",
    "ProbeError",
    "ProbeObserver",
    "ProbePlan",
    "ProbeRun",
    "Request",
    "plan_probes",
    "run_probes",
]
