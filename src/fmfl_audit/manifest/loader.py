"""Load and validate a manifest file into a `Deployment`, with located error messages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from fmfl_audit._pydantic_errors import located_messages
from fmfl_audit.errors import ManifestError
from fmfl_audit.manifest.model import Manifest, StrictModel, Waiver
from fmfl_audit.yamlpos import YamlLocatedError, load_located, read_text


@dataclass(frozen=True)
class Deployment:
    """A validated manifest plus where it came from. Paths inside are absolute."""

    manifest: Manifest
    path: Path
    base_dir: Path
    sha256: str

    def display_path(self, path: Path) -> str:
        """`path` relative to the manifest's folder when inside it (stable across machines)."""
        try:
            return path.resolve().relative_to(self.base_dir.resolve()).as_posix()
        except ValueError:
            return path.as_posix()


def _read(path: Path, error: type[Exception]) -> str:
    try:
        return read_text(path)
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None


def validate_yaml_text(
    text: str,
    *,
    source: Path,
    model: type[BaseModel],
    base_dir: Path,
    check_files: bool,
    error: type[Exception],
    what: str,
) -> BaseModel:
    """Parse `text` as YAML and validate it as `model`, raising `error` with located messages."""
    try:
        located = load_located(text)
    except YamlLocatedError as exc:
        pos = exc.position
        where = f"{source}:{pos.line}:{pos.column}" if pos else str(source)
        raise error(f"{where}: {exc.message}") from None
    if not isinstance(located.data, dict):
        kind = "empty" if located.data is None else type(located.data).__name__
        raise error(f"{source}:1:1: expected a mapping at the top of the {what}, found {kind}")
    try:
        return model.model_validate(
            located.data, context={"base_dir": base_dir, "check_files": check_files}
        )
    except ValidationError as exc:
        lines = located_messages(exc, located, source, model)
        raise error("\n".join(lines)) from None
    except RecursionError:
        raise error(f"{source}: {what} is nested too deeply") from None


def load_manifest(path: str | Path, *, check_files: bool = True) -> Deployment:
    """Read, validate and resolve a manifest. Raises `ManifestError` with located messages."""
    p = Path(path)
    text = _read(p, ManifestError)
    manifest = validate_yaml_text(
        text,
        source=p,
        model=Manifest,
        base_dir=p.parent,
        check_files=check_files,
        error=ManifestError,
        what="manifest",
    )
    assert isinstance(manifest, Manifest)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Deployment(manifest=manifest, path=p, base_dir=p.parent, sha256=digest)


class _WaiverFile(StrictModel):
    waivers: tuple[Waiver, ...]


def load_waivers(path: Path) -> tuple[Waiver, ...]:
    """Waivers from a separate YAML file (`waivers: [...]`)."""
    text = _read(path, ManifestError)
    parsed = validate_yaml_text(
        text,
        source=path,
        model=_WaiverFile,
        base_dir=path.parent,
        check_files=False,
        error=ManifestError,
        what="waivers file",
    )
    assert isinstance(parsed, _WaiverFile)
    return parsed.waivers
