"""Import an NVIDIA FLARE run: the simulator workspace or a server job folder.

NVFlare (>= 2.8; read from 2.9.0's `MetricsArtifactWriter`) writes `metrics/round_metrics.jsonl`
in the server's job folder (`<workspace>/<job>/server/simulate_job/` in the simulator): one JSON
line per round with the sites whose contribution was accepted, each with its weight (`weight`,
`weight_key`; for FedAvg `aggregation_weight * NUM_STEPS_CURRENT_ROUND`). Next to it, `meta.json`
names every site of the job and `app_server/config/config_fed_server.json` the workflow and its
round count; each site's `config_fed_client.json` names its result filters (privacy filters).

The participation log gets one row per site and round it contributed to, with its share of the
round's weight (what the FedAvg weighted average gives it) and NVFlare's raw weight. Sites of the
job that contributed to no round are still listed as clients.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmfl_audit.errors import InputError
from fmfl_audit.integrations.importers import ImportResult, find_unique, read_json, write_import
from fmfl_audit.integrations.scaffold import (
    ClientDraft,
    FMDraft,
    ManifestDraft,
    ParticipationRow,
    relative,
    safe_client_id,
)

ROUND_METRICS = "metrics/round_metrics.jsonl"
# Workflow class name -> manifest aggregator.
WORKFLOWS = {
    "FedAvg": "fedavg",
    "BaseFedAvg": "fedavg",
    "ScatterAndGather": "fedavg",
    "FedProx": "fedprox",
    "Scaffold": "fedavg",
    "FedOpt": "fedavg",
}
# Result filters that protect a site's update (class name -> what it is).
PRIVACY_FILTERS = {
    "PercentilePrivacy": "differential privacy (percentile sparsification)",
    "SVTPrivacy": "differential privacy (sparse vector technique)",
    "GaussianPrivacy": "differential privacy (Gaussian noise)",
    "ExcludeVars": "excludes variables from the shared update",
    "HEModelEncryptor": "homomorphic encryption of the update",
}
CANNOT = [
    "per-site model updates: NVFlare keeps only the global model, so FMFL-R12 has no input",
    "sample counts: the round metrics carry NVFlare's weight (steps x aggregation weight), not "
    "the number of records; num_samples is left out",
    "sites that were asked to train but failed or timed out: the round metrics list accepted "
    "contributions only, so a missing site and a failed site look the same",
    "rounds without client metrics: the writer records no line for them",
    "resource tiers, FM access modes, prompts and FM outputs: not part of an NVFlare run",
]


def import_run(run_dir: Path, out_dir: Path, *, force: bool = False) -> ImportResult:
    """Read the NVFlare run under `run_dir`; write the log and manifest into `out_dir`."""
    metrics = find_unique(run_dir, ROUND_METRICS, "NVFlare round metrics file")
    job_dir = metrics.parent.parent
    records = _read_rounds(metrics)
    meta = read_json(job_dir / "meta.json") if (job_dir / "meta.json").is_file() else {}
    server = _server_config(job_dir)
    workflow: dict[str, Any] = next(iter(server.get("workflows", [])), {})
    wf_args = workflow.get("args", {}) if isinstance(workflow, dict) else {}
    rows = list(_rows(records))
    sites = sorted({r.client_id for r in rows} | set(_job_sites(meta)))
    filters = _privacy_filters(job_dir, sites)
    wf_name = str(workflow.get("path", "")).rsplit(".", 1)[-1] if workflow else ""
    draft = ManifestDraft(
        name=str(meta.get("name") or job_dir.name),
        source=f"the NVFlare run at {relative(job_dir, out_dir)}",
        fm=FMDraft(),
        aggregator=WORKFLOWS.get(wf_name),
        aggregator_note=f"NVFlare workflow {wf_name or 'unknown'}",
        rounds=_int(wf_args.get("num_rounds")) or (len(records) or None),
        privacy_notes=filters,
        participation_notes=[
            f"From {relative(metrics, out_dir)}: weight = the site's share of the round's "
            "NVFlare weight (nvflare_weight, weight_key)."
        ],
        clients=[ClientDraft(id=s) for s in sites],
    )
    return write_import(out_dir, rows, draft, CANNOT, force=force)


def _read_rounds(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{path}:{n}: not valid JSON ({exc})") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("sites", []), list):
                raise InputError(f"{path}:{n}: expected an object with a `sites` list")
            records.append(rec)
    if not records:
        raise InputError(f"{path}: no rounds recorded")
    return records


def _rows(records: list[dict[str, Any]]) -> Any:
    for rec in records:
        sites = [s for s in rec.get("sites", []) if isinstance(s, dict) and s.get("name")]
        weights = [_weight(s.get("weight")) for s in sites]
        total = sum(w for w in weights if w is not None)
        known = all(w is not None for w in weights) and total > 0
        for site, w in zip(sites, weights, strict=True):
            yield ParticipationRow(
                round=rec.get("round", ""),
                client_id=safe_client_id(str(site["name"])),
                weight=(w / total) if known and w is not None else None,
                extra={
                    "nvflare_weight": "" if w is None else w,
                    "weight_key": site.get("weight_key", ""),
                },
            )


def _weight(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value > 0 and value == value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _job_sites(meta: dict[str, Any]) -> list[str]:
    sites = []
    for entry in meta.get("job_clients", []) or []:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if isinstance(name, str) and name:
            sites.append(safe_client_id(name))
    return sites


def _server_config(job_dir: Path) -> dict[str, Any]:
    found = sorted(job_dir.glob("app*/config/config_fed_server.json"))
    if not found:
        return {}
    conf = read_json(found[0])
    return conf if isinstance(conf, dict) else {}


def _privacy_filters(job_dir: Path, sites: list[str]) -> list[str]:
    """One note per privacy filter the sites' client configs apply to their results."""
    workspace = job_dir.parent.parent
    seen: dict[str, list[str]] = {}
    for site in sites:
        for conf_path in sorted(workspace.glob(f"{site}/*/app*/config/config_fed_client.json")):
            for flt in _filters(read_json(conf_path)):
                name = str(flt.get("path", "")).rsplit(".", 1)[-1]
                if name in PRIVACY_FILTERS:
                    what = f"{name} ({PRIVACY_FILTERS[name]}), args {flt.get('args', {})}"
                    seen.setdefault(what, []).append(site)
    return [f"NVFlare result filter {what} on {', '.join(s)}" for what, s in seen.items()]


def _filters(conf: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not isinstance(conf, dict):
        return out
    for group in conf.get("task_result_filters", []) or []:
        if isinstance(group, dict):
            out += [f for f in group.get("filters", []) or [] if isinstance(f, dict)]
    return out
