"""Reactions for `cardflow dispatch` in the end-to-end test: each call appends its
change's idempotency key, one line, to the file named by ``RECORDER_FILE``."""

from __future__ import annotations

import os
from collections.abc import Callable

import cardflow


class Recorder:
    """Reacts to every status and every shipment update by writing down its key."""

    def _record(self, change: cardflow.Change) -> None:
        with open(os.environ["RECORDER_FILE"], "a", encoding="utf-8") as out:
            out.write(change.key + "\n")

    def on_shipment(self, change: cardflow.Change) -> None:
        self._record(change)

    def __getattr__(self, name: str) -> Callable[[cardflow.Change], None]:
        if name.startswith("on_enter_"):
            return self._record
        raise AttributeError(name)
