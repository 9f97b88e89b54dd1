"""``Change.key``: one key per (kind, card, operation, status), for any strings."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

import cardflow
from cardflow import Change, ChangeKind

_STATE = next(
    iter(
        cardflow.fold(
            [
                cardflow.Operation(
                    operation_id="op-1",
                    operation=cardflow.PRODUCE,
                    status="PENDING",
                    start_time=datetime(2025, 1, 17, tzinfo=UTC),
                    card_id="c",
                    details=cardflow.Details(status="CARD_PROD_READY"),
                )
            ]
        ).values()
    )
)
"""Any state: a key of a status change does not read it."""

KINDS = [ChangeKind.STATUS.value, ChangeKind.REVISED.value, ChangeKind.OLDER.value]
texts = st.text(st.sampled_from("/%\0@:#aé€\U0001f4b3") | st.characters(), max_size=8)
changes = st.builds(
    lambda kind, card, operation, status: Change(kind, card, operation, status, None, (), _STATE),
    st.sampled_from(KINDS),
    texts,
    texts,
    texts,
)


def _parsed(key: str) -> tuple[str, str, str, str]:
    """The (kind, card, operation, status) a key names, read back as a URL's path is:
    an oracle written apart from the encoder."""
    card, operation, what = key.split("/")
    kind, colon, status = what.partition(":")
    if not colon:
        kind, status = "STATUS", what
    assert "@" not in status
    assert ":" not in status
    return kind.upper(), unquote(card), unquote(operation), unquote(status)


@given(changes)
def test_a_key_names_its_kind_card_operation_and_status(change: Change) -> None:
    assert _parsed(change.key) == (
        change.kind,
        change.card_id,
        change.operation_id,
        change.status,
    )


@given(changes, changes)
def test_distinct_changes_have_distinct_keys(a: Change, b: Change) -> None:
    same = (a.kind, a.card_id, a.operation_id, a.status) == (
        b.kind,
        b.card_id,
        b.operation_id,
        b.status,
    )
    assert (a.key == b.key) == same


@given(changes)
def test_no_status_key_is_a_shipment_key(change: Change) -> None:
    assert "@" not in change.key.rsplit("/", 1)[-1]


def test_a_slash_in_a_status_no_longer_takes_another_card_s_key() -> None:
    forged = Change("STATUS", "c", "op-2/CARD_SHIPPED", "CARD_SHIPPED", None, (), _STATE)
    unknown = Change("STATUS", "c", "op-2", "x/CARD_SHIPPED", None, (), _STATE)
    real = Change("STATUS", "c/op-2", "x", "CARD_SHIPPED", None, (), _STATE)
    assert len({forged.key, unknown.key, real.key}) == 3
    assert real.key == "c%2Fop-2/x/CARD_SHIPPED"
    # D1's ids and statuses read as they always did.
    plain = Change("STATUS", "271b-6e47", "op_1.2~x", "CARD_SHIPPED", None, (), _STATE)
    assert plain.key == "271b-6e47/op_1.2~x/CARD_SHIPPED"
