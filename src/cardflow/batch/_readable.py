"""The report of a fold for people (``cardflow fold``'s summary format): the summary of
a :class:`Report`, and the whole view of each watched card, as text lines."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import BinaryIO

from .._lifecycle import Lifecycle
from .._state import CardState
from .._wire import Operation, wire_time
from ._cards import card_object
from ._report import LIST_LIMIT, Report, Totals

__all__ = ["counted", "summary_lines", "write_summary", "write_views"]


def _n(count: int) -> str:
    return f"{count:,}"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 card``, ``2,000 cards``."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def _table(rows: Iterable[tuple[str, int]], total: int, indent: str = "  ") -> list[str]:
    rows = list(rows)
    if not rows:
        return [f"{indent}none"]
    width = max(len(label) for label, _ in rows)
    digits = max(len(_n(n)) for _, n in rows)
    out = []
    for label, count in rows:
        share = f"  {count / total:6.1%}" if total else ""
        out.append(f"{indent}{label:<{width}}  {_n(count):>{digits}}{share}")
    return out


def _label(status: str) -> str:
    return status or "(no status)"


def write_summary(report: Report, out: BinaryIO) -> None:
    """The readable summary: cards by status, anomalies, gaps, reconcile candidates, totals."""
    out.write("\n".join(summary_lines(report)).encode() + b"\n")


def summary_lines(report: Report) -> list[str]:
    """The lines of :func:`write_summary`."""
    totals = report.totals
    tally = report.counted
    counts = tally.counts
    n = tally.cards
    lines: list[str] = []
    if report.filtered:
        lines.append(f"{_n(n)} of {counted(totals.cards, 'card')} {_describe(report.filters)}.")
    else:
        lines.append(
            f"{counted(n, 'card')}, folded from {counted(totals.folded, 'PRODUCE operation')}."
        )
    summary = report.summary_object()
    by_status = typing.cast("dict[str, int]", summary["byStatus"])
    lines += ["", "Cards by status", *_table(((_label(s), c) for s, c in by_status.items()), n)]
    lines += [
        "",
        "Operation status",
        *_table(((_label(s), c) for s, c in sorted(counts["operationStatus"].items())), n),
    ]
    lines += ["", "Anomalies (cards)", *_table(sorted(counts["anomalies"].items()), 0)]
    with_gaps = tally.with_gaps
    gaps = typing.cast("dict[str, int]", summary["gaps"])
    lines += [
        "",
        f"Lost notifications: {counted(with_gaps, 'card')} with gaps"
        " (statuses passed but never notified)",
        *(_table(((f"{s} never notified", c) for s, c in gaps.items()), 0) if gaps else []),
    ]
    if counts["unknownStatuses"]:
        lines += [
            "",
            "Unknown statuses (cards)",
            *_table(sorted(counts["unknownStatuses"].items()), 0),
        ]
    if tally.reasons is not None and report.now is not None:
        candidates = tally.candidates
        as_of = wire_time(report.now)
        lines += [
            "",
            f"Reconcile candidates as of {as_of}: {counted(candidates, 'card')}",
            *(
                _table(((str(r), c) for r, c in sorted(counts["reconcile"].items())), 0)
                if candidates
                else []
            ),
        ]
        if candidates and not report.filtered:
            lines.append("  for example:")
            lines += _card_rows(report, tally.examples, indent="    ")
            lines.append("  all of them: run again with --needs-reconcile --format jsonl (or csv)")
    if report.filtered and n:
        lines += ["", "Cards", *_card_rows(report, tally.listed, indent="  ")]
        if n > LIST_LIMIT:
            lines.append(
                f"  ... and {_n(n - LIST_LIMIT)} more: run again with --format jsonl for all"
            )
    lines += ["", *_totals_lines(totals)]
    return lines


def _describe(filters: Mapping[str, object]) -> str:
    """The filters in words: ``with status A or B, needing reconciliation``."""
    parts = []
    for key, value in filters.items():
        if key == "status" and isinstance(value, list):
            parts.append("with status " + " or ".join(map(_label, value)))
        elif key == "card" and isinstance(value, list):
            parts.append("with id " + " or ".join(value))
        elif key == "needsReconcile":
            parts.append("needing reconciliation")
    return ", ".join(parts)


def _card_rows(report: Report, states: Sequence[CardState], indent: str) -> list[str]:
    rows = []
    for s in states:
        reasons = report.reasons_of(s)
        extra = " ".join(reasons) if reasons else ""
        rows.append((s.card_id, _label(s.status), s.operation_status, extra))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [
        f"{indent}{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip()
        for a, b, c, d in rows
    ]


def _totals_lines(totals: Totals) -> list[str]:
    sources = totals.sources
    if not sources and not totals.unreadable:  # fold --db with no input: only a report
        return [
            f"Read no input: reported from the store's {counted(totals.cards, 'card')},"
            f" folded from {counted(totals.folded, 'distinct stored event')}."
        ]
    where = sources[0] if len(sources) == 1 else counted(len(sources), "source")
    lines = [
        f"Read {counted(totals.lines, 'line')} from {where}:"
        f" {counted(totals.bodies, 'body', 'bodies')}, {counted(totals.operations, 'operation')}.",
        f"Folded {counted(totals.folded, 'PRODUCE operation')} into"
        f" {counted(totals.cards, 'card')}; passed over {_n(totals.passed_over)} of other types.",
    ]
    if totals.rejected:
        lines.append(
            f"Rejected {counted(totals.rejected_bodies, 'body', 'bodies')} and"
            f" {counted(totals.rejected_operations, 'operation')} (listed on stderr)."
        )
    else:
        lines.append("Rejected nothing.")
    if totals.unreadable:
        lines.append(f"Could not read: {', '.join(totals.unreadable)}.")
    return lines


def write_views(report: Report, out: BinaryIO) -> None:
    """The whole view of each card watched with ``--card``: every field, every event."""
    blocks = [_view(report, state) for state in report.cards]
    out.write("\n\n".join("\n".join(b) for b in blocks).encode() + b"\n")


def _view(report: Report, state: CardState) -> list[str]:
    obj = card_object(state)
    lifecycle = report.lifecycle
    lines = [f"Card {state.card_id}"]
    rows: list[tuple[str, str]] = []
    for key, value in obj.items():
        if key == "cardId" or value in (None, []):
            continue
        if key == "shipment":
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        if key == "status" and state.status in lifecycle.statuses:
            shown += f"  ({lifecycle.describe(state.status)})"
        rows.append((key, shown))
    if not state.anomalies:
        rows.append(("anomalies", "none"))
    if not state.gaps and state.observed:
        rows.append(("gaps", "none"))
    shipment = obj.get("shipment")
    if isinstance(shipment, dict):
        rows += [(f"shipment.{k}", str(v)) for k, v in _flatten(shipment)]
    reasons = report.reasons_of(state)
    if reasons is not None and report.now is not None:
        rows.append(
            (
                "reconcile",
                f"{' '.join(reasons) or 'none'} (as of {wire_time(report.now)})",
            )
        )
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    history = report.histories.get(state.card_id)
    if history is not None and history.events:
        events = sorted(history.events.values(), key=lambda e: _event_order(e.op, lifecycle))
        delivered = sum(e.deliveries for e in events)
        lines += ["", f"  Events ({_n(len(events))} distinct, {_n(delivered)} delivered):"]
        table = []
        for e in events:
            op = e.op
            status = op.details.status if op.details is not None else None
            kind = status or "(no status)" if op.operation == "PRODUCE" else op.operation
            times = "" if e.deliveries == 1 else f"x{e.deliveries}"
            table.append(
                (wire_time(op.start_time), op.operation_id, kind, op.status, times, e.where)
            )
        widths = [max(len(r[i]) for r in table) for i in range(5)]
        lines += [
            "    "
            + "  ".join(f"{c:<{w}}" for c, w in zip(r[:5], widths, strict=True))
            + "  "
            + r[5]
            for r in table
        ]
    return lines


def _flatten(obj: Mapping[str, object], prefix: str = "") -> Iterator[tuple[str, object]]:
    for key, value in obj.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _event_order(op: Operation, lifecycle: Lifecycle) -> tuple[datetime, str, int, str, datetime]:
    status = op.details.status if op.details is not None else None
    shipment = op.details.shipment if op.details is not None else None
    updated = shipment.last_updated_at if shipment is not None else None
    rank = lifecycle.ranks.get(status, -1) if status else -2
    return (op.start_time, op.operation_id, rank, op.status, updated or op.start_time)
