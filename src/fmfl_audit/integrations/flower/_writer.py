"""Turn what `AuditedStrategy` recorded into files: participation log, round log, run summary,
teacher predictions gathered from the clients' FM logs, and `manifest.yaml`."""

from __future__ import annotations

import json
from collections import defaultdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmfl_audit._version import __version__
from fmfl_audit.integrations import fm_log
from fmfl_audit.integrations.flower import _inspect
from fmfl_audit.integrations.scaffold import (
    ClientDraft,
    FMDraft,
    ManifestDraft,
    ParticipationRow,
    relative,
    write_manifest,
    write_participation_log,
    write_text_atomic,
)

if TYPE_CHECKING:
    from fmfl_audit.integrations.flower._strategy import AuditedStrategy, ReplyRecord

PARTICIPATION = "participation.csv"
ROUNDS = "rounds.jsonl"
RUN = "run.json"
TEACHER = Path("fm") / fm_log.TEACHER


def write_run(rec: AuditedStrategy) -> Path:
    """Write every file of the audit trail under `rec.out_dir`; returns the manifest path."""
    out = rec.out_dir
    out.mkdir(parents=True, exist_ok=True)
    rows = list(_participation_rows(rec))
    _, with_weight = write_participation_log(out / PARTICIPATION, rows)
    write_text_atomic(out / ROUNDS, "".join(json.dumps(r) + "\n" for r in _round_dicts(rec)))
    summary = _run_summary(rec)
    write_text_atomic(out / RUN, json.dumps(summary, indent=2) + "\n")
    teacher = _gather_teacher_predictions(out)
    draft = _draft(rec, summary, with_weight=with_weight, teacher=teacher)
    return write_manifest(draft, out / "manifest.yaml", force=True)


def _final_id(rec: AuditedStrategy, reply: ReplyRecord) -> str:
    return reply.client_id or rec.client_id(reply.node_id)


def _participation_rows(rec: AuditedStrategy) -> Any:
    for rnd in sorted(rec.rounds):
        record = rec.rounds[rnd]
        known = all(r.weight is not None for r in record.replies.values() if r.status != "failed")
        for node in sorted(record.replies, key=lambda n: _final_id(rec, record.replies[n])):
            r = record.replies[node]
            contributed = r.status == "aggregated"
            yield ParticipationRow(
                round=rnd,
                client_id=_final_id(rec, r),
                num_samples=r.num_examples if r.status in ("aggregated", "discarded") else 0,
                weight=(r.weight if contributed else (0.0 if known else None)),
                extra={"status": r.status, "node_id": r.node_id},
            )


def _round_dicts(rec: AuditedStrategy) -> Any:
    for rnd in sorted(rec.rounds):
        record = rec.rounds[rnd]
        replies = []
        for r in sorted(record.replies.values(), key=lambda x: x.node_id):
            entry: dict[str, Any] = {
                "node_id": r.node_id,
                "client_id": _final_id(rec, r),
                "status": r.status,
                "num_examples": r.num_examples,
                "weight": r.weight,
            }
            if r.update is not None:
                entry["update"] = relative(r.update, rec.out_dir)
            for key in ("update_note", "error"):
                if getattr(r, key):
                    entry[key] = getattr(r, key)
            replies.append(entry)
        yield {
            "round": rnd,
            "completed": record.completed,
            "sampled": len(record.sampled),
            "received": sum(1 for r in record.replies.values() if r.status != "no-reply"),
            "failed": sum(1 for r in record.replies.values() if r.status == "failed"),
            "aggregated": record.aggregated,
            "weight_basis": record.weight_basis,
            "replies": replies,
        }


def _client_reports(rec: AuditedStrategy) -> dict[str, dict[str, Any]]:
    """The last `fmfl-audit` record each client sent, by final client id."""
    out: dict[str, dict[str, Any]] = {}
    for rnd in sorted(rec.rounds):
        for r in rec.rounds[rnd].replies.values():
            if r.info:
                out[_final_id(rec, r)] = r.info
    return out


def _run_summary(rec: AuditedStrategy) -> dict[str, Any]:
    agg, agg_note = _inspect.aggregator(rec.strategy)
    return {
        "fmfl_audit_version": __version__,
        "flwr_version": _flwr_version(),
        "strategy": [type(s).__name__ for s in _inspect.chain(rec.strategy)],
        "aggregator": agg,
        "aggregator_note": agg_note,
        "weighted_by_key": _inspect.weighted_by_key(rec.strategy),
        "num_rounds": rec.num_rounds,
        "rounds_recorded": len(rec.rounds),
        "dp_wrappers": _inspect.dp_wrappers(rec.strategy),
        "privacy_spent": _inspect.privacy_spent(rec.strategy),
        "client_reports": _client_reports(rec),
        "options": {
            "save_updates": rec.save_updates,
            "max_update_bytes": rec.store.max_update_bytes,
            "keep_last_rounds": rec.store.keep_last_rounds,
            "save_global": rec.save_global,
        },
    }


def _flwr_version() -> str | None:
    try:
        return metadata.version("flwr")
    except metadata.PackageNotFoundError:
        return None


def _gather_teacher_predictions(out: Path) -> Path | None:
    """Concatenate the clients' teacher predictions into one FM-level file (FMFL-R10)."""
    parts = sorted((out / "clients").glob(f"*/{fm_log.TEACHER}"))
    if not parts:
        return None
    text = "".join(p.read_text(encoding="utf-8") for p in parts)
    write_text_atomic(out / TEACHER, text)
    return out / TEACHER


def _privacy(rec: AuditedStrategy, summary: dict[str, Any]) -> tuple[Any, list[str], bool]:
    """(differential_privacy for the manifest or None, notes, secure aggregation seen)."""
    notes: list[str] = []
    for w in summary["dp_wrappers"]:
        settings = ", ".join(f"{k} {v:g}" for k, v in w.items() if isinstance(v, float))
        notes.append(f"Flower DP wrapper {w['wrapper']}: {settings}")
    reports = summary["client_reports"]
    participants = _participants(rec)
    spent = summary["privacy_spent"]
    dp: dict[str, Any] | None = None
    if spent is not None and spent["epsilon"] > 0 and spent["delta"] < 1:
        dp = {
            "epsilon": round(spent["epsilon"], 6),
            "delta": spent["delta"],
            "mechanism": f"central DP ({spent['wrapper']}), {spent['method']} accountant "
            f"after {spent['releases']} release(s)",
        }
    elif summary["dp_wrappers"]:
        notes.append("no privacy accountant on the DP wrapper: epsilon unknown, fill it in")
    local = {c: r for c, r in reports.items() if "local-dp-epsilon" in r}
    if local:
        per_round = max(r["local-dp-epsilon"] for r in local.values())
        delta_round = max(r["local-dp-delta"] for r in local.values())
        rounds = max(len(participants[c]) for c in local)
        notes.append(
            f"LocalDpMod on {len(local)} of {len(participants)} client(s): epsilon "
            f"{per_round:g}, delta {delta_round:g} per round"
        )
        everyone = len(local) == len(participants)
        if dp is None and everyone and per_round > 0 and rounds * delta_round < 1:
            dp = {
                "epsilon": round(per_round * rounds, 6),
                "delta": rounds * delta_round,
                "mechanism": f"local DP (Flower LocalDpMod), {per_round:g} per round "
                f"composed over {rounds} round(s) (basic composition, an upper bound)",
            }
    secagg = [
        c
        for c, r in reports.items()
        if {"secaggplus_mod", "secagg_mod"} & set(r.get("privacy-mods", []))
    ]
    if secagg:
        notes.append(f"SecAgg mods reported by {len(secagg)} of {len(participants)} client(s)")
    all_secagg = bool(participants) and set(secagg) >= set(participants)
    return dp, notes, all_secagg


def _participants(rec: AuditedStrategy) -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for rnd, record in rec.rounds.items():
        for r in record.replies.values():
            cid = _final_id(rec, r)
            out.setdefault(cid, set())
            if r.status == "aggregated":
                out[cid].add(rnd)
    return out


def _latest_updates(rec: AuditedStrategy) -> dict[str, tuple[int, Path]]:
    """Each client's most recent update still on disk."""
    out: dict[str, tuple[int, Path]] = {}
    for rnd in sorted(rec.rounds):
        for r in rec.rounds[rnd].replies.values():
            if r.update is not None and r.update.is_file():
                out[_final_id(rec, r)] = (rnd, r.update)
    return out


def _draft(
    rec: AuditedStrategy, summary: dict[str, Any], *, with_weight: bool, teacher: Path | None
) -> ManifestDraft:
    out = rec.out_dir
    dp, privacy_notes, secagg = _privacy(rec, summary)
    participants = _participants(rec)
    folders = {p.name for p in (out / "clients").glob("*") if p.is_dir()}
    ids = sorted(set(participants) | set(rec.clients) | folders)
    updates = _latest_updates(rec)
    reports = summary["client_reports"]
    clients = []
    for cid in ids:
        info = rec.clients.get(cid)
        report = reports.get(cid, {})
        draft = ClientDraft(
            id=cid,
            tier=(info.tier if info else None) or report.get("tier"),
            fm_access=(info.fm_access if info else None) or report.get("fm-access"),
        )
        for key, name in (("prompts", fm_log.PROMPTS), ("synthetic_data", fm_log.SYNTHETIC)):
            if (out / "clients" / cid / name).is_file():
                draft.files[key] = f"clients/{cid}/{name}"
        if cid in updates:
            rnd, path = updates[cid]
            draft.files["update"] = relative(path, out)
            draft.notes.append(f"update: its change in round {rnd}, its last recorded round")
        if cid.startswith("node-"):
            draft.notes.append("no stable id: add fmfl_audit_mod to the ClientApp's mods")
        clients.append(draft)
    fm = rec.fm
    fm_draft = FMDraft(
        name=fm.name if fm else None,
        placement=fm.placement if fm else None,
        roles=tuple(fm.roles) if fm else (),
        checkpoint=fm.checkpoint if fm else None,
        system_prompt=fm.system_prompt if fm else None,
        teacher_predictions=relative(teacher, out) if teacher else None,
    )
    participation_notes = [
        f"One row per sampled client and round (status: aggregated, failed, no-reply, "
        f"discarded); weight = {_basis(rec)}."
    ]
    if not with_weight:
        participation_notes.append("Weights unknown for some round: FMFL-F06 uses num_samples.")
    held = _held(rec)
    if rec.num_rounds and held < rec.num_rounds:
        participation_notes.append(f"The run stopped after round {held} of {rec.num_rounds}.")
    return ManifestDraft(
        name=rec.deployment_name,
        task=rec.task,
        source=f"a Flower run (flwr {summary['flwr_version']}) recorded by AuditedStrategy",
        fm=fm_draft,
        aggregator=summary["aggregator"],
        aggregator_note=summary["aggregator_note"],
        # Rounds actually held: after a failed run, the rounds never held are not absences.
        rounds=_held(rec) or rec.num_rounds,
        differential_privacy=dp,
        privacy_notes=privacy_notes,
        secure_aggregation=secagg,
        participation_log=PARTICIPATION,
        participation_notes=participation_notes,
        clients=clients,
        header=[
            f"Strategy: {' -> '.join(summary['strategy'])}. Round details: {ROUNDS}; "
            f"run summary: {RUN}."
        ],
    )


def _held(rec: AuditedStrategy) -> int:
    """The last round whose replies reached the strategy (0 if none)."""
    return max((r for r, record in rec.rounds.items() if record.completed), default=0)


def _basis(rec: AuditedStrategy) -> str:
    bases = sorted({r.weight_basis for r in rec.rounds.values() if r.weight_basis})
    return "; ".join(bases) or "none recorded"
