"""States encoded by an earlier version decode, equal, in this one (the state format).

``tests/data/golden/states-v1.json`` holds, for each case, the events it folds (D1
bodies, and on-demand readings with the time they were read) and the state that
version 1 of the format wrote for them. Every later version must read each one back
as the state its own fold of the same events gives. Regenerate only when the format
version changes, into a new file beside the old ones:
``python tests/test_golden.py`` writes this version's file.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pytest

import cardflow

GOLDEN: Final = Path(__file__).parent / "data" / "golden"
T: Final = "2025-01-17T06:28:02.492Z"


def _op(code: str | None, op_id: str = "op-1", start: str = T, **more: Any) -> dict[str, Any]:
    details = more.pop("details", {} if code is None else {"status": code})
    status = more.pop("status", "SUCCESSFUL" if code == "CARD_SHIPPED" else "PENDING")
    return {
        "operationId": op_id,
        "operation": "PRODUCE",
        "status": status,
        "startTime": start,
        "cardId": "271b-6e47-8ec3-7f3f",
        "details": details,
        **more,
    }


SHIPMENT: Final = {
    "carrier": "fedex",
    "trackingNumber": "7712",
    "status": "IN_TRANSIT",
    "lastUpdatedAt": "2025-01-22T10:00:00+01:00",
    "estimatedDeliveryDate": "2025-01-24",
    "lastCheckpoint": {"checkpointTime": "2025-01-22T09:00:00Z", "city": "Lyon"},
}
CASES: Final[dict[str, list[dict[str, Any]]]] = {
    "one event": [
        {
            "body": [
                _op(
                    "DATA_PREPARED",
                    details={
                        "status": "DATA_PREPARED",
                        "dueDate": "2025-01-21",
                        "productionSite": "Gemenos",
                    },
                )
            ]
        }
    ],
    "shipped with carrier data": [
        {
            "body": [
                _op("CARD_PROD_DONE"),
                _op(
                    "CARD_SHIPPED",
                    endTime="2025-01-21T09:28:12.492Z",
                    details={"status": "CARD_SHIPPED", "shipment": SHIPMENT},
                ),
            ]
        }
    ],
    "failed with an error": [
        {
            "body": [
                _op(
                    "DATA_EXCEPTION",
                    status="FAILED",
                    endTime=T,
                    errorCode="FIELD_INVALID_FORMAT",
                    error="pan",
                    details={"status": "DATA_EXCEPTION", "reason": "bad pan"},
                )
            ]
        }
    ],
    "unknown status and anomalies": [
        {
            "body": [
                _op("NEW_CODE"),
                _op(None),
                _op("CARD_SHIPPED", status="FAILED"),
                _op("CARD_PROD_CANCELED", status="FAILED", endTime=T),
            ]
        }
    ],
    "re-ordered, one id re-used": [
        {"body": [_op("DATA_EXCEPTION", status="FAILED", endTime=T)]},
        {"body": [_op("CARD_PROD_REQUESTED", op_id="op-2", start="2025-01-20T00:00:00+02:00")]},
        {"body": [_op("CARD_PROD_READY", op_id="op-2", start="2025-01-20T00:00:00.5+02:00")]},
    ],
    "confirmed on demand": [
        {"body": [_op("CARD_PROD_ONGOING")]},
        {"body": [_op("CARD_PROD_ONGOING")], "at": "2025-02-01T00:00:00Z"},
    ],
    "ends of time": [
        {
            "body": [
                _op(
                    "CARD_PROD_READY",
                    start="9999-12-31T23:30:00-01:00",
                    endTime="0001-01-01T00:30:00+01:00",
                    details={"status": "CARD_PROD_READY", "dueDate": "9999-12-31"},
                )
            ]
        }
    ],
}


def _fold(steps: list[dict[str, Any]]) -> cardflow.CardState:
    folder = cardflow.Folder()
    for item in steps:
        at = datetime.fromisoformat(item["at"]) if "at" in item else None
        for op in cardflow.decode(json.dumps({"operations": item["body"]})):
            folder.add(op, at=at)
    (state,) = folder.states().values()
    return state


def _files() -> list[Path]:
    return sorted(GOLDEN.glob("states-v*.json"))


def test_there_is_a_golden_file_for_every_version() -> None:
    versions = {int(p.stem.removeprefix("states-v")) for p in _files()}
    assert versions == set(range(1, cardflow.STATE_FORMAT_VERSION + 1))


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_every_golden_state_decodes_equal_to_this_versions_fold(path: Path) -> None:
    cases = json.loads(path.read_text(encoding="utf-8"))
    assert cases
    for name, case in cases.items():
        data = base64.b64decode(case["state"])
        state = cardflow.decode_state(data)
        assert state == _fold(case["steps"]), name
        if path.stem == f"states-v{cardflow.STATE_FORMAT_VERSION}":
            assert cardflow.encode_state(state) == data, name


def write() -> Path:
    """Write this version's golden file: each case's steps and the state it encodes to."""
    path = GOLDEN / f"states-v{cardflow.STATE_FORMAT_VERSION}.json"
    out = {
        name: {
            "steps": steps,
            "state": base64.b64encode(cardflow.encode_state(_fold(steps))).decode(),
        }
        for name, steps in CASES.items()
    }
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write())
