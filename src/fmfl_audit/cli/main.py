"""The `fmfl-audit` command line: parses options, calls the library, renders, sets the exit code.

Heavy libraries are imported inside the commands that need them so `--help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from fmfl_audit._version import __version__
from fmfl_audit.cli._typer_compat import patch_argument_help
from fmfl_audit.cli.outputs import parse_format, parse_targets
from fmfl_audit.errors import FmflAuditError, UsageError

EXIT_PASSED, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

patch_argument_help()

app = typer.Typer(
    name="fmfl-audit",
    help="Audit a foundation-model + federated-learning deployment: robustness, privacy, fairness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
rules_app = typer.Typer(help="Browse the rule catalog.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

F = TypeVar("F", bound=Callable[..., Any])


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def guarded(func: F) -> F:
    """Map library errors to exit 2 and anything unexpected to exit 3, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except FmflAuditError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("FMFL_AUDIT_DEBUG"):
                raise
            typer.echo(
                f"internal error: {type(exc).__name__}: {exc}\n"
                "This is a bug in fmfl-audit; set FMFL_AUDIT_DEBUG=1 for a traceback.",
                err=True,
            )
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"fmfl-audit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """Audit a foundation-model + federated-learning deployment."""


class SeverityChoice(str, Enum):
    """`--fail-on` values."""

    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"
    none = "none"


class GradeChoice(str, Enum):
    """`--fail-under` values."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    F = "F"
    none = "none"


class DeviceChoice(str, Enum):
    """Where model inference runs."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class ExecutorChoice(str, Enum):
    """Where record-level work runs."""

    local = "local"
    ray = "ray"


def _check_formats(values: list[str] | None) -> list[str] | None:
    for spec in values or ():
        try:
            parse_format(spec.partition(":")[0])
        except UsageError as exc:
            raise typer.BadParameter(str(exc).removeprefix("--format: ")) from None
    return values


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")


@app.command()
@guarded
def scan(
    manifest: Annotated[Path, typer.Argument(help="Deployment manifest (YAML).")],
    fmt: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT[:PATH]",
            help="Output format (terminal, json, markdown, html, sarif, junit), optionally with "
            "its file: -f json:audit.json. Repeat for several; at most one goes to stdout.",
            callback=_check_formats,
        ),
    ] = None,
    output: Annotated[
        list[str] | None,
        typer.Option(
            "--output",
            "-o",
            help="File for the only --format ('-' = stdout); with several formats use "
            "-f FORMAT:PATH.",
        ),
    ] = None,
    rules: Annotated[
        list[str] | None, typer.Option("--rules", help="Extra rule pack (file or folder).")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these rule ids or areas.")
    ] = None,
    skip: Annotated[
        list[str] | None, typer.Option("--skip", help="Skip these rule ids or areas.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling and bootstraps.")] = 0,
    device: Annotated[DeviceChoice, typer.Option(help="Device for model inference.")] = (
        DeviceChoice.auto
    ),
    executor: Annotated[
        ExecutorChoice,
        typer.Option(help="Run record-level work on this machine's cores or as Ray tasks."),
    ] = ExecutorChoice.local,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Workers for record-level work [default: every CPU core; ray: all CPUs]."
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Address of an existing Ray cluster (with --executor ray)."),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Threads for model inference [default: OMP_NUM_THREADS if set, else CPU cores "
            "/ --workers, so 1 with the default workers].",
        ),
    ] = None,
    shard_bytes: Annotated[
        int | None,
        typer.Option(min=1, hidden=True, help="Fixed shard size in bytes (tests, tuning)."),
    ] = None,
    fail_on: Annotated[
        SeverityChoice | None,
        typer.Option(help="Fail on an unwaived finding at or above this severity."),
    ] = None,
    fail_under: Annotated[
        GradeChoice | None, typer.Option(help="Fail when the overall grade is below this.")
    ] = None,
    min_coverage: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Fail when coverage is below this.")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(help="JSON report to gate against: only new or worsened findings fail."),
    ] = None,
    exit_zero: Annotated[
        bool, typer.Option("--exit-zero", help="Exit 0 even when the gate fails.")
    ] = False,
    progress: Annotated[
        bool,
        typer.Option(
            help="Progress on stderr: bars on a terminal, one line per rule start and finish "
            "otherwise (CI logs)."
        ),
    ] = True,
    color: Annotated[bool, typer.Option(help="Colour in the terminal format.")] = True,
    today: Annotated[
        str | None, typer.Option(hidden=True, help="Date for waiver expiry (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Scan a deployment and report; exit 0 when the gate passes, 1 when it fails."""
    from fmfl_audit.engine.executors import make_executor
    from fmfl_audit.engine.observer import NullObserver
    from fmfl_audit.engine.runner import Auditor, GateOverrides
    from fmfl_audit.engine.threads import default_threads, default_wait_policy
    from fmfl_audit.manifest import load_manifest
    from fmfl_audit.models import Grade, Severity
    from fmfl_audit.report.baseline import apply_baseline, load_report
    from fmfl_audit.report.formats import renderer_for
    from fmfl_audit.report.sarif import uri_prefix_for

    targets = parse_targets(list(fmt or []), list(output or []))
    if ray_address is not None and executor is not ExecutorChoice.ray:
        raise UsageError("--ray-address needs --executor ray")
    day = _parse_date(today) if today else None
    # Read the baseline first so a bad file exits 2 before any work is done.
    old = load_report(baseline) if baseline is not None else None
    deployment = load_manifest(manifest)
    gate = GateOverrides(
        fail_on=Severity(fail_on.value) if fail_on and fail_on.value != "none" else None,
        fail_under=Grade(fail_under.value) if fail_under and fail_under.value != "none" else None,
        min_coverage=min_coverage,
        disable_fail_on=fail_on is SeverityChoice.none,
        disable_fail_under=fail_under is GradeChoice.none,
    )
    auditor_kwargs: dict[str, Any] = dict(
        extra_packs=tuple(rules or ()),
        only=tuple(only or ()),
        skip=tuple(skip or ()),
        seed=seed,
        device=device.value,
        gate=gate,
        today=day,
        threads=threads or default_threads(workers),
    )
    if threads is None:
        default_wait_policy(auditor_kwargs["threads"])
    runner = make_executor(
        executor.value, workers=workers, address=ray_address, shard_bytes=shard_bytes
    )
    try:
        auditor_kwargs["executor"] = runner
        if progress and sys.stderr.isatty():
            from fmfl_audit.cli.progress import RichObserver

            with RichObserver(_stderr()) as observer:
                report = Auditor(deployment, observer=observer, **auditor_kwargs).run()
        elif progress:
            from fmfl_audit.cli.progress import LineObserver

            line_observer = LineObserver(sys.stderr)
            report = Auditor(deployment, observer=line_observer, **auditor_kwargs).run()
        else:
            report = Auditor(deployment, observer=NullObserver(), **auditor_kwargs).run()
    finally:
        runner.close()
    if old is not None and baseline is not None:
        report = apply_baseline(report, old, baseline_name=baseline.name)
    sarif_prefix = uri_prefix_for(manifest, Path.cwd())
    for target in targets:
        to_tty = target.to_stdout and sys.stdout.isatty()
        renderer = renderer_for(target.fmt, color=color and to_tty, sarif_uri_prefix=sarif_prefix)
        _write(renderer.render(report), target.path)
    if report.gate.passed or exit_zero:
        raise typer.Exit(EXIT_PASSED)
    raise typer.Exit(EXIT_GATE_FAILED)


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--today: not a date: {text!r} (expected YYYY-MM-DD)") from None


@app.command()
@guarded
def validate(
    manifest: Annotated[Path, typer.Argument(help="Deployment manifest (YAML).")],
    rules: Annotated[
        list[str] | None, typer.Option("--rules", help="Extra rule pack (file or folder).")
    ] = None,
) -> None:
    """Check the manifest and rule packs only (fast; runs no checker)."""
    from fmfl_audit.engine.runner import Auditor
    from fmfl_audit.manifest import load_manifest

    deployment = load_manifest(manifest)
    auditor = Auditor(deployment, extra_packs=tuple(rules or ()))
    plan = auditor.plan()
    typer.echo("\n".join(plan_summary(manifest, deployment, plan)))


def plan_summary(manifest: Path, deployment: Any, plan: list[Any]) -> list[str]:
    """What `validate` prints: which rules will run, which will be skipped and why, and what can
    still skip a runnable rule once its data is read."""
    policy = deployment.manifest.policy
    runs = [p for p in plan if p.skip_reason is None]
    skips = [p for p in plan if p.skip_reason is not None]
    lines = [
        f"{manifest}: valid manifest for {deployment.manifest.deployment.name!r}; "
        f"{len(plan)} rule(s) planned: {len(runs)} will run, {len(skips)} will be skipped"
    ]
    for p in runs:
        lines.append(f"  run   {p.rule.id:<10} {p.rule.spec.title}")
    for p in skips:
        lines.append(f"  skip  {p.rule.id:<10} {p.skip_reason}")
    conditional = [(p.rule.id, c) for p in runs if p.checker for c in p.checker.runtime_skips]
    lines.append(
        "A rule that will run is still skipped when more than "
        f"{policy.max_malformed_share:.0%} of a data file's records are malformed "
        "(policy.max_malformed_share)" + (", and:" if conditional else ".")
    )
    lines += [f"  {rule_id}: skipped {cond}" for rule_id, cond in conditional]
    fm = deployment.manifest.foundation_model
    if fm is not None and fm.probe_transcript is not None:
        lines.append(
            "  A rule fed only by the probe transcript is skipped when the transcript holds no "
            "answers to its probe suite (run `fmfl-audit probe` first)."
        )
    return lines


@rules_app.command("list")
@guarded
def rules_list(
    rules: Annotated[
        list[str] | None, typer.Option("--rules", help="Extra rule pack (file or folder).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every rule with its area, severity and status."""
    from fmfl_audit.checkers.registry import checker_map
    from fmfl_audit.rulepacks.loader import load_ruleset

    rs = load_ruleset(["default", *(rules or [])], base_dir=Path.cwd())
    impl = checker_map()
    rows = [
        {
            "id": r.id,
            "area": r.spec.area.value,
            "severity": r.spec.severity.value,
            "implemented": r.spec.checker_id in impl,
            "enabled": r.spec.enabled,
            "title": r.spec.title,
        }
        for r in rs.rules
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        status = "" if row["implemented"] else "  (not implemented)"
        if not row["enabled"]:
            status += "  (disabled)"
        typer.echo(f"{row['id']:<10} {row['area']:<11} {row['severity']:<9} {row['title']}{status}")


@rules_app.command("show")
@guarded
def rules_show(
    rule_id: Annotated[str, typer.Argument(help="Rule id, e.g. FMFL-P01.")],
    rules: Annotated[
        list[str] | None, typer.Option("--rules", help="Extra rule pack (file or folder).")
    ] = None,
) -> None:
    """Show one rule: threat, inputs, parameters and remediation."""
    from fmfl_audit.checkers.registry import checker_map
    from fmfl_audit.rulepacks.loader import load_ruleset

    rs = load_ruleset(["default", *(rules or [])], base_dir=Path.cwd())
    r = rs.get(rule_id)
    checker = checker_map().get(r.spec.checker_id)
    spec = r.spec
    lines = [
        f"{spec.id}: {spec.title}",
        f"  area:        {spec.area.value}",
        f"  threat:      {spec.threat}",
        f"  severity:    {spec.severity.value} (weight {spec.weight:g})",
        f"  status:      {'implemented' if checker else 'not implemented'}"
        + ("" if spec.enabled else ", disabled"),
    ]
    if checker is not None:
        lines.append(f"  inputs:      {', '.join(checker.inputs)}")
        params = checker.Params.model_validate(spec.params).model_dump(mode="json")
        lines.append("  params:")
        lines += [f"    {k}: {json.dumps(v)}" for k, v in params.items()]
    lines.append(f"  remediation: {' '.join(spec.remediation.split())}")
    for ref in spec.references:
        lines.append(f"  reference:   {ref}")
    lines.append(f"  defined in:  {r.source}")
    typer.echo("\n".join(lines))


class SchemaChoice(str, Enum):
    """Which JSON Schema to print."""

    manifest = "manifest"
    report = "report"


@app.command()
@guarded
def schema(which: Annotated[SchemaChoice, typer.Argument(help="manifest or report")]) -> None:
    """Print the JSON Schema of the manifest or of the JSON report."""
    if which is SchemaChoice.manifest:
        from fmfl_audit.manifest.model import Manifest

        doc = Manifest.model_json_schema()
        doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        doc["$id"] = "https://fmfl-audit.dev/schema/manifest-1.json"
    else:
        from fmfl_audit.report.json_format import report_schema

        doc = report_schema()
    typer.echo(json.dumps(doc, indent=2))


def _register_extensions() -> None:
    # Commands in their own modules; they import `guarded` from here, so they register last.
    from fmfl_audit.cli import diff, fingerprint, importers, init, probe, redact, rule_docs

    diff.register(app)
    fingerprint.register(app)
    redact.register(app)
    rule_docs.register(app)
    init.register(app)
    importers.register(app)
    probe.register(app)


_register_extensions()


def run() -> None:
    """Console-script entry point."""
    app()
