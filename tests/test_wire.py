"""The D1 wire model: strict and lenient decoding, encoding, fingerprints.

Sections follow the promises of ``cardflow._wire``: D1's own examples decode to the
values written out below; every fault is named by its JSON path; open strings and
unknown fields flow through; non-PRODUCE operations never cost the body; lenient
decoding keeps the good operations beside the bad; no input makes either decoder
raise anything but ``InvalidNotification``; a fingerprint is the event's identity.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import msgspec
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import cardflow
from cardflow import (
    PRODUCE,
    CardflowError,
    Checkpoint,
    Decoded,
    Details,
    InvalidNotification,
    Operation,
    OperationStatus,
    Reject,
    Shipment,
    decode,
    decode_lenient,
    encode,
    fingerprint,
)
from strategies import (
    JSON,
    RawJSON,
    aware_datetimes,
    bodies,
    body_bytes,
    card_ids,
    checkpoint_dicts,
    details_dicts,
    dump,
    invalid_operations,
    mutated_bodies,
    operation_dicts,
    operation_ids,
    operations,
    respell_timestamp,
    shipment_dicts,
    text,
    tolerated_operation_dicts,
)

T = TypeVar("T")

SEEDS: Final = Path(__file__).parent / "data" / "track_production"


def seed(name: str) -> bytes:
    return (SEEDS / f"{name}.json").read_bytes()


def body_of(*ops: JSON) -> bytes:
    return json.dumps({"operations": list(ops)}).encode()


def same_error(a: InvalidNotification, b: InvalidNotification) -> bool:
    return (str(a), a.path, a.reason, a.index) == (str(b), b.path, b.reason, b.index)


# 1. D1's examples ------------------------------------------------------------------

OP_ID: Final = "01c5a05e-e197-11ec-8fea-0242ac120002"
CARD: Final = "271b-6e47-8ec3-7f3f"

REQUESTED: Final[dict[str, Any]] = {
    "operation_id": OP_ID,
    "operation": "PRODUCE",
    "status": "PENDING",
    "start_time": datetime(2025, 1, 17, 6, 28, 2, 492_000, tzinfo=UTC),
    "card_id": CARD,
    "details": {"status": "CARD_PROD_REQUESTED"},
}
PREPARED: Final[dict[str, Any]] = {
    "operation_id": OP_ID,
    "operation": "PRODUCE",
    "status": "PENDING",
    "start_time": datetime(2025, 1, 17, 6, 28, 2, 492_000, tzinfo=UTC),
    "card_id": CARD,
    "details": {
        "status": "DATA_PREPARED",
        "due_date": date(2025, 1, 21),
        "production_site": "Gemenos",
    },
}
DATA_EXCEPTION: Final[dict[str, Any]] = {
    "operation_id": OP_ID,
    "operation": "PRODUCE",
    "status": "FAILED",
    "start_time": datetime(2025, 1, 17, 6, 28, 2, 492_000, tzinfo=UTC),
    "end_time": datetime(2025, 1, 21, 9, 28, 12, 492_000, tzinfo=UTC),
    "card_id": CARD,
    "details": {"status": "DATA_EXCEPTION"},
    "error_code": "FIELD_INVALID_FORMAT",
    "error": "pan",
}
SHIPPED_FIRST: Final[dict[str, Any]] = {
    "operation_id": OP_ID,
    "operation": "PRODUCE",
    "status": "SUCCESSFUL",
    "start_time": datetime(2025, 1, 17, 6, 28, 2, 492_000, tzinfo=UTC),
    "end_time": datetime(2025, 1, 21, 9, 28, 12, 492_000, tzinfo=UTC),
    "card_id": CARD,
    "details": {
        "status": "CARD_SHIPPED",
        "due_date": date(2025, 1, 21),
        "production_site": "Gemenos",
        "shipment": {"estimated_delivery_date": datetime(2025, 1, 21, 17, 32, 28, tzinfo=UTC)},
    },
}
SHIPPED_LATER: Final[dict[str, Any]] = {
    "operation_id": OP_ID,
    "operation": "PRODUCE",
    "status": "SUCCESSFUL",
    "start_time": datetime(2025, 1, 17, 6, 28, 2, 492_000, tzinfo=UTC),
    "end_time": datetime(2025, 1, 21, 9, 28, 12, 492_000, tzinfo=UTC),
    "card_id": CARD,
    "details": {
        "status": "CARD_SHIPPED",
        "due_date": date(2025, 1, 21),
        "production_site": "Gemenos",
        "shipment": {
            "carrier": "fedex",
            "tracking_number": "1234567890",
            "status": "IN_TRANSIT",
            "message": "In transit",
            "tracking_url": "https://www.fedex.com/track?trk=1234567890",
            "estimated_delivery_date": datetime(2026, 5, 24, 0, 0, tzinfo=UTC),
            "last_updated_at": datetime(2026, 5, 22, 13, 55, tzinfo=UTC),
            "last_checkpoint": {
                "checkpoint_time": datetime(2026, 5, 22, 13, 55, tzinfo=UTC),
                "city": "Paris",
                "country_name": "France",
                "message": "Arrived at facility",
            },
        },
    },
}
EXPECTED: Final[dict[str, list[dict[str, Any]]]] = {
    "card_requested": [REQUESTED],
    "data_prepared": [PREPARED],
    "data_exception": [DATA_EXCEPTION],
    "shipped_first": [SHIPPED_FIRST],
    "shipped_subsequent": [SHIPPED_LATER],
    "bulk": [REQUESTED, PREPARED, DATA_EXCEPTION],
}


def attributes(value: msgspec.Struct) -> dict[str, Any]:
    """The fields of a decoded value that are set (not None, not empty), nested structs as dicts."""
    out: dict[str, Any] = {}
    for name in value.__struct_fields__:
        field = getattr(value, name)
        if field is not None and field != ():
            out[name] = attributes(field) if isinstance(field, msgspec.Struct) else field
    return out


def pinned(value: Any) -> Any:
    """Make equality exact: a datetime also by its offset, a date never equal to a datetime."""
    if isinstance(value, dict):
        return {k: pinned(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return ("datetime", value, value.utcoffset())
    if isinstance(value, date):
        return ("date", value)
    return (type(value).__name__, value)


def test_the_seed_files_are_the_six_examples() -> None:
    assert sorted(p.stem for p in SEEDS.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_example_decodes_to_the_values_written_out(name: str) -> None:
    ops = decode(seed(name))
    assert [pinned(attributes(op)) for op in ops] == [pinned(e) for e in EXPECTED[name]]
    assert all(type(op) is Operation for op in ops)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_example_round_trips_to_the_same_json_value(name: str) -> None:
    raw = seed(name)
    assert json.loads(encode(decode(raw))) == json.loads(raw)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_example_decodes_the_same_leniently(name: str) -> None:
    assert decode_lenient(seed(name)) == Decoded(operations=decode(seed(name)), rejects=[])


def test_bulk_decodes_in_body_order() -> None:
    ops = decode(seed("bulk"))
    singles = [*decode(seed("card_requested")), *decode(seed("data_prepared"))]
    singles += decode(seed("data_exception"))
    assert ops == singles
    assert [op.details.status if op.details else None for op in ops] == [
        "CARD_PROD_REQUESTED",
        "DATA_PREPARED",
        "DATA_EXCEPTION",
    ]
    reversed_body = body_of(*reversed(json.loads(seed("bulk"))["operations"]))
    assert decode(reversed_body) == ops[::-1]


def test_decoded_values_are_frozen_and_hashable() -> None:
    (op,) = decode(seed("shipped_subsequent"))
    with pytest.raises(AttributeError):
        setattr(op, "status", "FAILED")  # noqa: B010 (mypy rightly refuses the plain form)
    assert op.details is not None
    assert op.details.shipment is not None
    with pytest.raises(AttributeError):
        setattr(op.details.shipment, "carrier", "ups")  # noqa: B010
    assert len({op, *decode(seed("shipped_subsequent"))}) == 1
    assert op.status == OperationStatus.SUCCESSFUL


# 2. Faults, named by their JSON path ------------------------------------------------

DROP: Final = object()


def op_dict(**changes: Any) -> dict[str, Any]:
    """A valid PRODUCE operation with some fields changed (``DROP`` removes one)."""
    obj: dict[str, Any] = {
        "operationId": OP_ID,
        "operation": "PRODUCE",
        "status": "PENDING",
        "startTime": "2025-01-17T06:28:02.492Z",
        "cardId": CARD,
        "details": {"status": "DATA_PREPARED", "dueDate": "2025-01-21"},
    }
    for key, value in changes.items():
        if value is DROP:
            del obj[key]
        else:
            obj[key] = value
    return obj


def with_shipment(**shipment: Any) -> dict[str, Any]:
    return op_dict(details={"status": "CARD_SHIPPED", "shipment": shipment})


FAULTS: Final = [
    pytest.param(body_of(op_dict(cardId=DROP)), "$.operations[0].cardId", 0, id="missing-field"),
    pytest.param(
        body_of(op_dict(), op_dict(operationId=DROP)),
        "$.operations[1].operationId",
        1,
        id="missing",
    ),
    pytest.param(body_of(op_dict(status=5)), "$.operations[0].status", 0, id="wrong-type"),
    pytest.param(body_of(op_dict(cardId=None)), "$.operations[0].cardId", 0, id="null-required"),
    pytest.param(body_of(op_dict(errorCode=404)), "$.operations[0].errorCode", 0, id="int-code"),
    pytest.param(
        body_of(op_dict(), op_dict(), op_dict(startTime="2025-01-17T06:28:02.492")),
        "$.operations[2].startTime",
        2,
        id="timestamp-without-offset",
    ),
    pytest.param(
        body_of(op_dict(endTime="2025-01-21")), "$.operations[0].endTime", 0, id="date-as-time"
    ),
    pytest.param(
        body_of(op_dict(details={"dueDate": "2025-02-30"})),
        "$.operations[0].details.dueDate",
        0,
        id="impossible-due-date",
    ),
    pytest.param(
        body_of(op_dict(details={"dueDate": "2025-01-21T00:00:00Z"})),
        "$.operations[0].details.dueDate",
        0,
        id="timestamp-as-due-date",
    ),
    pytest.param(
        body_of(op_dict(operationId="a" * 65)), "$.operations[0].operationId", 0, id="id-too-long"
    ),
    pytest.param(body_of(op_dict(operationId="")), "$.operations[0].operationId", 0, id="id-empty"),
    pytest.param(
        body_of(op_dict(operationId="01c5a05e e197")),
        "$.operations[0].operationId",
        0,
        id="id-space",
    ),
    pytest.param(
        body_of(op_dict(operationId="opé")), "$.operations[0].operationId", 0, id="id-non-ascii"
    ),
    pytest.param(
        body_of(op_dict(operationId="abc\n")), "$.operations[0].operationId", 0, id="id-newline"
    ),
    pytest.param(b'{"operations": {}}', "$.operations", None, id="operations-not-array"),
    pytest.param(b'{"operations": null}', "$.operations", None, id="operations-null"),
    pytest.param(b'{"operation": []}', "$.operations", None, id="operations-missing"),
    pytest.param(b"[]", "$", None, id="body-array"),
    pytest.param(b'"operations"', "$", None, id="body-string"),
    pytest.param(b"null", "$", None, id="body-null"),
    pytest.param(b"", "$", None, id="body-empty"),
    pytest.param(seed("bulk")[:-9], "$", None, id="truncated"),
    pytest.param(seed("card_requested") + b"}", "$", None, id="trailing-bytes"),
    pytest.param(b"\xff\xfe{}", "$", None, id="body-not-utf8"),
    pytest.param(
        body_of(op_dict(cardId="CARD")).replace(b"CARD", b"\xc3\x28"),
        "$.operations[0]",
        0,
        id="value-not-utf8",
    ),
    pytest.param(
        body_of(op_dict(), op_dict(details={"status": "DATA_PREPARED", "dueDate": "2025-13-01"})),
        "$.operations[1].details.dueDate",
        1,
        id="nested",
    ),
    pytest.param(body_of(op_dict(), 17), "$.operations[1]", 1, id="operation-not-object"),
]


@pytest.mark.parametrize(("body", "path", "index"), FAULTS)
def test_fault_is_named_by_its_json_path(body: bytes, path: str, index: int | None) -> None:
    with pytest.raises(InvalidNotification) as caught:
        decode(body)
    error = caught.value
    assert error.path == path
    assert error.index == index
    assert error.reason
    assert str(error) == f"{path}: {error.reason}"
    (reject,) = decode_lenient(body).rejects
    assert (reject.path, reject.index, reject.reason) == (path, index, error.reason)
    assert same_error(reject.error(), error)


def test_missing_field_reason_names_the_field() -> None:
    with pytest.raises(InvalidNotification, match=r"cardId") as caught:
        decode(body_of(op_dict(cardId=DROP)))
    assert caught.value.path.endswith(".cardId")


def test_invalid_notification_is_a_value_error_and_a_cardflow_error() -> None:
    with pytest.raises(ValueError, match=r"^\$\.operations\[0\]\.status: ") as caught:
        decode(body_of(op_dict(status=[])))
    assert isinstance(caught.value, CardflowError)
    assert isinstance(caught.value, InvalidNotification)
    assert issubclass(InvalidNotification, ValueError)


def test_operation_id_of_64_allowed_characters_is_valid() -> None:
    longest = "aZ0_-" * 12 + "abcd"
    assert len(longest) == 64
    assert decode(body_of(op_dict(operationId=longest)))[0].operation_id == longest


# 3. Open strings, unknown fields, optional fields -------------------------------------

NEW_CODES: Final = [
    pytest.param({"details": {"status": "CARD_ON_HOLD"}}, "details.status", id="details"),
    pytest.param(
        {"details": {"shipment": {"status": "Teleported"}}},
        "details.shipment.status",
        id="shipment",
    ),
    pytest.param({"operation": "RECYCLE"}, "operation", id="operation"),
    pytest.param({"errorCode": "CODE_FROM_2031"}, "error_code", id="error-code"),
    pytest.param({"status": "PAUSED"}, "status", id="status"),
    pytest.param({"status": "pending"}, "status", id="status-lowercase"),
    pytest.param({"status": ""}, "status", id="status-empty"),
]


@pytest.mark.parametrize(("change", "where"), NEW_CODES)
def test_unknown_codes_decode_verbatim(change: dict[str, Any], where: str) -> None:
    raw = body_of(op_dict(**change))
    (op,) = decode(raw)
    value: Any = op
    for name in where.split("."):
        value = getattr(value, name)
    sent = change
    while isinstance(sent, dict):
        (sent,) = sent.values()
    assert type(value) is str
    assert value == sent
    assert json.loads(encode([op])) == json.loads(raw)


def test_unknown_fields_are_ignored_at_every_level() -> None:
    body = json.loads(seed("shipped_subsequent"))
    weird: list[Any] = [{"nested": [1, {"deep": None}]}, "text", 3.5, None, True, []]
    body["issuerId"] = weird
    op = body["operations"][0]
    op["priority"] = weird
    op["details"]["embossing"] = weird
    op["details"]["shipment"]["weightGrams"] = weird
    op["details"]["shipment"]["lastCheckpoint"]["latitude"] = weird
    raw = dump(body)[:-1] + b',"hugeNumber":' + b"9" * 400 + b',"alsoHuge":1e999}'
    assert decode(raw) == decode(seed("shipped_subsequent"))
    assert decode_lenient(raw).ok


KNOWN_NAMES: Final = frozenset(
    f.encode_name
    for struct in (Operation, Details, Shipment, Checkpoint)
    for f in msgspec.structs.fields(struct)
) | {"operations"}


UNKNOWN_NAMES: Final = text.filter(lambda n: n not in KNOWN_NAMES)
UNKNOWN_VALUES: Final = st.recursive(
    st.none() | st.booleans() | st.integers() | text, lambda c: st.lists(c, max_size=3)
)


@given(body=bodies(max_size=3), data=st.data())
def test_unknown_fields_anywhere_change_nothing(body: dict[str, JSON], data: st.DataObject) -> None:
    objects: list[dict[str, JSON]] = [body]
    for op in body["operations"]:
        objects.append(op)
        details = op.get("details")
        if isinstance(details, dict):
            objects.append(details)
            shipment = details.get("shipment")
            if isinstance(shipment, dict):
                objects.append(shipment)
                if isinstance(shipment.get("lastCheckpoint"), dict):
                    objects.append(shipment["lastCheckpoint"])
    expected = decode(dump(body))
    for obj in data.draw(st.lists(st.sampled_from(objects), min_size=1, max_size=4)):
        obj[data.draw(UNKNOWN_NAMES)] = data.draw(UNKNOWN_VALUES)
    assert decode(dump(body)) == expected


def test_details_may_be_absent_null_or_empty() -> None:
    (absent,) = decode(body_of(op_dict(details=DROP)))
    (null,) = decode(body_of(op_dict(details=None)))
    (empty,) = decode(body_of(op_dict(details={})))
    assert absent.details is None
    assert null == absent
    assert empty.details == Details()
    assert empty != absent


def test_null_optional_fields_equal_absent_ones() -> None:
    checkpoint = dict.fromkeys(("checkpointTime", "city", "countryName", "message"))
    shipment: dict[str, Any] = dict.fromkeys(
        (
            "carrier",
            "trackingNumber",
            "status",
            "message",
            "trackingUrl",
            "estimatedDeliveryDate",
            "lastUpdatedAt",
        )
    )
    shipment["lastCheckpoint"] = checkpoint
    details: dict[str, Any] = dict.fromkeys(
        (
            "status",
            "reason",
            "consumerId",
            "dueDate",
            "productionSite",
            "inputFileName",
            "issuerRequestId",
        )
    )
    details["shipment"] = shipment
    nulls = op_dict(details=details)
    for key in ("endTime", "errorCode", "error", "inputFileName", "issuerRequestId"):
        nulls[key] = None
    (op,) = decode(body_of(nulls))
    assert op == Operation(
        operation_id=OP_ID,
        operation=PRODUCE,
        status="PENDING",
        start_time=datetime(2025, 1, 17, 6, 28, 2, 492_000, tzinfo=UTC),
        card_id=CARD,
        details=Details(shipment=Shipment(last_checkpoint=Checkpoint())),
    )


# 4. Operations other than PRODUCE ---------------------------------------------------

ODD_DETAILS: Final = [
    pytest.param({"status": 7, "dueDate": "soon", "reason": "x"}, "$.details.status", id="mixed"),
    pytest.param({"dueDate": "soon", "reason": "x"}, "$.details.dueDate", id="bad-date"),
    pytest.param([1, 2], "$.details", id="array"),
    pytest.param("text", "$.details", id="string"),
    pytest.param(0, "$.details", id="number"),
    pytest.param(
        {"reason": "x", "productionSite": 3, "shipment": {"lastUpdatedAt": "2026-05-22T13:55"}},
        "$.details.productionSite",
        id="bad-site-beside-a-bad-shipment",
    ),
    pytest.param(
        {"reason": RawJSON(b"1e400"), "productionSite": "Gemenos"}, "$.details.reason", id="inf"
    ),
]


def test_a_body_mixing_operation_types_decodes_in_full() -> None:
    mixed = [
        op_dict(),
        op_dict(
            operation="STANDALONE_TRACKING", details={"status": 7, "dueDate": "soon", "reason": "x"}
        ),
        op_dict(operation="ACTIVATE", details=[1, 2]),
        op_dict(operation="SUSPEND", details="text"),
        op_dict(
            operation="STANDALONE_TRACKING",
            details={"status": "CARD_RETURNED", "shipment": {"carrier": "ups", "status": 3}},
        ),
        op_dict(operation="DIGITIZE", details={"dueDate": "2025-01-21", "issuerRequestId": 12}),
    ]
    ops = decode(body_of(*mixed))
    assert [op.operation for op in ops] == [o["operation"] for o in mixed]
    assert ops[0] == decode(body_of(op_dict()))[0]
    assert [op.details for op in ops[1:]] == [
        Details(reason="x"),
        None,
        None,
        Details(status="CARD_RETURNED"),
        Details(due_date=date(2025, 1, 21)),
    ]
    assert all(op.card_id == CARD and op.operation_id == OP_ID for op in ops)
    assert decode_lenient(body_of(*mixed)) == Decoded(operations=ops, rejects=[])


@pytest.mark.parametrize(("details", "path"), ODD_DETAILS)
def test_odd_details_fail_a_produce_operation_only(details: JSON, path: str) -> None:
    raw = dump({"operations": [op_dict(operation="ACTIVATE", details=details)]})
    (tolerated,) = decode(raw)
    assert tolerated.details is None or tolerated.details.status is None
    produce = dump({"operations": [op_dict(), op_dict(details=details)]})
    with pytest.raises(InvalidNotification) as caught:
        decode(produce)
    assert caught.value.path == "$.operations[1]" + path[1:]
    assert caught.value.index == 1


def test_huge_number_in_non_produce_details_drops_only_that_field() -> None:
    raw = body_of(op_dict(operation="ACTIVATE", details=DROP))[:-3]
    raw += b',"details":{"reason":1e400,"productionSite":"Gemenos","status":' + b"9" * 400 + b"}}]}"
    (op,) = decode(raw)
    assert op.details == Details(production_site="Gemenos")


def test_non_produce_fault_outside_details_is_the_one_named() -> None:
    # The details come first in the text, but do not matter for ACTIVATE: the missing
    # cardId does, and that is the fault to report.
    obj = {"details": "text", **op_dict(operation="ACTIVATE", cardId=DROP, details=DROP)}
    with pytest.raises(InvalidNotification) as caught:
        decode(body_of(obj))
    assert caught.value.path == "$.operations[0].cardId"


def test_produce_is_matched_exactly() -> None:
    # Only the literal "PRODUCE" is the production operation; anything else is passed over.
    (op,) = decode(body_of(op_dict(operation="produce", details=[1])))
    assert op.operation == "produce"
    assert op.details is None


@given(op=tolerated_operation_dicts())
def test_non_produce_operation_with_odd_details_keeps_its_top_level(op: dict[str, JSON]) -> None:
    (decoded,) = decode(body_of(op))
    without = {k: v for k, v in op.items() if k != "details"}
    assert msgspec.structs.replace(decoded, details=None) == decode(body_of(without))[0]


# 5. Lenient decoding ----------------------------------------------------------------


def joined(texts: list[bytes], sep: bytes = b", ") -> bytes:
    return b'{"operations": [' + sep.join(texts) + b"]}"


def test_lenient_keeps_good_operations_beside_bad_ones() -> None:
    texts = [
        json.dumps(op_dict(status="PENDING"), indent=2).encode(),
        dump(op_dict(cardId=DROP)),
        dump(op_dict(operation="ACTIVATE", details=[1])),
        b"  [1,  2]",
        dump(op_dict(details={"dueDate": "soon"})),
        b'{"operationId":"z","operation":"PRODUCE","status":"SUCCESSFUL",'
        b'"startTime":"2025-01-17T06:28:02.492+01:00","cardId":"c"}',
    ]
    body = joined(texts, b",\n   ")
    result = decode_lenient(body)
    assert not result.ok
    good = decode(joined([texts[0], texts[2], texts[5]]))
    assert result.operations == good
    assert [r.index for r in result.rejects] == [1, 3, 4]
    assert [r.path for r in result.rejects] == [
        "$.operations[1].cardId",
        "$.operations[3]",
        "$.operations[4].details.dueDate",
    ]
    assert [r.raw for r in result.rejects] == [texts[1], texts[3].strip(), texts[4]]
    for reject in result.rejects:
        start = body.index(reject.raw)
        assert body[start : start + len(reject.raw)] == reject.raw
        assert reject.reason
    with pytest.raises(InvalidNotification) as caught:
        decode(body)
    assert same_error(caught.value, result.rejects[0].error())


UNREADABLE: Final = [
    pytest.param(b"", id="empty"),
    pytest.param(b'{"operations": [', id="truncated"),
    pytest.param(b'{"operations": 3}', id="not-array"),
    pytest.param(b"[1, 2]", id="not-object"),
    pytest.param(b"\x80abc", id="not-utf8"),
    pytest.param(b'{"operations": []} {}', id="two-values"),
    pytest.param(b"[" * 50_000 + b"]" * 50_000, id="deep"),
]


@pytest.mark.parametrize("body", UNREADABLE)
def test_lenient_unreadable_body_is_one_reject_with_the_whole_body(body: bytes) -> None:
    result = decode_lenient(body)
    assert result.operations == []
    (reject,) = result.rejects
    assert reject.index is None
    assert reject.raw == body
    assert reject.path.startswith("$")
    with pytest.raises(InvalidNotification) as caught:
        decode(body)
    assert same_error(caught.value, reject.error())


def test_lenient_unreadable_text_body_keeps_its_utf8_text() -> None:
    body = '{"opérations": []}'
    (reject,) = decode_lenient(body).rejects
    assert reject.raw == body.encode()
    assert decode_lenient("\ud800[]").rejects[0].raw == "\ud800[]".encode("utf-8", "surrogatepass")


MALFORMED: Final = [
    pytest.param(b'"\xff"', "not valid UTF-8 at byte", id="invalid-byte"),
    pytest.param(b'"\xed\xa0\x80"', "not valid UTF-8 at byte", id="encoded-surrogate"),
    pytest.param(b'"caf\xc3"', "not valid UTF-8 at byte", id="cut-sequence"),
    pytest.param(b'"\\ud800"', "\\ud800 is a lone UTF-16 surrogate", id="lone-high"),
    pytest.param(b'"\\udc00x"', "\\udc00 is a lone UTF-16 surrogate", id="lone-low"),
    pytest.param(b'"\\ud800\\u0041"', "\\ud800 is a lone UTF-16 surrogate", id="high-then-a"),
]


@pytest.mark.parametrize(("text", "reason"), MALFORMED)
@pytest.mark.parametrize("operation", ["PRODUCE", "ACTIVATE", "DELETE"])
@pytest.mark.parametrize("where", ["top", "details", "shipment"])
def test_a_malformed_string_rejects_its_operation_whatever_its_type(
    text: bytes, reason: str, operation: str, where: str
) -> None:
    """The same bad string in a field no Struct names rejects any operation, saying what
    is wrong with it; the good operation beside it is kept."""
    bad = op_dict(operation=operation, details={"status": "CARD_SHIPPED"})
    if where == "top":
        bad["unknownField"] = "HOLE"
    elif where == "details":
        bad["details"]["unknownField"] = "HOLE"
    else:
        bad["details"]["shipment"] = {"carrier": "x", "unknownField": "HOLE"}
    good = op_dict(operationId="00000000-0000-4000-8000-00000000000f")
    body = joined([dump(good), dump(bad).replace(b'"HOLE"', text)])
    result = decode_lenient(body)
    assert result.operations == decode(joined([dump(good)]))
    (reject,) = result.rejects
    assert (reject.index, reject.path) == (1, "$.operations[1]")
    assert reason in reject.reason
    assert "truncated" not in reject.reason
    with pytest.raises(InvalidNotification):
        decode(body)


def test_a_surrogate_pair_escaped_is_one_good_character() -> None:
    body = joined([dump(op_dict(cardId="HOLE"))]).replace(b'"HOLE"', b'"\\ud83d\\ude00"')
    (op,) = decode_lenient(body).operations
    assert op.card_id == "\U0001f600"


def test_a_malformed_string_outside_the_operations_rejects_the_body() -> None:
    body = b'{"note": "\xff", "operations": [' + dump(op_dict()) + b"]}"
    result = decode_lenient(body)
    (reject,) = result.rejects
    assert (reject.index, result.operations) == (None, [])
    assert "not valid UTF-8 at byte 10" in reject.reason


def test_decoded_ok_and_reject_error() -> None:
    assert Decoded(operations=[], rejects=[]).ok
    reject = Reject(index=2, path="$.operations[2].cardId", reason="missing", raw=b"{}")
    error = reject.error()
    assert (error.index, error.path, error.reason) == (2, "$.operations[2].cardId", "missing")
    assert not Decoded(operations=[], rejects=[reject]).ok


Entry = tuple[str, JSON, str]
"""(kind, operation JSON, fault path below the operation) for the lenient properties."""

entries: Final[st.SearchStrategy[Entry]] = st.one_of(
    operation_dicts().map(lambda o: ("good", o, "")),
    tolerated_operation_dicts().map(lambda o: ("good", o, "")),
    invalid_operations().map(lambda bad: ("bad", bad[0], bad[1])),
)


@given(st.lists(entries, max_size=5), st.sampled_from([b",", b" ,\n\t"]))
def test_lenient_result_is_the_strict_result_of_the_good_operations(
    listed: list[Entry], sep: bytes
) -> None:
    texts = [dump(obj) for _, obj, _ in listed]
    body = joined(texts, sep)
    result = decode_lenient(body)
    good = [t for t, e in zip(texts, listed, strict=True) if e[0] == "good"]
    assert result.operations == decode(joined(good))
    bad = [i for i, e in enumerate(listed) if e[0] == "bad"]
    assert [r.index for r in result.rejects] == bad
    for reject in result.rejects:
        assert reject.index is not None
        assert reject.raw == texts[reject.index]
        assert reject.path == f"$.operations[{reject.index}]" + listed[reject.index][2][1:]
    if bad:
        with pytest.raises(InvalidNotification) as caught:
            decode(body)
        assert same_error(caught.value, result.rejects[0].error())
    else:
        assert result.ok
        assert decode(body) == result.operations


@given(st.lists(entries, min_size=1, max_size=4), operation_dicts())
def test_each_reject_is_what_strict_raises_when_it_is_the_first_fault(
    listed: list[Entry], filler: dict[str, JSON]
) -> None:
    texts = [dump(obj) for _, obj, _ in listed]
    result = decode_lenient(joined(texts))
    for reject in result.rejects:
        assert reject.index is not None
        before = [t if e[0] == "good" else dump(filler) for t, e in zip(texts, listed, strict=True)]
        with pytest.raises(InvalidNotification) as caught:
            decode(joined([*before[: reject.index], texts[reject.index]]))
        assert same_error(caught.value, reject.error())


@given(body_bytes())
def test_lenient_equals_strict_on_valid_bodies(body: bytes) -> None:
    assert decode_lenient(body) == Decoded(operations=decode(body), rejects=[])


# 6. Nothing but InvalidNotification, whatever the input -------------------------------


def check_total(body: Any) -> None:
    """Strict decoding returns operations or raises InvalidNotification; lenient agrees."""
    strict_error: InvalidNotification | None = None
    ops: list[Operation] = []
    try:
        ops = decode(body)
    except InvalidNotification as exc:
        strict_error = exc
    if strict_error is None:
        assert isinstance(ops, list)
        assert all(type(op) is Operation for op in ops)
    else:
        assert strict_error.path.startswith("$")
    result = decode_lenient(body)
    assert all(type(op) is Operation for op in result.operations)
    for reject in result.rejects:
        assert reject.path.startswith("$")
        assert isinstance(reject.raw, bytes)
        if reject.index is None:
            assert not reject.path.startswith("$.operations[")
    if strict_error is None:
        assert result == Decoded(operations=ops, rejects=[])
    else:
        assert result.rejects
        assert same_error(strict_error, result.rejects[0].error())
    if isinstance(body, bytes):
        for reject in result.rejects:
            whole = body.removeprefix(b"\xef\xbb\xbf")
            assert reject.raw == whole if reject.index is None else reject.raw in body


json_values: Final = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda c: (
        st.lists(c, max_size=4) | st.dictionaries(text | st.sampled_from(sorted(KNOWN_NAMES)), c)
    ),
    max_leaves=20,
)
any_text: Final = st.text(
    st.characters(exclude_categories=[])
    | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=[])
    | st.sampled_from('{}[]":,0123456789.eE-+ \\untrl')
)


@given(st.binary())
@example(b"\xff")
@example(b'{"operations": [{}]}')
def test_arbitrary_bytes(body: bytes) -> None:
    check_total(body)


@given(any_text)
@example("\ud800")
@example('{"operations": ["\ud800"]}')
def test_arbitrary_text(body: str) -> None:
    check_total(body)


@given(json_values)
def test_arbitrary_json_values(value: JSON) -> None:
    check_total(json.dumps(value).encode())
    check_total(json.dumps({"operations": value}).encode())
    check_total(json.dumps({"operations": [value]}).encode())


@given(operation_dicts(), st.data())
def test_arbitrary_json_in_place_of_any_field(op: dict[str, JSON], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(KNOWN_NAMES - {"operations"})))
    op[key] = data.draw(json_values)
    check_total(body_of(op))


@given(mutated_bodies())
@example(b'{"operations":[{"a":' + b"[" * 5000 + b"]" * 5000 + b"}]}")
@example(b'{"operations":[{"operationId":"a","operationId":' + b"9" * 400 + b"}]}")
def test_mutated_valid_bodies(body: bytes) -> None:
    check_total(body)
    check_total(bytearray(body))
    check_total(memoryview(body))


@pytest.mark.parametrize(
    "body",
    [None, 42, 4.2, ["{}"], {"operations": []}, object(), memoryview(b"{ [ }")[::2]],
)
def test_non_text_input_is_an_invalid_notification(body: Any) -> None:
    with pytest.raises(InvalidNotification) as caught:
        decode(body)
    assert caught.value.path == "$"
    (reject,) = decode_lenient(body).rejects
    assert reject.index is None
    check_total(body)


# 7. Fingerprints ------------------------------------------------------------------


TIMESTAMP_KEYS: Final = frozenset(
    {"startTime", "endTime", "estimatedDeliveryDate", "lastUpdatedAt", "checkpointTime"}
)


def respelled(value: JSON, offset: timezone) -> JSON:
    """The same JSON with keys reversed and every timestamp at another offset."""
    if isinstance(value, list):
        return [respelled(v, offset) for v in value]
    if isinstance(value, dict):
        return {
            k: respell_timestamp(v, offset)
            if k in TIMESTAMP_KEYS and isinstance(v, str)
            else respelled(v, offset)
            for k, v in reversed(value.items())
        }
    return value


def test_fingerprint_ignores_spelling() -> None:
    raw = seed("shipped_subsequent")
    (op,) = decode(raw)
    plus_one = timezone(timedelta(hours=1))
    body = json.loads(raw)
    spellings = [
        json.dumps(respelled(body, plus_one)).encode(),
        json.dumps(respelled(body, timezone(timedelta(hours=-7, minutes=-30))), indent=8).encode(),
        raw.replace(b"\n", b"\r\n\t  "),
        raw.rstrip()[:-1] + b', "extra": {"x": [1, 2]}}',
        raw.replace(b'"cardId"', b'"newField": null, "cardId"'),
    ]
    assert b"+01:00" in spellings[0]
    for spelling in spellings:
        (other,) = decode(spelling)
        assert other == op
        assert fingerprint(other) == fingerprint(op)


def test_fingerprint_tells_wall_clock_twins_apart() -> None:
    utc = op_dict(startTime="2025-01-17T06:28:02.492Z")
    paris = op_dict(startTime="2025-01-17T06:28:02.492+01:00")
    (a,) = decode(body_of(utc))
    (b,) = decode(body_of(paris))
    assert a != b
    assert fingerprint(a) != fingerprint(b)


def test_fingerprint_of_seed_examples_are_all_different() -> None:
    singles = [n for n in EXPECTED if n != "bulk"]
    prints = {fingerprint(decode(seed(n))[0]) for n in singles}
    assert len(prints) == len(singles)
    assert all(type(p) is bytes for p in prints)


def details_structs() -> st.SearchStrategy[Details]:
    return details_dicts().map(lambda d: msgspec.json.decode(json.dumps(d), type=Details))


def shipment_structs() -> st.SearchStrategy[Shipment]:
    return shipment_dicts().map(lambda d: msgspec.json.decode(json.dumps(d), type=Shipment))


def checkpoint_structs() -> st.SearchStrategy[Checkpoint]:
    return checkpoint_dicts().map(lambda d: msgspec.json.decode(json.dumps(d), type=Checkpoint))


maybe_text: Final = st.none() | text
maybe_time: Final = st.none() | aware_datetimes()
NEW_VALUES_BY_STRUCT: Final[dict[type[msgspec.Struct], dict[str, st.SearchStrategy[Any]]]] = {
    Operation: {
        "operation_id": operation_ids,
        "operation": text,
        "status": text,
        "start_time": aware_datetimes(),
        "card_id": card_ids,
        "end_time": maybe_time,
        "details": st.none() | details_structs(),
        "error_code": maybe_text,
        "error": maybe_text,
        "input_file_name": maybe_text,
        "issuer_request_id": maybe_text,
    },
    Details: {
        "status": maybe_text,
        "reason": maybe_text,
        "consumer_id": maybe_text,
        "due_date": st.none() | st.dates(),
        "production_site": maybe_text,
        "shipment": st.none() | shipment_structs(),
        "input_file_name": maybe_text,
        "issuer_request_id": maybe_text,
    },
    Shipment: {
        "carrier": maybe_text,
        "tracking_number": maybe_text,
        "status": maybe_text,
        "message": maybe_text,
        "tracking_url": maybe_text,
        "estimated_delivery_date": maybe_time,
        "last_updated_at": maybe_time,
        "last_checkpoint": st.none() | checkpoint_structs(),
        "unparsed": st.lists(
            st.tuples(st.sampled_from(["estimatedDeliveryDate", "lastCheckpoint.city"]), text),
            max_size=2,
        ).map(lambda pairs: tuple(sorted(pairs))),
    },
    Checkpoint: {
        "checkpoint_time": maybe_time,
        "city": maybe_text,
        "country_name": maybe_text,
        "message": maybe_text,
    },
}


@pytest.mark.parametrize("struct", list(NEW_VALUES_BY_STRUCT))
def test_every_field_has_a_strategy_for_new_values(struct: type[msgspec.Struct]) -> None:
    assert set(NEW_VALUES_BY_STRUCT[struct]) == set(struct.__struct_fields__)


class Draw(Protocol):
    """What ``@composite`` passes and what ``DataObject.draw`` is."""

    def __call__(self, strategy: st.SearchStrategy[T], label: Any = None, /) -> T: ...


def change_one_field(draw: Draw, op: Operation) -> Operation:
    """``op`` with exactly one field, at any depth, set to a different value."""
    chain: list[msgspec.Struct] = [op]
    while True:
        children = [
            v
            for v in (getattr(chain[-1], n) for n in chain[-1].__struct_fields__)
            if isinstance(v, msgspec.Struct)
        ]
        if not children or draw(st.booleans()):
            break
        chain.append(draw(st.sampled_from(children)))
    target = chain[-1]
    name = draw(st.sampled_from(target.__struct_fields__))
    new = draw(NEW_VALUES_BY_STRUCT[type(target)][name])
    assume(new != getattr(target, name))
    changed: msgspec.Struct = msgspec.structs.replace(target, **{name: new})
    for parent in reversed(chain[:-1]):
        (field,) = [n for n in parent.__struct_fields__ if getattr(parent, n) is target]
        target, changed = parent, msgspec.structs.replace(parent, **{field: changed})
    assert isinstance(changed, Operation)
    return changed


@given(operations(), st.data())
def test_fingerprint_changes_with_any_one_field(op: Operation, data: st.DataObject) -> None:
    changed = change_one_field(data.draw, op)
    assert changed != op
    assert fingerprint(changed) != fingerprint(op)


@st.composite
def operation_pairs(draw: st.DrawFn) -> tuple[Operation, Operation]:
    obj = draw(operation_dicts())
    (a,) = decode(body_of(obj))
    how = draw(st.sampled_from(["independent", "respelled", "changed", "same"]))
    if how == "independent":
        return a, draw(operations())
    if how == "respelled":
        offset = timezone(timedelta(minutes=draw(st.integers(-12 * 60, 14 * 60))))
        return a, decode(body_of(respelled(obj, offset)))[0]
    if how == "changed":
        return a, change_one_field(draw, a)
    return a, decode(body_of(obj))[0]


@given(operation_pairs())
def test_fingerprints_are_equal_exactly_when_operations_are(
    pair: tuple[Operation, Operation],
) -> None:
    a, b = pair
    assert (fingerprint(a) == fingerprint(b)) == (a == b)
    assert fingerprint(a) == fingerprint(msgspec.structs.replace(a))


# 8. Text and bytes; encoding ---------------------------------------------------------


@given(body_bytes())
def test_text_body_decodes_as_its_bytes(body: bytes) -> None:
    as_text = body.decode()
    assert decode(as_text) == decode(body) == decode(bytearray(body)) == decode(memoryview(body))
    assert decode_lenient(as_text) == decode_lenient(body)


@given(st.one_of(mutated_bodies(), st.text().map(str.encode)))
def test_text_body_fails_as_its_bytes(body: bytes) -> None:
    try:
        as_text = body.decode()
    except UnicodeDecodeError:
        assume(False)
        return
    assert decode_lenient(as_text) == decode_lenient(body)


@given(st.lists(operations(), max_size=3))
def test_encoding_then_decoding_gives_the_operations_back(ops: list[Operation]) -> None:
    raw = encode(ops)
    assert decode(raw) == ops
    assert encode(decode(raw)) == raw
    assert json.loads(raw).keys() == {"operations"}


def test_encode_writes_d1_spelling() -> None:
    assert encode([]) == b'{"operations":[]}'
    (op,) = decode(body_of(op_dict(startTime="2025-01-17T07:28:02.492000+01:00", details=DROP)))
    raw = encode([op, msgspec.structs.replace(op, start_time=op.start_time.astimezone(UTC))])
    starts = [o["startTime"] for o in json.loads(raw)["operations"]]
    assert starts == ["2025-01-17T07:28:02.492+01:00", "2025-01-17T06:28:02.492Z"]
    assert b"null" not in raw
    assert b"details" not in raw
    assert isinstance(cardflow.encode(iter([op])), bytes)


def test_raw_json_helper_reaches_the_decoder_verbatim() -> None:
    # Guards the mutation strategy itself: spliced text must not be re-escaped.
    assert dump({"a": RawJSON(b"\xff")}) == b'{"a":\xff}'


def test_deep_nesting_outside_the_operations_costs_nothing() -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    body = b'{"x": ' + deep + b', "operations": [' + dump(op_dict()) + b"]}"
    result = cardflow.decode_lenient(body)
    assert (len(result.operations), result.rejects) == (1, [])


def test_deep_nesting_in_one_operation_costs_only_that_operation() -> None:
    """msgspec parses recursively; the slow path finds the operations without recursion."""
    deep = b"[" * 100_000 + b"]" * 100_000
    good = dump(op_dict())
    body = b'{"operations": [' + good + b', {"x": ' + deep + b"}, " + good + b"]}"
    result = cardflow.decode_lenient(body)
    assert len(result.operations) == 2
    assert [(r.index, r.path) for r in result.rejects] == [(1, "$.operations[1]")]
    assert result.rejects[0].raw == b'{"x": ' + deep + b"}"
    with pytest.raises(InvalidNotification) as caught:
        cardflow.decode(body)
    assert caught.value.path == "$.operations[1]"
