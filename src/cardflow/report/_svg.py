"""Hand-written SVG charts: horizontal bars, stacked bars and columns, a histogram, box plots.

Each function returns one ``<svg>`` element as text, sized by a ``viewBox`` so that it
scales with the page. A count drawn on a chart carries ``data-key`` and ``data-n`` (the
same keys as the page's tables), so that tests read what a person reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Final

from ._aggregate import slot

__all__ = [
    "Bar",
    "Box",
    "Segment",
    "boxes",
    "columns",
    "count",
    "hbars",
    "histogram",
    "stacked",
    "status_colors",
]

_PALETTE: Final = (
    "#4e79a7",
    "#a0cbe8",
    "#59a14f",
    "#8cd17d",
    "#f28e2b",
    "#ffbe7d",
    "#e15759",
    "#b07aa1",
    "#2f6b3a",
    "#9c755f",
    "#76b7b2",
    "#edc948",
)
_OTHER: Final = "#9d9d9d"
_FONT: Final = 'font-size="12"'


def status_colors(statuses: Sequence[str], known: Sequence[str]) -> dict[str, str]:
    """A colour per status: the lifecycle's statuses in order, unknown ones grey."""
    at = {s: i for i, s in enumerate(known)}
    return {s: _PALETTE[at[s] % len(_PALETTE)] if s in at else _OTHER for s in statuses}


def count(key: str, n: int, tag: str = "span", extra: str = "") -> str:
    """A count as text a person reads, keyed for tests: ``<span data-key data-n>1,234</span>``."""
    return f'<{tag} data-key="{escape(key)}" data-n="{n}"{extra}>{n:,}</{tag}>'


def _f(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}"'
        f' xmlns="http://www.w3.org/2000/svg" {_FONT}>' + "".join(body) + "</svg>"
    )


def _nice(top: int) -> int:
    """A round number at or above ``top`` for an axis: 1, 2 or 5 times a power of ten."""
    if top <= 1:
        return 1
    power: int = 10 ** int(math.log10(top))
    for step in (1, 2, 5, 10):
        if step * power >= top:
            return step * power
    return 10 * power


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label, its count, its colour, and the key of the count."""

    label: str
    n: int
    color: str
    key: str


def hbars(bars: Sequence[Bar], label: str, total: int) -> str:
    """Horizontal bars, one per row, each with its count and share of ``total``."""
    width, left, right, row = 760, 210, 130, 24
    plot = width - left - right
    top = max((b.n for b in bars), default=0) or 1
    body: list[str] = []
    for i, bar in enumerate(bars):
        y = i * row
        w = plot * bar.n / top
        share = f" ({bar.n / total:.1%})" if total else ""
        body.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{escape(bar.label)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{_f(w)}" height="{row - 8}" fill="{bar.color}">'
            f"<title>{escape(bar.label)}: {bar.n:,}{share}</title></rect>"
            f'<text x="{_f(left + w + 6)}" y="{y + 16}">'
            f'{count(bar.key, bar.n, "tspan")}<tspan fill="#666">{share}</tspan></text>'
        )
    return _svg(width, max(row * len(bars), row), label, body)


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a stacked bar."""

    label: str
    n: int
    color: str


def stacked(rows: Sequence[tuple[str, str, Sequence[Segment]]], label: str) -> str:
    """Horizontal stacked bars: (row label, key of the row's total, its segments)."""
    width, left, right, row = 760, 210, 80, 26
    plot = width - left - right
    totals = [sum(s.n for s in segments) for _, _, segments in rows]
    top = max(totals, default=0) or 1
    body: list[str] = []
    for i, ((name, key, segments), total) in enumerate(zip(rows, totals, strict=True)):
        y = i * row
        body.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{escape(name)}</text>')
        x = float(left)
        for seg in segments:
            if not seg.n:
                continue
            w = plot * seg.n / top
            body.append(
                f'<rect x="{_f(x)}" y="{y + 4}" width="{_f(w)}" height="{row - 8}"'
                f' fill="{seg.color}"><title>{escape(name)}, {escape(seg.label)}:'
                f" {seg.n:,}</title></rect>"
            )
            x += w
        body.append(f'<text x="{_f(x + 6)}" y="{y + 17}">{count(key, total, "tspan")}</text>')
    return _svg(width, max(row * len(rows), row), label, body)


_LABELS: Final = {"day": "%d %b", "week": "%d %b %Y", "month": "%b %Y", "year": "%Y"}


def columns(
    starts: Mapping[date, Mapping[str, int]],
    period: str,
    colors: Mapping[str, str],
    label: str,
) -> str:
    """Stacked columns, one per ``period`` (``data-day``: its first day), one segment per
    status (``data-status``); a period without cards is an empty slot."""
    width, height, left, bottom, top_pad = 960, 260, 56, 34, 8
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    ordered = sorted(starts)
    if not ordered:
        return _svg(width, 40, label, ['<text x="10" y="24">no cards</text>'])
    first = slot(ordered[0], period)
    span = slot(ordered[-1], period) - first + 1
    step = plot_w / span
    tick = _nice(math.ceil(max(sum(c.values()) for c in starts.values()) / 4))
    top = 4 * tick
    body: list[str] = [f'<g data-period="{escape(period)}"></g>']
    for value in range(0, top + 1, tick):
        y = top_pad + plot_h - plot_h * value / top
        body.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{_f(y)}" y2="{_f(y)}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{_f(y + 4)}" text-anchor="end" fill="#666">{value:,}</text>'
        )
    for day in ordered:
        counts = starts[day]
        total = sum(counts.values())
        x = left + step * (slot(day, period) - first)
        parts = "".join(f"\n{escape(s or '(no status)')}: {n:,}" for s, n in counts.items())
        name = escape(str(day) if period == "day" else f"{period} of {day}")
        body.append(
            f'<g data-day="{day.isoformat()}"><title>{name}: {total:,} cards{parts}</title>'
        )
        y = float(top_pad + plot_h)
        for status, n in counts.items():
            h = plot_h * n / top
            y -= h
            body.append(
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(step - 0.4, 0.6))}"'
                f' height="{_f(h)}" fill="{colors[status]}" data-status="{escape(status)}"'
                f' data-n="{n}"/>'
            )
        body.append("</g>")
    if period == "day" and span > 62:  # a label per month, at its first day
        marks = sorted({d.replace(day=1) for d in ordered})
        marks, fmt = marks[:: max(1, math.ceil(len(marks) / 12))], "%b %Y"
    else:
        marks, fmt = ordered[:: max(1, math.ceil(len(ordered) / 10))], _LABELS[period]
    for mark in marks:
        x = left + step * max(slot(mark, period) - first, 0)
        body.append(f'<text x="{_f(x)}" y="{height - 12}" fill="#666">{mark.strftime(fmt)}</text>')
    return _svg(width, height, label, body)


def histogram(bins: Sequence[tuple[str, int, str]], label: str) -> str:
    """Vertical bars of equal width: (bin label, count, extra attributes of the count)."""
    width, height, bottom, top_pad = 960, 220, 40, 22
    plot_h = height - bottom - top_pad
    slot = width / max(len(bins), 1)
    top = max((n for _, n, _ in bins), default=0) or 1
    body: list[str] = []
    for i, (name, n, attributes) in enumerate(bins):
        h = plot_h * n / top
        x = i * slot
        y = top_pad + plot_h - h
        body.append(
            f'<rect x="{_f(x + 6)}" y="{_f(y)}" width="{_f(slot - 12)}" height="{_f(h)}"'
            f' fill="{_PALETTE[6] if i else _PALETTE[0]}"><title>{escape(name)}: {n:,}'
            "</title></rect>"
            f'<text x="{_f(x + slot / 2)}" y="{_f(y - 6)}" text-anchor="middle">'
            f"{count('late:' + name, n, 'tspan', attributes)}</text>"
            f'<text x="{_f(x + slot / 2)}" y="{height - 20}" text-anchor="middle"'
            f' fill="#444">{escape(name)}</text>'
        )
    body.append(
        f'<text x="{width / 2}" y="{height - 4}" text-anchor="middle" fill="#666">'
        "days past the due date</text>"
    )
    return _svg(width, height, label, body)


@dataclass(frozen=True, slots=True)
class Box:
    """One row of box plots: a label and five numbers (least, quartiles, greatest)."""

    label: str
    five: tuple[int, int, int, int, int]


def boxes(rows: Sequence[Box], label: str, unit: str) -> str:
    """Horizontal box plots on one shared axis of whole ``unit``."""
    width, left, right, row, axis = 760, 210, 30, 28, 30
    plot = width - left - right
    low = min((b.five[0] for b in rows), default=0)
    high = max((b.five[4] for b in rows), default=1)
    if high == low:
        high = low + 1

    def x(value: int) -> str:
        return _f(left + plot * (value - low) / (high - low))

    body: list[str] = []
    for i, box in enumerate(rows):
        y = i * row
        least, lower, median, upper, greatest = box.five
        mid = y + row / 2
        body.append(
            f"<g><title>{escape(box.label)}: least {least}, quartiles {lower}, {median},"
            f" {upper}, greatest {greatest} {unit}</title>"
            f'<text x="{left - 8}" y="{_f(mid + 4)}" text-anchor="end">{escape(box.label)}</text>'
            f'<line x1="{x(least)}" x2="{x(greatest)}" y1="{_f(mid)}" y2="{_f(mid)}"'
            ' stroke="#555"/>'
            f'<rect x="{x(lower)}" y="{y + 6}" width="{_f(float(x(upper)) - float(x(lower)))}"'
            f' height="{row - 12}" fill="{_PALETTE[1]}" stroke="#555"/>'
            f'<line x1="{x(median)}" x2="{x(median)}" y1="{y + 4}" y2="{y + row - 4}"'
            ' stroke="#111" stroke-width="2"/></g>'
        )
    base = len(rows) * row
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{base}" y2="{base}" stroke="#999"/>')
    step = max(1, _nice(high - low) // 10)
    for value in range(low - low % step, high + 1, step):
        if value >= low:
            body.append(
                f'<text x="{x(value)}" y="{base + 16}" text-anchor="middle"'
                f' fill="#666">{value}</text>'
            )
    body.append(
        f'<text x="{left + plot / 2}" y="{base + axis - 2}" text-anchor="middle"'
        f' fill="#666">{escape(unit)}</text>'
    )
    return _svg(width, base + axis + 4, label, body)
