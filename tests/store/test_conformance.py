"""The store as a webhook handler, checked by ``cardflow.testing.check_handler``: an
oracle built from true histories (not from the fold), on Hypothesis traffic with lost
notifications, on-demand responses, unknown statuses and other operation types."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cardflow
import cardflow.store
from cardflow.testing import check_handler


class StoreHandler:
    """A handler whose every answer comes from the store's tables."""

    def __init__(self, folder: Path, opened: list[cardflow.store.Store]) -> None:
        path = tempfile.mktemp(suffix=".db", dir=folder)
        self.store = cardflow.store.open(f"sqlite:///{path}?synchronous=normal")
        opened.append(self.store)

    def handle(self, body: bytes) -> None:
        at = cardflow.reading_time(body)
        if at is None:
            self.store.ingest(body)
        else:
            self.store.reconcile(body, at)

    def status(self, card_id: str) -> str | None:
        state = self.store.get(card_id)
        return None if state is None else state.status

    def operation_id(self, card_id: str) -> str | None:
        state = self.store.get(card_id)
        return None if state is None else state.operation_id

    def shipment(self, card_id: str) -> cardflow.Shipment | None:
        state = self.store.get(card_id)
        return None if state is None else state.shipment


def test_the_store_follows_d1_traffic(tmp_path: Path) -> None:
    opened: list[cardflow.store.Store] = []
    try:
        check_handler(
            lambda: StoreHandler(tmp_path, opened),
            max_examples=40,
            max_operations=3,
            lose=True,
            unknown_statuses=True,
            other_operations=True,
        )
    finally:
        for store in opened:
            store.close()
