"""Server-rendered inline SVG pictures: ratings with interval bars and heatmaps. No JavaScript, no network.

Each picture carries its natural size and a viewBox, and the stylesheet lets it shrink to its box (max-width:
100%), so a phone shows the whole picture rather than a cut slice of it. Titles go in the page's <figcaption>
(where they wrap); the SVG keeps them as its accessible name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.template.defaultfilters import pluralize
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT = 'font-family="system-ui, sans-serif" font-size="13"'
LOW, MID, HIGH = (59, 76, 192), (247, 247, 247), (180, 4, 38)
CHAR_W = 7.2  # rough width of a 13 px character, to size label margins
MAX_LABEL = 28  # characters; longer names are shortened in the picture and given whole in the hover text


def interval_chart(rows: Sequence[dict[str, Any]], *, title: str = "Rating with 95% interval") -> SafeString:
    """Draw one bar per model from its lower to its upper bound, a dot at its rating, and the name above it.

    Names above the bars (not beside them) leave the whole width to the scale, so the chart stays legible when
    it shrinks to a phone's width.
    """
    if not rows:
        return mark_safe("")
    width, pad, row_h = 480, 12, 40
    low = min(float(r["lower"]) for r in rows)
    high = max(float(r["upper"]) for r in rows)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return pad + (value - low) / span * (width - 2 * pad)

    height = row_h * len(rows) + 30
    parts = [svg_open(width, height, title)]
    for i, row in enumerate(rows):
        top = i * row_h
        y = top + 30
        parts.append(
            f'<g class="interval"><title>{escape(row["model"])}: {row["rating"]:.1f} '
            f"(95% interval {row['lower']:.1f} to {row['upper']:.1f})</title>"
            + text(pad, top + 16, short(str(row["model"]), 60))
            + f'<line x1="{x(row["lower"]):.1f}" y1="{y}" x2="{x(row["upper"]):.1f}" y2="{y}" '
            'stroke="#4c72b0" stroke-width="4" stroke-linecap="round"/>'
            f'<circle cx="{x(row["rating"]):.1f}" cy="{y}" r="5" fill="#c44e52"/></g>'
        )
    axis_y = row_h * len(rows) + 22
    for value, anchor in ((low, "start"), ((low + high) / 2, "middle"), (high, "end")):
        parts.append(text(x(value), axis_y, f"{value:.0f}", anchor=anchor, fill="#5b6675"))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def heatmap(
    labels: Sequence[str],
    matrix: Sequence[Sequence[float | None]],
    *,
    title: str,
    counts: Sequence[Sequence[int]] | None = None,
    unit: str = "battle",
    percent: bool = True,
) -> SafeString:
    """Draw a square matrix of values in [0, 1] as coloured cells (blue low, white 0.5, red high).

    Hovering a cell (its value or its colour) names the pair, the value and, given ``counts``, how many
    ``unit``s it rests on.
    """
    if not labels:
        return mark_safe("")
    cell, n = 40, len(labels)
    longest = max(len(short(name)) for name in labels) * CHAR_W
    label_w = longest + 12
    top = longest * 0.71 + 20  # room for the column names, drawn at 45 degrees
    width, height = label_w + n * cell + longest * 0.71 + 10, top + n * cell + 4
    parts = [svg_open(width, height, title)]
    for j, name in enumerate(labels):
        cx = label_w + j * cell + cell / 2
        parts.append(text(cx, top - 6, short(name), rotate=f"rotate(-45 {cx:.1f} {top - 6:.1f})"))
    for i, name in enumerate(labels):
        y = top + i * cell
        parts.append(text(label_w - 6, y + cell / 2 + 4, short(name), anchor="end"))
        for j in range(n):
            count = None if counts is None else counts[i][j]
            pair = (labels[i], labels[j])
            parts.append(heat_cell(label_w + j * cell, y, cell, matrix[i][j], pair, count, unit, percent))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def heat_cell(
    x: float,
    y: float,
    size: int,
    value: float | None,
    pair: tuple[str, str],
    count: int | None,
    unit: str,
    percent: bool,
) -> str:
    """Return one heatmap cell, its value and its hover text (the pair, the value and the count)."""
    row, col = pair
    note = "" if count is None else f" over {count} {unit}{pluralize(count)}"
    rect = f'<rect x="{x:.1f}" y="{y:.1f}" width="{size}" height="{size}"'
    if value is None:
        what = "itself" if row == col else f"{escape(col)}: no data{note}"
        return f'<g class="cell"><title>{escape(row)} vs {what}</title>{rect} fill="#eee" stroke="#fff"/></g>'
    shown = f"{value * 100:.0f}" if percent else f"{value:.2f}"
    ink = "#fff" if abs(value - 0.5) > 0.3 else "#222"
    return (
        f'<g class="cell"><title>{escape(row)} vs {escape(col)}: {shown}{"%" if percent else ""}{note}</title>'
        f'{rect} fill="{colour(value)}" stroke="#fff"/>'
        + text(x + size / 2, y + size / 2 + 4, shown, anchor="middle", fill=ink)
        + "</g>"
    )


def short(name: str, limit: int = MAX_LABEL) -> str:
    """Return a name cut to ``limit`` characters (with an ellipsis) for a label."""
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def colour(value: float) -> str:
    """Return a diverging colour for a value in [0, 1]."""
    v = min(max(value, 0.0), 1.0)
    start, end, t = (LOW, MID, v * 2) if v < 0.5 else (MID, HIGH, (v - 0.5) * 2)
    r, g, b = (round(s + (e - s) * t) for s, e in zip(start, end, strict=True))
    return f"rgb({r},{g},{b})"


def svg_open(width: float, height: float, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" {FONT}>'
    )


def text(
    x: float,
    y: float,
    body: str,
    *,
    anchor: str = "start",
    weight: str = "normal",
    fill: str = "#222",
    rotate: str = "",
) -> str:
    transform = f' transform="{rotate}"' if rotate else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-weight="{weight}" fill="{fill}"{transform}>'
        f"{escape(body)}</text>"
    )
