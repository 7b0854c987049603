"""One error hierarchy for the library; the CLI catches `FmflAuditError` in one place."""

from __future__ import annotations


class FmflAuditError(Exception):
    """Root of every error the library raises on purpose. `exit_code` is what the CLI returns."""

    exit_code: int = 2


class ManifestError(FmflAuditError):
    """The deployment manifest cannot be read or does not match the version-1 shape."""


class RulePackError(FmflAuditError):
    """A rule pack cannot be read, does not validate, or refers to an unknown rule or checker."""


class InputError(FmflAuditError):
    """A data file or checkpoint named by the manifest cannot be read safely."""


class CheckerError(FmflAuditError):
    """A checker could not complete; the engine records the rule as `errored` and goes on."""


class MissingDependencyError(FmflAuditError):
    """An optional dependency a checker needs is missing; the rule is skipped, naming it."""

    def __init__(self, package: str, *, extra: str | None = None) -> None:
        hint = f" (pip install 'fmfl-audit[{extra}]')" if extra else ""
        super().__init__(f"optional dependency {package!r} is not installed{hint}")
        self.package = package


class RuleSkipped(FmflAuditError):
    """A checker found at run time that its input cannot be used (e.g. no labels); the rule is
    reported as skipped with this message, not as errored."""


class UsageError(FmflAuditError):
    """A command-line option or combination of options is invalid."""


class ReportError(FmflAuditError):
    """A report file given to `diff` or `--baseline` cannot be read."""
