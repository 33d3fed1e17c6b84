"""Charts as server-rendered SVG: no JavaScript, readable by screen readers, the numbers one click away.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>``; every bar has a
``<title>`` of its own (its label and value, shown as a tooltip). Labels are escaped:
they come from definitions and customers' names. The table of numbers behind a chart is
rendered next to it by the template (``<details>``), from the same series.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = ("#2f6db5", "#e07b39", "#3c9a5f", "#b5443c", "#7d5ba6", "#8c6d3f", "#c45a9a", "#6b7b8c")
WIDTH = 640
BAR = 22
GAP = 8
LABEL_WIDTH = 200


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def bar_chart(title: str, items: Sequence[tuple[str, float]], *, unit: str = "", chart_id: str = "") -> Markup:
    """Horizontal bars, one per ``(label, value)``."""
    top = 8
    height = top + max(1, len(items)) * (BAR + GAP) + 8
    scale = max((v for _, v in items), default=0) or 1
    span = WIDTH - LABEL_WIDTH - 80
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" viewBox="0 0 {WIDTH} {height}" '
             f'width="100%" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-desc">{escape(_describe(items, unit))}</desc>']
    for index, (label, value) in enumerate(items):
        y = top + index * (BAR + GAP)
        width = max(0.0, value / scale * span)
        text = f"{label}: {_number(value)}{unit}"
        parts.append(
            f'<g class="bar"><title>{escape(text)}</title>'
            f'<text x="{LABEL_WIDTH - 6}" y="{y + BAR * 0.7:.1f}" text-anchor="end" font-size="12">'
            f'{escape(_short(label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR}" fill="{PALETTE[0]}"/>'
            f'<text x="{LABEL_WIDTH + width + 4:.1f}" y="{y + BAR * 0.7:.1f}" font-size="12">'
            f'{escape(_number(value))}</text></g>')
    if not items:
        parts.append(f'<text x="{WIDTH / 2}" y="{top + BAR * 0.7}" text-anchor="middle" font-size="12">—</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(title: str, columns: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
                 chart_id: str = "") -> Markup:
    """Stacked columns: one per entry of ``columns`` (e.g. weeks), one colour per series (e.g. group)."""
    height, bottom, left = 260, 50, 36
    plot = height - bottom - 10
    totals = [sum(values[i] for _, values in series) for i in range(len(columns))]
    scale = max(totals, default=0) or 1
    step = (WIDTH - left - 10) / max(1, len(columns))
    described = "; ".join(f"{name}: " + ", ".join(f"{c} {_number(v)}" for c, v in zip(columns, values, strict=True))
                          for name, values in series) or "no data"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" viewBox="0 0 {WIDTH} {height}" '
             f'width="100%" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
             f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-desc">{escape(described)}</desc>',
             f'<text x="4" y="16" font-size="11">{escape(_number(scale))}</text>',
             f'<line x1="{left}" y1="{10 + plot}" x2="{WIDTH - 10}" y2="{10 + plot}" stroke="#888"/>']
    for i, column in enumerate(columns):
        x = left + i * step + step * 0.15
        y = float(10 + plot)
        for n, (name, values) in enumerate(series):
            h = values[i] / scale * plot
            if h <= 0:
                continue
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[n % len(PALETTE)]}"><title>{escape(f"{name}, {column}: {_number(values[i])}")}'
                         f'</title></rect>')
        parts.append(f'<text x="{x + step * 0.35:.1f}" y="{10 + plot + 14}" text-anchor="middle" font-size="10">'
                     f'{escape(column[-3:] if len(columns) > 6 else column)}</text>')
    for n, (name, _values) in enumerate(series):
        parts.append(f'<rect x="{left + n * 120}" y="{height - 18}" width="8" height="8" '
                     f'fill="{PALETTE[n % len(PALETTE)]}"/><text x="{left + n * 120 + 11}" y="{height - 10}" '
                     f'font-size="10">{escape(_short(name, 16))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _describe(items: Sequence[tuple[str, float]], unit: str) -> str:
    return "; ".join(f"{label}: {_number(value)}{unit}" for label, value in items) or "no data"
