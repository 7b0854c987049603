"""`fmfl-audit redact`: write redacted copies of a deployment's data dumps to a new folder.

For every client's synthetic data (and, on request, prompts and the FM's teacher outputs) the
text of each record is scanned with the scan's own detectors, set up from the effective rule pack
(PII as FMFL-P01, secrets as FMFL-P02, declared canaries, cross-client leaked spans as FMFL-P06; see
`_detect`) and every span is replaced by a typed placeholder (`<EMAIL_ADDRESS>`, `<AWS_ACCESS_KEY>`,
`<CANARY>`, `<LEAKED_SPAN>`). The copies keep the format, the record order and every other field
(`_files`). Next to them go a `manifest.yaml` that points at the copies (so the copy can be scanned
like the original) and `redaction-summary.json` (counts per file and placeholder type, never a raw
value).

The inputs are never written: the output folder must be new or empty (or `force`), must not be
an input or lie inside one, and must not hold one; each copy is written to a temporary name and
renamed into place.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fmfl_audit._version import __version__
from fmfl_audit.checkers.base import CheckContext, CheckOutput
from fmfl_audit.errors import RulePackError, UsageError
from fmfl_audit.inputs.records import ReadStats, iter_records
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import InputIssue
from fmfl_audit.remediation._detect import CanaryMatcher, Detectors, LeakProbe, PiiConfig, Redactor
from fmfl_audit.remediation._files import FileJob, FileTally, redact_file
from fmfl_audit.remediation._manifest_copy import relocate, write_manifest_copy
from fmfl_audit.rulepacks.loader import RuleSet

SUMMARY_FILE = "redaction-summary.json"
MANIFEST_FILE = "manifest.yaml"
DEFAULT_OUT = "redacted"
"""Default output folder, inside the manifest's folder."""
OUTSIDE = "_outside"
"""Where copies of inputs that lie outside the manifest's folder go (inside the output folder)."""


class RedactTarget(str, enum.Enum):
    """Which data `redact` rewrites."""

    SYNTHETIC = "synthetic"
    """Every client's synthetic data (leaked spans included)."""
    PROMPTS = "prompts"
    """Every client's prompts."""
    ALL = "all"
    """Synthetic data, prompts and the FM's teacher outputs."""


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSummary(_Out):
    """What `redact` did to one file."""

    source: str = Field(description="The input, relative to the manifest's folder when inside.")
    output: str = Field(description="The copy, relative to the output folder.")
    role: str = Field(description="synthetic_data, prompts or teacher_predictions.")
    subject: str = Field(description="`client:ID` or `fm`.")
    format: str
    records: int = Field(description="Records in the file (blank lines aside).")
    records_redacted: int = Field(description="Records with at least one replacement.")
    records_without_text: int = Field(default=0, description="Teacher outputs without text.")
    not_checked: int = Field(description="Records copied unchanged because they are malformed.")
    not_checked_issues: tuple[InputIssue, ...] = Field(description="The first few, with reasons.")
    replaced: dict[str, int] = Field(description="Placeholders inserted, by type.")


class RedactionSummary(_Out):
    """The outcome of one `redact` run (written as `redaction-summary.json`)."""

    tool: str = "fmfl-audit"
    version: str = __version__
    manifest: str = Field(description="The input manifest.")
    out_dir: str
    manifest_copy: str = Field(description="The manifest that points at the copies.")
    target: RedactTarget
    engine: str = Field(description="The Presidio NLP engine that ran.")
    detectors: tuple[str, ...] = Field(description="What was looked for.")
    files: tuple[FileSummary, ...]
    replaced: dict[str, int] = Field(description="Placeholders inserted over all files.")
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Job:
    file: FileJob
    role: str
    subject: str
    leak_owner: str | None


def plan_jobs(deployment: Deployment, target: RedactTarget) -> list[_Job]:
    """The files to redact, in manifest order (a file named twice is redacted once)."""
    jobs: list[_Job] = []
    want_synth = target in (RedactTarget.SYNTHETIC, RedactTarget.ALL)
    want_prompts = target in (RedactTarget.PROMPTS, RedactTarget.ALL)
    for c in deployment.manifest.clients:
        if want_synth and c.synthetic_data is not None:
            jobs.append(_job(deployment, c.synthetic_data, "synthetic_data", c.subject, c.id))
        if want_prompts and c.prompts is not None:
            jobs.append(_job(deployment, c.prompts, "prompts", c.subject, None))
    fm = deployment.manifest.foundation_model
    if target is RedactTarget.ALL and fm is not None and fm.teacher_predictions is not None:
        jobs.append(_job(deployment, fm.teacher_predictions, "teacher_predictions", "fm", None))
    seen: set[Path] = set()
    unique = []
    for job in jobs:
        key = job.file.source.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(job)
    return unique


def _job(d: Deployment, src: DataSource, role: str, subject: str, owner: str | None) -> _Job:
    optional = role == "teacher_predictions"
    file = FileJob(source=src, display=d.display_path(src.path), text_optional=optional)
    return _Job(file=file, role=role, subject=subject, leak_owner=owner)


def input_paths(deployment: Deployment) -> list[Path]:
    """Every path the manifest names, and the manifest itself."""
    return [deployment.path, *_paths_in(deployment.manifest)]


def _paths_in(obj: Any) -> Iterator[Path]:
    if isinstance(obj, Path):
        yield obj
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _paths_in(getattr(obj, name))
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _paths_in(v)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _paths_in(v)


def check_out_dir(out_dir: Path, inputs: Sequence[Path], *, force: bool) -> None:
    """UsageError unless `out_dir` is a safe place for the copies."""
    out = out_dir.resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a folder; give a new folder with --out")
    for path in inputs:
        p = path.resolve()
        if out == p or p in out.parents:
            raise UsageError(
                f"{out_dir}: is or lies inside the input {path}; give a new folder with --out"
            )
        if out in p.parents:
            raise UsageError(
                f"{out_dir}: holds the input {path}; give a folder that holds no input with --out"
            )
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(
            f"{out_dir}: folder is not empty; give --force to write into it "
            "(inputs are never overwritten)"
        )


def output_path(deployment: Deployment, job: _Job, out_dir: Path, index: int) -> Path:
    """Where the copy of a job's file goes: its path under the manifest's folder, mirrored."""
    src = job.file.source.path.resolve()
    try:
        rel = src.relative_to(deployment.base_dir.resolve())
    except ValueError:
        rel = Path(OUTSIDE) / f"{index}-{src.name}"
    return out_dir / rel


def _params(ruleset: RuleSet, checker: Any) -> list[tuple[str, Any]]:
    """(rule id, validated params) of every rule bound to `checker`; its defaults when none."""
    out = []
    for rule in ruleset.rules:
        if rule.spec.checker_id != checker.id:
            continue
        try:
            out.append((rule.id, checker.Params.model_validate(rule.spec.params)))
        except ValidationError as exc:
            problems = "; ".join(
                f"params.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise RulePackError(f"{rule.source}: rule {rule.id}: {problems}") from None
    return out or [(f"{checker.id} defaults", checker.Params())]


@dataclass
class _Setup:
    detectors: Detectors
    engine: str
    described: list[str]
    notes: list[str]
    batch_size: int


def build_detectors(deployment: Deployment, ruleset: RuleSet, *, leaks: bool) -> _Setup:
    """The detectors of the effective rule pack (see `_detect`); `leaks` adds FMFL-P06's index."""
    from fmfl_audit.checkers.privacy._presidio import PresidioSettings
    from fmfl_audit.checkers.privacy.pii import PiiChecker
    from fmfl_audit.checkers.privacy.secrets import SecretsChecker, shared_scanner
    from fmfl_audit.engine.executors import Cache

    cache = Cache()
    pii = []
    for _, p in _params(ruleset, PiiChecker):
        settings = PresidioSettings(
            language=p.language,
            recognizers=p.recognizers,
            min_score=p.min_score,
            entities=p.entities,
            exclude=p.exclude_entities,
            batch_size=p.batch_size,
        )
        pii.append(PiiConfig(settings=settings, cache=cache))
    scanners = [
        shared_scanner(
            cache, disabled=p.disabled_plugins, extra=tuple(sorted(p.extra_patterns.items()))
        )
        for _, p in _params(ruleset, SecretsChecker)
    ]
    notes: list[str] = []
    canaries = CanaryMatcher(_canaries(deployment, notes))
    described = [
        "PII: " + ", ".join(rule for rule, _ in _params(ruleset, PiiChecker)),
        "secrets: " + ", ".join(rule for rule, _ in _params(ruleset, SecretsChecker)),
        f"canaries: {canaries.count} declared",
    ]
    leak = _leak_probe(deployment, ruleset, notes) if leaks else None
    if leak is not None:
        described.append(f"leaked spans: FMFL-P06 index of {len(leak.index.owners)} owner(s)")
    if not pii[0].analyzer.ner:
        notes.append(
            "no spaCy NER model is installed: names, places and nationalities (PERSON, LOCATION, "
            "NRP) are neither detected nor replaced; install en_core_web_lg, _md or _sm for them"
        )
    return _Setup(
        detectors=Detectors(pii=pii, scanners=scanners, canaries=canaries, leak=leak),
        engine=pii[0].analyzer.description,
        described=described,
        notes=notes,
        batch_size=min(p.settings.batch_size for p in pii),
    )


def _canaries(deployment: Deployment, notes: list[str]) -> list[Any]:
    from fmfl_audit.checkers.privacy.canary import parse_canary

    found = []
    for model in deployment.manifest.models:
        if model.canaries is None:
            continue
        display = deployment.display_path(model.canaries.path)
        stats = ReadStats(path=display)
        bad = 0
        index = 0
        for batch in iter_records(model.canaries, display=display, stats=stats, require_text=False):
            for rec in batch:
                index += 1
                try:
                    found.append(
                        parse_canary(rec.data, rec.location, index, model.canaries.id_field)
                    )
                except ValueError:
                    bad += 1
        if bad or stats.malformed:
            notes.append(
                f"{display}: {bad + stats.malformed} malformed canary record(s) could not be masked"
            )
    return found


def _leak_probe(deployment: Deployment, ruleset: RuleSet, notes: list[str]) -> LeakProbe | None:
    from fmfl_audit.checkers.privacy.leakage import LeakageChecker, LeakageParams

    checker = LeakageChecker()
    missing = checker.missing_inputs(deployment)
    if missing:
        notes.append(f"leaked spans not looked for: missing {', '.join(missing)}")
        return None
    rule_id, params = _params(ruleset, LeakageChecker)[0]
    assert isinstance(params, LeakageParams)
    ctx = CheckContext(deployment=deployment, rule_id=rule_id)
    # P06's own key handling and index, so the spans replaced are the spans P06 reports.
    key = checker._key(ctx, params)
    index, _ = checker._index(ctx, params, key, CheckOutput())
    return LeakProbe(index=index, key=key, k=params.k, common_min_owners=params.common_min_owners)


def redact_deployment(
    deployment: Deployment,
    *,
    out_dir: Path | None = None,
    target: RedactTarget = RedactTarget.SYNTHETIC,
    force: bool = False,
    ruleset: RuleSet | None = None,
) -> RedactionSummary:
    """Write redacted copies, their manifest and the summary; return the summary.

    `ruleset` defaults to the manifest's packs and overrides (what `scan` would use).
    UsageError when there is nothing to redact or `out_dir` is unsafe; InputError for an
    unreadable file.
    """
    from fmfl_audit.checkers.registry import checker_map
    from fmfl_audit.engine.runner import Auditor

    out = out_dir if out_dir is not None else deployment.base_dir / DEFAULT_OUT
    jobs = plan_jobs(deployment, target)
    if not jobs:
        raise UsageError(
            f"{deployment.path}: no {target.value} data to redact (the manifest names none)"
        )
    check_out_dir(out, input_paths(deployment), force=force)
    rs = ruleset if ruleset is not None else Auditor(deployment).ruleset()
    setup = build_detectors(deployment, rs, leaks=any(j.leak_owner for j in jobs))
    redactor = Redactor(setup.detectors)
    out.mkdir(parents=True, exist_ok=True)
    moved: dict[Path, Path] = {}
    files = []
    for i, job in enumerate(jobs, start=1):
        target_path = output_path(deployment, job, out, i)
        tally = _write_copy(job, target_path, redactor, setup.batch_size)
        moved[job.file.source.path.resolve()] = target_path.resolve()
        files.append(_file_summary(job, target_path, out, tally))
    copy = out / MANIFEST_FILE
    write_manifest_copy(
        deployment.path,
        copy,
        ruleset=rs,
        checkers=checker_map(),
        fn=lambda v: relocate(v, base_dir=deployment.base_dir, out_dir=out, moved=moved),
    )
    total: dict[str, int] = {}
    for f in files:
        for kind, n in f.replaced.items():
            total[kind] = total.get(kind, 0) + n
    summary = RedactionSummary(
        manifest=str(deployment.path),
        out_dir=str(out),
        manifest_copy=str(copy),
        target=target,
        engine=setup.engine,
        detectors=tuple(setup.described),
        files=tuple(files),
        replaced=dict(sorted(total.items())),
        notes=tuple(setup.notes),
    )
    (out / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return summary


def _write_copy(job: _Job, target: Path, redactor: Redactor, batch_size: int) -> FileTally:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    owner = job.leak_owner
    try:
        tally = redact_file(
            job.file,
            partial,
            lambda texts: redactor.redact(texts, leak_owner=owner),
            batch_size=batch_size,
        )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return tally


def _file_summary(job: _Job, target: Path, out: Path, tally: FileTally) -> FileSummary:
    return FileSummary(
        source=job.file.display,
        output=target.relative_to(out).as_posix(),
        role=job.role,
        subject=job.subject,
        format=job.file.source.resolved_format,
        records=tally.records,
        records_redacted=tally.redacted,
        records_without_text=tally.without_text,
        not_checked=tally.not_checked,
        not_checked_issues=tuple(tally.issues),
        replaced=dict(sorted(tally.replaced.items())),
    )
