"""`fmfl-audit import FRAMEWORK RUN_DIR`: read another framework's run folder, write our inputs.

Each importer reads what its framework leaves on disk (never executing or unpickling anything),
writes a participation log (and updates where the framework saves them) and a starter manifest
into an output folder, and lists what the run folder cannot tell. The run folder is only read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmfl_audit.errors import InputError

if TYPE_CHECKING:  # the CLI imports this module for `--help`; keep YAML and the writers out
    from fmfl_audit.integrations.scaffold import ManifestDraft, ParticipationRow


@dataclass
class ImportResult:
    """What an importer wrote and what it could not recover."""

    manifest: Path
    written: list[Path] = field(default_factory=list)
    unrecoverable: list[str] = field(default_factory=list)
    unfilled: list[str] = field(default_factory=list)


class Framework(str, Enum):
    """Frameworks `fmfl-audit import` reads."""

    nvflare = "nvflare"
    openfedllm = "openfedllm"


def importer(framework: Framework) -> Callable[..., ImportResult]:
    """The import function of a framework."""
    if framework is Framework.nvflare:
        from fmfl_audit.integrations.nvflare import import_run

        return import_run
    if framework is Framework.openfedllm:
        from fmfl_audit.integrations.openfedllm import import_run as ofl_import

        return ofl_import
    raise AssertionError(framework)  # pragma: no cover - the enum is exhaustive


def write_import(
    out_dir: Path,
    rows: list[ParticipationRow],
    draft: ManifestDraft,
    cannot: list[str],
    *,
    force: bool,
) -> ImportResult:
    """Write the participation log and the manifest into `out_dir` (checked for an existing
    manifest first, so a refused import writes nothing)."""
    from fmfl_audit.integrations.scaffold import (
        ManifestExistsError,
        write_manifest,
        write_participation_log,
    )

    manifest = out_dir / "manifest.yaml"
    if manifest.exists() and not force:
        raise ManifestExistsError(f"{manifest} exists; use --force to overwrite it")
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "participation.csv"
    write_participation_log(log_path, rows)
    draft.participation_log = log_path.name
    write_manifest(draft, manifest, force=True)
    return ImportResult(
        manifest=manifest,
        written=[log_path, manifest],
        unrecoverable=list(cannot),
        unfilled=draft.unfilled(),
    )


def read_json(path: Path) -> Any:
    """A JSON file, or InputError naming the file and the problem."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None


def find_unique(run_dir: Path, pattern: str, what: str, max_depth: int = 5) -> Path:
    """The one file matching `pattern` (a relative glob) under `run_dir`, searched breadth-first
    up to `max_depth` folders down; InputError when there is none or more than one."""
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a folder")
    for depth in range(max_depth + 1):
        prefix = "*/" * depth
        found = sorted(p for p in run_dir.glob(prefix + pattern) if p.is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            listed = "\n  ".join(str(p.relative_to(run_dir)) for p in found[:10])
            raise InputError(
                f"{run_dir}: {len(found)} {what} found; point at one run's folder:\n  {listed}"
            )
    raise InputError(f"{run_dir}: no {what} ({pattern}) found")
