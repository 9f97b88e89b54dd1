"""printable: wire text escaped for terminals and log lines, cut where asked."""

from __future__ import annotations

from cardflow._text import printable


def test_control_characters_are_escaped_and_long_text_is_cut() -> None:
    hostile = "card\x1b[2J\r\n\x00\u202e\x7f"
    assert printable(hostile) == "card\\x1b[2J\\r\\n\\x00\\u202e\\x7f"
    assert printable("plain text") == "plain text"
    assert printable("x" * 301, 300) == "x" * 300 + "..."
    assert printable("x" * 300, 300) == "x" * 300
    # Cut before escaping: the limit counts the sender's characters, not the escapes.
    assert printable("\x00" * 4, 2) == "\\x00\\x00..."
