"""Simulated logs for the store's tests, and the fold they must end in."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cardflow
import cardflow.store
from cardflow._simulate import simulate

READ_FROM = datetime(2025, 3, 1, tzinfo=UTC)


def log(cards: int, seed: int) -> list[bytes]:
    """Simulated deliveries, and every tenth body again as an on-demand status read at
    a time of its own (a line ``@<iso time> <body>``)."""
    lines: list[bytes] = []
    for index, body in enumerate(simulate(cards, seed)):
        lines.append(body)
        if index % 10 == 3:
            at = READ_FROM + timedelta(minutes=index)
            lines.append(b"@" + at.isoformat().encode() + b" " + body)
    return lines


def shuffled(lines: Sequence[bytes], seed: int, again: float = 0.2) -> list[bytes]:
    """The lines in a random order, a fraction of them twice."""
    rng = random.Random(seed)
    out = [*lines, *(line for line in lines if rng.random() < again)]
    rng.shuffle(out)
    return out


def write(path: Path, lines: Sequence[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def parsed(line: bytes) -> tuple[bytes, datetime | None]:
    """A line's body, and its reading time when it is an on-demand status."""
    if not line.startswith(b"@"):
        return line, None
    stamp, _, body = line[1:].partition(b" ")
    return body, datetime.fromisoformat(stamp.decode())


def fold(lines: Sequence[bytes]) -> dict[str, bytes]:
    """The fold of the lines, each state in its encoded form: the store's oracle."""
    folder = cardflow.Folder()
    for line in lines:
        body, at = parsed(line)
        for op in cardflow.decode_lenient(body).operations:
            folder.add(op, at=at)
    return {card: cardflow.encode_state(state) for card, state in folder.states().items()}


def stored(store: cardflow.store.Store) -> dict[str, bytes]:
    return {state.card_id: cardflow.encode_state(state) for state in store.states()}
