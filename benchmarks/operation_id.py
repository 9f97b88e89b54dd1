"""What checking ``operationId`` costs, by the ways it can be checked, side by side.

D1's schema allows 1 to 64 characters of ``[A-Za-z0-9_-]``. Every contender decodes
the same bodies into a copy of the wire model without checks (``benchmarks/_plain.py``)
whose ``operationId`` is checked one way; the cost of a check is its time less the
time of the copy without it, per event:

- a msgspec ``pattern``, as cardflow spells it today (``^...+$(?!\\n)``) and spelled
  otherwise (a ``\\Z`` end, a ``{1,64}`` count in place of the length bounds, an end
  that both Python and ECMA regexes read alike);
- ``__post_init__`` on the operation, calling a compiled ``fullmatch``;
- after decoding, a loop over the operations calling the same ``fullmatch``.
"""

from __future__ import annotations

import collections
import functools
import re
from collections.abc import Callable
from typing import Annotated, Any, Final

import msgspec

from . import _plain
from ._data import Dataset
from ._timing import Result, median, rounds

TODAY: Final = r"^[A-Za-z0-9_-]+$(?!\n)"
SPELLINGS: Final = {
    "pattern today, ^[A-Za-z0-9_-]+$(?!\\n), with length bounds": (TODAY, True),
    "pattern ^[A-Za-z0-9_-]+\\Z, with length bounds": (r"^[A-Za-z0-9_-]+\Z", True),
    "pattern ^[A-Za-z0-9_-]{1,64}\\Z, no length bounds": (r"^[A-Za-z0-9_-]{1,64}\Z", False),
    "pattern ^[A-Za-z0-9_-]+(?![\\s\\S]), with length bounds": (
        r"^[A-Za-z0-9_-]+(?![\s\S])",
        True,
    ),
}
_valid: Final = re.compile(r"[A-Za-z0-9_-]+").fullmatch
_Bounded = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _PostInit(_plain.Operation, frozen=True):
    operation_id: _Bounded

    def __post_init__(self) -> None:
        if _valid(self.operation_id) is None:
            raise ValueError("operationId: not 1 to 64 characters of [A-Za-z0-9_-]")


class _Bounds(_plain.Operation, frozen=True):
    operation_id: _Bounded


def _decoder(operation: type[msgspec.Struct]) -> msgspec.json.Decoder[Any]:
    body = msgspec.defstruct("Body", [("operations", list[operation])], gc=False)  # type: ignore[valid-type]
    return msgspec.json.Decoder(body)


def _with_pattern(pattern: str, bounds: bool) -> msgspec.json.Decoder[Any]:
    meta = (
        msgspec.Meta(pattern=pattern, min_length=1, max_length=64)
        if bounds
        else msgspec.Meta(pattern=pattern)
    )
    operation = msgspec.defstruct(
        "Operation",
        [("operation_id", Annotated[str, meta])],
        bases=(_plain.Operation,),
        frozen=True,
        kw_only=True,
        rename="camel",
        gc=False,
    )
    return _decoder(operation)


def _consume(decode: Callable[[bytes], Any], data: Dataset) -> None:
    collections.deque(map(decode, data.stream()), maxlen=0)


def _checked_after(decode: Callable[[bytes], Any], data: Dataset) -> None:
    valid = _valid
    for body in map(decode, data.stream()):
        for op in body.operations:
            if valid(op.operation_id) is None:
                raise ValueError(op.operation_id)


def run(data: Dataset, count: int) -> list[Result]:
    plain = _decoder(_plain.Operation).decode
    contenders: dict[str, Callable[[], object]] = {"none": functools.partial(_consume, plain, data)}
    for name, (pattern, bounds) in SPELLINGS.items():
        contenders[name] = functools.partial(_consume, _with_pattern(pattern, bounds).decode, data)
    contenders["__post_init__ calling fullmatch"] = functools.partial(
        _consume, _decoder(_PostInit).decode, data
    )
    contenders["after decoding, a loop calling fullmatch"] = functools.partial(
        _checked_after, _decoder(_Bounds).decode, data
    )
    times = rounds(contenders, count)
    n = data.events
    size = f"{data.name} ({n:,} events)"
    base = times["none"]
    today = next(iter(SPELLINGS))

    def cost(name: str) -> float:
        return median([t - b for t, b in zip(times[name], base, strict=True)]) / n * 1e6

    results = [
        Result("operationId", "decoding without a check", size, f"{median(base) / n * 1e6:.2f} µs")
    ]
    for name in contenders:
        if name == "none":
            continue
        results.append(
            Result(
                "operationId",
                f"check: {name} (cost vs today's)",
                size,
                f"{cost(name):.3f} µs/event",
                cost(name) / cost(today) if cost(today) > 0 else None,
            )
        )
    return results
