"""Server-rendered inline SVG pictures: ratings with interval bars and heatmaps. No JavaScript, no network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
LOW, MID, HIGH = (59, 76, 192), (247, 247, 247), (180, 4, 38)


def interval_chart(rows: Sequence[dict[str, Any]], *, title: str = "Rating with 95% interval") -> SafeString:
    """Draw one horizontal line per model from its lower to its upper bound, with a dot at its rating."""
    if not rows:
        return mark_safe("")
    label_w, plot_w, row_h, top = 170, 420, 24, 34
    low = min(float(r["lower"]) for r in rows)
    high = max(float(r["upper"]) for r in rows)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return label_w + (value - low) / span * plot_w

    height = top + row_h * len(rows) + 26
    parts = [svg_open(label_w + plot_w + 30, height, title), text(8, 18, title, weight="bold")]
    for i, row in enumerate(rows):
        y = top + i * row_h + row_h / 2
        parts.append(text(label_w - 8, y + 4, str(row["model"]), anchor="end"))
        parts.append(
            f'<line x1="{x(row["lower"]):.1f}" y1="{y:.1f}" x2="{x(row["upper"]):.1f}" y2="{y:.1f}" '
            'stroke="#4c72b0" stroke-width="3" stroke-linecap="round"/>'
        )
        parts.append(
            f'<circle cx="{x(row["rating"]):.1f}" cy="{y:.1f}" r="4.5" fill="#c44e52">'
            f"<title>{escape(row['model'])}: {row['rating']:.1f} "
            f"[{row['lower']:.1f}, {row['upper']:.1f}]</title></circle>"
        )
    axis_y = top + row_h * len(rows) + 14
    for value in (low, (low + high) / 2, high):
        parts.append(text(x(value), axis_y, f"{value:.0f}", anchor="middle"))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def heatmap(
    labels: Sequence[str],
    matrix: Sequence[Sequence[float | None]],
    *,
    title: str,
    counts: Sequence[Sequence[int]] | None = None,
    percent: bool = True,
) -> SafeString:
    """Draw a square matrix of values in [0, 1] as coloured cells (blue low, white 0.5, red high)."""
    if not labels:
        return mark_safe("")
    cell, label_w, top = 44, 160, 130
    n = len(labels)
    # Room for the title and for the last rotated column label.
    width, height = max(label_w + n * cell + 90, 7 * len(title) + 20), top + n * cell + 10
    parts = [svg_open(width, height, title), text(8, 18, title, weight="bold")]
    for j, name in enumerate(labels):
        cx = label_w + j * cell + cell / 2
        parts.append(text(cx, top - 6, name, anchor="start", rotate=f"rotate(-45 {cx:.1f} {top - 6})"))
    for i, name in enumerate(labels):
        y = top + i * cell
        parts.append(text(label_w - 6, y + cell / 2 + 4, name, anchor="end"))
        for j in range(n):
            parts.append(
                heat_cell(label_w + j * cell, y, cell, matrix[i][j], labels[i], labels[j], counts, i, j, percent)
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def heat_cell(
    x: float,
    y: float,
    size: int,
    value: float | None,
    row: str,
    col: str,
    counts: Sequence[Sequence[int]] | None,
    i: int,
    j: int,
    percent: bool,
) -> str:
    """Return one heatmap cell with its value and a tooltip."""
    if value is None:
        return f'<rect x="{x}" y="{y}" width="{size}" height="{size}" fill="#eee" stroke="#fff"/>'
    shown = f"{value * 100:.0f}" if percent else f"{value:.2f}"
    note = f" over {counts[i][j]}" if counts is not None else ""
    ink = "#fff" if abs(value - 0.5) > 0.3 else "#222"
    return (
        f'<rect x="{x}" y="{y}" width="{size}" height="{size}" fill="{colour(value)}" stroke="#fff">'
        f"<title>{escape(row)} vs {escape(col)}: {shown}{'%' if percent else ''}{note}</title></rect>"
        + text(x + size / 2, y + size / 2 + 4, shown, anchor="middle", fill=ink)
    )


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
