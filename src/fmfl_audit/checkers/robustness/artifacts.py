"""FMFL-R04: integrity of every model artifact the manifest names, checked without loading it.

Artifacts: `foundation_model.checkpoint`, `foundation_model.reference_checkpoint`,
`models[].checkpoint` and `clients[].update`.

- Digest pins: `checkpoint.sha256` against `fmfl_audit.inputs.checkpoints.checkpoint_digest`: for a
  single file the sha256 of its bytes; for a folder the sha256 of one line per regular file, sorted
  by POSIX relative path, each `<relative path>\\0<sha256 of the file>\\n` (symbolic links
  rejected). A checkpoint without a pin is a finding (client updates have no pin field: not held to
  one).
- Every file is scanned by content, whatever its name (`_artifact_scan`): pickles of any protocol,
  also inside zip (torch), tar (`.pth.tar`), gzip / bz2 / xz and numpy object arrays, are read
  statically by `fmfl_audit.inputs.pickles` (never unpickled). Imports that run code, touch files or
  the network, or cannot be resolved statically are critical; imports outside the weights
  allowlist and opcode tricks no serializer emits are high; a clean pickle is low (prefer
  safetensors).
- Safetensors headers: offsets contiguous, starting at 0 and ending at the data size, dtypes known,
  shape x dtype size == byte length; parsed with depth and integer-size limits.
- Folders (`fmfl_audit.inputs.checkpoint_safety`): index files mapping weights outside the folder
  (critical) or to pickles (high), symbolic links, configs asking for remote code (`auto_map` in any
  `*config*.json`), Python files anywhere in the tree.
- A file R04 cannot parse (a crafted header, a corrupt archive, a 7z `.bin`) is itself a finding,
  and each file is checked on its own: one hostile file never hides the findings on the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.checkers.robustness._artifact_scan import (
    Hit,
    HitKind,
    ScanLimits,
    safetensors_header_problems,
    scan_file,
)
from fmfl_audit.inputs.checkpoint_safety import (
    CheckpointTree,
    FolderIssue,
    IssueKind,
    display_name,
    folder_issues,
    walk_checkpoint,
)
from fmfl_audit.inputs.checkpoints import checkpoint_digest, file_sha256
from fmfl_audit.inputs.pickles import PickleReport
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Severity


class ArtifactParams(CheckerParams):
    """Settings of FMFL-R04."""

    require_pins: bool = Field(default=True, description="Report checkpoints without sha256.")
    report_pickle_format: bool = Field(
        default=True, description="Report clean pickle-based weights (low): prefer safetensors."
    )
    max_archive_depth: int = Field(
        default=4, ge=1, le=16, description="Archives nested deeper are reported as unscannable."
    )
    max_scan_mib: int = Field(
        default=4096, ge=1, description="Bytes read (decompressed) per file before giving up."
    )


@dataclass(frozen=True)
class Artifact:
    """One artifact to check: its subject, path and pinned digest (None when unpinned)."""

    subject: str
    path: Path
    sha256: str | None
    pinnable: bool


def artifacts(deployment: Deployment) -> list[Artifact]:
    """Every artifact of the manifest, in manifest order."""
    m = deployment.manifest
    out = []
    if m.foundation_model is not None:
        for subject, ck in (
            ("fm", m.foundation_model.checkpoint),
            ("fm:reference", m.foundation_model.reference_checkpoint),
        ):
            if ck is not None:
                out.append(Artifact(subject, ck.path, ck.sha256, True))
    for model in m.models:
        if model.checkpoint is not None:
            out.append(
                Artifact(model.subject, model.checkpoint.path, model.checkpoint.sha256, True)
            )
    for c in m.clients:
        if c.update is not None:
            out.append(Artifact(f"{c.subject}:update", c.update, None, False))
    return out


def safetensors_problems(path: Path) -> list[str]:
    """What is wrong with a safetensors file's header; empty when it is consistent."""
    with path.open("rb") as fh:
        return safetensors_header_problems(fh, path.stat().st_size)


_INDEX_SEVERITY = {
    IssueKind.INDEX_ESCAPE: Severity.CRITICAL,
    IssueKind.INDEX_NOT_SAFETENSORS: Severity.HIGH,
    IssueKind.INDEX_INVALID: Severity.HIGH,
    IssueKind.INDEX_MISSING: Severity.MEDIUM,
}
_ISSUE_FINDING = {
    # kind: (key prefix, severity)
    IssueKind.SYMLINK_OUT: ("symlink", Severity.CRITICAL),
    IssueKind.SYMLINK: ("symlink", Severity.HIGH),
    IssueKind.PATH_ESCAPE: ("path-escape", Severity.HIGH),
    IssueKind.CONFIG_INVALID: ("unparsable", Severity.HIGH),
    IssueKind.UNREADABLE: ("unreadable", Severity.HIGH),
    IssueKind.SPECIAL_FILE: ("special-file", Severity.MEDIUM),
    IssueKind.FILE_NAME: ("file-name", Severity.MEDIUM),
}


def _names(report: PickleReport, dangerous: bool) -> str:
    imports = report.dangerous if dangerous else report.unknown
    names = [i.dotted for i in imports]
    return ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")


@dataclass
class _Findings:
    """Findings of one artifact, one per key (the first wins), plus the figures for metrics."""

    subject: str
    drafts: dict[str, FindingDraft] = field(default_factory=dict)
    pickle_files: set[str] = field(default_factory=set)
    unscanned_files: set[str] = field(default_factory=set)
    safetensors_files: int = 0
    dangerous_imports: int = 0

    def add(
        self,
        key: str,
        severity: Severity,
        message: str,
        evidence: Iterable[Evidence],
        confidence: Confidence = Confidence.HIGH,
    ) -> None:
        self.drafts.setdefault(
            key,
            FindingDraft(
                subject=self.subject,
                key=key,
                severity=severity,
                confidence=confidence,
                message=message,
                evidence=tuple(evidence),
            ),
        )

    def pickle(self, hit: Hit, loc: str, top: str) -> bool:
        """Findings for one pickle stream; True when it is clean."""
        report = hit.pickle
        assert report is not None
        self.pickle_files.add(top)
        self.dangerous_imports += len(report.dangerous)
        extra = [Evidence(location=loc, excerpt=a) for a in report.anomalies[:2]]
        if report.error:
            extra.append(Evidence(location=loc, excerpt=f"parse stopped: {report.error}"))
        what = f"pickle {loc}" + (f" ({hit.detail})" if hit.detail else "")
        if report.dangerous:
            names = _names(report, dangerous=True)
            self.add(
                f"unsafe-pickle:{hit.where}",
                Severity.CRITICAL,
                f"{what} imports callables that run code or cannot be resolved ({names}): "
                "loading it would execute them",
                [Evidence(location=loc, excerpt=f"imports: {names}"), *extra],
            )
        elif report.unknown or report.anomalies:
            names = _names(report, dangerous=False) or "; ".join(report.anomalies[:2])
            self.add(
                f"suspicious-pickle:{hit.where}",
                Severity.HIGH,
                f"{what} imports callables outside the weights allowlist or uses opcode "
                f"constructs no serializer emits ({names})",
                [Evidence(location=loc, excerpt=f"imports: {names}"), *extra],
                Confidence.MEDIUM,
            )
        elif report.error:
            self.add(
                f"unscannable-pickle:{hit.where}",
                Severity.HIGH,
                f"{what} could not be read to the end ({report.error}); treat it as unsafe",
                extra,
                Confidence.MEDIUM,
            )
        else:
            return True
        return False

    def unreadable(self, hit: Hit, loc: str, top: str) -> None:
        self.unscanned_files.add(top)
        parse = hit.kind == HitKind.UNPARSABLE
        self.add(
            f"{'unparsable' if parse else 'unscannable'}:{hit.where}",
            Severity.HIGH,
            (f"cannot parse {loc}" if parse else f"cannot scan {loc}")
            + f": {hit.detail}; R04 cannot tell what loading it would do",
            [Evidence(location=loc, excerpt=hit.detail[:300])],
            Confidence.MEDIUM,
        )


def _file_findings(
    acc: _Findings,
    hits: list[Hit],
    top: str,
    loc_of: Callable[[str], str],
    params: ArtifactParams,
) -> None:
    clean_pickle = False
    dirty = False
    for hit in hits:
        loc = loc_of(hit.where)
        if hit.kind == HitKind.PICKLE:
            ok = acc.pickle(hit, loc, top)
            clean_pickle |= ok
            dirty |= not ok
        elif hit.kind == HitKind.SAFETENSORS:
            acc.safetensors_files += 1
            if hit.problems:
                p = hit.problems
                acc.add(
                    f"safetensors:{hit.where}",
                    Severity.HIGH,
                    f"malformed safetensors header in {loc}: {p[0]}"
                    + (f" (+{len(p) - 1} more)" if len(p) > 1 else ""),
                    [Evidence(location=loc, excerpt=x) for x in p[:3]],
                )
        else:
            acc.unreadable(hit, loc, top)
    if clean_pickle and not dirty and params.report_pickle_format:
        acc.add(
            f"pickle-format:{top}",
            Severity.LOW,
            f"{loc_of(top)} is a pickle-based weights file; convert it to safetensors",
            [Evidence(location=loc_of(top))],
        )


def _issue_findings(acc: _Findings, issues: list[FolderIssue], display: str) -> None:
    remote = [i for i in issues if i.kind in (IssueKind.REMOTE_CODE, IssueKind.PYTHON_FILE)]
    if remote:
        acc.add(
            "remote-code",
            Severity.HIGH,
            f"checkpoint {display} needs or ships code to load "
            f"({'; '.join(i.message for i in remote[:5])})",
            [Evidence(location=f"{display}/{i.where}", excerpt=i.message) for i in remote[:5]],
        )
    by_index: dict[str, list[FolderIssue]] = {}
    for issue in issues:
        if issue.kind in _INDEX_SEVERITY:
            by_index.setdefault(issue.where, []).append(issue)
        elif issue.kind in _ISSUE_FINDING:
            prefix, severity = _ISSUE_FINDING[issue.kind]
            loc = f"{display}/{issue.where}"
            acc.add(f"{prefix}:{issue.where}", severity, issue.message, [Evidence(location=loc)])
    for where, found in by_index.items():
        worst = max(found, key=lambda i: _INDEX_SEVERITY[i.kind].rank)
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        acc.add(
            f"index:{where}",
            _INDEX_SEVERITY[worst.kind],
            f"{worst.message}{more}: a loader following this index reads files the audit did "
            "not cover",
            [Evidence(location=f"{display}/{where}", excerpt=i.message) for i in found[:3]],
        )


def _folder_digest(tree: CheckpointTree) -> str | None:
    """The documented digest, or None when the folder holds links or special files."""
    if tree.symlinks or tree.special or tree.unreadable:
        return None
    try:
        return checkpoint_digest(tree.root)
    except OSError:
        return None


class ArtifactIntegrityChecker(Checker):
    """Ensure model artifacts are pinned and safe to load."""

    id: ClassVar[str] = "FMFL-R04"
    title: ClassVar[str] = "Ensure model artifacts are pinned and safe to load"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "external poisoning, supply chain"
    inputs: ClassVar[tuple[str, ...]] = ("every checkpoint",)
    Params = ArtifactParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return [] if artifacts(deployment) else ["checkpoints (foundation_model, models, updates)"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, ArtifactParams)
        out = CheckOutput(
            notes=[
                "pickles read statically by a symbolic unpickler over pickletools opcodes "
                "(allowlist of weights callables); zip, tar, gzip/bz2/xz and npy opened"
            ]
        )
        items = artifacts(ctx.deployment)
        ctx.progress.set_total(len(items))
        for art in items:
            self._check(ctx, params, art, out)
            ctx.progress.advance()
        return out

    def _check(
        self, ctx: CheckContext, params: ArtifactParams, art: Artifact, out: CheckOutput
    ) -> None:
        display = display_name(ctx.display(art.path))
        acc = _Findings(art.subject)
        limits = ScanLimits(max_depth=params.max_archive_depth, max_bytes=params.max_scan_mib << 20)
        if art.path.is_file():
            digest, n_files = self._single(acc, art.path, display, limits, params)
        elif art.path.is_dir():
            digest, n_files = self._folder(acc, art.path, display, limits, params)
        else:
            what = "not a regular file or folder" if art.path.exists() else "not found"
            acc.add(
                "unreadable",
                Severity.HIGH,
                f"artifact {display} cannot be checked: {what}",
                [Evidence(location=display)],
            )
            out.findings.extend(acc.drafts.values())
            return
        self._pin(acc, art, display, digest, params)
        out.findings.extend(acc.drafts.values())
        out.metrics[art.subject] = {
            "path": display,
            "files": n_files,
            "pickle_files": len(acc.pickle_files),
            "safetensors_files": acc.safetensors_files,
            "unscanned_files": len(acc.unscanned_files),
            "sha256": digest,
            "pinned": art.sha256 is not None,
            "digest_matches": None if art.sha256 is None else art.sha256 == digest,
            "dangerous_imports": acc.dangerous_imports,
        }

    def _single(
        self, acc: _Findings, path: Path, display: str, limits: ScanLimits, params: ArtifactParams
    ) -> tuple[str | None, int]:
        name = display_name(path.name)

        def loc_of(where: str) -> str:
            return display + where[len(name) :]

        _file_findings(acc, scan_file(path, name, limits), name, loc_of, params)
        try:
            return file_sha256(path), 1
        except OSError:
            return None, 1

    def _folder(
        self, acc: _Findings, root: Path, display: str, limits: ScanLimits, params: ArtifactParams
    ) -> tuple[str | None, int]:
        tree = walk_checkpoint(root)

        def loc_of(where: str) -> str:
            return f"{display}/{where}"

        for f in tree.files:
            rel = display_name(tree.rel(f))
            _file_findings(acc, scan_file(f, rel, limits), rel, loc_of, params)
        _issue_findings(acc, folder_issues(tree), display)
        return _folder_digest(tree), len(tree.files)

    def _pin(
        self,
        acc: _Findings,
        art: Artifact,
        display: str,
        digest: str | None,
        params: ArtifactParams,
    ) -> None:
        if art.sha256 is not None and art.sha256 != digest:
            found = (
                f"found {digest[:12]}…" if digest else "the folder has links or unreadable files"
            )
            acc.add(
                "digest-mismatch",
                Severity.HIGH,
                f"checkpoint {display} does not match its pinned digest (pinned "
                f"{art.sha256[:12]}…, {found})",
                [Evidence(location=display)],
            )
        elif art.sha256 is None and art.pinnable and params.require_pins:
            acc.add(
                "unpinned",
                Severity.MEDIUM,
                f"checkpoint {display} has no sha256 pin; a swapped artifact would go unseen",
                [Evidence(location=display, excerpt=f"sha256: {digest}")],
            )
