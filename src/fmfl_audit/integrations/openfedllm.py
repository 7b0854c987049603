"""Import an OpenFedLLM run folder (rui-ye/OpenFedLLM, `main_sft.py` / `main_dpo.py`).

What OpenFedLLM writes (commit 14c6af2, `config.py:save_config` and `main_sft.py`): `args.json`
(`script_args` and `fed_args`), `training_loss.npy` (clients x rounds float array, saved after
every round; -1 marks a client not sampled in that round) and `checkpoint-<round>/` folders with
the global PEFT adapter every `save_model_freq` rounds.

Rebuilt from its code rather than stored: each client's local data size (`split_dataset`: the iid
split shards `dataset_sample` records round-robin, `Dataset.shard(n, i)`), the records a client
trains on per round (`get_dataset_this_round`: `batch_size * gradient_accumulation_steps *
max_steps`, capped by its data), and the aggregation weight (`fed_global.global_aggregate`: local
size over the round's total for fedavg, fedprox, scaffold and fedavgm; an equal share for the
server-optimizer variants fedadagrad, fedyogi, fedadam). The sampled set is checked against the
sampler OpenFedLLM uses (`random.seed(round); random.sample(range(num_clients), sample_clients)`).
"""

from __future__ import annotations

import random
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
)

SAMPLE_WEIGHTED = {"fedavg", "fedprox", "scaffold", "fedavgm"}
EQUAL_WEIGHTED = {"fedadagrad", "fedyogi", "fedadam"}
AGGREGATORS = {
    "fedavg": ("fedavg", None),
    "fedprox": ("fedprox", None),
    "scaffold": ("fedavg", "SCAFFOLD: size-weighted averaging plus control variates"),
    "fedavgm": ("fedavg", "FedAvgM: FedAvg with server momentum"),
    "fedadagrad": ("fedavg", "FedAdagrad: mean update, server-side Adagrad step"),
    "fedyogi": ("fedavg", "FedYogi: mean update, server-side Yogi step"),
    "fedadam": ("fedavg", "FedAdam: mean update, server-side Adam step"),
}
CANNOT = [
    "client model updates: OpenFedLLM keeps local adapters in memory only, so FMFL-R12 has no "
    "input; checkpoint-N/ folders hold the global adapter",
    "exact local data sizes: rebuilt from dataset_sample and the iid split, assuming the dataset "
    "has at least dataset_sample records (a smaller one shrinks every client alike)",
    "the prompts and data each client trained on: not saved by OpenFedLLM",
    "resource tiers and FM access modes: every client runs the same model in one process",
]


def import_run(run_dir: Path, out_dir: Path, *, force: bool = False) -> ImportResult:
    """Read the OpenFedLLM run under `run_dir`; write the log and manifest into `out_dir`."""
    loss_path = find_unique(run_dir, "training_loss.npy", "OpenFedLLM training_loss.npy")
    folder = loss_path.parent
    args_path = folder / "args.json"
    if not args_path.is_file():
        raise InputError(f"{folder}: training_loss.npy without args.json next to it")
    args = read_json(args_path)
    fed, script = _section(args, "fed_args", args_path), _section(args, "script_args", args_path)
    loss = _read_loss(loss_path, int(fed.get("num_clients", 0)))
    clients, rounds = loss.shape
    sizes = local_sizes(int(script.get("dataset_sample") or 0), clients)
    per_round = (
        int(script.get("batch_size", 1))
        * int(script.get("gradient_accumulation_steps", 1))
        * int(script.get("max_steps", 1))
    )
    alg = str(fed.get("fed_alg", "fedavg"))
    rows = list(_rows(loss, sizes, per_round, alg))
    notes = _sampler_check(loss, fed)
    draft = _draft(folder, out_dir, script, fed, alg, rounds, clients, notes)
    return write_import(out_dir, rows, draft, CANNOT, force=force)


def _section(args: Any, key: str, path: Path) -> dict[str, Any]:
    section = args.get(key) if isinstance(args, dict) else None
    if not isinstance(section, dict):
        raise InputError(f"{path}: no `{key}` object (not an OpenFedLLM args.json?)")
    return section


def _read_loss(path: Path, num_clients: int) -> Any:
    import numpy as np

    try:
        loss = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a numeric .npy array ({exc})") from None
    if loss.ndim != 2 or not np.issubdtype(loss.dtype, np.number):
        raise InputError(f"{path}: expected a clients x rounds number array, got {loss.shape}")
    if num_clients and loss.shape[0] != num_clients:
        raise InputError(
            f"{path}: {loss.shape[0]} rows but args.json says num_clients={num_clients}"
        )
    return loss


def local_sizes(dataset_sample: int, clients: int) -> list[int]:
    """Records per client after OpenFedLLM's iid split of `dataset_sample` records."""
    return [len(range(i, dataset_sample, clients)) for i in range(clients)]


def _rows(loss: Any, sizes: list[int], per_round: int, alg: str) -> Any:
    clients, rounds = loss.shape
    for r in range(rounds):
        sampled = [c for c in range(clients) if float(loss[c, r]) != -1.0]
        total = sum(sizes[c] for c in sampled)
        for c in sampled:
            if alg in SAMPLE_WEIGHTED or alg.startswith("local"):
                weight = sizes[c] / total if total > 0 else None
            elif alg in EQUAL_WEIGHTED:
                weight = 1.0 / len(sampled)
            else:
                weight = None
            yield ParticipationRow(
                round=r + 1,
                client_id=f"client-{c}",
                num_samples=min(per_round, sizes[c]) if sizes[c] else None,
                weight=weight,
                extra={"training_loss": float(loss[c, r])},
            )


def _sampler_check(loss: Any, fed: dict[str, Any]) -> list[str]:
    """Compare the -1 pattern with OpenFedLLM's own sampler (`get_clients_this_round`)."""
    clients, rounds = loss.shape
    k = int(fed.get("sample_clients", clients))
    alg = str(fed.get("fed_alg", ""))
    if alg.startswith("local"):
        return []
    mismatched = []
    for r in range(rounds):
        if clients < k:
            expected = list(range(clients))
        else:
            random.seed(r)
            expected = sorted(random.sample(range(clients), k))
        seen = [c for c in range(clients) if float(loss[c, r]) != -1.0]
        if seen != expected:
            mismatched.append(r + 1)
    if not mismatched:
        return [f"Sampled clients match OpenFedLLM's sampler in all {rounds} round(s)."]
    return [f"Rounds {mismatched[:10]} differ from OpenFedLLM's seeded sampler: check the run."]


def _draft(
    folder: Path,
    out_dir: Path,
    script: dict[str, Any],
    fed: dict[str, Any],
    alg: str,
    rounds: int,
    clients: int,
    notes: list[str],
) -> ManifestDraft:
    model = str(script.get("model_name_or_path") or "")
    agg, agg_note = AGGREGATORS.get(alg, (None, f"OpenFedLLM fed_alg {alg!r}"))
    checkpoints = sorted(p.name for p in folder.glob("checkpoint-*") if p.is_dir())
    # The training machine's model path says which FM it was, not where the auditor's copy is.
    fm_notes = [
        f"OpenFedLLM fine-tuned model_name_or_path={model!r} on every client "
        f"(use_peft={script.get('use_peft')}); point checkpoint at your copy of it."
    ]
    if checkpoints:
        fm_notes.append(
            f"Global adapters saved: {', '.join(checkpoints[-3:])} in {relative(folder, out_dir)}"
        )
    planned = int(fed.get("num_rounds") or rounds)
    if planned != rounds:
        notes = [*notes, f"args.json plans {planned} rounds; training_loss.npy holds {rounds}."]
    return ManifestDraft(
        name=folder.name,
        task="causal-lm fine-tuning",
        source=f"the OpenFedLLM run at {relative(folder, out_dir)}",
        fm=FMDraft(
            name=Path(model).name if model else None,
            placement="client",
            roles=("initialization",),
            notes=fm_notes,
        ),
        aggregator=agg,
        aggregator_note=agg_note or f"OpenFedLLM fed_alg {alg}",
        rounds=rounds,
        participation_notes=[
            *notes,
            f"{rounds} round(s) in training_loss.npy; num_samples = records trained per round; "
            "weight rebuilt from OpenFedLLM's aggregation rule.",
        ],
        clients=[ClientDraft(id=f"client-{c}") for c in range(clients)],
    )
