"""HTML: one self-contained page (inline CSS, SVG charts, a little JavaScript; no network at all).

Grade cards per area with coverage; charts of area scores, PII entities per client (FMFL-P01), the
client x client leakage matrix (FMFL-P06), per-group selection rates against the four-fifths line
(FMFL-F03) and contribution shares by resource tier (FMFL-F06); a findings table filterable by area,
severity, subject and waiver status; rules not run; waivers. Every report string is escaped, and a
Content-Security-Policy forbids the page any network request.

Chart data contracts (read defensively; a missing or malformed entry leaves its chart out):
- FMFL-P01: `metrics["client:X"]["entities"] = {entity_type: count}`.
- FMFL-P06: `metrics[S]["leakage_matrix"]` for any subject S (`federation` preferred), either
  `{source_client: {receiving_client: count}}` or `{"clients": [...], "matrix": [[...]]}` (rows are
  sources, columns receivers).
- FMFL-F03: `metrics["model:M"][feature]["groups"][group] = {"selection_rate", "count"}` and
  `[feature]["graded_groups"]`; the line is the rule's `min_dp_ratio` (from a finding's threshold,
  0.8 otherwise) times the highest graded rate.
- FMFL-F06: `metrics["client:X"] = {"weight_share", "tier"}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fmfl_audit.models import (
    AreaScore,
    AuditReport,
    Finding,
    Grade,
    Outcome,
    RuleResult,
    Severity,
)
from fmfl_audit.report._common import method_notes, metric_text, overall_text, pii_engine
from fmfl_audit.report._svg import (
    PALETTE,
    Bar,
    Marker,
    Segment,
    StackedRow,
    bar_chart,
    esc,
    heatmap,
    stacked_bar_chart,
)
from fmfl_audit.report.interface import Renderer
from fmfl_audit.report.rule_docs import rule_doc_url

GRADE_COLOR = {
    Grade.A: "#2e7d32",
    Grade.B: "#689f38",
    Grade.C: "#f9a825",
    Grade.D: "#ef6c00",
    Grade.F: "#c62828",
}
NO_GRADE_COLOR = "#9e9e9e"
SEVERITY_COLOR = {
    Severity.CRITICAL: "#8e0000",
    Severity.HIGH: "#d32f2f",
    Severity.MEDIUM: "#ef6c00",
    Severity.LOW: "#1565c0",
    Severity.INFO: "#616161",
}
TIER_COLOR = {"abundant": "#6a3d9a", "constrained": "#1b9e77"}
FOUR_FIFTHS = 0.8

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)

STYLE = """
:root{--ink:#212529;--muted:#6c757d;--line:#dee2e6;--bg:#f8f9fa}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--ink);
background:#fff;line-height:1.4}
header{padding:20px 32px;border-bottom:1px solid var(--line);background:var(--bg)}
h1{margin:0 0 6px;font-size:22px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:14px;margin:14px 0 6px}
main{padding:0 32px 40px;max-width:1280px}
.verdict{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600}
.verdict.passed{background:#2e7d32}.verdict.failed{background:#c62828}
.meta{color:var(--muted);font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:14px;margin-top:18px}
.card{border:1px solid var(--line);border-radius:10px;padding:12px 16px;min-width:190px;
background:#fff}
.card .name{font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.card .grade{font-size:44px;font-weight:700;line-height:1.1}
.card .score{font-size:13px;color:var(--muted)}
.cov{height:8px;border-radius:4px;background:#e9ecef;margin:6px 0 2px;overflow:hidden}
.cov>span{display:block;height:100%;background:#495057}
.cov-text{font-size:12px;color:var(--muted)}
.capped{color:#c62828;font-size:12px;font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:18px}
figure{margin:0;border:1px solid var(--line);border-radius:10px;padding:12px;overflow-x:auto}
figcaption{font-weight:600;margin-bottom:8px}
.legend{font-size:12px;margin-top:4px}.legend .key{margin-right:14px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
figure p{margin:4px 0 0;font-size:12px;color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);position:sticky;top:0}
.sev{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.badge{display:inline-block;padding:1px 6px;border-radius:8px;font-size:11px;
background:#e9ecef;color:#495057}
.badge.expired{background:#c62828;color:#fff}
tr.waived td{color:var(--muted)}
code,.loc{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.excerpt{font-family:ui-monospace,monospace;font-size:12px;background:var(--bg);padding:1px 4px;
white-space:pre-wrap;word-break:break-word}
.filters{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin:8px 0 10px;font-size:13px}
.filters select{font-size:13px;padding:2px 4px}
#finding-count{color:var(--muted)}
footer{color:var(--muted);font-size:12px;margin-top:30px}
"""

SCRIPT = """
(function () {
  var keys = ["area", "severity", "subject", "status"];
  var rows = Array.prototype.slice.call(document.querySelectorAll("#findings tbody tr"));
  var count = document.getElementById("finding-count");
  function apply() {
    var shown = 0;
    rows.forEach(function (row) {
      var ok = keys.every(function (k) {
        var want = document.getElementById("filter-" + k).value;
        return want === "" || row.getAttribute("data-" + k) === want;
      });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " findings shown";
  }
  keys.forEach(function (k) {
    document.getElementById("filter-" + k).addEventListener("change", apply);
  });
  apply();
})();
"""


def _rule_ref(rule_id: str) -> str:
    """A rule id linked to its documentation page (`report.rule_docs`), when it has one."""
    code = f"<code>{esc(rule_id)}</code>"
    url = rule_doc_url(rule_id)
    if url is None:
        return code
    return f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">{code}</a>'


def _rule(report: AuditReport, rule_id: str) -> RuleResult | None:
    return next((r for r in report.rules if r.id == rule_id), None)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if f == f else None


def _client(subject: str) -> str:
    return subject.split(":", 1)[1] if subject.startswith("client:") else subject


# --- chart data ---------------------------------------------------------------------------------


def pii_rows(report: AuditReport) -> tuple[list[StackedRow], dict[str, str]]:
    """FMFL-P01 entity counts per client, and a colour per entity type."""
    rule = _rule(report, "FMFL-P01")
    if rule is None:
        return [], {}
    rows: list[StackedRow] = []
    types: set[str] = set()
    for subject, figures in rule.metrics.items():
        entities = figures.get("entities")
        if not subject.startswith("client:") or not isinstance(entities, Mapping):
            continue
        segs = tuple(
            Segment(str(k), n)
            for k, v in sorted(entities.items())
            if (n := _number(v)) is not None and n > 0
        )
        types.update(s.name for s in segs)
        rows.append(StackedRow(_client(subject), segs))
    colors = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(sorted(types))}
    return rows, colors


def leakage_matrix(report: AuditReport) -> dict[str, dict[str, float]] | None:
    """FMFL-P06's source x receiver counts in the dict-of-dicts form, or None."""
    rule = _rule(report, "FMFL-P06")
    if rule is None:
        return None
    subjects = sorted(rule.metrics, key=lambda s: (s != "federation", s))
    for subject in subjects:
        raw = rule.metrics[subject].get("leakage_matrix")
        matrix = _as_matrix(raw)
        if matrix:
            return matrix
    return None


def leakage_axes(
    report: AuditReport, matrix: Mapping[str, Mapping[str, float]]
) -> tuple[list[str], list[str]]:
    """(sources, receivers): every probed client (a `client:X` subject of FMFL-P06) on both axes,
    plus any other owner (e.g. the server's sensitive data) as a source row."""
    rule = _rule(report, "FMFL-P06")
    probed = {_client(s) for s in (rule.metrics if rule else {}) if s.startswith("client:")}
    receivers = sorted(probed | {d for row in matrix.values() for d in row})
    sources = sorted(set(matrix) | probed)
    return sources, receivers


def _as_matrix(raw: Any) -> dict[str, dict[str, float]] | None:
    if (
        isinstance(raw, Mapping)
        and isinstance(raw.get("clients"), list)
        and isinstance(raw.get("matrix"), list)
    ):
        names = [str(c) for c in raw["clients"]]
        out: dict[str, dict[str, float]] = {}
        for src, row in zip(names, raw["matrix"], strict=False):
            if not isinstance(row, list):
                return None
            cells = {
                dst: n for dst, v in zip(names, row, strict=False) if (n := _number(v)) is not None
            }
            out[src] = cells
        return out if any(out.values()) else None
    if isinstance(raw, Mapping):
        out = {}
        for src, row in raw.items():
            if not isinstance(row, Mapping):
                return None
            out[str(src)] = {str(dst): n for dst, v in row.items() if (n := _number(v)) is not None}
        # Rows without a single numeric cell are not a matrix that can be drawn.
        return out if any(out.values()) else None
    return None


def fairness_panels(report: AuditReport) -> list[tuple[str, str, list[Bar], Marker | None]]:
    """(model, feature, bars, four-fifths marker) for every FMFL-F03 feature with groups."""
    rule = _rule(report, "FMFL-F03")
    if rule is None:
        return []
    ratio = next(
        (
            f.metric.threshold
            for f in report.findings
            if f.rule_id == "FMFL-F03"
            and f.metric is not None
            and f.metric.name == "demographic_parity_ratio"
            and f.metric.threshold is not None
        ),
        FOUR_FIFTHS,
    )
    panels = []
    for subject, figures in rule.metrics.items():
        for feature, data in figures.items():
            if not isinstance(data, Mapping) or not isinstance(data.get("groups"), Mapping):
                continue
            graded = data.get("graded_groups")
            graded_set = {str(g) for g in graded} if isinstance(graded, list) else None
            rates: dict[str, tuple[float, int | None, bool]] = {}
            for group, row in sorted(data["groups"].items()):
                if not isinstance(row, Mapping):
                    continue
                rate = _number(row.get("selection_rate"))
                if rate is None:
                    continue
                count = _number(row.get("count"))
                is_graded = graded_set is None or str(group) in graded_set
                rates[str(group)] = (rate, None if count is None else int(count), is_graded)
            if not rates:
                continue
            graded_rates = [r for r, _, g in rates.values() if g]
            top = max(graded_rates, default=0.0)
            line = ratio * top if len(graded_rates) >= 2 else None
            bars = []
            for group, (rate, count, is_graded) in rates.items():
                n = "" if count is None else f", n={count}"
                if not is_graded:
                    color, note = NO_GRADE_COLOR, f"{rate:.2f}{n} (not graded)"
                elif line is not None and rate < line:
                    color, note = "#c62828", f"{rate:.2f}{n}, below 4/5"
                else:
                    color, note = "#4e79a7", f"{rate:.2f}{n}"
                # "0" and "1" mean nothing alone: name the feature with the group.
                bars.append(Bar(f"{feature}={group}", rate, color, note))
            marker = Marker(line, f"{ratio:g} × max = {line:.2f}") if line is not None else None
            panels.append((subject, str(feature), bars, marker))
    return panels


def contribution_bars(report: AuditReport) -> tuple[list[Bar], Marker | None, dict[str, str]]:
    """FMFL-F06 weight share per client coloured by tier, the equal-share line, tier colours."""
    rule = _rule(report, "FMFL-F06")
    if rule is None:
        return [], None, {}
    bars = []
    tiers: dict[str, str] = {}
    for subject, figures in rule.metrics.items():
        share = _number(figures.get("weight_share"))
        if not subject.startswith("client:") or share is None:
            continue
        tier = str(figures.get("tier") or "undeclared")
        color = TIER_COLOR.get(tier, NO_GRADE_COLOR)
        tiers[tier] = color
        bars.append(Bar(_client(subject), share, color, f"{share:.1%} · {tier}"))
    bars.sort(key=lambda b: (-b.value, b.label))
    marker = Marker(1 / len(bars), f"equal share {1 / len(bars):.1%}") if bars else None
    return bars, marker, dict(sorted(tiers.items()))


# --- page sections --------------------------------------------------------------------------------


def _card(
    name: str,
    grade: Grade | None,
    score: float | None,
    coverage: float,
    extra: str,
    *,
    capped: bool = False,
) -> str:
    color = GRADE_COLOR[grade] if grade else NO_GRADE_COLOR
    letter = grade.value if grade else "n/a"
    score_text = "no rule ran" if score is None else f"score {score:.1f}"
    pct = max(0.0, min(1.0, coverage))
    return (
        f'<div class="card grade-card" data-area="{esc(name)}" data-grade="{esc(letter)}">'
        f'<div class="name">{esc(name)}</div>'
        f'<div class="grade" style="color:{color}">{esc(letter)}</div>'
        f'<div class="score">{esc(score_text)}</div>'
        f'<div class="cov" title="coverage"><span style="width:{pct * 100:.0f}%"></span></div>'
        f'<div class="cov-text">coverage {coverage:.0%}{esc(extra)}</div>'
        + ('<div class="capped">capped: critical finding</div>' if capped else "")
        + "</div>"
    )


def _cards(report: AuditReport) -> str:
    parts = [_card("overall", report.grade, report.score, report.coverage, "")]
    for a in report.areas:
        extra = f" · {a.rules_run}/{a.rules_total} rules ran"
        parts.append(_card(a.name.value, a.grade, a.score, a.coverage, extra, capped=a.capped))
    return '<section class="cards" id="grades">' + "".join(parts) + "</section>"


def _area_chart(areas: Sequence[AreaScore]) -> str:
    bars = []
    for a in areas:
        if a.score is None or a.grade is None:
            bars.append(
                Bar(a.name.value, 0.0, NO_GRADE_COLOR, f"not run · coverage {a.coverage:.0%}")
            )
        else:
            bars.append(
                Bar(
                    a.name.value,
                    a.score,
                    GRADE_COLOR[a.grade],
                    f"{a.grade.value} {a.score:.1f} · cov {a.coverage:.0%}",
                )
            )
    svg = bar_chart(bars, title="Area scores (0-100)", max_value=100.0)
    return _figure(
        "chart-areas", "Area scores", svg, "Bar length is the 0-100 score; colour the grade."
    )


def _legend(colors: Mapping[str, str]) -> str:
    items = "".join(
        f'<span class="key"><i style="background:{esc(c)}"></i>{esc(name)}</span>'
        for name, c in colors.items()
    )
    return f'<div class="legend">{items}</div>'


def _figure(fig_id: str, caption: str, svg: str, note: str = "") -> str:
    p = f"<p>{esc(note)}</p>" if note else ""
    return f'<figure id="{esc(fig_id)}"><figcaption>{esc(caption)}</figcaption>{svg}{p}</figure>'


def _charts(report: AuditReport) -> str:
    figs = [_area_chart(report.areas)]
    rows, colors = pii_rows(report)
    if rows:
        svg = stacked_bar_chart(rows, title="PII entities per client", colors=colors)
        figs.append(
            _figure(
                "chart-pii",
                "PII entities per client (FMFL-P01)",
                svg,
                "Detected entities in each client's synthetic data, by type.",
            )
        )
    matrix = leakage_matrix(report)
    if matrix:
        sources, receivers = leakage_axes(report, matrix)
        svg = heatmap(
            sources,
            receivers,
            # The checker records non-zero cells only; a client's own data is no leak (n/a).
            lambda s, r: None if s == r else matrix.get(s, {}).get(r, 0.0),
            title="Cross-client leakage",
            row_axis="source (data owner)",
            col_axis="receiving client",
        )
        figs.append(
            _figure(
                "chart-leakage",
                "Cross-client leakage (FMFL-P06)",
                svg,
                "Spans of the row client's data found in the column client's synthetic data.",
            )
        )
    for subject, feature, bars, marker in fairness_panels(report):
        svg = bar_chart(
            bars,
            title=f"Selection rate by {feature} ({subject})",
            max_value=1.0,
            marker=marker,
            note_width=200,
        )
        figs.append(
            _figure(
                f"chart-fairness-{subject}-{feature}",
                f"Selection rate by {feature}, {subject} (FMFL-F03)",
                svg,
                "Dashed line: four-fifths of the highest graded group's rate; red bars fall "
                "below it.",
            )
        )
    bars, marker, tiers = contribution_bars(report)
    if bars:
        top = max(max(b.value for b in bars), marker.value if marker else 0.0)
        svg = bar_chart(
            bars,
            title="Aggregation weight share per client",
            max_value=min(1.0, top * 1.15),
            marker=marker,
            note_width=180,
        )
        figs.append(
            _figure(
                "chart-contribution",
                "Contribution share per client by resource tier (FMFL-F06)",
                svg + _legend(tiers),
                "Dashed line: the share every client would hold if weights were equal.",
            )
        )
    return (
        '<section id="charts"><h2>Charts</h2><div class="charts">'
        + "".join(figs)
        + "</div></section>"
    )


def _options(name: str, values: Sequence[str], label: str) -> str:
    opts = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
    return (
        f'<label>{esc(label)} <select id="filter-{name}"><option value="">all</option>'
        f"{opts}</select></label>"
    )


def _finding_row(f: Finding) -> str:
    status = "waived" if f.waived else "open"
    color = SEVERITY_COLOR[f.severity]
    evidence = []
    for e in f.evidence:
        loc = f'<span class="loc">{esc(e.location)}</span>' if e.location else ""
        ex = f' <span class="excerpt">{esc(e.excerpt)}</span>' if e.excerpt else ""
        evidence.append(f"<div>{loc}{ex}</div>")
    waiver = (
        f'<div><span class="badge">waived</span> {esc(f.waiver_reason or "")}</div>'
        if f.waived
        else ""
    )
    return (
        f'<tr class="finding {status}" data-area="{esc(f.area.value)}" '
        f'data-severity="{esc(f.severity.value)}" data-subject="{esc(f.subject)}" '
        f'data-status="{status}" data-fingerprint="{esc(f.fingerprint)}">'
        f'<td><span class="sev" style="background:{color}">{esc(f.severity.value)}</span></td>'
        f'<td>{_rule_ref(f.rule_id)}<div class="meta">{esc(f.threat)}</div></td>'
        f"<td>{esc(f.area.value)}</td>"
        f"<td><code>{esc(f.subject)}</code></td>"
        f'<td>{esc(f.message)}{waiver}<div class="meta">{esc(f.remediation)}</div></td>'
        f"<td>{esc(metric_text(f))}</td>"
        f"<td>{''.join(evidence)}</td>"
        f"<td>{esc(f.confidence.value)}</td>"
        "</tr>"
    )


def _findings(report: AuditReport) -> str:
    findings = report.findings
    areas = sorted({f.area.value for f in findings})
    sevs = [
        s.value
        for s in sorted(Severity, key=lambda s: s.rank, reverse=True)
        if any(f.severity is s for f in findings)
    ]
    subjects = sorted({f.subject for f in findings})
    filters = (
        '<div class="filters">'
        + _options("area", areas, "Area")
        + _options("severity", sevs, "Severity")
        + _options("subject", subjects, "Subject")
        + _options("status", ["open", "waived"], "Status")
        + f'<span id="finding-count">{len(findings)} of {len(findings)} findings shown</span>'
        "</div>"
    )
    head = (
        "<thead><tr><th>Severity</th><th>Rule</th><th>Area</th><th>Subject</th><th>Finding</th>"
        "<th>Metric</th><th>Evidence (redacted)</th><th>Confidence</th></tr></thead>"
    )
    # Most severe first, then the catalog order the report keeps.
    ordered = sorted(findings, key=lambda f: -f.severity.rank)
    body = "".join(_finding_row(f) for f in ordered)
    empty = "" if findings else "<p>No findings.</p>"
    return (
        f'<section id="findings-section"><h2>Findings ({len(findings)})</h2>{filters}'
        f'<table id="findings">{head}<tbody>{body}</tbody></table>{empty}</section>'
    )


def _rules(report: AuditReport) -> str:
    rows = "".join(
        f'<tr data-outcome="{esc(r.outcome.value)}"><td>{_rule_ref(r.id)}</td>'
        f"<td>{esc(r.title)}</td><td>{esc(r.area.value)}</td><td>{esc(r.outcome.value)}</td>"
        f"<td>{r.findings}</td></tr>"
        for r in report.rules
    )
    return (
        '<section id="rules"><h2>Rules</h2><table><thead><tr><th>Rule</th><th>Title</th>'
        "<th>Area</th><th>Outcome</th><th>Findings</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _not_run(report: AuditReport) -> str:
    items = [r for r in report.rules if r.outcome in (Outcome.SKIPPED, Outcome.ERRORED)]
    if not items:
        return ""
    rows = "".join(
        f'<tr class="{esc(r.outcome.value)}"><td><code>{esc(r.id)}</code></td>'
        f"<td>{esc(r.title)}</td><td>{esc(r.outcome.value)}</td>"
        f"<td>{esc(r.skip_reason or r.error or '')}</td></tr>"
        for r in items
    )
    return (
        f'<section id="not-run"><h2>Rules not run ({len(items)})</h2><table><thead><tr>'
        "<th>Rule</th><th>Title</th><th>Outcome</th><th>Reason</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _waivers(report: AuditReport) -> str:
    if not report.waivers:
        return ""
    rows = []
    for w in report.waivers:
        state = (
            '<span class="badge expired">expired</span>'
            if w.expired
            else '<span class="badge">in force</span>'
        )
        rows.append(
            f'<tr class="{"expired" if w.expired else "in-force"}"><td><code>{esc(w.rule)}</code>'
            f"</td><td><code>{esc(w.subject)}</code></td><td>{esc(w.expires.isoformat())} "
            f"{state}</td><td>{w.matched}</td><td>{esc(w.reason)}</td></tr>"
        )
    return (
        f'<section id="waivers"><h2>Waivers ({len(report.waivers)})</h2><table><thead><tr>'
        "<th>Rule</th><th>Subject</th><th>Expires</th><th>Matched</th><th>Reason</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _method_notes(report: AuditReport) -> str:
    notes = method_notes(report)
    if not notes:
        return ""
    items = "".join(f"<li><code>{esc(rid)}</code> {esc(n)}</li>" for rid, n in notes)
    return f'<section id="method-notes"><h2>Method notes</h2><ul>{items}</ul></section>'


def _inputs_and_warnings(report: AuditReport) -> str:
    parts = []
    bad = [s for s in report.inputs if s.malformed]
    if report.inputs:
        rows = "".join(
            f"<tr><td><code>{esc(s.path)}</code></td><td>{s.records}</td><td>{s.malformed}</td>"
            f"<td>{esc('; '.join(f'{i.location}: {i.reason}' for i in s.issues[:3]))}</td></tr>"
            for s in report.inputs
        )
        parts.append(
            f'<section id="inputs"><h2>Inputs read ({len(bad)} with malformed records)</h2>'
            "<table><thead><tr><th>File</th><th>Records</th><th>Malformed</th>"
            f"<th>First issues</th></tr></thead><tbody>{rows}</tbody></table></section>"
        )
    if report.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in report.warnings)
        parts.append(f'<section id="warnings"><h2>Warnings</h2><ul>{items}</ul></section>')
    return "".join(parts)


class HtmlRenderer(Renderer):
    """A single HTML file a reader can open anywhere, offline."""

    def render(self, report: AuditReport) -> str:
        verdict = "passed" if report.gate.passed else "failed"
        reasons = "".join(f"<li>{esc(r)}</li>" for r in report.gate.reasons)
        started = f" · started {esc(report.started_at.isoformat())}" if report.started_at else ""
        title = f"fmfl-audit report: {report.deployment.name}"
        baseline = f" · baseline {esc(report.gate.baseline)}" if report.gate.baseline else ""
        pii = pii_engine(report)
        engine = f'<div class="meta" id="pii-engine">PII engine: {esc(pii)}</div>' if pii else ""
        header = (
            f"<header><h1>{esc(title)}</h1>"
            f"<div>Overall grade <strong>{esc(overall_text(report))}</strong> — gate "
            f'<span class="verdict {verdict}" id="gate">{verdict.upper()}</span>{baseline}</div>'
            f"{f'<ul id=gate-reasons>{reasons}</ul>' if reasons else ''}"
            f"{engine}"
            f'<div class="meta">manifest <code>{esc(report.manifest_path)}</code> sha256 '
            f"<code>{esc(report.manifest_sha256[:12])}</code> · packs "
            f"{esc(', '.join(report.packs))} · seed {report.seed}{started}</div>"
            f"{_cards(report)}</header>"
        )
        body = (
            _charts(report)
            + _findings(report)
            + _waivers(report)
            + _not_run(report)
            + _rules(report)
            + _method_notes(report)
            + _inputs_and_warnings(report)
        )
        footer = (
            f"<footer>{esc(report.tool.name)} {esc(report.tool.version)} · report schema "
            f"{esc(report.schema_version)}</footer>"
        )
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
            f"<body>{header}<main>{body}{footer}</main><script>{SCRIPT}</script></body></html>\n"
        )
