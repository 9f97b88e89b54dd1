"""What checking ``operationId`` costs, the old way and the new, side by side.

D1's schema allows 1 to 64 characters of ``[A-Za-z0-9_-]``. cardflow checked it with a
msgspec ``pattern`` (the *old* check); it now keeps the length bounds in msgspec and
checks the characters after decoding, with one compiled ``fullmatch`` per operation
(the *new* check, ``cardflow._wire.valid_operation_id``). Three decoders run on the
same bodies, each shaped as ``cardflow.decode`` (a Python function per body, msgspec's
fast path first), consumed in C:

- *unchecked*: the length bounds only;
- *old*: the pattern in msgspec, nothing after;
- *new*: ``cardflow.decode`` itself, the loop after msgspec.

A check's cost is its time less the unchecked time, per event.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable
from typing import Annotated, Any, Final

import msgspec

import cardflow
from cardflow._wire import DECODE_ERRORS, OPERATION_ID_PATTERN

from ._data import Dataset
from ._timing import Result, median, ratio, rounds


class _OldOperation(cardflow.Operation, frozen=True):
    """cardflow's operation as it was: the pattern checked by msgspec."""

    operation_id: Annotated[
        str, msgspec.Meta(min_length=1, max_length=64, pattern=OPERATION_ID_PATTERN)
    ]


class _OldBody(msgspec.Struct, gc=False):
    operations: list[_OldOperation]


class _Body(msgspec.Struct, gc=False):
    operations: list[cardflow.Operation]


_old: Final = msgspec.json.Decoder(_OldBody).decode
_unchecked: Final = msgspec.json.Decoder(_Body).decode


def _shaped_as_decode(fast: Callable[[bytes | str], Any]) -> Callable[[bytes | str], list[Any]]:
    """A decoder shaped as ``cardflow.decode`` (its fast path first) around ``fast``."""

    def decode(body: bytes | str) -> list[Any]:
        if type(body) is bytes or type(body) is str:
            try:
                return fast(body).operations  # type: ignore[no-any-return]
            except DECODE_ERRORS:
                pass
        return cardflow.decode(body)

    return decode


decode_old: Final = _shaped_as_decode(_old)
"""``cardflow.decode`` as it was: the pattern in msgspec, nothing after."""
decode_unchecked: Final = _shaped_as_decode(_unchecked)
"""The same without the characters checked (the length bounds only)."""


def _consume(decode: Callable[[bytes], Any], data: Dataset) -> None:
    collections.deque(map(decode, data.stream()), maxlen=0)


def run(data: Dataset, count: int) -> list[Result]:
    contenders: dict[str, Callable[[], object]] = {
        "unchecked": functools.partial(_consume, decode_unchecked, data),
        "old": functools.partial(_consume, decode_old, data),
        "new": functools.partial(_consume, cardflow.decode, data),
    }
    times = rounds(contenders, count)
    n = data.events
    size = f"{data.name} ({n:,} events)"
    base = times["unchecked"]

    def cost(name: str) -> list[float]:
        return [t - b for t, b in zip(times[name], base, strict=True)]

    old, new = cost("old"), cost("new")
    # A round where the noise hid the old check entirely says nothing of the ratio.
    pairs = [(a, b) for a, b in zip(new, old, strict=True) if b > 0]
    new_vs_old = ratio([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None
    return [
        Result(
            "operationId",
            "decode without the check (length bounds only)",
            size,
            f"{median(base) / n * 1e6:.2f} µs/event",
        ),
        Result(
            "operationId",
            "old check: msgspec pattern",
            size,
            f"{median(old) / n * 1e6:.3f} µs/event",
        ),
        Result(
            "operationId",
            "new check: fullmatch after decoding, cost vs the old",
            size,
            f"{median(new) / n * 1e6:.3f} µs/event",
            new_vs_old,
            "< 1",
            None if new_vs_old is None else new_vs_old < 1,
        ),
        Result(
            "operationId",
            "cardflow.decode, time vs the same with the old check",
            size,
            f"{median(times['new']) / n * 1e6:.2f} µs/event",
            ratio(times["new"], times["old"]),
        ),
    ]
