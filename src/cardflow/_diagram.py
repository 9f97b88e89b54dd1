"""The state diagram of a lifecycle, as mermaid and as the page ``docs/state-diagram.md``.

Both are derived from a :class:`~cardflow._lifecycle.Lifecycle` only: the mermaid comes
from the mermaid engine of ``transitions`` (a fresh ``GraphMachine``), the tables from
the lifecycle's statuses, edges and notes. Regenerate the page with::

    python -m cardflow._diagram docs/state-diagram.md
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from cardflow._lifecycle import D1_LIFECYCLE, Lifecycle

if TYPE_CHECKING:  # the protocol exists in the stubs only
    from transitions.extensions.diagrams_base import GraphModelProtocol

__all__ = ["REGENERATE", "mermaid", "state_diagram_markdown"]

#: The command that rewrites docs/state-diagram.md from the default lifecycle.
REGENERATE = "python -m cardflow._diagram docs/state-diagram.md"


def mermaid(lifecycle: Lifecycle = D1_LIFECYCLE) -> str:
    """Mermaid ``stateDiagram-v2`` source of ``lifecycle``, deterministic and neutral.

    transitions draws its machine's current state as active; the machine here is fresh,
    so that would highlight the initial state, which ``[*] -->`` already marks: it is
    drawn like every other state instead. Final states get ``--> [*]``, which the
    mermaid engine of transitions leaves out for flat machines. Drawn top to bottom.
    """
    machine = lifecycle.graph_machine(graph_engine="mermaid", title=lifecycle.name)
    # Top to bottom: the lifecycle is a long chain with side exits, too wide left to right.
    machine.machine_attributes = {**machine.machine_attributes, "rankdir": "TB"}
    source = cast("GraphModelProtocol", machine).get_graph().draw(None)
    if source is None:  # pragma: no cover - the mermaid engine returns its source
        raise RuntimeError("transitions returned no mermaid source")
    lines = source.splitlines()
    # transitions writes the title as a bare front matter line; mermaid wants "title: ...".
    if lines[:3] == ["---", lifecycle.name, "---"]:
        lines[1] = f"title: {json.dumps(lifecycle.name)}"  # a JSON string is a YAML string
    lines = [
        line.replace(" s_active", " s_default")
        if line.lstrip().startswith(f"Class {lifecycle.initial} ")
        else line.rstrip()
        for line in lines
    ]
    # Keep only the style classes some state uses (transitions defines five).
    used = {line.split()[-1] for line in lines if line.lstrip().startswith("Class ")}
    lines = [
        line
        for line in lines
        if not line.lstrip().startswith("classDef ") or line.split()[1] in used
    ]
    lines += [f"  {status} --> [*]" for status in lifecycle.statuses if status in lifecycle.finals]
    return "\n".join(lines) + "\n"


_D1_TRAITS_BASIS = (
    " The seed examples show PENDING before completion, FAILED (with errorCode and error)"
    " with `DATA_EXCEPTION`, SUCCESSFUL (with endTime and shipment) with `CARD_SHIPPED`, and"
    " dueDate and productionSite from `DATA_PREPARED` on; the other traits are our reading."
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _codes(statuses: Sequence[str]) -> str:
    return ", ".join(f"`{s}`" for s in statuses)


def state_diagram_markdown(lifecycle: Lifecycle = D1_LIFECYCLE) -> str:
    """The whole page ``docs/state-diagram.md`` for ``lifecycle``."""
    if lifecycle is D1_LIFECYCLE:
        how = f"Regenerate it with `{REGENERATE}`."
    else:
        how = "It is written by `cardflow._diagram.state_diagram_markdown()`."
    out = [
        f"# Card production lifecycle: {lifecycle.name}",
        "",
        "This page is generated from the lifecycle definition in `cardflow._lifecycle`;"
        f" do not edit it by hand. {how}"
        " A test fails when the page and the definition disagree.",
        "",
        "```mermaid",
        mermaid(lifecycle).rstrip("\n"),
        "```",
        "",
        "## Statuses",
        "",
        f"Initial status: `{lifecycle.initial}`. Rank is the precedence the fold uses when"
        " notifications arrive out of order: the higher rank wins. A final status ends"
        " the lifecycle: nothing may follow it.",
        "",
        "| Rank | Status | Meaning | Final | Source |",
        "| ---: | --- | --- | :---: | --- |",
    ]
    for status in lifecycle.statuses:
        final = "yes" if lifecycle.is_final(status) else ""
        out.append(
            f"| {lifecycle.rank(status)} | `{status}` | {_cell(lifecycle.describe(status))}"
            f" | {final} | {_cell(lifecycle.source(status))} |"
        )
    out += [
        "",
        "## Traits",
        "",
        "Tags on the states of the definition (transitions' `Tags`): the top-level"
        " statuses D1 may send with each status (any other is reported as the anomaly"
        " `OPERATION_STATUS_MISMATCH`), whether it means production succeeded, and the"
        " fields its events carry (the test harness renders notifications from these)."
        + _D1_TRAITS_BASIS
        * (lifecycle is D1_LIFECYCLE),
        "",
        "| Status | Top-level status | Success | Carries |",
        "| --- | --- | :---: | --- |",
    ]
    for status in lifecycle.statuses:
        allowed = sorted(lifecycle.operation_statuses(status))
        success = "yes" if lifecycle.is_success(status) else ""
        carries = ", ".join(sorted(lifecycle.carries(status)))
        out.append(f"| `{status}` | {', '.join(allowed)} | {success} | {carries} |")
    out += [
        "",
        "## Edges",
        "",
        "Every edge goes up the precedence. The Basis column says whether a source"
        " states the edge or it is our reading of the sources.",
        "",
        "| Trigger | From | To | Basis |",
        "| --- | --- | --- | --- |",
    ]
    for trigger in sorted(lifecycle.triggers, key=lambda t: _first_edge(lifecycle, t)):
        dests = dict.fromkeys(e.dest for e in lifecycle.edges if e.trigger == trigger)
        for dest in dests:
            sources = [e.source for e in lifecycle.edges if e.trigger == trigger and e.dest == dest]
            out.append(
                f"| `{trigger}` | {_codes(sources)} | `{dest}`"
                f" | {_cell(lifecycle.trigger_source(trigger))} |"
            )
    return "\n".join(out) + "\n"


def _first_edge(lifecycle: Lifecycle, trigger: str) -> int:
    return next(i for i, e in enumerate(lifecycle.edges) if e.trigger == trigger)


if __name__ == "__main__":
    page = state_diagram_markdown()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8", newline="\n") as file:
            file.write(page)
    else:
        sys.stdout.write(page)
