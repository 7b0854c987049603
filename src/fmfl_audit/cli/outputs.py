"""Where each report format goes: `--format FORMAT[:PATH]`, checked before any work is done.

Pairing `--format` and `--output` options by position let `-f terminal -f json -o c.json` write the
terminal text into `c.json` without a word. A format now names its own file (`-f json:c.json`);
a lone `--output` is accepted only when exactly one format is asked for, where it cannot be paired
with the wrong one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fmfl_audit.errors import UsageError
from fmfl_audit.report.formats import OutputFormat

STDOUT = "-"

AMBIGUOUS_OUTPUT = (
    "--output is ambiguous with several --format options: give each format its own file as "
    "--format FORMAT:PATH (e.g. -f json:audit.json -f sarif:audit.sarif -f terminal)"
)


@dataclass(frozen=True)
class OutputTarget:
    """One format and its destination (None = standard output)."""

    fmt: OutputFormat
    path: Path | None

    @property
    def to_stdout(self) -> bool:
        """Whether this format is written to standard output."""
        return self.path is None


def parse_format(name: str) -> OutputFormat:
    """The format called `name`; UsageError naming the choices otherwise."""
    try:
        return OutputFormat(name.strip().lower())
    except ValueError:
        known = ", ".join(f.value for f in OutputFormat)
        raise UsageError(f"--format: unknown format {name!r} (choose from {known})") from None


def _path(text: str) -> Path | None:
    return None if text in ("", STDOUT) else Path(text)


def parse_targets(formats: list[str], outputs: list[str]) -> list[OutputTarget]:
    """The output targets of `scan`, or UsageError for anything ambiguous or unwritable."""
    specs = formats or [OutputFormat.TERMINAL.value]
    targets = []
    for spec in specs:
        name, sep, rest = spec.partition(":")
        targets.append(OutputTarget(parse_format(name), _path(rest) if sep else None))
    if outputs:
        if len(outputs) > 1 or len(targets) > 1:
            raise UsageError(AMBIGUOUS_OUTPUT)
        if targets[0].path is not None:
            raise UsageError(f"--format {specs[0]} already names its file; drop --output")
        targets = [OutputTarget(targets[0].fmt, _path(outputs[0]))]
    if sum(1 for t in targets if t.to_stdout) > 1:
        raise UsageError(
            "only one format can go to stdout; give the others a file: --format FORMAT:PATH"
        )
    seen: dict[str, OutputFormat] = {}
    for t in targets:
        if t.path is None:
            continue
        key = os.path.normcase(str(t.path.absolute()))
        if key in seen:
            raise UsageError(f"{t.path}: named for both {seen[key].value} and {t.fmt.value}")
        seen[key] = t.fmt
        check_writable(t.path)
    return targets


def check_writable(path: Path) -> None:
    """UsageError when `path` cannot become a report file (checked before a scan, not after)."""
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; --format FORMAT:PATH needs a file path")
    parent = path.parent
    probe = parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{path}: cannot create it: {probe} is a file")
    if probe.exists() and not os.access(probe, os.W_OK):
        raise UsageError(f"{path}: cannot create it: {probe} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{path}: is not writable")
