"""``cardflow.json_view``: the public JSON view, and the CLI's fast encoding of it agree."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
from hypothesis import given

import cardflow
from cardflow import CardState, fold, json_view
from cardflow.batch._cards import encoded_cards
from cardflow.testing import Traffic, traffic

UNPARSED_SHIPMENT = b"""{"operations": [{"operationId": "op-9", "operation": "PRODUCE",
  "status": "SUCCESSFUL", "startTime": "2025-01-17T06:28:02.5+01:00", "cardId": "c-9",
  "details": {"status": "CARD_SHIPPED", "shipment": {"carrier": "dhl",
  "estimatedDeliveryDate": "2026-05-24", "lastCheckpoint": {"checkpointTime": 7}}}}]}"""


def _states(t: Traffic) -> list[CardState]:
    ops = [op for body in t.bodies for op in cardflow.decode_lenient(body).operations]
    ops += cardflow.decode(UNPARSED_SHIPMENT)
    return [state for _, state in sorted(fold(ops).items())]


@given(traffic(max_cards=3, unknown_statuses=True))
def test_the_cli_writes_the_json_view(t: Traffic) -> None:
    states = _states(t)
    lines = b"".join(encoded_cards(states, None, lines=True)).splitlines()
    assert [json.loads(line) for line in lines] == [json_view(s) for s in states]
    reasons = {
        s.card_id: cardflow.needs_reconcile(s, datetime(2025, 3, 1, tzinfo=UTC)) for s in states
    }
    whole = json.loads(b"".join(encoded_cards(states, reasons, lines=False)))
    assert whole == [{**json_view(s), "reconcile": list(reasons[s.card_id])} for s in states]


def test_the_view_names_every_public_field_and_spells_times_as_d1() -> None:
    (state,) = fold(cardflow.decode(UNPARSED_SHIPMENT)).values()
    view = json_view(state)
    public = [f.name for f in msgspec.structs.fields(CardState) if not f.name.startswith("_")]
    assert len(view) == len(public)
    assert view["startTime"] == "2025-01-17T05:28:02.500Z"
    assert view["confirmedAt"] is None
    assert view["shipment"] == {
        "carrier": "dhl",
        "estimatedDeliveryDate": "2026-05-24",
        "lastCheckpoint": {"checkpointTime": 7},
    }
    assert json.loads(json.dumps(view)) == view
