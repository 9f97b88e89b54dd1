"""The report page in a real headless Chromium: it loads cleanly, offline, draws every
chart, and every number it shows equals the fold's count, computed here on its own.

One Chromium process and one page load serve the whole module (a module fixture).
The screenshot is written to pytest's temporary directory and its path printed
(``pytest -s`` shows it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import cardflow
from browser import Browser, Page, find_chromium
from cardflow.cli import run
from components import missing
from reportdata import (
    NOW,
    candidates,
    console,
    days_late,
    expected_counts,
    fold_file,
    settled,
    started,
    write_log,
)

_READ_DOM = """(() => {
  const keyed = [...document.querySelectorAll('[data-key]')].map(el => ({
    key: el.dataset.key, n: Number(el.dataset.n), text: el.textContent.trim(),
    low: el.dataset.low, high: el.dataset.high}));
  const days = {};
  for (const g of document.querySelectorAll('g[data-day]')) {
    const by = {};
    for (const r of g.querySelectorAll('rect[data-status]')) {
      by[r.dataset.status] = Number(r.dataset.n);
    }
    days[g.dataset.day] = by;
  }
  const charts = [...document.querySelectorAll('svg')].map(svg => {
    const box = svg.getBoundingClientRect();
    return {label: svg.getAttribute('aria-label'), marks: svg.querySelectorAll('rect,line').length,
            width: box.width, height: box.height};
  });
  const rows = [...document.querySelectorAll('#candidates tbody tr')].map(tr =>
    [...tr.cells].map(td => td.textContent));
  const examples = [...document.querySelectorAll('section table tr')].filter(tr =>
    tr.cells.length === 3 && tr.cells[1].dataset !== undefined && tr.querySelector('[data-key]'))
    .map(tr => [tr.querySelector('[data-key]').dataset.key,
                [...tr.cells[2].querySelectorAll('code')].map(c => c.textContent)]);
  const period = document.querySelector('[data-period]').dataset.period;
  return {keyed, days, period, charts, rows, examples, external: [...document.querySelectorAll(
    'script[src],link[href],img[src],iframe,object,embed')].length};
})()"""


@dataclass
class Loaded:
    browser: Browser
    page: Page
    dom: dict[str, Any]
    states: dict[str, cardflow.CardState]
    expected: dict[str, int]
    screenshot: Path
    log: Path

    def shown(self) -> dict[str, int]:
        """Each keyed number of the page (the tests below check that repeats agree)."""
        return {item["key"]: item["n"] for item in self.dom["keyed"]}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    executable = find_chromium()
    if executable is None:
        missing("chromium", "no /usr/bin/chromium (apt-get install chromium)")
    where = tmp_path_factory.mktemp("report")
    log = write_log(where / "log.jsonl", cards=400, seed=11)
    html = where / "report.html"
    con, _, err = console()
    status = run(["report", str(log), "-o", str(html), "--now", NOW.isoformat()], con)
    assert status == 1, err.getvalue()  # the one bad line is rejected; the page is written
    states, read = fold_file(log)
    with Browser(executable) as browser:
        page = browser.open(html)
        browser.settle(page)
        dom = browser.evaluate(page, _READ_DOM)
        shot = browser.screenshot(page, where / "report.png")
        print(f"\nreport page: {html}\nscreenshot: {shot}")
        yield Loaded(browser, page, dom, states, expected_counts(states, read), shot, log)


def test_loads_offline_without_errors(loaded: Loaded) -> None:
    assert loaded.page.console_errors == []
    assert loaded.page.requests == [loaded.page.url]  # the page itself, nothing else
    assert loaded.dom["external"] == 0


def test_every_chart_is_drawn(loaded: Loaded) -> None:
    charts = loaded.dom["charts"]
    assert {c["label"] for c in charts} >= {
        "cards by status",
        "cards started, by current status",
        "unsettled cards by days past due",
        "reconcile candidates by reason",
        "cards by production site",
        "cards by carrier and shipment status",
        "estimated delivery, days after the request",
    }
    for chart in charts:
        assert chart["marks"] > 0, chart
        assert chart["width"] > 100, chart
        assert chart["height"] > 20, chart


def test_every_number_equals_the_folds_count(loaded: Loaded) -> None:
    expected = loaded.expected
    shown: dict[str, set[int]] = {}
    for item in loaded.dom["keyed"]:
        assert item["text"] == f"{item['n']:,}", item  # what a person reads is the count
        shown.setdefault(item["key"], set()).add(item["n"])
    late = {k: v for k, v in shown.items() if k.startswith("late:")}
    plain = {k: v for k, v in shown.items() if not k.startswith("late:")}
    # Zero counts may be left off the page (a status no card has); every other one is there.
    assert {k for k, v in expected.items() if v} <= set(plain)
    assert {k: v for k, v in plain.items() if v != {expected.get(k, 0)}} == {}
    assert len(late) >= 10


def test_the_page_agrees_with_cardflow_folds_own_summary(loaded: Loaded) -> None:
    """The same log through ``cardflow fold --format json``: its summary, on the page."""
    con, out, _ = console()
    run(["fold", str(loaded.log), "--format", "json", "--now", NOW.isoformat()], con)
    document = json.loads(out.getvalue())
    summary, read = document["summary"], document["input"]
    shown = loaded.shown()
    assert shown["cards"] == summary["cards"] == read["cards"]
    for prefix, counts in (
        ("status", summary["byStatus"]),
        ("op", summary["byOperationStatus"]),
        ("anomaly", summary["anomalies"]),
        ("gap", summary["gaps"]),
        ("unknown", summary["unknownStatuses"]),
        ("reason", summary["reconcile"]["byReason"]),
    ):
        assert {k: shown.get(f"{prefix}:{k}") for k in counts} == counts, prefix
    assert shown["reconcile"] == summary["reconcile"]["cards"]
    rejected = read["rejectedBodies"] + read["rejectedOperations"]
    assert [shown[f"input:{k}"] for k in ("lines", "bodies", "operations", "rejected")] == [
        read["lines"],
        read["bodies"],
        read["operations"],
        rejected,
    ]


def test_the_late_histogram_counts_unsettled_cards_by_days(loaded: Loaded) -> None:
    open_ = [s for s in loaded.states.values() if not settled(s) and s.due_date is not None]
    binned = 0
    for item in loaded.dom["keyed"]:
        if not item["key"].startswith("late:"):
            continue
        low = int(item["low"]) if item["low"] else -(10**9)
        high = int(item["high"]) if item["high"] else 10**9
        want = sum(1 for s in open_ if low <= (days_late(s) or 0) <= high)
        assert item["n"] == want, item
        binned += item["n"]
    assert binned == len(open_)  # the bins cover every unsettled card with a due date
    assert any(item["n"] for item in loaded.dom["keyed"] if item["key"] == "late:not yet due")


def test_started_per_day_by_status(loaded: Loaded) -> None:
    assert loaded.dom["period"] == "day"  # the log spans a year: fewer than 400 days
    assert loaded.dom["days"] == started(loaded.states)


def test_candidates_table_lists_every_candidate_with_its_reasons(loaded: Loaded) -> None:
    todo = candidates(loaded.states.values())
    assert 0 < len(todo) <= 1000
    listed = {row[0]: tuple(row[2].split(", ")) for row in loaded.dom["rows"]}
    assert listed == todo


def test_examples_are_the_smallest_cards_of_each_kind(loaded: Loaded) -> None:
    fields = {"anomaly": "anomalies", "gap": "gaps", "unknown": "unknown_statuses"}
    checked = 0
    for key, examples in loaded.dom["examples"]:
        kind, _, name = key.partition(":")
        if kind not in fields:
            continue
        having = sorted(
            s.card_id for s in loaded.states.values() if name in getattr(s, fields[kind])
        )
        assert examples == having[:5], key
        checked += 1
    assert checked >= 5


def test_filter_and_sort_the_candidates(loaded: Loaded) -> None:
    browser, page = loaded.browser, loaded.page
    todo = candidates(loaded.states.values())
    gaps = sum(1 for reasons in todo.values() if "GAPS" in reasons)
    shown = browser.evaluate(
        page,
        """(() => { const s = document.getElementById('reason'); s.value = 'GAPS';
        s.dispatchEvent(new Event('change'));
        return [document.getElementById('shown').textContent,
                [...document.querySelectorAll('#candidates tbody tr')]
                  .filter(r => !r.hidden).length];
        })()""",
    )
    assert shown == [f"{gaps:,}", gaps]
    ids = browser.evaluate(
        page,
        """(() => { const s = document.getElementById('reason'); s.value = '';
        s.dispatchEvent(new Event('change'));
        document.querySelector('#candidates th').click();
        return [...document.querySelectorAll('#candidates tbody tr')]
          .map(r => r.cells[0].textContent);
        })()""",
    )
    assert ids == sorted(todo)
    late = browser.evaluate(
        page,
        """(() => { document.querySelectorAll('#candidates th')[3].click();
        document.querySelectorAll('#candidates th')[3].click();
        return [...document.querySelectorAll('#candidates tbody tr')]
          .map(r => r.cells[3].textContent);
        })()""",
    )
    numbers = [int(x.replace(",", "")) for x in late if x]
    assert numbers == sorted(numbers, reverse=True)
    browser.settle(page)
    assert page.console_errors == []


def test_screenshot_is_written(loaded: Loaded) -> None:
    data = loaded.screenshot.read_bytes()
    assert data.startswith(b"\x89PNG")
    assert len(data) > 50_000
