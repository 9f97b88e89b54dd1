"""What ``cardflow fold`` reports, and its renderings: a summary, one card's view, JSON, CSV.

A :class:`Report` holds the selected card states and the counts; the renderers only
format it. Machine formats write each card as :mod:`._cards` encodes it: D1's
camelCase, never the ``_``-prefixed internals of :class:`~cardflow.CardState`.
"""

from __future__ import annotations

import argparse
import csv
import io
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Final

import msgspec

from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._reconcile import ReconcileReason
from .._state import CardState
from .._wire import Operation, wire_time
from ._cards import card_object, csv_columns, encoded_cards

__all__ = [
    "JSON_SEPARATOR",
    "JSON_TAIL",
    "EventLog",
    "Report",
    "Seen",
    "Tally",
    "Totals",
    "card_object",
    "counted",
    "csv_columns",
    "filters_of",
    "json_head",
    "judged_at",
    "write_csv",
    "write_csv_rows",
    "write_json",
    "write_json_cards",
    "write_jsonl",
    "write_summary",
    "write_views",
]

LIST_LIMIT: Final = 20
"""Cards a summary lists by name, at most, before it points to the machine formats."""
EXAMPLES: Final = 5
"""Reconcile candidates an unfiltered summary names as examples."""


_encoder: Final = msgspec.json.Encoder()


# -- what is reported ---------------------------------------------------------------


@dataclass
class Totals:
    """What was read: counted while folding."""

    sources: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    lines: int = 0
    bodies: int = 0
    operations: int = 0
    folded: int = 0
    passed_over: int = 0
    rejected_bodies: int = 0
    rejected_operations: int = 0
    cards: int = 0

    @property
    def rejected(self) -> int:
        return self.rejected_bodies + self.rejected_operations

    def complete(self, cards: int, passed_over: int, added: int) -> Totals:
        """These totals with what a fold knows at its end: cards, operations passed over,
        and of ``added`` (operations handed to it) those folded."""
        self.cards = cards
        self.passed_over = passed_over
        self.folded = added - passed_over
        return self

    def as_object(self) -> dict[str, object]:
        return {
            "sources": self.sources,
            "unreadable": self.unreadable,
            "lines": self.lines,
            "bodies": self.bodies,
            "operations": self.operations,
            "folded": self.folded,
            "passedOver": self.passed_over,
            "rejectedBodies": self.rejected_bodies,
            "rejectedOperations": self.rejected_operations,
            "cards": self.cards,
        }


@dataclass
class Seen:
    """One distinct event of a card watched with ``--card``: where it was first seen."""

    op: Operation
    where: str
    deliveries: int = 1


@dataclass
class EventLog:
    """The distinct events of one watched card, by fingerprint."""

    events: dict[bytes, Seen] = field(default_factory=dict)


@dataclass
class Tally:
    """What a summary says of a list of cards, sorted by id: the counts, and the first few
    cards it names. Tallies of consecutive ranges of cards add up (``+``) to the tally
    of them all, so workers can each count a range.

    ``reasons`` is None when reconciliation was not asked for; else it holds the
    reasons of the cards named (``candidates`` and ``listed``).
    """

    cards: int = 0
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    with_gaps: int = 0
    candidates: int = 0
    """Cards with a reason to reconcile."""
    examples: list[CardState] = field(default_factory=list)
    """The first ``EXAMPLES`` of them."""
    listed: list[CardState] = field(default_factory=list)
    """The first ``LIST_LIMIT`` cards."""
    reasons: dict[str, tuple[ReconcileReason, ...]] | None = None

    @classmethod
    def of(
        cls,
        cards: Sequence[CardState],
        reasons: Mapping[str, tuple[ReconcileReason, ...]] | None,
    ) -> Tally:
        """The tally of ``cards``, with their ``reasons`` when reconciliation was asked."""
        by: dict[str, Counter[str]] = {key: Counter() for key in _COUNTED}
        status, operation_status = by["status"], by["operationStatus"]
        anomalies, gaps, unknown = by["anomalies"], by["gaps"], by["unknownStatuses"]
        with_gaps = 0
        for state in cards:
            status[state.status] += 1
            operation_status[state.operation_status] += 1
            if state.anomalies:
                anomalies.update(state.anomalies)
            if state.gaps:
                gaps.update(state.gaps)
                with_gaps += 1
            if state.unknown_statuses:
                unknown.update(state.unknown_statuses)
        listed = list(cards[:LIST_LIMIT])
        if reasons is None:
            return cls(len(cards), by, with_gaps, listed=listed)
        by["reconcile"] = Counter(r for s in cards for r in reasons.get(s.card_id, ()))
        candidates = [s for s in cards if reasons.get(s.card_id)]
        examples = candidates[:EXAMPLES]
        named = {s.card_id: reasons.get(s.card_id, ()) for s in (*examples, *listed)}
        return cls(len(cards), by, with_gaps, len(candidates), examples, listed, named)

    def __add__(self, other: Tally) -> Tally:
        """The tally of this range of cards followed by ``other``'s."""
        counts = {
            key: self.counts.get(key, Counter()) + other.counts.get(key, Counter())
            for key in {*self.counts, *other.counts}
        }
        reasons = None
        if self.reasons is not None or other.reasons is not None:
            reasons = {**(self.reasons or {}), **(other.reasons or {})}
        return Tally(
            self.cards + other.cards,
            counts,
            self.with_gaps + other.with_gaps,
            self.candidates + other.candidates,
            (self.examples + other.examples)[:EXAMPLES],
            (self.listed + other.listed)[:LIST_LIMIT],
            reasons,
        )


_COUNTED: Final = ("status", "operationStatus", "anomalies", "gaps", "unknownStatuses")


@dataclass
class Report:
    """The selected cards (sorted by id) with their reconcile reasons, and the counts.

    ``reasons`` is None when reconciliation was not asked for (no ``now``). A report
    written in ranges by workers has no ``cards``: its ``tally`` was counted by them.
    """

    totals: Totals
    cards: list[CardState]
    reasons: Mapping[str, tuple[ReconcileReason, ...]] | None
    now: datetime | None
    filters: dict[str, object]
    lifecycle: Lifecycle = D1_LIFECYCLE
    histories: dict[str, EventLog] = field(default_factory=dict)
    tally: Tally | None = None

    def __post_init__(self) -> None:
        if self.tally is None:
            self.tally = Tally.of(self.cards, self.reasons)

    @property
    def filtered(self) -> bool:
        return bool(self.filters)

    @property
    def counted(self) -> Tally:
        assert self.tally is not None  # made in __post_init__
        return self.tally

    def summary_object(self) -> dict[str, object]:
        tally = self.counted
        counts = tally.counts
        status_order = {s: i for i, s in enumerate(self.lifecycle.statuses)}
        out: dict[str, object] = {
            "cards": tally.cards,
            "byStatus": _ordered(counts["status"], status_order),
            "byOperationStatus": dict(sorted(counts["operationStatus"].items())),
            "anomalies": dict(sorted(counts["anomalies"].items())),
            "withGaps": tally.with_gaps,
            "gaps": _ordered(counts["gaps"], status_order),
            "unknownStatuses": dict(sorted(counts["unknownStatuses"].items())),
        }
        if tally.reasons is not None and self.now is not None:
            out["reconcile"] = {
                "now": wire_time(self.now),
                "cards": tally.candidates,
                "byReason": {str(r): n for r, n in sorted(counts["reconcile"].items())},
            }
        return out

    def reasons_of(self, state: CardState) -> tuple[ReconcileReason, ...] | None:
        return None if self.reasons is None else self.reasons.get(state.card_id, ())


def filters_of(args: argparse.Namespace) -> dict[str, object]:
    """The filters ``cardflow fold`` was given (``--card``, ``--status``,
    ``--needs-reconcile``), as the JSON report names them."""
    filters: dict[str, object] = {}
    if args.card:
        filters["card"] = list(args.card)
    if args.status:
        filters["status"] = list(args.status)
    if args.needs_reconcile:
        filters["needsReconcile"] = True
    return filters


def judged_at(args: argparse.Namespace, clock: Callable[[], datetime]) -> datetime | None:
    """When ``cardflow fold`` judges reconciliation: ``--now``, else the clock's time (to
    the second) when the summary or ``--needs-reconcile`` needs one; else never (None)."""
    now: datetime | None = args.now
    if now is None and (args.format == "summary" or args.needs_reconcile):
        now = clock().replace(microsecond=0)
    return now


def _ordered(counter: Mapping[str, int], order: Mapping[str, int]) -> dict[str, int]:
    """Known statuses in lifecycle order, then the others alphabetically."""
    return dict(sorted(counter.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


# -- machine formats ------------------------------------------------------------------


def write_jsonl(report: Report, out: BinaryIO) -> None:
    """One JSON object per card and line."""
    for lines in encoded_cards(report.cards, report.reasons, lines=True):
        out.write(lines)


def write_json(report: Report, out: BinaryIO) -> None:
    """One JSON document: what was read, the filters, the summary, and the cards.

    Streamed: the document as ``msgspec.json.format(..., indent=2)`` lays it out, but
    written a chunk of cards at a time, so the whole document is never in memory.
    """
    if not report.cards:
        out.write(json_head(report, empty=True))
        return
    out.write(json_head(report, empty=False))
    write_json_cards(report.cards, report.reasons, out)
    out.write(JSON_TAIL)


def json_head(report: Report, *, empty: bool) -> bytes:
    """The JSON document up to its list of cards, opened; the whole of it when ``empty``."""
    head = {
        "input": report.totals.as_object(),
        "filters": report.filters,
        "summary": report.summary_object(),
        "cards": [],
    }
    text = msgspec.json.format(_encoder.encode(head), indent=2)
    if empty:
        return text + b"\n"
    # The head ends with the empty list, ``  "cards": []\n}``: open the list instead.
    if not text.endswith(_NO_CARDS):  # pragma: no cover (msgspec's layout changed)
        raise AssertionError(f"unexpected JSON layout: {text[-20:]!r}")
    return text[: -len(_NO_CARDS)] + b"[\n"


def write_json_cards(
    cards: Sequence[CardState],
    reasons: Mapping[str, tuple[ReconcileReason, ...]] | None,
    out: BinaryIO,
) -> None:
    """The cards as the JSON document lays them out, joined by ``JSON_SEPARATOR``
    (none before the first, none after the last)."""
    separator = b""
    for chunk in encoded_cards(cards, reasons, lines=False):
        # A chunk laid out as a list at the top level, then indented to the depth of the
        # cards: its brackets dropped, two more spaces on each line.
        text = msgspec.json.format(chunk, indent=2)
        out.write(separator + b"  " + text[2:-2].replace(b"\n", b"\n  "))
        separator = JSON_SEPARATOR


_NO_CARDS: Final = b"[]\n}"
JSON_SEPARATOR: Final = b",\n"
"""Between two cards of the JSON document."""
JSON_TAIL: Final = b"\n  ]\n}\n"
"""After the last card of the JSON document."""


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def write_csv(report: Report, out: BinaryIO) -> None:
    """A header, then one row per card; nested fields flattened (``shipment.carrier``),
    lists joined with ``;``, absent values empty."""
    write_csv_rows(None, None, out, header=report.reasons is not None)
    write_csv_rows(report.cards, report.reasons, out)


def write_csv_rows(
    cards: Sequence[CardState] | None,
    reasons: Mapping[str, tuple[ReconcileReason, ...]] | None,
    out: BinaryIO,
    *,
    header: bool = False,
) -> None:
    """The CSV rows of ``cards``, with their ``reasons`` when given; or (``cards``
    None) the header row, with the ``reconcile`` column when ``header`` is true."""
    columns = csv_columns()
    if reasons is not None or (cards is None and header):
        columns.append(("reconcile",))
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text, lineterminator="\n")
        if cards is None:
            writer.writerow([".".join(c) for c in columns])
            return
        for state in cards:
            obj = card_object(state, None if reasons is None else reasons.get(state.card_id, ()))
            row = []
            for path in columns:
                value: Any = obj
                for key in path:
                    value = value.get(key) if isinstance(value, dict) else None
                row.append(_cell(value))
            writer.writerow(row)
    finally:
        text.detach()


# -- for people ---------------------------------------------------------------------------


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
