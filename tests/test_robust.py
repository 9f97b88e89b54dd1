"""No decoded input can crash the fold, and no arrival order can change a byte.

One test per case that once broke the core (poison timestamps, one operation counted
twice, lenient decoding losing good operations, order-dependent bytes, cost growing
with history, carrier data costing the production status), and properties over the
whole range of values the wire types admit.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import cardflow
from cardflow import (
    MAX_OPERATIONS,
    Anomaly,
    Operation,
    Tracker,
    decode,
    decode_lenient,
    encode_state,
    fold,
    merge,
    needs_reconcile,
    state_of,
)
from cardflow.batch import _inputs as inputs
from cardflow.cli import run
from cardflow.cli._console import Console
from strategies import JSON, dump, operation_dicts, wire_timestamp

CARD: Final = "271b-6e47-8ec3-7f3f"
OP_ID: Final = "01c5a05e-e197-11ec-8fea-0242ac120002"
NOW: Final = datetime(2025, 3, 1, tzinfo=UTC)


def produce(code: str, start: str = "2025-01-17T06:28:02.492Z", **fields: JSON) -> JSON:
    """A PRODUCE operation with ``details.status`` = ``code``, as JSON values; ``fields``
    set or override any top-level field."""
    details = fields.pop("details", {"status": code})
    op: dict[str, JSON] = {
        "operationId": OP_ID,
        "operation": "PRODUCE",
        "status": "SUCCESSFUL" if code == "CARD_SHIPPED" else "PENDING",
        "startTime": start,
        "cardId": CARD,
        "details": details,
    }
    op.update(fields)
    return op


def body(*ops: JSON) -> bytes:
    return dump({"operations": list(ops)})


def settle(*bodies: bytes) -> dict[str, cardflow.CardState]:
    """Decode and fold, and check that tracking and merging agree and nothing raises."""
    ops = [op for b in bodies for op in decode(b)]
    states = fold(ops)
    tracker = Tracker()
    for b in bodies:
        tracker.ingest(b)
    assert dict(tracker) == dict(states)
    for state in states.values():
        assert merge(state, state) == state
        needs_reconcile(state, NOW)
    return dict(states)


# -- 1. poison messages -------------------------------------------------------------------


EXTREMES: Final = [
    "9999-12-31T23:30:00-01:00",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59.999999-23:59",
    "0001-01-01T00:00:00+23:59",
]


@pytest.mark.parametrize("when", EXTREMES)
@pytest.mark.parametrize("field", ["startTime", "endTime"])
def test_times_at_the_ends_of_the_calendar_fold(when: str, field: str) -> None:
    states = settle(body(produce("DATA_PREPARED", **{field: when})))
    state = states[CARD]
    assert state.start_time.tzinfo is UTC
    assert state.end_time is None or state.end_time.tzinfo is UTC
    # Clamped to the instant UTC can spell nearest to it.
    clamped = getattr(state, "start_time" if field == "startTime" else "end_time")
    assert clamped in (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


@pytest.mark.parametrize("due", ["9999-12-31", "0001-01-01"])
@pytest.mark.parametrize(
    "now", [NOW, datetime.max.replace(tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)]
)
def test_due_dates_at_the_ends_of_the_calendar_reconcile(due: str, now: datetime) -> None:
    op = produce("DATA_PREPARED", details={"status": "DATA_PREPARED", "dueDate": due})
    (state,) = settle(body(op)).values()
    reasons = needs_reconcile(state, now, overdue_margin=timedelta.max, silence=timedelta.max)
    assert cardflow.ReconcileReason.OVERDUE not in reasons
    assert needs_reconcile(state, now, overdue_margin=timedelta.min, silence=timedelta.min)


def test_one_poison_line_costs_the_cli_nothing(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    good = produce("DATA_PREPARED", cardId="good-card")
    lines = [body(produce("CARD_SHIPPED", start=when)) for when in EXTREMES] + [body(good)]
    log.write_bytes(b"\n".join(lines) + b"\n")
    for fmt in ("summary", "jsonl", "json", "csv"):
        out = io.BytesIO()
        console = Console(
            stdin=io.BytesIO(), stdout=out, stderr=io.StringIO(), environ={}, clock=lambda: NOW
        )
        assert run(["fold", str(log), "--format", fmt], console) == 0
        assert b"good-card" in out.getvalue() or fmt == "summary"


BEYOND_UTC: Final = [
    ("9999-12-31T23:30:00-01:00", "9999-12-31T00:31:00-23:59", "9999-12-31T23:30:01-01:00"),
    ("9999-12-31T23:59:59.999999-23:59", None, "9999-12-31T23:59:59.999998-23:59"),
    ("0001-01-01T00:30:00+01:00", "0001-01-01T23:29:00+23:59", "0001-01-01T00:29:00+01:00"),
    ("0001-01-01T00:00:00+23:59", None, "0001-01-01T00:00:00.000001+23:59"),
]
"""Instants UTC cannot spell: each, its spelling in the offset that its fingerprint uses
(None: the same), and another instant beyond UTC near it."""


def _beyond_utc_bodies(when: str) -> list[bytes]:
    """One event per time field, each at ``when``."""
    ship = {"status": "CARD_SHIPPED"}
    shipped = {
        **ship,
        "shipment": {
            "lastUpdatedAt": when,
            "estimatedDeliveryDate": when,
            "lastCheckpoint": {"checkpointTime": when, "city": "Paris"},
        },
    }
    return [
        body(produce("DATA_PREPARED", start=when)),
        body(produce("CARD_PROD_READY", endTime=when)),
        body(produce("CARD_SHIPPED", details=shipped)),
    ]


@pytest.mark.parametrize(("when", "spelled", "near"), BEYOND_UTC)
def test_an_instant_utc_cannot_spell_has_an_identity_and_a_place_in_the_store(
    when: str, spelled: str | None, near: str, tmp_path: Path
) -> None:
    import cardflow.store

    bodies = _beyond_utc_bodies(when)
    same = _beyond_utc_bodies(spelled or when)
    ops = [op for b in bodies for op in decode(b)]
    for op, again in zip(ops, [op for b in same for op in decode(b)], strict=True):
        print_ = cardflow.fingerprint(op)
        # One spelling per instant, which decodes back into the event itself.
        assert cardflow.fingerprint(again) == print_
        assert msgspec.msgpack.decode(print_, type=Operation) == op
    # A minute apart is another event, however near the end of time.
    later = body(produce("DATA_PREPARED", start=near))
    assert cardflow.fingerprint(decode(later)[0]) != cardflow.fingerprint(ops[0])

    tracker = Tracker()
    url = f"sqlite:///{tmp_path / 'beyond.db'}?synchronous=normal"
    with cardflow.store.open(url) as store:
        for b in [*bodies, *same, later]:
            assert store.ingest(b).changes == tracker.ingest(b).changes
        assert store.event_count() == len(ops) + 1
        assert [e.operation for e in store.events(CARD)][: len(ops)] == ops
        assert store.get(CARD) == tracker[CARD] == fold([*ops, *decode(later)])[CARD]
        assert not store.rebuild().changed


offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
    ).map(lambda d: timedelta(minutes=d // timedelta(minutes=1))),
)
any_instant = st.datetimes(timezones=offsets)
"""Every datetime the wire type admits: years 1 to 9999, any offset a timestamp can write."""


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), any_instant, st.none() | any_instant, st.dates()),
        min_size=1,
        max_size=5,
    ),
    any_instant,
)
@example(
    [("a", datetime(9999, 12, 31, 23, 30, tzinfo=timezone(-timedelta(hours=1))), None, date.max)],
    datetime.max.replace(tzinfo=UTC),
)
def test_the_whole_admitted_range_folds_tracks_merges_and_reconciles(
    events: list[tuple[str, datetime, datetime | None, date]], now: datetime
) -> None:
    ops = []
    for op_id, start, end, due in events:
        fields: dict[str, JSON] = {"operationId": op_id, "startTime": wire_timestamp(start)}
        if end is not None:
            fields["endTime"] = wire_timestamp(end)
        details: dict[str, JSON] = {"status": "CARD_SHIPPED", "dueDate": due.isoformat()}
        details["shipment"] = {"lastUpdatedAt": wire_timestamp(start)}
        ops.append(produce("CARD_SHIPPED", details=details, **fields))
    bodies = [body(op) for op in ops]
    states = settle(*bodies)
    for state in states.values():
        needs_reconcile(state, now)
        assert cardflow.decode_state(encode_state(state)) == state


# -- 2. one operation, one identity ------------------------------------------------------


class Fired:
    def __init__(self) -> None:
        self.shipped: list[str] = []

    def on_enter_CARD_SHIPPED(self, change: cardflow.Change) -> None:  # noqa: N802
        self.shipped.append(change.operation_id)


@pytest.mark.parametrize("first", ["2025-01-17T06:28:02Z", "2025-01-17T06:28:02.492Z"])
def test_two_spellings_of_a_start_are_one_operation(first: str) -> None:
    second = "2025-01-17T06:28:02.492Z" if first.endswith("02Z") else "2025-01-17T06:28:02Z"
    shipped = body(produce("CARD_SHIPPED", start=first))
    again = body(produce("CARD_SHIPPED", start=second))
    requested = body(produce("CARD_PROD_REQUESTED", start="2025-01-17T06:28:02.492Z"))
    fired = Fired()
    tracker = Tracker(reactions=fired)
    for b in (shipped, again, requested):
        tracker.ingest(b)
    assert fired.shipped == [OP_ID]
    state = tracker[CARD]
    assert state.status == "CARD_SHIPPED"
    assert state.operation_ids == (OP_ID,)
    assert state.start_time == datetime(2025, 1, 17, 6, 28, 2, 492000, tzinfo=UTC)
    assert Anomaly.OPERATION_ID_REUSED in state.anomalies
    assert encode_state(state) == encode_state(settle(requested, again, shipped)[CARD])


def test_an_older_operation_that_rises_brings_all_it_saw() -> None:
    """op-a seen at 06:00 (shipped), op-b at 07:00, then op-a again at 08:00: op-a is
    current, with its shipped status, in every order."""
    a_early = produce("CARD_SHIPPED", start="2025-01-17T06:00:00Z", operationId="op-a")
    b = produce("DATA_PREPARED", start="2025-01-17T07:00:00Z", operationId="op-b")
    a_late = produce("CARD_PROD_REQUESTED", start="2025-01-17T08:00:00Z", operationId="op-a")
    orders = [
        (a_early, b, a_late),
        (a_late, b, a_early),
        (b, a_late, a_early),
        (b, a_early, a_late),
    ]
    results = {encode_state(settle(*(body(o) for o in order))[CARD]) for order in orders}
    assert len(results) == 1
    state = cardflow.decode_state(results.pop())
    assert (state.operation_id, state.status) == ("op-a", "CARD_SHIPPED")
    assert state.operation_ids == ("op-a", "op-b")


def test_a_state_keeps_the_newest_operations_only() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ops = [
        Operation(
            operation_id=f"op-{i:05d}",
            operation="PRODUCE",
            status="PENDING",
            start_time=start + timedelta(seconds=(i * 7919) % 20_000),
            card_id=CARD,
            details=cardflow.Details(status="DATA_PREPARED"),
        )
        for i in range(20_000)
    ]
    newest = sorted(ops, key=lambda o: (o.start_time, o.operation_id))[-MAX_OPERATIONS:]
    state = fold(ops)[CARD]
    assert state.operation_ids == tuple(sorted(o.operation_id for o in newest))
    assert state.operation_id == newest[-1].operation_id
    tracker = Tracker()
    tracker.ingest_operations(ops)
    assert encode_state(tracker[CARD]) == encode_state(state)
    assert encode_state(fold(reversed(ops))[CARD]) == encode_state(state)


# -- 3. lenient decoding keeps every good operation -------------------------------------


LEXICAL_FAULTS: Final = {
    "invalid-escape": b'"bad \\q escape"',
    "leading-zero": b"007",
    "lone-surrogate-escape": b'"\\ud800"',
    "nan": b"NaN",
    "raw-control-character": b'"a\x01b"',
    "truncated-literal": b"tru",
}


@pytest.mark.parametrize("fault", list(LEXICAL_FAULTS.values()), ids=list(LEXICAL_FAULTS))
@pytest.mark.parametrize("where", ["cardId", "unknownField"])
def test_a_lexical_fault_costs_its_operation_only(fault: bytes, where: str) -> None:
    ops = [produce("DATA_PREPARED", cardId=f"card-{i}") for i in range(3)]
    texts = [dump(op) for op in ops]
    marker = b'"card-1"' if where == "cardId" else b'"startTime"'
    replacement = fault if where == "cardId" else b'"unknownField": ' + fault + b', "startTime"'
    texts[1] = texts[1].replace(marker, replacement)
    raw = b'{"operations": [' + b", ".join(texts) + b"]}"
    result = decode_lenient(raw)
    kept = {op.card_id for op in result.operations}
    assert {"card-0", "card-2"} <= kept
    for reject in result.rejects:
        assert reject.index == 1
        assert reject.path.startswith("$.operations[1]")
        assert reject.raw == texts[1]


@given(st.lists(operation_dicts("PRODUCE"), min_size=2, max_size=5), st.data())
def test_fuzzed_lexical_faults_in_one_operation_keep_all_the_others(
    ops: list[dict[str, JSON]], data: st.DataObject
) -> None:
    victim = data.draw(st.integers(0, len(ops) - 1))
    fault = data.draw(st.sampled_from(list(LEXICAL_FAULTS.values())))
    texts = [dump(op) for op in ops]
    # The fault goes in place of a value of the victim: after one of its colons.
    colons = [i for i, c in enumerate(texts[victim]) if c == ord(":")]
    at = data.draw(st.sampled_from(colons))
    victim_text = texts[victim]
    texts[victim] = (
        victim_text[: at + 1] + b' "x": ' + fault + b", " + b'"y":' + victim_text[at + 1 :]
    )
    if texts[victim].count(b'"') % 2:  # the colon sat inside a string: leave it whole
        texts[victim] = victim_text[:-1] + b', "z": ' + fault + b"}"
    raw = b'{"operations": [' + b", ".join(texts) + b"]}"
    result = decode_lenient(raw)
    others = [op for i, op in enumerate(ops) if i != victim]
    expected = decode(body(*others))
    got = list(result.operations)
    assert all(op in got for op in expected)
    assert all(r.index == victim for r in result.rejects)


def test_a_byte_order_mark_and_text_subclasses_and_buffers_are_bodies() -> None:
    raw = body(produce("DATA_PREPARED"))

    class Text(str):
        pass

    expected = decode(raw)
    for variant in (
        b"\xef\xbb\xbf" + raw,
        "\ufeff" + raw.decode(),
        Text(raw.decode()),
        bytearray(raw),
        memoryview(raw),
        memoryview(b"x" + raw + b"x")[1:-1],
        memoryview(bytearray(raw)).cast("B"),
    ):
        assert decode(variant) == expected
        assert decode_lenient(variant).operations == expected
        assert Tracker().ingest(variant).changes


# -- 4. arrival order changes no byte -----------------------------------------------------


def test_an_absent_end_and_an_end_in_year_one_are_different() -> None:
    a = produce("DATA_EXCEPTION", status="FAILED")
    b = produce("DATA_EXCEPTION", status="FAILED", endTime="0001-01-01T00:00:00Z")
    one = encode_state(settle(body(a), body(b))[CARD])
    other = encode_state(settle(body(b), body(a))[CARD])
    assert one == other
    assert cardflow.decode_state(one).end_time == datetime.min.replace(tzinfo=UTC)


def test_shipment_times_are_canonical_whatever_offset_came_first(tmp_path: Path) -> None:
    ship = {"carrier": "dhl", "lastUpdatedAt": "2025-01-20T10:00:00Z"}
    paris = {"carrier": "dhl", "lastUpdatedAt": "2025-01-20T11:00:00+01:00"}
    first = produce("CARD_SHIPPED", details={"status": "CARD_SHIPPED", "shipment": ship})
    second = produce("CARD_SHIPPED", details={"status": "CARD_SHIPPED", "shipment": paris})
    outputs = set()
    for order in ((first, second), (second, first)):
        state = settle(*(body(o) for o in order))[CARD]
        assert state.shipment is not None
        assert state.shipment.last_updated_at is not None
        assert state.shipment.last_updated_at.tzinfo is UTC
        log = tmp_path / "log.jsonl"
        log.write_bytes(b"\n".join(body(o) for o in order) + b"\n")
        for fmt in ("jsonl", "json", "csv"):
            out = io.BytesIO()
            console = Console(
                stdin=io.BytesIO(), stdout=out, stderr=io.StringIO(), environ={}, clock=lambda: NOW
            )
            run(["fold", str(log), "--format", fmt, "--now", "2025-03-01T00:00:00Z"], console)
            outputs.add((fmt, out.getvalue().replace(str(log).encode(), b"LOG")))
        outputs.add(("state", encode_state(state)))
    assert len(outputs) == 4


# -- 5. cost independent of history -------------------------------------------------------


def test_the_reader_decodes_each_document_once(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[int] = []
    real = cardflow.decode_lenient

    def counting(text: bytes) -> cardflow.Decoded:
        decoded.append(len(text))
        return real(text)

    monkeypatch.setattr(inputs, "decode_lenient", counting)
    closing = [b"]\n" if i % 2 else b"}\n" for i in range(2_000)]
    for stream in (
        b'{"operations": [\n' + b"".join(closing),
        b"[" * 500 + b"\n" + b"]\n" * 2_000,
        b'{\n  "operations": [\n' + b"  ]\n" * 2_000 + b"}\n",
    ):
        decoded.clear()
        list(inputs.Reader(io.BytesIO(stream)))
        assert sum(decoded) <= 3 * len(stream)


# -- 6. carrier data never costs the production status ---------------------------------


@pytest.mark.parametrize(
    ("shipment", "unparsed"),
    [
        (
            {"carrier": "dhl", "lastCheckpoint": {"checkpointTime": "2026-05-20T10:00:00"}},
            (("lastCheckpoint.checkpointTime", '"2026-05-20T10:00:00"'),),
        ),
        ({"estimatedDeliveryDate": "2026-05-24"}, (("estimatedDeliveryDate", '"2026-05-24"'),)),
        ({"status": 3, "carrier": ["dhl"]}, (("carrier", '["dhl"]'), ("status", "3"))),
        ({"lastCheckpoint": "Paris"}, (("lastCheckpoint", '"Paris"'),)),
        ("in transit", (("", '"in transit"'),)),
    ],
)
def test_unparsable_carrier_fields_are_kept_as_text(shipment: JSON, unparsed: Any) -> None:
    raw = body(produce("CARD_SHIPPED", details={"status": "CARD_SHIPPED", "shipment": shipment}))
    (op,) = decode(raw)
    assert op.details is not None
    assert op.details.shipment is not None
    assert op.details.shipment.unparsed == unparsed
    state = settle(raw)[CARD]
    assert state.status == "CARD_SHIPPED"
    assert state.shipment is not None
    assert state.shipment.unparsed == unparsed
    # encode writes each kept text back where it came from.
    again = json.loads(cardflow.encode([op]))["operations"][0]["details"]["shipment"]
    assert again == shipment


def test_production_fields_stay_strict() -> None:
    raw = body(produce("DATA_PREPARED", details={"status": "DATA_PREPARED", "dueDate": "soon"}))
    with pytest.raises(cardflow.InvalidNotification) as caught:
        decode(raw)
    assert caught.value.path == "$.operations[0].details.dueDate"


def test_without_last_updated_at_the_last_scan_orders_shipments() -> None:
    def scanned(status: str, when: str) -> JSON:
        ship = {"carrier": "dhl", "status": status, "lastCheckpoint": {"checkpointTime": when}}
        return produce("CARD_SHIPPED", details={"status": "CARD_SHIPPED", "shipment": ship})

    transit = scanned("IN_TRANSIT", "2025-01-20T10:00:00Z")
    delivered = scanned("DELIVERED", "2025-01-21T10:00:00+02:00")
    for order in ((transit, delivered), (delivered, transit)):
        state = settle(*(body(o) for o in order))[CARD]
        assert state.shipment is not None
        assert state.shipment.status == "DELIVERED"


def test_a_shipment_with_a_clock_beats_one_without() -> None:
    clocked = {"status": "IN_TRANSIT", "lastUpdatedAt": "2025-01-20T10:00:00Z"}
    bare = {"status": "ZZZ_NO_CLOCK"}
    states = [
        state_of(
            decode(
                body(produce("CARD_SHIPPED", details={"status": "CARD_SHIPPED", "shipment": s}))
            )[0]
        )
        for s in (clocked, bare)
    ]
    joined = merge(states[1], states[0])
    assert joined.shipment is not None
    assert joined.shipment.status == "IN_TRANSIT"
    assert merge(states[0], states[1]) == joined


def test_encode_never_writes_the_unparsed_key() -> None:
    """The field that keeps unparsed text never reaches D1's shape as its own key."""
    shipment = {"estimatedDeliveryDate": "2026-05-24"}
    raw = body(produce("CARD_SHIPPED", details={"status": "CARD_SHIPPED", "shipment": shipment}))
    assert cardflow.UNPARSED.encode() not in cardflow.encode(decode(raw))
    assert (
        msgspec.json.decode(cardflow.encode(decode(raw)))["operations"][0]["details"]["shipment"]
        == shipment
    )
