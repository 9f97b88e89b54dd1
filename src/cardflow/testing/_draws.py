"""The atoms of the strategies: argument checks, card and operation ids, start times.

Identifiers are drawn one choice each (not one per character), and distinct ones
without rejection (:class:`Increasing`); start times come in several offsets and
precisions, so that the text of two timestamps orders unlike their instants.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from hypothesis import strategies as st

from .._lifecycle import Lifecycle

__all__ = [
    "UUID_BITS",
    "Increasing",
    "card_id_of",
    "card_ids",
    "check",
    "check_count",
    "check_lifecycle",
    "next_start",
    "operation_ids",
    "start_time",
    "uuid_of",
]

_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)


def check(condition: bool, message: str) -> None:
    """Refuse a strategy's argument (``ValueError``) unless ``condition`` holds."""
    if not condition:
        raise ValueError(message)


def check_count(name: str, value: object, minimum: int) -> None:
    """``value`` must be an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    check(value >= minimum, f"{name} must be at least {minimum}, got {value}")


def check_lifecycle(lifecycle: object) -> Lifecycle:
    """``lifecycle``, once checked to be a :class:`~cardflow.Lifecycle`."""
    check(isinstance(lifecycle, Lifecycle), f"lifecycle must be a Lifecycle, got {lifecycle!r}")
    assert isinstance(lifecycle, Lifecycle)
    return lifecycle


def card_id_of(number: int) -> str:
    """The card identifier numbered ``number`` (below ``2**64``), one per number."""
    digits = f"{number:016x}"
    return "-".join(digits[i : i + 4] for i in range(0, 16, 4))


def card_ids() -> st.SearchStrategy[str]:
    """Card identifiers shaped like D1's (``271b-6e47-8ec3-7f3f``); shrink to all zeros.

    One choice per identifier (not one per character): generation and shrinking of
    whole histories stay fast.
    """
    return st.integers(0, 2**64 - 1).map(card_id_of)


class Increasing:
    """Distinct integers drawn one at a time, each above the one before: running sums
    of positive steps below ``step``. Neither generation nor shrinking ever rejects a
    draw, and they shrink towards 0, 1, 2, ... Up to ``bound // step`` of them stay
    below ``bound``."""

    def __init__(self, draw: st.DrawFn, step: int) -> None:
        self._draw = draw
        self._step = step
        self._last = -1

    def next(self) -> int:
        self._last += 1 + self._draw(st.integers(0, self._step - 2))
        return self._last


UUID_BITS: Final = 122
"""The bits of a version 4 UUID that are not its version and variant."""


def uuid_of(number: int) -> str:
    """The version 4 UUID numbered ``number`` (below ``2**122``), one per number.

    The number's bits go around the version and variant bits, which ``uuid.UUID``
    would overwrite: two numbers never give one UUID (distinct numbers drawn for
    distinct operations stay distinct).
    """
    low, rest = number & (2**62 - 1), number >> 62
    value = low | ((rest & 0xFFF) << 64) | ((rest >> 12) << 80)
    return str(uuid.UUID(int=value, version=4))


def operation_ids() -> st.SearchStrategy[str]:
    """Operation identifiers as D1 sends them (UUIDs: ``[A-Za-z0-9_-]``, 36 characters).

    Version 4 UUIDs that shrink to ``00000000-0000-4000-8000-000000000000``.
    """
    return st.integers(0, 2**UUID_BITS - 1).map(uuid_of)


_OFFSETS: Final = tuple(
    timezone(timedelta(minutes=m)) for m in (0, 120, -330, 840, -720, 345, 60, -180)
)
"""The offsets D1 may write a timestamp in: UTC (``Z``, where shrinking goes) first,
then offsets whose local time is far from UTC's (+14:00, -12:00), or not whole hours."""


@st.composite
def start_time(draw: st.DrawFn) -> datetime:
    """An operation start time, 2024 to 2027, in any offset, at mixed precision.

    Whole seconds, milliseconds or microseconds, in UTC or another offset: the text of
    two timestamps then orders unlike their instants (``10:00:00Z`` sorts after
    ``10:00:00.5Z`` and after ``11:00:00+02:00``). Shrinks to whole seconds in UTC.
    """
    # The same choices whatever the precision: shrinking then moves one of them without
    # shifting the others (the same goes for _next_start).
    seconds = draw(st.integers(0, 4 * 365 * 24 * 3600))
    precision = draw(st.integers(0, 2))
    micros = draw(st.integers(0, 999_999))
    fraction = (0, micros // 1000 * 1000, micros)[precision]
    instant = _EPOCH + timedelta(seconds=seconds, microseconds=fraction)
    return instant.astimezone(draw(st.sampled_from(_OFFSETS)))


@st.composite
def next_start(draw: st.DrawFn, start: datetime) -> datetime:
    """When a card's next operation starts: an instant at or after ``start``, any offset.

    Mostly close to ``start``, so that the order of the timestamps' text and of their
    instants disagree often: the same instant (two operations of one card started at
    once, ordered by operationId), under a second or two minutes later, or one hour to
    two months later (where shrinking goes).
    """
    kind = draw(st.integers(0, 5))
    amount = draw(st.integers(0, 999_999))
    gap = (
        timedelta(hours=1 + amount % (60 * 24)),
        timedelta(0),  # a tie, the likeliest: it shows only when two operations' events mix
        timedelta(0),
        timedelta(0),
        timedelta(microseconds=1 + amount % 999_999),
        timedelta(milliseconds=1 + amount % 120_000),
    )[kind]
    return (start + gap).astimezone(draw(st.sampled_from(_OFFSETS)))
