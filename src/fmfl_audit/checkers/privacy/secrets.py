"""FMFL-P02: secrets and credentials in synthetic data and prompts (detect-secrets + patterns).

Detection uses the plugins of Yelp's detect-secrets (AWS, GitHub, GitLab, Slack, Stripe, JWT,
private keys, basic-auth credentials in URLs, secret keywords such as `password = ...`, ...) called
directly on each record's text: `analyze_string` only, so no plugin ever tries to verify a secret
over the network. Regex plugins are re-run with `finditer` so the whole matched token is located
and masked. The noisy high-entropy plugins are off by default (prose is full of "high-entropy"
words) and the IP plugin is left to FMFL-P01 (an IP address is PII, not a credential).

Patterns detect-secrets lacks are added here and documented in `EXTRA_PATTERNS` (new-style OpenAI
project keys, Anthropic, Hugging Face, Google API keys, bearer tokens, generic URL credentials,
unquoted keyword assignments such as `password=...`, of which only the value is masked).

Findings: one per client, source (synthetic data or prompts) and secret type; evidence is the
location plus an excerpt where each secret is replaced by its type, and a mask that keeps no more
than its first characters (`fmfl_audit.redact.mask`). The secret itself never reaches the report.

Each file is scanned as shards on the scan's executor (`engine.executors`): `_SecretsTask` scans
one shard into a `_SecretTally` and the tallies are folded in file order, so counts and evidence
do not depend on where the file was cut.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.engine.executors import Cache, ShardEnv, ShardTask
from fmfl_audit.errors import MissingDependencyError
from fmfl_audit.inputs.records import Record
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity
from fmfl_audit.redact import mask

SECRET_ASSIGNMENT = (
    # A name holding a keyword as whole parts (`AWS_SECRET_ACCESS_KEY`, `db.password`, not
    # `bypass` or `max_tokens`). Linear time: a match starts only where a name starts (the
    # lookbehind), the keyword is found by a lookahead (atomic) and the name is then read once;
    # nesting the keyword between repeated name parts backtracked quadratically (`password_` * n).
    r"(?i)(?<![\w.-])"
    r"(?=(?:[a-z0-9]+[_.-])*?(?:pass(?:word|wd|phrase)?|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|client[_-]?secret|auth[_-]?key)(?![a-z0-9]))"
    r"[a-z0-9]+(?:[_.-][a-z0-9]+)*[\"']?[ \t]*[=:][ \t]*[\"']?"
    # Not a value: an environment or template reference (`os.environ["KEY"]`, `${KEY}`,
    # `{{ key }}`, `<redacted>`), a mask (`****`, `gh*****`: P02's own evidence), a bare number
    # (`max_token_count: 4096`), code (`token_id = tok.pad_token_id`) or words (`password:
    # required`, `secret: Santa-Claus`): a value holds a digit or a symbol other than `-`, `.` and
    # `_` in its first 128 characters, 6 characters at least. A words-only password is missed.
    r"(?P<secret>(?!os\.|process\.env|getenv|\$|\{\{|%\(|<|x{6})(?![0-9]+(?:[\s\"',;]|$))"
    r"(?![^\s\"',;]{0,128}\*\*\*)(?![a-z_]\w*(?:\.[a-z_]\w*)+(?:[(\[\s,;]|$))"
    r"(?=[^\s\"',;]{0,128}[0-9!#$%&*+/=?@^~])[^\s\"',;]{6,})"
)
"""Keyword-assignment secrets (FMFL-P02's "Secret Assignment" type)."""

EXTRA_PATTERNS: dict[str, str] = {
    # sk-proj-/sk-svcacct-/sk-admin- keys (2024+) do not carry the T3BlbkFJ marker the
    # detect-secrets OpenAI plugin requires.
    "OpenAI Project Key": r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}",
    "Anthropic API Key": r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{20,}",
    "Hugging Face Token": r"\bhf_[A-Za-z0-9]{30,}\b",
    "Google API Key": r"\bAIza[0-9A-Za-z_\-]{35}\b",
    "Bearer Token": r"(?i)\bbearer\s+[A-Za-z0-9_\-\.=]{20,}",
    # scheme://user:password@host for any scheme (detect-secrets' basic-auth plugin needs a
    # password without `/`, `:` or `@`, and only reports the password part).
    "Password in URL": r"\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:[^\s@/]{3,}@[^\s/]+",
    # The whole PEM block, not only its header line (detect-secrets reports the header), so that
    # redaction removes the key material that follows the header.
    "Private Key": r"-----BEGIN[A-Z ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?"
    r"(?:-----END[A-Z ]*PRIVATE KEY( BLOCK)?-----|$)",
    # `password=Hunter2!` / `export AWS_SECRET_ACCESS_KEY=Zx8k...`: detect-secrets' keyword plugin
    # needs a quoted value (or a config-file context), so unquoted assignments in prose, shell and
    # logs went unseen. Only the value (group `secret`) is masked; the keyword stays readable.
    "Secret Assignment": SECRET_ASSIGNMENT,
}
KEYWORD_TYPES = frozenset({"Secret Keyword", "Secret Assignment"})
"""Types found by a keyword next to a value, not by the shape of a token: less certain."""
DEFAULT_DISABLED = ("Base64 High Entropy String", "Hex High Entropy String", "Public IP (ipv4)")


class SecretsParams(CheckerParams):
    """Settings of FMFL-P02."""

    disabled_plugins: tuple[str, ...] = Field(
        default=DEFAULT_DISABLED,
        description="detect-secrets secret types not used (their `secret_type` names).",
    )
    extra_patterns: dict[str, str] = Field(
        default_factory=lambda: dict(EXTRA_PATTERNS),
        description="Secret type -> regex for credentials detect-secrets lacks; a named group "
        "`secret` limits the masked part to the value (the keyword of `password=...` stays).",
    )
    scan_prompts: bool = Field(default=True, description="Also scan what clients sent to the FM.")
    max_count: int = Field(default=0, ge=0, description="Secrets of one type tolerated.")
    max_examples: int = Field(default=3, ge=0, le=20)
    severity: Severity = Severity.CRITICAL
    keyword_severity: Severity = Field(
        default=Severity.HIGH,
        description="Severity of `password = ...`-style keyword hits (detect-secrets' `Secret "
        "Keyword` and the unquoted `Secret Assignment`): less certain than a token.",
    )


@dataclass(frozen=True)
class SecretHit:
    """One secret located in a text."""

    kind: str
    start: int
    end: int


class SecretScanner:
    """detect-secrets plugins plus extra regexes, applied to plain strings."""

    def __init__(self, *, disabled: tuple[str, ...], extra: dict[str, str]) -> None:
        try:
            from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
            from detect_secrets.plugins.base import RegexBasedDetector
            from detect_secrets.settings import default_settings
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise MissingDependencyError("detect-secrets") from exc
        # Plugin discovery reads detect-secrets' global settings; pin them to the defaults so a
        # user's baseline or config cannot load custom plugin files (code) into the audit.
        with default_settings():
            mapping: dict[str, Any] = dict(get_mapping_from_secret_type_to_class())
        self.regex_plugins: list[tuple[str, list[re.Pattern[str]]]] = []
        self.other_plugins: list[tuple[str, Any]] = []
        for kind, cls in sorted(mapping.items()):
            if kind in disabled:
                continue
            plugin = cls()  # type: ignore[misc,unused-ignore]
            if isinstance(plugin, RegexBasedDetector):
                self.regex_plugins.append((kind, list(plugin.denylist)))
            else:
                self.other_plugins.append((kind, plugin))
        self.extra = [(kind, re.compile(pattern)) for kind, pattern in sorted(extra.items())]
        self.names = sorted(
            {k for k, _ in self.regex_plugins}
            | {k for k, _ in self.other_plugins}
            | {k for k, _ in self.extra}
        )

    def scan(self, text: str) -> list[SecretHit]:
        """Secrets in `text`, overlapping hits of different plugins kept (redaction merges them)."""
        hits: list[SecretHit] = []
        for kind, patterns in self.regex_plugins:
            for rx in patterns:
                hits.extend(
                    _widen(text, kind, m.start(), m.end())
                    for m in rx.finditer(text)
                    if m.end() > m.start()
                )
        for kind, plugin in self.other_plugins:
            for value in set(plugin.analyze_string(text)):
                hits.extend(_widen(text, kind, s, s + len(value)) for s in _find_all(text, value))
        for kind, rx in self.extra:
            for m in rx.finditer(text):
                # A pattern with a `secret` group locates the secret inside its match (the value
                # of `password=...`): only that part is masked.
                s, e = m.span("secret") if "secret" in rx.groupindex else m.span()
                hit = _widen(text, kind, s, e)
                # detect-secrets names the secret when it found it; an extra pattern only adds
                # what it missed (or widens its own kind, e.g. a PEM header to the whole block).
                if e > s and not any(
                    h.kind != kind and h.start < hit.end and hit.start < h.end for h in hits
                ):
                    hits.append(hit)
        return _dedupe(hits)


def _widen(text: str, kind: str, start: int, end: int) -> SecretHit:
    """Grow a hit to the whitespace-delimited token around it: plugins often match part of a
    token (a JWT without its signature, the password of a URL), and redaction must take it all."""
    while start > 0 and not text[start - 1].isspace() and text[start - 1] not in "\"'=:(":
        start -= 1
    while end < len(text) and not text[end].isspace() and text[end] not in "\"')":
        end += 1
    return SecretHit(kind, start, end)


def _find_all(text: str, value: str) -> Iterator[int]:
    if not value:
        return
    start = text.find(value)
    while start >= 0:
        yield start
        start = text.find(value, start + len(value))


def _dedupe(hits: list[SecretHit]) -> list[SecretHit]:
    """Drop a hit of one type nested inside another hit of the same type."""
    hits = sorted(set(hits), key=lambda h: (h.kind, h.start, -h.end))
    out: list[SecretHit] = []
    for h in hits:
        if out and out[-1].kind == h.kind and h.start >= out[-1].start and h.end <= out[-1].end:
            continue
        out.append(h)
    return out


def shared_scanner(
    cache: Cache, *, disabled: tuple[str, ...], extra: tuple[tuple[str, str], ...]
) -> SecretScanner:
    """The secret scanner for these settings, built once per scan (or per worker process) through
    `cache`; `extra` is the (type, regex) pairs of `SecretsParams.extra_patterns`, sorted."""
    key = f"secrets:{disabled!r}:{sorted(extra)!r}"
    return cache.get(  # type: ignore[no-any-return,unused-ignore]
        key, lambda: SecretScanner(disabled=disabled, extra=dict(extra))
    )


@dataclass
class _SecretTally:
    """Counts of one scanned source (or of one shard of it: tallies merge in file order)."""

    scanned: int = 0
    flagged: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Evidence]] = field(default_factory=lambda: defaultdict(list))

    def merge(self, other: _SecretTally, max_examples: int) -> None:
        """Add the tally of the next shard."""
        self.scanned += other.scanned
        self.flagged += other.flagged
        self.counts.update(other.counts)
        for kind, ex in other.examples.items():
            mine = self.examples[kind]
            mine.extend(ex[: max(0, max_examples - len(mine))])


@dataclass(frozen=True)
class _SecretsTask(ShardTask):
    """P02's map step: the secret scanner over one shard's texts."""

    disabled: tuple[str, ...]
    extra: tuple[tuple[str, str], ...]
    max_examples: int

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _SecretTally:
        from fmfl_audit.checkers.privacy._evidence import scrub

        scanner = shared_scanner(env.cache, disabled=self.disabled, extra=self.extra)
        tally = _SecretTally()
        for batch in batches:
            for rec in batch:
                tally.scanned += 1
                text = rec.text or ""
                hits = scanner.scan(text)
                if not hits:
                    continue
                tally.flagged += 1
                spans = [(h.start, h.end, h.kind.upper().replace(" ", "_")) for h in hits]
                for h in hits:
                    tally.counts[h.kind] += 1
                    ex = tally.examples[h.kind]
                    if len(ex) < self.max_examples:
                        masked = mask(text[h.start : h.end], keep=2)
                        ex.append(
                            Evidence(
                                location=rec.location,
                                excerpt=f"{scrub(env.cache, text, spans)} [{h.kind}: {masked}]",
                            )
                        )
        return tally


def _extra(params: SecretsParams) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(params.extra_patterns.items()))


class SecretsChecker(Checker):
    """Ensure synthetic data and prompts carry no secrets or credentials."""

    id: ClassVar[str] = "FMFL-P02"
    title: ClassVar[str] = "Ensure synthetic data and prompts contain no secrets or credentials"
    area: ClassVar[Area] = Area.PRIVACY
    threat: ClassVar[str] = "top-down disclosure"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].synthetic_data", "clients[].prompts")
    Params = SecretsParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        if any(c.synthetic_data or c.prompts for c in deployment.manifest.clients):
            return []
        return ["clients[].synthetic_data", "clients[].prompts"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, SecretsParams)
        from fmfl_audit.checkers.privacy._evidence import warm_scrubber  # imports this module

        warm_scrubber(ctx.cache, ctx.executor)
        scanner = shared_scanner(ctx.cache, disabled=params.disabled_plugins, extra=_extra(params))
        out = CheckOutput(notes=[f"detectors: {', '.join(scanner.names)}"])
        task = _SecretsTask(
            disabled=params.disabled_plugins,
            extra=_extra(params),
            max_examples=params.max_examples,
        )
        clients = ctx.deployment.manifest.clients
        ctx.progress.set_total(len(clients))
        for client in clients:
            sources = [("synthetic", "synthetic data", client.synthetic_data)]
            if params.scan_prompts:
                sources.append(("prompts", "prompts", client.prompts))
            for tag, what, source in sources:
                if source is not None:
                    self._scan(ctx, params, task, client, tag, what, source, out)
            ctx.progress.advance()
        return out

    def _scan(
        self,
        ctx: CheckContext,
        params: SecretsParams,
        task: _SecretsTask,
        client: Any,
        tag: str,
        what: str,
        source: DataSource,
        out: CheckOutput,
    ) -> None:
        tally = _SecretTally()
        for part in ctx.map_shards(source, task):
            tally.merge(part, params.max_examples)
        counts, scanned, flagged = tally.counts, tally.scanned, tally.flagged
        figures = out.metrics.setdefault(client.subject, {})
        figures.update(
            {
                f"{tag}_records_scanned": scanned,
                f"{tag}_records_with_secrets": flagged,
                f"{tag}_secrets": dict(sorted(counts.items())),
            }
        )
        for kind, n in sorted(counts.items()):
            if n <= params.max_count:
                continue
            keyword = kind in KEYWORD_TYPES
            sev = params.keyword_severity if keyword else params.severity
            out.findings.append(
                FindingDraft(
                    subject=client.subject,
                    key=f"{tag}:{kind}",
                    severity=sev,
                    confidence=Confidence.MEDIUM if keyword else Confidence.HIGH,
                    message=(
                        f"{n} {kind} secret(s) in the {what} of client {client.id} "
                        f"({flagged} of {scanned} records)"
                    ),
                    metric=Metric(name="secrets_count", value=n, threshold=params.max_count),
                    evidence=tuple(tally.examples[kind]),
                )
            )
