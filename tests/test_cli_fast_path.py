"""``cardflow fold``'s fast paths give what the plain paths give, byte for byte.

Reading decodes each whole line strictly first and takes the lenient :class:`Reader`
only for a line that fails; the oracle here is the Reader alone over the whole
stream. The machine formats spell times by fixing msgspec's encoding; the oracle is
D1's spelling, written out in the test, and ``msgspec.json.format`` of the whole
document for the streamed ``--format json``.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardflow import decode, fold
from cardflow.batch._cards import card_object
from cardflow.batch._inputs import Reader, one_line
from cardflow.cli import run
from cardflow.cli._console import Console

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def cli(*argv: str, stdin: bytes) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    console = Console(
        stdin=io.BytesIO(stdin), stdout=out, stderr=err, environ={}, clock=lambda: NOW
    )
    code = run(list(argv), console)
    return code, out.getvalue(), err.getvalue()


def op(card: str, stage: str, **extra: Any) -> dict[str, Any]:
    """A PRODUCE operation at ``stage`` (``details.status``); ``extra`` fields override."""
    return {
        "operationId": "op1",
        "operation": "PRODUCE",
        "status": "PENDING",
        "startTime": "2025-01-17T06:28:02.492Z",
        "cardId": card,
        "details": {"status": stage},
        **extra,
    }


def body(*ops: dict[str, Any]) -> bytes:
    return msgspec.json.encode({"operations": list(ops)})


# -- reading: the strict fast path, and the Reader for what fails it -----------------

_GOOD = [
    body(op("c1", "CARD_PROD_REQUESTED")),
    body(op("c2", "DATA_PREPARED"), op("c1", "CARD_SHIPPED", status="SUCCESSFUL")),
    body(op("c3", "CARD_PROD_DONE", operation="ACTIVATE")),
    body(),
]
_BAD = [
    body(op("c1", "DATA_PREPARED", startTime="not a time")),
    body(op("c2", "DATA_PREPARED"), {"operationId": "x"}),
    body(op("c4", "CARD_SHIPPED"))[:-7],  # cut short: a truncated document
    b"not json",
    b'{"operations": [',  # opens a document
    b"  " + msgspec.json.encode(op("c5", "CARD_PROD_READY")),  # indented: goes on one
    b"]}",
    b"",
    b" \t",
    b"\xef\xbb\xbf" + body(op("c6", "DATA_PREPARED")),  # a byte order mark, not on line 1
]
_PRETTY = [
    json.dumps({"operations": [op("c7", "CARD_PROD_READY")]}, indent=2).encode(),
    json.dumps({"operations": [op("c8", "DATA_PREPARED"), {"cardId": "c8"}]}, indent=4).encode(),
]
_LINES = st.lists(st.sampled_from(_GOOD + _BAD + _PRETTY), max_size=12)


def _by_the_reader(data: bytes) -> tuple[list[dict[str, Any]], list[str], list[bytes]]:
    """The oracle: the Reader over the whole stream, then the core fold."""
    ops = []
    located = []
    kept = []
    for b in Reader(io.BytesIO(data)):
        ops += b.decoded.operations
        for reject in b.decoded.rejects:
            located.append(str(reject.error().located("<stdin>", b.line_of(reject))))
            kept.append(one_line(reject.raw))
    states = fold(ops)
    return [card_object(states[c]) for c in sorted(states)], located, kept


@settings(max_examples=150, deadline=None)
@given(
    lines=_LINES,
    bom=st.booleans(),
    crlf=st.booleans(),
    last_newline=st.booleans(),
)
def test_reading_fast_gives_what_the_reader_gives(
    lines: list[bytes],
    bom: bool,
    crlf: bool,
    last_newline: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    end = b"\r\n" if crlf else b"\n"
    data = (b"\xef\xbb\xbf" if bom else b"") + end.join(lines) + (end if last_newline else b"")
    rejects = tmp_path_factory.mktemp("rejects") / "rejects.jsonl"
    code, out, err = cli("fold", "--format", "jsonl", "--rejects", str(rejects), stdin=data)
    cards, located, kept = _by_the_reader(data)
    assert [json.loads(line) for line in out.splitlines()] == cards
    assert [x for x in err.splitlines() if x.startswith("<stdin>:")] == located
    assert rejects.read_bytes().splitlines() == kept
    assert code == (1 if located else 0)
    reader_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    summary = cli("fold", stdin=data)[1].decode()
    assert f"Read {reader_lines:,} line" in summary


def test_a_bad_line_costs_only_itself_and_the_lines_after_it_read_fast() -> None:
    data = b"\n".join(
        [body(op("c1", "DATA_PREPARED")), b"not json", _PRETTY[0], body(op("c2", "CARD_SHIPPED"))]
    )
    code, out, err = cli("fold", "--format", "jsonl", stdin=data)
    assert code == 1
    assert [json.loads(x)["cardId"] for x in out.splitlines()] == ["c1", "c2", "c7"]
    assert err.splitlines()[0] == "<stdin>:2: $: JSON is malformed: invalid character (byte 4)"


# -- writing: D1's spelling of times, and the streamed JSON document ---------------------


def _d1(value: datetime | None) -> str | None:
    """D1's spelling of a time, written out: whole seconds, milliseconds or microseconds
    as needed; UTC as ``Z``."""
    if value is None:
        return None
    micro = value.microsecond
    spec = "seconds" if micro == 0 else "milliseconds" if micro % 1000 == 0 else "microseconds"
    text = value.isoformat(timespec=spec)
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def test_times_are_spelled_as_d1_spells_them_and_look_alikes_are_left_alone() -> None:
    look_alike = "2025-01-17T06:28:02.492000Z"
    shipment = {
        "carrier": look_alike,
        "lastUpdatedAt": "2025-01-18T01:02:03.100+02:00",
        "estimatedDeliveryDate": "2025-01-19T00:00:00.000001Z",
        "lastCheckpoint": {"checkpointTime": "2025-01-18T01:02:03Z", "message": look_alike},
    }
    ops = [
        op("c1", "CARD_SHIPPED", endTime="2025-01-17T07:00:00.120-03:30"),
        op("c1", "CARD_SHIPPED", details={"status": "CARD_SHIPPED", "shipment": shipment}),
        op("c2", "DATA_EXCEPTION", details={"status": "DATA_EXCEPTION", "reason": look_alike}),
    ]
    code, out, _ = cli("fold", "--format", "jsonl", stdin=body(*ops))
    assert code == 0
    c1, c2 = (json.loads(x) for x in out.splitlines())
    state = fold(decode(body(*ops)))["c1"]
    assert state.shipment is not None
    assert state.shipment.last_checkpoint is not None
    assert c1["startTime"] == _d1(state.start_time) == "2025-01-17T06:28:02.492Z"
    assert c1["endTime"] == _d1(state.end_time)
    assert c1["endTime"].endswith(".120Z") or c1["endTime"].endswith(".120-03:30")
    assert c1["shipment"] == {
        "carrier": look_alike,
        "estimatedDeliveryDate": _d1(state.shipment.estimated_delivery_date),
        "lastUpdatedAt": _d1(state.shipment.last_updated_at),
        "lastCheckpoint": {
            "checkpointTime": _d1(state.shipment.last_checkpoint.checkpoint_time),
            "message": look_alike,
        },
    }
    assert c1["shipment"]["estimatedDeliveryDate"] == "2025-01-19T00:00:00.000001Z"
    assert c1["shipment"]["lastCheckpoint"]["checkpointTime"].endswith(":03Z")
    assert c2["reason"] == look_alike


def test_the_streamed_json_document_is_the_whole_document_laid_out_at_once() -> None:
    # About 21,000 events: more cards than one chunk of the writer holds.
    data = cli("simulate", "--cards", "2100", "--seed", "5", stdin=b"")[1]
    for argv in ([], ["--now", "2025-01-01T00:00:00Z"], ["--status", "NO_SUCH_STATUS"]):
        code, out, _ = cli("fold", "--format", "json", *argv, stdin=data)
        assert code == 0
        document = json.loads(out)
        assert len(document["cards"]) == (0 if argv[:1] == ["--status"] else 2100)
        whole = msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"
        assert out == whole
