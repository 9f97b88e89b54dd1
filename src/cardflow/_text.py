"""Text from the wire made safe to show: one escaping for terminals and log lines."""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str, limit: int | None = None) -> str:
    """``text`` safe for a terminal or a log line: control and other unprintable
    characters escaped as Python spells them; with ``limit``, at most that many
    characters of it, and ``...`` when there were more."""
    shown = text if limit is None else text[:limit]
    if not shown.isprintable():
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
    return shown if limit is None or len(text) <= limit else shown + "..."
