"""The public JSON view of a state: what ``cardflow fold`` prints for a card.

D1's camelCase names, times written the way D1 writes them (UTC as ``Z``), dates as
ISO dates, tuples as lists, carrier fields that did not parse written back as their
text. Every public field of :class:`CardState` is there, absent values as ``null``;
the private summaries that ``merge`` needs are not (the state format carries them).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

import msgspec

from ._cardstate import CardState
from ._wire import wire_time, with_wire_times

__all__ = ["json_view"]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


VIEW_FIELDS: Final = tuple(
    (f.name, _camel(f.name))
    for f in msgspec.structs.fields(CardState)
    if not f.name.startswith("_")
)
"""CardState's public fields, with their names in the view, in order."""


def _plain(value: object) -> object:
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, datetime):
        return wire_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return with_wire_times(msgspec.to_builtins(value, builtin_types=(datetime,)))


def json_view(state: CardState) -> dict[str, Any]:
    """The state as JSON values: every public field, camelCase, times as D1 writes them."""
    return {key: _plain(getattr(state, name)) for name, key in VIEW_FIELDS}
