"""``Known``: the states a store wrote, read back by their bytes, bounded."""

from __future__ import annotations

import cardflow
from cardflow.store._states import Known


def _state(card: str, status: str) -> cardflow.CardState:
    body = (
        b'{"operations": [{"operationId": "op-1", "operation": "PRODUCE", "status":'
        b' "PENDING", "startTime": "2025-01-17T06:28:02Z", "cardId": "%s", "details":'
        b' {"status": "%s"}}]}'
    ) % (card.encode(), status.encode())
    return cardflow.fold(cardflow.decode(body))[card]


def test_only_the_bytes_kept_read_as_the_state_kept_and_the_oldest_go_first() -> None:
    decoded: list[tuple[str, bytes]] = []

    def decode(card: str, blob: bytes) -> cardflow.CardState:
        decoded.append((card, blob))
        return cardflow.decode_state(blob)

    known = Known(size=2)
    states = {card: _state(card, "DATA_PREPARED") for card in ("a", "b", "c")}
    blobs = {card: cardflow.encode_state(state) for card, state in states.items()}
    known.keep([("a", blobs["a"], states["a"]), ("b", blobs["b"], states["b"])])
    assert known.read("a", blobs["a"], decode) is states["a"]
    assert decoded == []
    other = cardflow.encode_state(_state("a", "CARD_PROD_ONGOING"))
    assert known.read("a", other, decode).status == "CARD_PROD_ONGOING"  # changed: decoded
    assert known.read("b", blobs["a"], decode).card_id == "a"  # another card's bytes
    known.keep([("c", blobs["c"], states["c"])])  # a, the oldest written, goes
    assert known.read("c", blobs["c"], decode) is states["c"]
    assert known.read("b", blobs["b"], decode) is states["b"]
    assert known.read("a", blobs["a"], decode) == states["a"]
    assert [card for card, _ in decoded] == ["a", "b", "a"]
