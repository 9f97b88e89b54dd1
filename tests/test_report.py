"""cardflow.report without a browser: the aggregation's laws and the ``report`` command.

The aggregation is checked against plain recomputations from the fold's states
(tests/reportdata.py), never against itself; the page in Chromium is
tests/test_report_page.py.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

import cardflow
import cardflow.report
from cardflow.cli import run
from cardflow.report import TOP, aggregate, is_settled, render
from cardflow.report._svg import columns
from reportdata import NOW, candidates, console, days_late, fold_file, settled, write_log


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_log(tmp_path_factory.mktemp("report") / "log.jsonl", cards=300, seed=5)


@pytest.fixture(scope="module")
def states(log: Path) -> dict[str, cardflow.CardState]:
    return fold_file(log)[0]


def test_order_and_source_do_not_matter(states: dict[str, cardflow.CardState]) -> None:
    """A list, a shuffled list and a one-pass generator (as a store's cursor) agree."""
    shuffled = list(states.values())
    random.Random(3).shuffle(shuffled)
    as_list = aggregate(list(states.values()), NOW)
    assert aggregate(shuffled, NOW) == as_list
    assert aggregate((s for s in states.values()), NOW) == as_list


def test_counts_add_up(states: dict[str, cardflow.CardState]) -> None:
    fleet = aggregate(states.values(), NOW)
    assert fleet.cards == len(states) == sum(fleet.by_status.values())
    assert fleet.settled == sum(1 for s in states.values() if settled(s))
    binned = sum(b.cards for b in fleet.late_bins)
    assert fleet.settled + binned + fleet.no_due_date == fleet.cards
    assert sum(sum(day.values()) for day in fleet.started.values()) == fleet.cards
    assert sum(row.cards for row in fleet.sites) == fleet.cards
    assert sum(row.cards for row in fleet.carriers) == fleet.shipped


def test_is_settled_is_the_rule_needs_reconcile_applies(
    states: dict[str, cardflow.CardState],
) -> None:
    late = NOW + timedelta(days=10_000)  # every unsettled card is overdue and silent by then
    for state in states.values():
        reasons = cardflow.needs_reconcile(state, late)
        assert is_settled(state) == (cardflow.ReconcileReason.SILENT not in reasons)


def test_the_top_candidates_are_the_worst(states: dict[str, cardflow.CardState]) -> None:
    todo = candidates(states.values())
    by_id = {s.card_id: s for s in states.values()}

    def worst_first(card: str) -> tuple[int, int, datetime, str]:
        late = days_late(by_id[card])
        return (
            -len(todo[card]),
            -(late if late is not None else -(10**9)),
            cardflow.last_heard(by_id[card]),
            card,
        )

    fleet = aggregate(states.values(), NOW, top=7)
    assert fleet.reconcile == len(todo) > 7
    assert [c.card_id for c in fleet.candidates] == sorted(todo, key=worst_first)[:7]
    assert all(c.reasons == todo[c.card_id] for c in fleet.candidates)
    assert aggregate(states.values(), NOW, top=0).candidates == ()


def test_the_page_does_not_grow_with_cards(states: dict[str, cardflow.CardState]) -> None:
    """One table row per listed candidate, and no other element per card."""
    page = render(aggregate(states.values(), NOW, top=5))
    assert len(re.findall(r"<tr data-reasons=", page)) == 5
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def _started_on(days: list[date]) -> list[cardflow.CardState]:
    """One card started on each day (at noon UTC)."""
    ops = [
        cardflow.decode(
            json.dumps(
                {
                    "operations": [
                        {
                            "operationId": f"00000000-0000-4000-8000-{i:012d}",
                            "operation": "PRODUCE",
                            "status": "PENDING",
                            "startTime": f"{day.isoformat()}T12:00:00Z",
                            "cardId": f"card-{i}",
                            "details": {"status": "CARD_PROD_REQUESTED"},
                        }
                    ]
                }
            ).encode()
        )[0]
        for i, day in enumerate(days)
    ]
    return list(cardflow.fold(ops).values())


@pytest.mark.parametrize(
    ("last", "period"),
    [
        (date(2021, 2, 3), "day"),  # 400 days from the first: 400 columns
        (date(2021, 2, 4), "week"),
        (date(2049, 12, 31), "month"),  # 30 years: 360 months
        (date(2060, 1, 1), "year"),
    ],
)
def test_cards_started_per_day_week_month_or_year(last: date, period: str) -> None:
    first = date(2020, 1, 1)
    days = [first, first + timedelta(days=1), first + timedelta(days=9), last, last]
    fleet = aggregate(_started_on(days), NOW)
    assert fleet.period == period

    def start(day: date) -> date:
        if period == "week":
            return day - timedelta(days=day.weekday())
        if period == "month":
            return date(day.year, day.month, 1)
        return date(day.year, 1, 1) if period == "year" else day

    want: dict[date, int] = {}
    for day in days:
        want[start(day)] = want.get(start(day), 0) + 1
    assert {d: sum(c.values()) for d, c in fleet.started.items()} == want
    page = render(fleet)
    assert f'data-period="{period}"' in page
    assert page.count("<g data-day=") == len(want)


def _card(i: int, status: str, details: dict[str, object]) -> cardflow.Operation:
    op = {
        "operationId": f"00000000-0000-4000-8000-{i:012d}",
        "operation": "PRODUCE",
        "status": "SUCCESSFUL" if status == "CARD_SHIPPED" else "PENDING",
        "startTime": "2025-06-01T12:00:00Z",
        "cardId": f"card-{i:05d}",
        "details": {"status": status, **details},
    }
    return cardflow.decode(json.dumps({"operations": [op]}).encode())[0]


def test_long_tails_share_one_row() -> None:
    """40 sites, unknown statuses, carriers and shipment statuses, value k on k + 1
    cards: the page names the 25 largest of each and counts the rest in one row."""
    ops, i = [], 0
    for k in range(40):
        for _ in range(k + 1):
            ops.append(_card(i, f"WEIRD_{k:02d}", {"productionSite": f"site-{k:02d}"}))
            shipment = {"carrier": f"carrier-{k:02d}", "status": f"S{k:02d}"}
            ops.append(_card(i + 1, "CARD_SHIPPED", {"shipment": shipment}))
            i += 2
    states = list(cardflow.fold(ops).values())
    fleet = aggregate(states, NOW)
    largest = {f"{k:02d}" for k in range(15, 40)}
    rest = sum(k + 1 for k in range(15))  # cards with the 15 smallest values
    assert {r.site for r in fleet.sites} == {f"site-{k}" for k in largest} | {
        cardflow.report.OTHER_SITES,
        "(no site)",
    }
    assert {r.site: r.cards for r in fleet.sites}[cardflow.report.OTHER_SITES] == rest
    assert fleet.by_status[cardflow.report.OTHER_STATUSES] == rest
    assert set(fleet.by_status) == {f"WEIRD_{k}" for k in largest} | {
        cardflow.report.OTHER_STATUSES,
        "CARD_SHIPPED",
    }
    other = fleet.unknown_statuses[cardflow.report.OTHER_STATUSES]
    assert other.cards == rest
    weird_rest = sorted(
        s.card_id for s in states if s.status in {f"WEIRD_{k:02d}" for k in range(15)}
    )
    assert other.examples == tuple(weird_rest[:5])
    carriers = {r.carrier: r for r in fleet.carriers}
    assert set(carriers) == {f"carrier-{k}" for k in largest} | {cardflow.report.OTHER_CARRIERS}
    assert carriers[cardflow.report.OTHER_CARRIERS].cards == rest
    statuses = {s for r in fleet.carriers for s in r.statuses}
    assert statuses == {f"S{k}" for k in largest} | {cardflow.report.OTHER_SHIPMENT_STATUSES}
    assert sum(sum(r.statuses.values()) for r in fleet.carriers) == fleet.shipped == len(ops) // 2
    assert sum(fleet.by_status.values()) == fleet.cards == len(states)
    assert sum(sum(c.values()) for c in fleet.started.values()) == fleet.cards
    render(fleet)


def test_now_must_be_aware(states: dict[str, cardflow.CardState]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        aggregate(states.values(), datetime(2025, 7, 1))


def test_an_empty_fleet_renders() -> None:
    page = render(aggregate([], NOW))
    assert 'data-key="cards" data-n="0"' in page
    assert "no cards" in page


# -- the command ------------------------------------------------------------------------


def test_report_writes_the_page_and_reports_rejects(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    con, stdout, err = console()
    assert run(["report", str(log), "-o", str(out)], con) == 1  # one rejected line
    assert "rejected 1 body and 0 operations" in err.getvalue()
    assert f"wrote {out}" in err.getvalue()
    assert stdout.getvalue() == b""
    page = out.read_text(encoding="utf-8")
    assert "2025-07-01T12:00:00Z" in page  # the console's clock, since no --now
    con, _, _ = console()
    assert run(["report", "--allow-rejects", "-o", str(out), str(log)], con) == 0


def test_report_reads_stdin_and_names_itself_in_messages(tmp_path: Path) -> None:
    body = (
        b'{"operations":[{"operationId":"o1","operation":"PRODUCE","status":"PENDING",'
        b'"startTime":"2025-01-17T06:28:02Z","cardId":"c1","details":{"status":"DATA_PREPARED"}}]}\n'
    )
    out = tmp_path / "page.html"
    con, _, err = console(body)
    assert run(["report", "-o", str(out), "--now", "2025-01-18T00:00:00+00:00"], con) == 0
    assert 'data-key="cards" data-n="1"' in out.read_text(encoding="utf-8")
    con, _, err = console()
    status = run(["report", str(tmp_path / "absent.jsonl"), "-o", str(out)], con)
    assert status == 3
    assert "cardflow report: cannot read" in err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "log.jsonl"],  # no -o
        ["report", "-o", "x.html", "--now", "2025-01-01T00:00:00"],  # no offset
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    con, _, _ = console()
    assert run(argv, con) == 2


def test_an_unwritable_output_is_a_usage_error(log: Path, tmp_path: Path) -> None:
    con, _, err = console()
    status = run(["report", str(log), "-o", str(tmp_path / "no" / "such" / "dir.html")], con)
    assert status == 2
    assert "cannot write" in err.getvalue()


def test_the_report_api_is_pinned_and_the_core_does_not_import_it() -> None:
    assert TOP == 1000
    assert cardflow.report.__all__ == [
        "COLUMNS",
        "EXAMPLES",
        "LATE_BINS",
        "NAMED",
        "OTHER_CARRIERS",
        "OTHER_OPERATION_STATUSES",
        "OTHER_SHIPMENT_STATUSES",
        "OTHER_SITES",
        "OTHER_STATUSES",
        "PERIODS",
        "TOP",
        "Candidate",
        "CarrierRow",
        "Examples",
        "Fleet",
        "LateBin",
        "SiteRow",
        "Spread",
        "aggregate",
        "is_settled",
        "period_start",
        "render",
        "slot",
    ]
    probe = "import sys, cardflow; assert 'cardflow.report' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


@pytest.mark.parametrize(("days", "tallest"), [(366, 12), (31, 301), (9, 41), (2, 1)])
def test_the_per_day_chart_fills_its_box_and_shows_its_last_label(days: int, tallest: int) -> None:
    first = date(2025, 1, 1)
    starts = {first + timedelta(days=i): {"CARD_SHIPPED": 1 + i % 3} for i in range(days)}
    starts[first + timedelta(days=days // 2)] = {"CARD_SHIPPED": tallest - 2, "DATA_PREPARED": 2}
    svg = columns(starts, "day", {"CARD_SHIPPED": "#000", "DATA_PREPARED": "#111"}, "started")
    width = float(re.search(r'viewBox="0 0 (\d+) \d+"', svg)[1])  # type: ignore[index]
    tops = [float(y) for y in re.findall(r'<rect x="[^"]+" y="([^"]+)"', svg)]
    assert min(tops) == 8.0  # the tallest column reaches the top of the plot (top_pad 8)
    labels = re.findall(r'<text x="([^"]+)" y="248"( text-anchor="end")? fill="#666">([^<]+)<', svg)
    assert labels
    for x, end, text in labels:  # each label (7.5 units a character at most) inside the box
        left = float(x) - 7.5 * len(text) if end else float(x)
        assert 0 <= left <= width - 7.5 * len(text), (x, end, text)
