"""The generated state diagram: up to date in docs/, complete, and derived from the lifecycle."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from cardflow._diagram import REGENERATE, mermaid, state_diagram_markdown
from cardflow._lifecycle import D1_LIFECYCLE, Edge, Lifecycle

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "state-diagram.md"
_ARROW = re.compile(r"^\s*(\S+) --> (\S+?)(?:: (.+))?$")


def arrows(source: str) -> set[tuple[str, str, str]]:
    """(label, source, dest) for every arrow line of a mermaid state diagram."""
    found: set[tuple[str, str, str]] = set()
    for line in source.splitlines():
        match = _ARROW.match(line)
        if match:
            src, dest, labels = match.groups()
            for label in (labels or "").split(" | "):
                found.add((label, src, dest))
    return found


def with_delivery() -> Lifecycle:
    """D1 plus a final CARD_DELIVERED after CARD_SHIPPED (a user-made lifecycle)."""
    states: list[Any] = [
        {"name": s, "final": D1_LIFECYCLE.is_final(s)} for s in D1_LIFECYCLE.statuses
    ]
    states.append({"name": "CARD_DELIVERED", "final": True})
    transitions: list[Any] = [[e.trigger, e.source, e.dest] for e in D1_LIFECYCLE.edges]
    transitions.append(["deliver", "CARD_SHIPPED", "CARD_DELIVERED"])
    return Lifecycle(
        name="with-delivery",
        states=states,
        transitions=transitions,
        initial=D1_LIFECYCLE.initial,
        descriptions={"CARD_DELIVERED": "The card reached the cardholder."},
    )


def test_committed_page_is_up_to_date() -> None:
    assert PAGE.read_text(encoding="utf-8") == state_diagram_markdown(), (
        f"docs/state-diagram.md is stale: run `{REGENERATE}` from the repository root"
    )


def test_page_names_the_regenerate_command() -> None:
    assert f"`{REGENERATE}`" in state_diagram_markdown()


def test_mermaid_has_every_edge_with_its_trigger() -> None:
    drawn = arrows(mermaid())
    for edge in D1_LIFECYCLE.edges:
        assert (edge.trigger, edge.source, edge.dest) in drawn
    labelled = {a for a in drawn if "[*]" not in a[1:]}
    assert labelled == {(e.trigger, e.source, e.dest) for e in D1_LIFECYCLE.edges}


def test_mermaid_marks_the_initial_and_final_states() -> None:
    drawn = arrows(mermaid())
    assert {a[2] for a in drawn if a[1] == "[*]"} == {D1_LIFECYCLE.initial}
    assert {a[1] for a in drawn if a[2] == "[*]"} == D1_LIFECYCLE.finals
    assert "CARD_SHIPPED --> [*]" not in mermaid()


def test_mermaid_is_neutral_and_deterministic() -> None:
    source = mermaid()
    assert source == mermaid()
    assert "s_active" not in source
    assert source.startswith('---\ntitle: "d1-central-issuance"\n---\nstateDiagram-v2\n')
    for status in D1_LIFECYCLE.statuses:
        assert f'state "{status}" as {status}' in source


def test_page_lists_every_status_and_edge() -> None:
    page = state_diagram_markdown()
    assert "```mermaid\n" + mermaid() + "```\n" in page
    for status in D1_LIFECYCLE.statuses:
        final = "yes" if D1_LIFECYCLE.is_final(status) else ""
        row = (
            f"| {D1_LIFECYCLE.rank(status)} | `{status}` | {D1_LIFECYCLE.describe(status)}"
            f" | {final} | {D1_LIFECYCLE.source(status)} |"
        )
        assert row in page
    for edge in D1_LIFECYCLE.edges:
        assert any(
            line.startswith(f"| `{edge.trigger}` |")
            and f"`{edge.source}`" in line
            and f"| `{edge.dest}` |" in line
            for line in page.splitlines()
        ), edge


def test_a_changed_lifecycle_changes_the_diagram_and_tables() -> None:
    custom = with_delivery()
    assert Edge("deliver", "CARD_SHIPPED", "CARD_DELIVERED") in custom.edges
    source = mermaid(custom)
    assert source != mermaid()
    assert ("deliver", "CARD_SHIPPED", "CARD_DELIVERED") in arrows(source)
    assert "CARD_DELIVERED --> [*]" in source
    page = state_diagram_markdown(custom)
    assert "| 10 | `CARD_DELIVERED` | The card reached the cardholder. | yes |  |" in page
    assert "| `deliver` | `CARD_SHIPPED` | `CARD_DELIVERED` |  |" in page
    assert REGENERATE not in page
    assert page != state_diagram_markdown()


def test_module_entry_point_writes_the_page(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    target = tmp_path / "state-diagram.md"
    cmd = [sys.executable, "-W", "error", "-m", "cardflow._diagram"]
    subprocess.run([*cmd, str(target)], check=True, env=env)
    assert target.read_text(encoding="utf-8") == state_diagram_markdown()
    printed = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    assert printed.stdout == state_diagram_markdown()
