"""FMFL-R03: the deployed system prompt against the approved one, and directives injected into it.

The deployed prompt's sha256 is compared with `approved_sha256` (or with the digest of
`approved_path`). When the approved text is available the evidence carries a unified diff
(difflib), and only the lines the diff added are searched for injected directives; otherwise the
whole deployed prompt is. Directive families (insert links or products, mislabel, emit a trigger,
hide or exfiltrate) are data in `rules/jailbreak/system_prompt_directives.yml`.

Severities: injected directives -> critical; digest mismatch alone -> high; no approval info at all
-> medium (the prompt is unpinned), critical when the unpinned prompt holds directives.
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.checkers.probes.hooks import Judge, probe_missing, with_probes
from fmfl_audit.checkers.probes.params import SystemPromptProbeParams
from fmfl_audit.checkers.robustness._common import mask_keep_hosts
from fmfl_audit.checkers.robustness._jailbreak import (
    Reason,
    jailbreak_dir,
    load_signatures,
    scan_signatures,
)
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity
from fmfl_audit.redact import cut_masked

SUBJECT = "fm:system-prompt"


class SystemPromptParams(CheckerParams):
    """Settings of FMFL-R03."""

    directive_files: tuple[Path, ...] = Field(
        default=(), description="Extra directive files (format of rules/jailbreak/*.yml)."
    )
    max_diff_chars: int = Field(default=1500, ge=100, description="Diff evidence length cap.")
    probe: SystemPromptProbeParams = Field(default_factory=SystemPromptProbeParams)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckerError(f"{path}: cannot read system prompt ({exc})") from None


class SystemPromptChecker(Checker):
    """Ensure the deployed system prompt matches the approved one, with no injected directive."""

    id: ClassVar[str] = "FMFL-R03"
    title: ClassVar[str] = "Ensure the deployed system prompt matches the approved one"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "external poisoning"
    inputs: ClassVar[tuple[str, ...]] = ("foundation_model.system_prompt",)
    Params = SystemPromptParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        fm = deployment.manifest.foundation_model
        missing = [] if fm and fm.system_prompt else ["foundation_model.system_prompt"]
        return probe_missing(deployment, missing)

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, SystemPromptParams)
        fm = ctx.deployment.manifest.foundation_model
        # Probe hook: the live FM's answers (fmfl-audit probe), with or without the prompt file.
        own = self._check_file(ctx, params) if fm is not None and fm.system_prompt else None
        return with_probes(ctx, Judge.SYSTEM_PROMPT, params.probe, own)

    def _check_file(self, ctx: CheckContext, params: SystemPromptParams) -> CheckOutput:
        fm = ctx.deployment.manifest.foundation_model
        assert fm is not None and fm.system_prompt is not None
        sp = fm.system_prompt
        files = (jailbreak_dir() / "system_prompt_directives.yml", *params.directive_files)
        sigs = load_signatures(*files)
        deployed = _read(sp.path)
        # The file's bytes are what is pinned: hash them, not the decoded text.
        digest = hashlib.sha256(sp.path.read_bytes()).hexdigest()
        approved_text = _read(sp.approved_path) if sp.approved_path is not None else None
        approved_digest = sp.approved_sha256
        out = CheckOutput()
        if approved_text is not None:
            path_digest = hashlib.sha256(sp.approved_path.read_bytes()).hexdigest()  # type: ignore[union-attr]
            if approved_digest is not None and approved_digest != path_digest:
                out.notes.append(
                    "approved_sha256 does not match approved_path; approved_sha256 is used"
                )
            approved_digest = approved_digest or path_digest
        pinned = approved_digest is not None
        matches = pinned and digest == approved_digest
        display = ctx.display(sp.path)
        if approved_text is not None and not matches:
            diff = list(
                difflib.unified_diff(
                    approved_text.splitlines(),
                    deployed.splitlines(),
                    fromfile=ctx.display(sp.approved_path),  # type: ignore[arg-type]
                    tofile=display,
                    lineterm="",
                    n=1,
                )
            )
            added = _added_lines(diff)
        else:
            diff = []
            added = list(enumerate(deployed.splitlines(), start=1)) if not matches else []
        hits = [(lineno, r) for lineno, line in added for r in scan_signatures(sigs, line)]
        families = sorted({r.family for _, r in hits})
        out.metrics[SUBJECT] = {
            "sha256": digest,
            "approved_sha256": approved_digest,
            "pinned": pinned,
            "matches_approved": matches,
            "lines_added": sum(
                1 for line in diff if line.startswith("+") and not line.startswith("+++")
            ),
            "lines_removed": sum(
                1 for line in diff if line.startswith("-") and not line.startswith("---")
            ),
            "directives": len(hits),
            "directive_families": families,
        }
        if matches:
            return out
        evidence = [
            Evidence(
                location=f"{display}:{lineno}",
                excerpt=f"[{r.family}] "
                + cut_masked(mask_keep_hosts(_line(deployed, lineno)), 200),
            )
            for lineno, r in _first_per_line(hits)[:5]
        ]
        if diff:
            text = mask_keep_hosts("\n".join(diff))
            evidence.append(
                Evidence(location=display, excerpt=cut_masked(text, params.max_diff_chars))
            )
        if hits:
            what = "the lines that differ from the approved prompt" if pinned else "the prompt"
            out.findings.append(
                FindingDraft(
                    subject=SUBJECT,
                    key="injected-directives",
                    severity=Severity.CRITICAL,
                    # Without the approved text, approved lines cannot be told from injected ones.
                    confidence=Confidence.HIGH if diff else Confidence.MEDIUM,
                    message=(
                        f"the deployed system prompt carries {len(hits)} injected directive(s) "
                        f"in {what} ({', '.join(families)})"
                    ),
                    metric=Metric(name="directives", value=len(hits), threshold=0),
                    evidence=tuple(evidence),
                )
            )
        if pinned:
            out.findings.append(
                FindingDraft(
                    subject=SUBJECT,
                    key="digest-mismatch",
                    severity=Severity.HIGH,
                    message=(
                        f"the deployed system prompt (sha256 {digest[:12]}…) differs from the "
                        f"approved one ({approved_digest[:12]}…)"  # type: ignore[index]
                    ),
                    evidence=tuple(evidence[-1:]) if diff else (Evidence(location=display),),
                )
            )
        else:
            out.findings.append(
                FindingDraft(
                    subject=SUBJECT,
                    key="unpinned",
                    severity=Severity.MEDIUM,
                    confidence=Confidence.HIGH,
                    message=(
                        "the system prompt is not pinned: set approved_sha256 or approved_path so "
                        "a changed prompt is caught"
                    ),
                    evidence=(Evidence(location=display),),
                )
            )
        return out


def _added_lines(diff: list[str]) -> list[tuple[int, str]]:
    """(line number in the deployed file, text) of each line a unified diff adds."""
    added: list[tuple[int, str]] = []
    new_line = 0
    for line in diff:
        if line.startswith("@@"):
            # @@ -a,b +c,d @@ : c is the first new-file line of the hunk.
            new_line = int(line.split("+", 1)[1].split(",")[0].split()[0])
        elif line.startswith("+++") or line.startswith("---"):
            continue
        elif line.startswith("+"):
            added.append((new_line, line[1:]))
            new_line += 1
        elif line.startswith(" "):
            new_line += 1
    return added


def _first_per_line(hits: list[tuple[int, Reason]]) -> list[tuple[int, Reason]]:
    seen: set[int] = set()
    out = []
    for lineno, r in hits:
        if lineno not in seen:
            seen.add(lineno)
            out.append((lineno, r))
    return out


def _line(text: str, lineno: int) -> str:
    lines = text.splitlines()
    return lines[lineno - 1] if 0 < lineno <= len(lines) else ""
