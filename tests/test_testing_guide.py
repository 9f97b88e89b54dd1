"""docs/testing-guide.md runs: its python blocks in order, then the tests they define.

The failure and the coverage summary it shows as text are checked against what the
code really prints (derandomized, as in CI).
"""

from __future__ import annotations

import io
import re
import unittest
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from cardflow.testing import HandlerMismatchError, check_handler

GUIDE = Path(__file__).parent.parent / "docs" / "testing-guide.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _blocks(kind: str) -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    return [body for lang, body in BLOCK.findall(text) if lang == kind]


@pytest.fixture(scope="module")
def guide() -> dict[str, Any]:
    """The namespace the guide's examples build, run in order like one module."""
    namespace: dict[str, Any] = {"__name__": "testing_guide"}
    for number, source in enumerate(_blocks("python"), 1):
        exec(compile(source, f"{GUIDE.name} (example {number})", "exec"), namespace)
    return namespace


def test_the_guide_has_examples(guide: dict[str, Any]) -> None:
    assert len(_blocks("python")) >= 8
    assert "WebhookService" in guide


def test_the_tests_the_guide_defines_pass(guide: dict[str, Any]) -> None:
    fixtures = {"cardflow_check": check_handler}
    ran = []
    for name, value in guide.items():
        if name.startswith("test_") and callable(value):
            arguments = value.__code__.co_varnames[: value.__code__.co_argcount]
            if hasattr(value, "hypothesis"):
                value()
            else:
                value(*(fixtures[a] for a in arguments))
            ran.append(name)
    assert len(ran) >= 5, ran


def test_the_state_machine_the_guide_defines_passes(guide: dict[str, Any]) -> None:
    case = guide["TestWebhookMachine"]
    assert issubclass(case, unittest.TestCase)
    result = unittest.TextTestRunner(stream=io.StringIO()).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(case)
    )
    assert result.wasSuccessful(), result.failures + result.errors


def test_the_failure_shown_is_the_one_produced(guide: dict[str, Any]) -> None:
    with pytest.raises(HandlerMismatchError) as caught:
        check_handler(guide["LastReceivedWins"], settings=settings(derandomize=True, database=None))
    shown = [b for b in _blocks("text") if b.startswith("the handler disagrees")]
    assert shown == [str(caught.value) + "\n"]


def test_the_coverage_shown_is_the_kind_produced(guide: dict[str, Any]) -> None:
    """Every edge, in the order produced; the counts vary with Hypothesis's choices."""
    coverage = check_handler(
        guide["WebhookService"],
        max_examples=100,
        settings=settings(derandomize=True, database=None),
    )
    assert coverage.complete
    (shown,) = [b for b in _blocks("text") if b.startswith("edge coverage")]
    produced = coverage.summary().splitlines()
    lines = shown.splitlines()
    assert len(lines) == len(produced)
    pattern = r"edge coverage of d1-central-issuance: 16/16 edges, 100%, over \d+ walks"
    assert re.fullmatch(pattern, lines[0])
    assert re.fullmatch(pattern, produced[0])
    for row, made in zip(lines[1:], produced[1:], strict=True):
        assert row.split()[1:] == made.split()[1:]
        assert re.fullmatch(r" {2}[ \d]{6} {2}.*", row)
