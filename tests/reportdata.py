"""A log for the report's tests, and the counts the page must show, computed on their own.

The expected counts come from :func:`cardflow.fold` and a few lines of plain
Python each, never from :mod:`cardflow.report`, so that a test comparing the page
with them compares two independent computations.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

import cardflow
from cardflow.cli import run
from cardflow.cli._console import Console

__all__ = [
    "NOW",
    "anomalous_lines",
    "candidates",
    "console",
    "days_late",
    "expected_counts",
    "fold_file",
    "settled",
    "write_log",
]

NOW: Final = datetime(2025, 7, 1, 12, tzinfo=UTC)
"""Inside the simulated year: some cards are not yet due, some late, some not started."""
_OP: Final = "00000000-0000-4000-8000-0000000000{:02d}"


def console(stdin: bytes = b"") -> tuple[Console, io.BytesIO, io.StringIO]:
    """A console over buffers whose clock stops at :data:`NOW`."""
    out, err = io.BytesIO(), io.StringIO()
    return Console(io.BytesIO(stdin), out, err, {}, clock=lambda: NOW), out, err


def _body(card: str, n: int, status: str, details: dict[str, object], start: str) -> str:
    op = {
        "operationId": _OP.format(n),
        "operation": "PRODUCE",
        "status": status,
        "startTime": start,
        "cardId": card,
        "details": details,
    }
    return json.dumps({"operations": [op]})


def anomalous_lines() -> list[str]:
    """Cards that contradict themselves, lose notifications, or name unknown statuses."""
    start = "2025-06-01T10:00:00.000Z"
    return [
        _body("ffff-0000-0000-0001", 1, "PENDING", {"status": "DATA_EXCEPTION"}, start),
        _body("ffff-0000-0000-0001", 1, "SUCCESSFUL", {"status": "CARD_SHIPPED"}, start),
        _body(
            "ffff-0000-0000-0002",
            2,
            "PENDING",
            {"status": "CARD_TELEPORTED", "dueDate": "2025-06-05", "productionSite": "Gemenos"},
            start,
        ),
        _body(
            "ffff-0000-0000-0003",
            3,
            "PENDING",
            {"dueDate": "2025-07-01", "productionSite": "Tczew"},  # due on NOW's day
            start,
        ),
        _body("ffff-0000-0000-0004", 4, "FAILED", {"status": "CARD_SHIPPED"}, start),
        _body("ffff-0000-0000-0005", 5, "PENDING", {"status": "DATA_PREPARED"}, start),
        _body(
            "ffff-0000-0000-0005",
            5,
            "PENDING",
            {"status": "CARD_PROD_READY", "dueDate": "2025-07-20"},
            "2025-06-02T10:00:00.000Z",
        ),
        "{this line is not JSON",
    ]


def write_log(path: Path, cards: int, seed: int) -> Path:
    """Simulated traffic with lost notifications (``cardflow simulate``), plus the
    anomalous cards and one rejected line."""
    con, out, _ = console()
    assert run(["simulate", "--cards", str(cards), "--seed", str(seed), "--lose", "0.2"], con) == 0
    path.write_bytes(out.getvalue() + "\n".join(anomalous_lines()).encode() + b"\n")
    return path


def fold_file(path: Path) -> tuple[dict[str, cardflow.CardState], Counter[str]]:
    """The fold of every line (leniently; a logged on-demand answer as a reading at its
    ``confirmedAt``), and what was read: lines, bodies, operations."""
    read: Counter[str] = Counter()
    folder = cardflow.Folder()
    for line in path.read_bytes().splitlines():
        read["lines"] += 1
        decoded, at = cardflow.decode_reading(line)
        read["bodies"] += 1
        read["operations"] += len(decoded.operations)
        read["rejected"] += len(decoded.rejects)
        for op in decoded.operations:
            folder.add(op, at=at)
    return dict(folder.finish()), read


def settled(state: cardflow.CardState) -> bool:
    lifecycle = cardflow.D1_LIFECYCLE
    return (
        state.status in lifecycle.finals
        or lifecycle.is_success(state.status)
        or state.operation_status == "FAILED"
    )


def days_late(state: cardflow.CardState, now: datetime = NOW) -> int | None:
    return None if state.due_date is None else (now.date() - state.due_date).days


def candidates(
    states: Iterable[cardflow.CardState], now: datetime = NOW
) -> dict[str, tuple[str, ...]]:
    found = {}
    for state in states:
        reasons = cardflow.needs_reconcile(state, now)
        if reasons:
            found[state.card_id] = tuple(str(r) for r in reasons)
    return found


def _five(values: list[int]) -> list[int]:
    values = sorted(values)
    n = len(values)
    return [values[0], values[n // 4], values[n // 2], values[3 * n // 4], values[-1]]


def expected_counts(states: dict[str, cardflow.CardState], read: Counter[str]) -> dict[str, int]:
    """Every keyed count of the page (but the late bins, whose bounds the page gives)."""
    all_states = list(states.values())
    unsettled = [s for s in all_states if not settled(s)]
    todo = candidates(all_states)
    out: dict[str, int] = {
        "cards": len(all_states),
        "settled": len(all_states) - len(unsettled),
        "unsettled": len(unsettled),
        "late": sum(1 for s in unsettled if (days_late(s) or 0) > 0),
        "no-due": sum(1 for s in unsettled if s.due_date is None),
        "reconcile": len(todo),
        "listed": min(len(todo), 1000),
        "shipped": sum(1 for s in all_states if s.shipment is not None),
    }
    out |= {f"input:{k}": read[k] for k in ("lines", "bodies", "operations", "rejected")}
    out |= {f"status:{k}": v for k, v in Counter(s.status for s in all_states).items()}
    out |= {f"op:{k}": v for k, v in Counter(s.operation_status for s in all_states).items()}
    out |= {f"reason:{k}": v for k, v in Counter(r for rs in todo.values() for r in rs).items()}
    for kind, field in (("anomaly", "anomalies"), ("gap", "gaps"), ("unknown", "unknown_statuses")):
        found = Counter(x for s in all_states for x in getattr(s, field))
        out |= {f"{kind}:{k}": v for k, v in found.items()}
    for site in {s.production_site or "(no site)" for s in all_states}:
        mine = [s for s in all_states if (s.production_site or "(no site)") == site]
        open_ = [s for s in mine if not settled(s)]
        out[f"site:{site}:cards"] = len(mine)
        out[f"site:{site}:settled"] = len(mine) - len(open_)
        out[f"site:{site}:unsettled"] = len(open_)
        out[f"site:{site}:late"] = sum(1 for s in open_ if (days_late(s) or 0) > 0)
        out[f"site:{site}:reconcile"] = sum(1 for s in mine if s.card_id in todo)
    shipped = [s for s in all_states if s.shipment is not None]
    carriers = {s.shipment.carrier or "(no carrier)" for s in shipped if s.shipment}
    statuses = {s.shipment.status or "(no status)" for s in shipped if s.shipment}
    for carrier in carriers:
        parcels = [
            s.shipment
            for s in shipped
            if s.shipment and (s.shipment.carrier or "(no carrier)") == carrier
        ]
        out[f"carrier:{carrier}:cards"] = len(parcels)
        for status in statuses:
            out[f"carrier:{carrier}:status:{status}"] = sum(
                1 for m in parcels if (m.status or "(no status)") == status
            )
        leads = [
            (s.shipment.estimated_delivery_date.date() - s.start_time.date()).days
            for s in shipped
            if s.shipment
            and (s.shipment.carrier or "(no carrier)") == carrier
            and s.shipment.estimated_delivery_date is not None
        ]
        if leads:
            names = ("least", "lower", "median", "upper", "greatest")
            out |= {
                f"carrier:{carrier}:eta:{n}": v for n, v in zip(names, _five(leads), strict=True)
            }
    return out


def started(states: dict[str, cardflow.CardState]) -> dict[str, dict[str, int]]:
    """Cards by UTC start day (ISO) and current status."""
    out: dict[str, dict[str, int]] = {}
    for s in states.values():
        day: date = s.start_time.astimezone(UTC).date()
        by = out.setdefault(day.isoformat(), {})
        by[s.status] = by.get(s.status, 0) + 1
    return out
