"""``lines_of``: a stream's lines read a block at a time give exactly the lines of a
bounded ``readline`` (the oracle), whatever the blocks, and mark every line the fast
path must leave to the lenient one (too long, or not UTF-8)."""

from __future__ import annotations

import functools
import io
import typing
from typing import BinaryIO

from hypothesis import given, settings
from hypothesis import strategies as st

from cardflow.batch._inputs import lines_of


class Trickle:
    """A stream that hands out its bytes in pieces of the given sizes, in turn."""

    def __init__(self, data: bytes, pieces: list[int]) -> None:
        self._data = io.BytesIO(data)
        self._pieces = pieces
        self._turn = 0

    def readline(self) -> bytes:  # only its presence matters: a stream, not an iterator
        raise AssertionError("lines_of reads blocks")

    def read1(self, size: int) -> bytes:
        piece = self._pieces[self._turn % len(self._pieces)]
        self._turn += 1
        return self._data.read(min(size, piece))


def _utf8(text: bytes) -> bool:
    try:
        text.decode()
    except UnicodeDecodeError:
        return False
    return True


_PARTS = [b"a", b"\n", b"\r\n", b"\r", b" ", b'{"x":1}', b"\xc3\xa9", b"\xc3", b"\xff", b"\xe2\x82"]


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(st.sampled_from(_PARTS), max_size=120).map(b"".join),
    limit=st.integers(1, 30),
    pieces=st.lists(st.integers(1, 40), min_size=1, max_size=5),
)
def test_lines_of_is_a_bounded_readline_marking_what_the_fast_path_must_not_take(
    data: bytes, limit: int, pieces: list[int]
) -> None:
    oracle = list(iter(functools.partial(io.BytesIO(data).readline, limit + 2), b""))
    got = list(lines_of(typing.cast("BinaryIO", Trickle(data, pieces)), limit))
    assert [bytes(line) for line in got] == oracle
    starts = True  # whether this line starts a line of the input (not a later chunk)
    for line in got:
        whole = starts and (line.endswith(b"\n") or line is got[-1])
        if type(line) is bytes:
            assert len(line) <= limit
            assert _utf8(line)
        else:
            assert len(line) > limit or not _utf8(bytes(line)) or not whole
        if whole and len(line) <= limit and _utf8(line):
            assert type(line) is bytes  # a good line is never sent the slow way
        starts = line.endswith(b"\n")


def test_a_line_longer_than_any_block_is_read_in_bounded_chunks() -> None:
    data = b"x" * 5000 + b"\n" + b'{"ok":1}\n'
    got = list(lines_of(typing.cast("BinaryIO", Trickle(data, [7, 300])), 1000))
    assert [len(line) for line in got] == [1002] * 4 + [993, 9]
    # Its first chunk sends the fast path to the lenient one, which reads to its end.
    assert [type(line).__name__ for line in got[:4]] == ["bytearray"] * 4
    assert got[-1] == b'{"ok":1}\n'
    assert type(got[-1]) is bytes
