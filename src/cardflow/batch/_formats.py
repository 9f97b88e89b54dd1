"""The machine formats of a fold's cards: JSON Lines, one JSON document, CSV.

Each card is written as :mod:`._cards` encodes it: D1's camelCase, never the
``_``-prefixed internals of :class:`~cardflow.CardState`. :func:`write_jsonl` and
:func:`write_csv` are public (``cardflow.batch``): they take any iterable of states,
a chunk at a time. The JSON document and the CSV also come in pieces (head, cards,
tail) so that workers can each write a range of the cards.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Final

import msgspec

from .._reconcile import ReconcileReason
from .._state import CardState
from ._cards import CHUNK, card_object, csv_columns, encoded_cards
from ._report import Report

__all__ = [
    "JSON_SEPARATOR",
    "JSON_TAIL",
    "json_head",
    "write_csv",
    "write_csv_rows",
    "write_json",
    "write_json_cards",
    "write_jsonl",
]

_encoder: Final = msgspec.json.Encoder()


def _chunks(states: Iterable[CardState]) -> Iterator[Sequence[CardState]]:
    if isinstance(states, Sequence):
        yield states  # encoded_cards and the CSV writer go a chunk at a time themselves
        return
    it = iter(states)
    while chunk := list(itertools.islice(it, CHUNK)):
        yield chunk


def write_jsonl(
    states: Iterable[CardState],
    out: BinaryIO,
    *,
    reasons: Mapping[str, tuple[ReconcileReason, ...]] | None = None,
) -> None:
    """Write one JSON object per card and line to ``out``: every public field of
    :class:`~cardflow.CardState` in order, under its camelCase name (the object of
    :func:`cardflow.json_view`), times spelled as D1 spells them; with ``reasons``, a
    ``reconcile`` list in each (empty for a card it lacks)."""
    for chunk in _chunks(states):
        out.writelines(encoded_cards(chunk, reasons, lines=True))


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


def write_csv(
    states: Iterable[CardState],
    out: BinaryIO,
    *,
    reasons: Mapping[str, tuple[ReconcileReason, ...]] | None = None,
) -> None:
    """Write a header, then one row per card, to ``out`` (UTF-8): the public fields as
    :func:`write_jsonl` writes them, nested fields flattened (``shipment.carrier``),
    lists joined with ``;``, absent values empty; with ``reasons``, a last column
    ``reconcile``."""
    write_csv_rows(None, None, out, header=reasons is not None)
    for chunk in _chunks(states):
        write_csv_rows(chunk, reasons, out)


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
