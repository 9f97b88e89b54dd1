"""State rows this version cannot read: a corrupt or older one is derived again from the
card's events (and logged); one from a later version is refused for its card alone."""

from __future__ import annotations

import logging

import pytest

import cardflow
import cardflow.store

from . import logs, rawsql
from .test_rebuild import _store

LOGGER = "cardflow.store"


@pytest.fixture
def filled(store_url: str) -> tuple[str, dict[str, bytes], list[bytes]]:
    url = store_url
    lines = logs.log(cards=12, seed=8)
    with cardflow.store.open(url) as store:
        _store(store, lines[: len(lines) // 2])
    return url, logs.fold(lines[: len(lines) // 2]), lines


def _set(url: str, card: str, blob: bytes) -> None:
    rawsql.run(url, "UPDATE states SET state = ? WHERE card_id = ?", (blob, card))


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: b"\x00garbage",
        lambda blob: blob[:-3],  # truncated: the checksum fails
        lambda blob: b"CFS\x00" + blob[4:],  # an older format than this version reads
    ],
    ids=["garbage", "truncated", "older"],
)
def test_an_unreadable_row_is_derived_from_events_when_read_and_written(
    filled: tuple[str, dict[str, bytes], list[bytes]],
    damage: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, expected, lines = filled
    card = sorted(expected)[3]
    _set(url, card, damage(expected[card]))  # type: ignore[operator]
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with cardflow.store.open(url) as store:
        assert store.get(card) == cardflow.decode_state(expected[card])
        assert {s.card_id: cardflow.encode_state(s) for s in store.states()} == expected
        warned = [r for r in caplog.records if r.name == LOGGER]
        assert len(warned) == 2
        assert all(card in r.getMessage() and "re-deriving" in r.getMessage() for r in warned)
        # Written: the next body of the card finds its row repaired, then applies.
        caplog.clear()
        _store(store, lines[len(lines) // 2 :])
        assert rawsql.state_rows(url) == logs.fold(lines)
        assert [r.getMessage() for r in caplog.records if card in r.getMessage()] != []


def test_a_row_from_a_later_version_is_refused_for_its_card_alone(
    filled: tuple[str, dict[str, bytes], list[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    url, expected, lines = filled
    cards = sorted(expected)
    card, other = cards[5], cards[6]
    newer = b"CFS\x07" + expected[card][4:]
    _set(url, card, newer)
    assert cardflow.state_format_version(newer) == 7
    with cardflow.store.open(url) as store:
        with pytest.raises(cardflow.NewerStateError) as caught:
            store.get(card)
        error = caught.value
        assert isinstance(error, cardflow.StoreUnavailable)  # a service answers 503
        assert (error.card_id, error.found, error.known) == (card, 7, cardflow.STATE_FORMAT_VERSION)
        assert repr(card) in str(error)
        assert "version 7" in str(error)
        assert f"up to {cardflow.STATE_FORMAT_VERSION}" in str(error)
        assert store.get(other) == cardflow.decode_state(expected[other])
        caplog.set_level(logging.ERROR, logger=LOGGER)
        listed = {s.card_id for s in store.states()}
        assert listed == set(expected) - {card}
        assert any(card in r.getMessage() for r in caplog.records)
        # A body of that card is refused; a body of another card is stored.
        mine = [b for b in lines if card.encode() in b and not b.startswith(b"@")]
        theirs = [b for b in lines if other.encode() in b and card.encode() not in b]
        with pytest.raises(cardflow.NewerStateError):
            store.ingest(mine[-1])
        store.ingest(theirs[-1])
        # Rebuild leaves the row as the later version wrote it, and says so.
        result = store.rebuild()
        assert result.newer == (card,)
        assert rawsql.state_rows(url)[card] == newer


def test_an_unreadable_row_without_events_is_dropped_when_its_card_is_written(
    filled: tuple[str, dict[str, bytes], list[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    url, expected, lines = filled
    card = sorted(expected)[2]
    _set(url, card, b"garbage")
    rawsql.run(url, "DELETE FROM events WHERE card_id = ?", (card,))  # pruned
    mine = [b for b in lines if card.encode() in b and not b.startswith(b"@")]
    with cardflow.store.open(url) as store:
        assert store.get(card) is None
        store.ingest(mine[-1])
        folder = cardflow.Folder()
        folder.ingest(mine[-1])
        assert store.get(card) == folder[card]
    assert any("dropped" in r.getMessage() for r in caplog.records)


def test_an_event_row_that_does_not_decode_is_named(
    filled: tuple[str, dict[str, bytes], list[bytes]],
) -> None:
    url, expected, _ = filled
    card = sorted(expected)[1]
    [(row,)] = rawsql.run(url, "SELECT MIN(id) FROM events WHERE card_id = ?", (card,))
    rawsql.run(url, "UPDATE events SET event = ? WHERE id = ?", (b"\xc1junk", row))
    with cardflow.store.open(url) as store:
        for call in (store.rebuild, lambda: store.history(card)):
            with pytest.raises(cardflow.StoreUnavailable) as caught:
                call()
            assert f"events row {row} (card {card!r}) does not decode" in str(caught.value)
