"""Write a commented starter manifest and a participation log, shared by every capture path.

The Flower recorder, `fmfl-audit init` and the `import` commands all fill a `ManifestDraft` with
what they found and render it here. What only the operator knows (the FM checkpoint, its system
prompt, evaluation data, tiers) is written as commented-out keys marked `FILL IN`, so the file
validates as written and says what to add; with no client found, one placeholder client is
written for the operator to replace (a manifest needs at least one). Every manifest is loaded with
`load_manifest` before it replaces the target file, so a draft that does not validate leaves nothing
behind.

PyYAML cannot write comments, so the YAML is emitted here by hand; values go through
`yaml.safe_dump` (flow style) so quoting is PyYAML's, and the result is parsed back to check it.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fmfl_audit.errors import FmflAuditError, ManifestError, UsageError

FILL_IN = "FILL IN"
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_.\-]")
PLACEHOLDER_CLIENT = "client-1"
"""The id of the one client written when none was found (a manifest needs at least one)."""
AGGREGATORS = ("fedavg", "fedprox", "krum", "multi-krum", "trimmed-mean", "median", "norm-clipping")


class ManifestExistsError(UsageError):
    """The target manifest exists and overwriting was not asked for."""


@dataclass(frozen=True)
class Comment:
    """A full comment line (may hold a commented-out key the user can enable)."""

    text: str


@dataclass(frozen=True)
class Key:
    """A YAML key: a flow value, a nested block (`children`) or a list of blocks (`items`)."""

    name: str
    value: Any = None
    children: tuple[Node, ...] | None = None
    items: tuple[tuple[Node, ...], ...] | None = None
    note: str | None = None


Node = Key | Comment


def flow(value: Any) -> str:
    """One value as a single line of YAML (PyYAML's quoting, flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False)
    return text.removesuffix("...\n").strip()


def render(nodes: Sequence[Node], indent: int = 0) -> list[str]:
    """YAML lines for `nodes` at `indent` spaces."""
    pad = " " * indent
    lines: list[str] = []
    for node in nodes:
        if isinstance(node, Comment):
            lines += [f"{pad}# {t}".rstrip() for t in node.text.splitlines()]
            continue
        note = f"  # {node.note}" if node.note else ""
        if node.children is not None:
            lines.append(f"{pad}{node.name}:{note}")
            lines += render(node.children, indent + 2)
        elif node.items is not None:
            lines.append(f"{pad}{node.name}:{note}")
            for item in node.items:
                body = render(item, indent + 4)
                first = next(i for i, line in enumerate(body) if not line.lstrip().startswith("#"))
                lines += body[:first]
                lines.append(f"{pad}  - {body[first][indent + 4 :]}")
                lines += body[first + 1 :]
        else:
            lines.append(f"{pad}{node.name}: {flow(node.value)}{note}")
    return lines


@dataclass
class ClientDraft:
    """One client: its id, resources when known, and its files (manifest key -> path)."""

    id: str
    tier: str | None = None
    fm_access: str | None = None
    files: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class FMDraft:
    """What is known about the foundation model; None fields become FILL IN comments."""

    name: str | None = None
    placement: str | None = None
    roles: tuple[str, ...] = ()
    checkpoint: str | None = None
    reference_checkpoint: str | None = None
    system_prompt: str | None = None
    teacher_predictions: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ModelDraft:
    """An FL model found on disk: a checkpoint, or a predictions file (kind `predictions`)."""

    name: str
    kind: str
    checkpoint: str | None = None
    predictions: str | None = None


@dataclass
class ManifestDraft:
    """Everything a capture path found, rendered by `to_yaml`."""

    name: str
    source: str
    task: str | None = None
    fm: FMDraft = field(default_factory=FMDraft)
    aggregator: str | None = None
    aggregator_note: str | None = None
    rounds: int | None = None
    differential_privacy: dict[str, Any] | None = None
    privacy_notes: list[str] = field(default_factory=list)
    secure_aggregation: bool | None = None
    participation_log: str | None = None
    participation_notes: list[str] = field(default_factory=list)
    clients: list[ClientDraft] = field(default_factory=list)
    models: list[ModelDraft] = field(default_factory=list)
    evaluation: str | None = None
    header: list[str] = field(default_factory=list)

    def unfilled(self) -> list[str]:
        """What the operator still has to fill in, one line each."""
        out = []
        if self.fm.name is None:
            out.append("foundation_model: which FM the federation uses (name, placement, roles)")
        if self.fm.checkpoint is None:
            out.append("foundation_model.checkpoint: the FM checkpoint folder and its sha256")
        if self.fm.system_prompt is None:
            out.append("foundation_model.system_prompt: the deployed system prompt (if any)")
        if self.evaluation is None:
            out.append("evaluation: labelled evaluation data with sensitive features")
        if self.aggregator is None:
            out.append("federation.aggregator: not recognised; defaults to fedavg")
        if self.differential_privacy is None and self.privacy_notes:
            out.append("federation.differential_privacy: DP seen but its epsilon is unknown")
        untiered = [c.id for c in self.clients if c.tier is None]
        if untiered:
            out.append(f"clients[].resources: tier and FM access of {len(untiered)} client(s)")
        if not self.clients:
            out.append(
                f"clients: no client found; replace the placeholder {PLACEHOLDER_CLIENT!r} with "
                "your clients and their data files"
            )
        return out

    def to_yaml(self) -> str:
        """The manifest text."""
        nodes: list[Node] = [Comment(t) for t in self.header]
        nodes += [Comment(f"Written by fmfl-audit from {self.source}."), Key("version", 1)]
        dep: list[Node] = [Key("name", self.name)]
        dep.append(
            Key("task", self.task)
            if self.task
            else Comment(f"task: text-classification  # {FILL_IN}: the FL task")
        )
        nodes.append(Key("deployment", children=tuple(dep)))
        nodes += self._fm_nodes()
        nodes.append(Key("federation", children=tuple(self._federation_nodes())))
        nodes.append(self._clients_node())
        nodes += self._model_nodes()
        if self.evaluation:
            nodes.append(Key("evaluation", children=(Key("data", self.evaluation),)))
        else:
            nodes.append(
                Comment(
                    f"evaluation: {{data: eval.jsonl, text_field: text, label_field: label, "
                    f"sensitive_features: [gender]}}  # {FILL_IN}: labelled evaluation data "
                    "(FMFL-F03/F04/R07)"
                )
            )
        return "\n".join(render(nodes)) + "\n"

    def _fm_nodes(self) -> list[Node]:
        fm = self.fm
        notes = [Comment(n) for n in fm.notes]
        ckpt_hint = f"{FILL_IN}: the FM checkpoint folder, pinned by sha256 (FMFL-R04/R05)"
        body: list[Node] = [Key("name", fm.name or "unknown-fm")]
        body.append(Key("placement", fm.placement or "server"))
        if fm.roles:
            body.append(Key("roles", list(fm.roles)))
        else:
            body.append(Comment(f"roles: [synthetic-data]  # {FILL_IN}: what the FM does"))
        body.append(
            Key("checkpoint", {"path": fm.checkpoint})
            if fm.checkpoint
            else Comment(f"checkpoint: {{path: fm/, sha256: ...}}  # {ckpt_hint}")
        )
        if fm.reference_checkpoint:
            body.append(Key("reference_checkpoint", {"path": fm.reference_checkpoint}))
        else:
            body.append(
                Comment(
                    f"reference_checkpoint: {{path: fm-reference/}}  # {FILL_IN}: published base"
                )
            )
        if fm.system_prompt:
            body.append(
                Key(
                    "system_prompt",
                    {"path": fm.system_prompt},
                    note=f"{FILL_IN}: add approved_sha256 or approved_path (FMFL-R03)",
                )
            )
        else:
            body.append(
                Comment(
                    f"system_prompt: {{path: fm/system_prompt.txt, approved_sha256: ...}}  "
                    f"# {FILL_IN}: the deployed system prompt"
                )
            )
        if fm.teacher_predictions:
            body.append(Key("teacher_predictions", fm.teacher_predictions))
        body.append(
            Comment(f"provider: {{name: ..., third_party: false}}  # {FILL_IN}: who runs the FM")
        )
        if fm.name is None:
            # An invented FM would make R11/P08 grade something nobody declared: leave it out.
            lines = render([Key("foundation_model", children=tuple(body))])
            return [
                *notes,
                Comment(f"{FILL_IN}: the foundation model is unknown to the capture; describe it:"),
                *(Comment(line) for line in lines),
            ]
        return [*notes, Key("foundation_model", children=tuple(body))]

    def _federation_nodes(self) -> list[Node]:
        out: list[Node] = []
        if self.aggregator in AGGREGATORS:
            out.append(Key("aggregator", self.aggregator, note=self.aggregator_note))
        else:
            out.append(
                Comment(
                    f"aggregator: fedavg  # {FILL_IN}: "
                    + (self.aggregator_note or "the aggregation rule was not recognised")
                )
            )
        if self.rounds:
            out.append(Key("rounds", self.rounds))
        out += [Comment(n) for n in self.privacy_notes]
        if self.differential_privacy is not None:
            out.append(Key("differential_privacy", self.differential_privacy))
        else:
            out.append(
                Key(
                    "differential_privacy",
                    None,
                    note=f"{FILL_IN} if DP is used: {{epsilon: ..., delta: ...}}",
                )
            )
        out.append(Key("secure_aggregation", bool(self.secure_aggregation)))
        out += [Comment(n) for n in self.participation_notes]
        if self.participation_log:
            out.append(Key("participation_log", self.participation_log))
        return out

    def _clients_node(self) -> Key:
        if not self.clients:
            # The manifest needs at least one client; a placeholder the user must edit keeps the
            # draft valid (README: `init`'s output passes `validate`) and shows where data goes.
            placeholder = (
                Key("id", PLACEHOLDER_CLIENT, note=f"{FILL_IN}: the client's id"),
                Comment(f"resources: {{tier: constrained, fm_access: shared-api}}  # {FILL_IN}"),
                Comment(
                    f"synthetic_data: clients/{PLACEHOLDER_CLIENT}/synthetic.jsonl  # {FILL_IN}"
                ),
                Comment(f"prompts: clients/{PLACEHOLDER_CLIENT}/prompts.jsonl  # {FILL_IN}"),
            )
            note = f"{FILL_IN}: no client folder was recognised; one entry per client"
            return Key("clients", items=(placeholder,), note=note)
        items = []
        for c in self.clients:
            body: list[Node] = [Key("id", c.id), *(Comment(n) for n in c.notes)]
            if c.tier or c.fm_access:
                res = {"tier": c.tier or "constrained", "fm_access": c.fm_access or "shared-api"}
                body.append(Key("resources", res))
            else:
                body.append(
                    Comment(f"resources: {{tier: constrained, fm_access: shared-api}}  # {FILL_IN}")
                )
            body += [Key(k, v) for k, v in c.files.items()]
            items.append(tuple(body))
        return Key("clients", items=tuple(items))

    def _model_nodes(self) -> list[Node]:
        if not self.models:
            return []
        items = []
        for m in self.models:
            body: list[Node] = [Key("name", m.name), Key("kind", m.kind)]
            if m.checkpoint:
                body.append(Key("checkpoint", {"path": m.checkpoint}))
            if m.predictions:
                body.append(
                    Key(
                        "predictions",
                        {"path": m.predictions},
                        note=f"{FILL_IN}: sensitive_features: [...] (FMFL-F03)",
                    )
                )
            items.append(tuple(body))
        return [Key("models", items=tuple(items))]


def safe_client_id(text: str) -> str:
    """A client id the manifest accepts (letters, digits, `_.-`) and a file name can hold."""
    cleaned = _UNSAFE_ID.sub("-", text.strip())[:128]
    return cleaned if cleaned[:1].isalnum() else f"c{cleaned}"


def relative(path: Path, base: Path) -> str:
    """`path` relative to `base` (POSIX), or absolute when on another drive."""
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def write_text_atomic(
    path: Path, text: str, *, check: Callable[[Path], object] | None = None
) -> None:
    """Write `text` to `path` through a temporary file in the same folder.

    `check(temporary_path)` runs before the rename: when it raises, `path` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if check is not None:
            check(Path(tmp))
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(draft: ManifestDraft, path: Path, *, force: bool = False) -> Path:
    """Render `draft` to `path`, validated before it replaces anything: a draft that does not
    load raises (naming `path`) and leaves no file behind. Refuses to overwrite unless `force`."""
    from fmfl_audit.manifest import load_manifest

    if path.exists() and not force:
        raise ManifestExistsError(f"{path} exists; use --force to overwrite it")

    def check(tmp: Path) -> None:
        try:
            load_manifest(tmp)
        except FmflAuditError as exc:
            raise ManifestError(str(exc).replace(str(tmp), str(path))) from None

    write_text_atomic(path, draft.to_yaml(), check=check)
    return path


@dataclass(frozen=True)
class ParticipationRow:
    """One client in one round: samples it trained on and the aggregation weight it got."""

    round: int | str
    client_id: str
    num_samples: float | None = None
    weight: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def write_participation_log(path: Path, rows: Iterable[ParticipationRow]) -> tuple[int, bool]:
    """Write the log as CSV (round, client_id, num_samples, weight, extra columns).

    The weight column is written only when every row has one: the F06/F07 checkers read it for
    every row once present, so a partial column would read as bad values. Returns (rows, whether
    the weight column was written).
    """
    rows = list(rows)
    with_weight = bool(rows) and all(r.weight is not None for r in rows)
    with_samples = any(r.num_samples is not None for r in rows)
    extra: list[str] = []
    for r in rows:
        extra += [k for k in r.extra if k not in extra]
    header = ["round", "client_id"]
    header += ["num_samples"] if with_samples else []
    header += ["weight"] if with_weight else []
    header += extra
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in rows:
            line: list[Any] = [r.round, r.client_id]
            line += [_num(r.num_samples)] if with_samples else []
            line += [_num(r.weight)] if with_weight else []
            line += [r.extra.get(k, "") for k in extra]
            writer.writerow(line)
    return len(rows), with_weight


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))
