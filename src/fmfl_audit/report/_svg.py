"""Small inline-SVG chart helpers for the HTML report (no plotting library, no network, no fonts).

Hand-written because the report must be one self-contained, deterministic file: the plotting
libraries that emit SVG (matplotlib, plotly, altair) either embed fonts and ids that change
between runs or need JavaScript from a CDN, and each is a heavy dependency for five bar charts
and a heatmap.
Every text that reaches the markup goes through `html.escape`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def esc(value: object) -> str:
    """Text made safe for HTML and SVG content and attribute values."""
    return html.escape(str(value), quote=True)


def _num(x: float) -> str:
    """Coordinates with at most one decimal, so the markup is stable and small."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Bar:
    """One bar: label on the left, value, fill colour, and the text printed after the bar."""

    label: str
    value: float
    color: str
    note: str = ""
    tooltip: str = ""


@dataclass(frozen=True)
class Marker:
    """A vertical reference line across a bar chart (e.g. the four-fifths threshold)."""

    value: float
    label: str
    color: str = "#c62828"


@dataclass(frozen=True)
class Segment:
    """One part of a stacked bar."""

    name: str
    value: float


@dataclass(frozen=True)
class StackedRow:
    """A stacked bar: its label and its segments."""

    label: str
    segments: tuple[Segment, ...] = field(default_factory=tuple)


def _svg_open(width: float, height: float, title: str, css_class: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{esc(css_class)}" role="img" '
        f'width="{_num(width)}" height="{_num(height)}" viewBox="0 0 {_num(width)} '
        f'{_num(height)}" style="{FONT};font-size:12px;max-width:100%;height:auto">',
        f"<title>{esc(title)}</title>",
    ]


def _clip(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    max_value: float,
    marker: Marker | None = None,
    width: int = 620,
    label_width: int = 170,
    note_width: int = 150,
    bar_height: int = 20,
    gap: int = 8,
    css_class: str = "chart bar-chart",
) -> str:
    """Horizontal bars from 0 to `max_value`, one row each, with an optional reference line."""
    top = 22 if marker is not None else 6
    plot_w = width - label_width - note_width
    height = top + len(bars) * (bar_height + gap) + 4
    scale = plot_w / max_value if max_value > 0 else 0.0
    out = _svg_open(width, height, title, css_class)
    for i, b in enumerate(bars):
        y = top + i * (bar_height + gap)
        w = max(0.0, min(b.value, max_value)) * scale
        tip = f"<title>{esc(b.tooltip or f'{b.label}: {b.note}')}</title>"
        out.append(
            f'<text x="{label_width - 6}" y="{_num(y + bar_height * 0.7)}" text-anchor="end">'
            f"{esc(_clip(b.label, 26))}</text>"
        )
        out.append(
            f'<rect x="{label_width}" y="{y}" width="{_num(plot_w)}" height="{bar_height}" '
            'fill="#f1f3f5"/>'
        )
        out.append(
            f'<rect class="bar" x="{label_width}" y="{y}" width="{_num(w)}" '
            f'height="{bar_height}" fill="{esc(b.color)}">{tip}</rect>'
        )
        out.append(
            f'<text x="{_num(label_width + plot_w + 6)}" y="{_num(y + bar_height * 0.7)}">'
            f"{esc(b.note)}</text>"
        )
    if marker is not None and max_value > 0:
        x = label_width + min(max(marker.value, 0.0), max_value) * scale
        bottom = top + len(bars) * (bar_height + gap) - gap + 2
        out.append(
            f'<line class="marker" x1="{_num(x)}" y1="{top - 4}" x2="{_num(x)}" '
            f'y2="{_num(bottom)}" stroke="{esc(marker.color)}" stroke-width="2" '
            'stroke-dasharray="5 3"/>'
        )
        out.append(
            f'<text x="{_num(x)}" y="12" text-anchor="middle" fill="{esc(marker.color)}">'
            f"{esc(marker.label)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def stacked_bar_chart(
    rows: Sequence[StackedRow],
    *,
    title: str,
    colors: Mapping[str, str],
    width: int = 620,
    label_width: int = 170,
    note_width: int = 60,
    bar_height: int = 20,
    gap: int = 8,
) -> str:
    """Horizontal stacked bars (segments in `colors` order) with a legend underneath."""
    plot_w = width - label_width - note_width
    totals = [sum(s.value for s in r.segments) for r in rows]
    top = max(totals, default=0.0)
    scale = plot_w / top if top > 0 else 0.0
    legend_rows = (len(colors) + 2) // 3
    height = 6 + len(rows) * (bar_height + gap) + 8 + legend_rows * 18
    out = _svg_open(width, height, title, "chart stacked-chart")
    for i, (row, total) in enumerate(zip(rows, totals, strict=True)):
        y = 6 + i * (bar_height + gap)
        out.append(
            f'<text x="{label_width - 6}" y="{_num(y + bar_height * 0.7)}" text-anchor="end">'
            f"{esc(_clip(row.label, 26))}</text>"
        )
        x = float(label_width)
        by_name = {s.name: s.value for s in row.segments}
        for name, color in colors.items():
            v = by_name.get(name, 0.0)
            if v <= 0:
                continue
            w = v * scale
            out.append(
                f'<rect class="bar" x="{_num(x)}" y="{y}" width="{_num(w)}" height="{bar_height}" '
                f'fill="{esc(color)}"><title>{esc(f"{row.label}: {name} {v:g}")}</title></rect>'
            )
            x += w
        out.append(
            f'<text x="{_num(x + 6)}" y="{_num(y + bar_height * 0.7)}">{esc(f"{total:g}")}</text>'
        )
    y0 = 6 + len(rows) * (bar_height + gap) + 8
    col_w = (width - 20) / 3
    for j, (name, color) in enumerate(colors.items()):
        lx = 10 + (j % 3) * col_w
        ly = y0 + (j // 3) * 18
        out.append(f'<rect x="{_num(lx)}" y="{ly}" width="10" height="10" fill="{esc(color)}"/>')
        out.append(f'<text x="{_num(lx + 14)}" y="{ly + 9}">{esc(_clip(name, 28))}</text>')
    out.append("</svg>")
    return "".join(out)


def _heat(value: float, top: float) -> str:
    """White for 0 to deep red for the largest cell."""
    t = 0.0 if top <= 0 else max(0.0, min(1.0, value / top))
    r = round(255 - t * (255 - 183))
    g = round(255 - t * (255 - 28))
    b = round(255 - t * (255 - 28))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    rows: Sequence[str],
    cols: Sequence[str],
    value: Callable[[str, str], float | None],
    *,
    title: str,
    row_axis: str,
    col_axis: str,
    cell: int = 46,
    label_width: int = 150,
) -> str:
    """A matrix of coloured cells with the count printed in each; None cells are hatched grey."""
    head = 84
    width = label_width + cell * len(cols) + 20
    height = head + cell * len(rows) + 30
    values = [[value(r, c) for c in cols] for r in rows]
    top = max((v for row in values for v in row if v is not None), default=0.0)
    out = _svg_open(width, height, title, "chart heatmap")
    out.append(
        f'<text x="{label_width + cell * len(cols) / 2:.1f}" y="14" text-anchor="middle" '
        f'font-weight="600">{esc(col_axis)}</text>'
    )
    for j, c in enumerate(cols):
        x = label_width + j * cell + cell / 2
        out.append(
            f'<text x="{_num(x)}" y="{head - 6}" transform="rotate(-40 {_num(x)} {head - 6})">'
            f"{esc(_clip(c, 18))}</text>"
        )
    for i, r in enumerate(rows):
        y = head + i * cell
        out.append(
            f'<text x="{label_width - 6}" y="{_num(y + cell / 2 + 4)}" text-anchor="end">'
            f"{esc(_clip(r, 22))}</text>"
        )
        for j, c in enumerate(cols):
            v = values[i][j]
            x = label_width + j * cell
            fill = "#e9ecef" if v is None else _heat(v, top)
            tip = f"{r} -> {c}: {'n/a' if v is None else f'{v:g}'}"
            out.append(
                f'<rect class="cell" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{fill}" stroke="#dee2e6"><title>{esc(tip)}</title></rect>'
            )
            if v is not None:
                ink = "#ffffff" if top > 0 and v / top > 0.55 else "#212529"
                out.append(
                    f'<text x="{_num(x + cell / 2 - 1)}" y="{_num(y + cell / 2 + 3)}" '
                    f'text-anchor="middle" fill="{ink}">{esc(f"{v:g}")}</text>'
                )
    out.append(
        f'<text x="8" y="{_num(head + cell * len(rows) + 20)}" font-weight="600">'
        f"{esc(row_axis)} (rows)</text>"
    )
    out.append("</svg>")
    return "".join(out)
