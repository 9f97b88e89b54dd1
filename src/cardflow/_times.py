"""Times in one spelling per instant: UTC, clamped where UTC cannot spell an instant.

A state never depends on which offset an event was written in, and never fails on a
time the wire admits (an offset can reach hours past year 9999 or before year 1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from ._wire import Shipment

__all__: list[str] = []

MIN_UTC: Final = datetime.min.replace(tzinfo=UTC)
MAX_UTC: Final = datetime.max.replace(tzinfo=UTC)


def utc(value: datetime) -> datetime:
    """One spelling per instant, in UTC, so that states never depend on which offset came
    first. An instant that UTC cannot spell (within an offset of year 1 or 9999) is
    clamped to the nearest one it can; a naive time (never decoded) is read as UTC."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return MIN_UTC if value.year < 5000 else MAX_UTC


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def opt_time(value: datetime | None) -> tuple[bool, datetime]:
    """A total order on optional times: absent lowest, below every real time."""
    return (False, MIN_UTC) if value is None else (True, value)


def shipment_clock(ship: Shipment) -> datetime | None:
    """When a shipment was last updated: ``lastUpdatedAt``, else the last scan's time."""
    when = ship.last_updated_at
    if when is None:
        checkpoint = ship.last_checkpoint
        if checkpoint is None:
            return None
        when = checkpoint.checkpoint_time
        if when is None:
            return None
    return when if when.tzinfo is UTC else utc(when)
