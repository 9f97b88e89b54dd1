"""Find the operations of a D1 body without recursion, for bodies msgspec cannot parse.

msgspec parses recursively, so a body with thousands of nested brackets anywhere,
even in an unknown field of one operation, fails as a whole. To keep the promise
that one bad operation never costs the good ones beside it, lenient decoding then
asks this scanner for the byte spans of the ``operations`` elements and decodes
each one alone. It is slow on purpose-built input only; valid bodies never get here.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["operation_spans"]

_SPECIAL: Final = re.compile(rb'["\[\]{},:]')
_STRING_REST: Final = re.compile(rb'(?:[^"\\]|\\.)*"', re.S)
_SPACE: Final = b" \t\r\n"


def operation_spans(body: bytes) -> list[tuple[int, int]] | None:
    """The (start, end) byte spans of the elements of the top-level ``operations`` array.

    Follows JSON's structure without validating the values; the caller decodes each
    span. None when the text is not an object whose ``operations`` member is an
    array, or when its brackets do not balance. With duplicate ``operations`` keys
    the last one counts, as in msgspec.
    """
    stack: list[int] = []  # the opening bytes of the open containers
    spans: list[tuple[int, int]] | None = None
    current: list[tuple[int, int]] = []
    in_operations = False
    last_key: bytes | None = None
    element_start = -1
    pos = 0
    size = len(body)
    while True:
        match = _SPECIAL.search(body, pos)
        if match is None:
            break
        at = match.start()
        char = body[at]
        pos = at + 1
        depth = len(stack)
        if char == 0x22:  # a string
            end = _STRING_REST.match(body, pos)
            if end is None:
                return None
            if depth == 1 and stack[0] == 0x7B:
                last_key = body[pos : end.end() - 1]
            if in_operations and depth == 2 and element_start < 0:
                element_start = at
            pos = end.end()
            continue
        if char in b"[{":
            if depth == 1 and char == 0x5B and last_key == b"operations" and stack[0] == 0x7B:
                in_operations = True
                current = []
                element_start = -1
            elif in_operations and depth == 2 and element_start < 0:
                element_start = at
            stack.append(char)
            continue
        if char in b"]}":
            if not stack or (stack[-1] == 0x5B) != (char == 0x5D):
                return None
            if in_operations and depth == 2 and char == 0x5D:
                _close(body, element_start, at, current)
                spans = current
                in_operations = False
                element_start = -1
            stack.pop()
            continue
        if char == 0x2C and in_operations and depth == 2:  # a comma between elements
            _close(body, element_start, at, current)
            element_start = -1
        elif char == 0x3A and depth == 1:  # the colon after a key: keep it
            continue
        elif depth == 1 and char == 0x2C:
            last_key = None
    if stack or pos > size:
        return None
    if spans is None:
        return None
    return spans


def _close(body: bytes, start: int, end: int, out: list[tuple[int, int]]) -> None:
    """Record the element that ends before ``end`` (a scalar starts where text starts)."""
    if start < 0:
        # A scalar element (number, true, null) or nothing (an empty array).
        left = end
        while left > 0 and body[left - 1] in _SPACE:
            left -= 1
        right = left
        while right > 0 and body[right - 1] not in b"[,":
            right -= 1
        while right < left and body[right] in _SPACE:
            right += 1
        if right < left:
            out.append((right, left))
        return
    stop = end
    while stop > start and body[stop - 1] in _SPACE:
        stop -= 1
    out.append((start, stop))
