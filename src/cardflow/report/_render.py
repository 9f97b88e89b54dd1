"""The page: a :class:`Fleet` drawn as one self-contained HTML document.

Style and script are inline and the charts are SVG written here (``_svg``), so the
file opens anywhere, offline, and makes no request. Every string from the data is
escaped where it is written (a status is any string D1 sent), and the page's
Content-Security-Policy lets no script run but its own inline one, by its hash.
Every count a person reads carries ``data-key`` and ``data-n``; the candidates' table
sorts and filters with a few lines of inline script, and without script it is still a
plain table.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Final

from .. import D1_LIFECYCLE, STATUS_MEANINGS, Lifecycle, __version__
from ._aggregate import Examples, Fleet, Spread
from ._svg import (
    Bar,
    Box,
    Segment,
    boxes,
    columns,
    count,
    hbars,
    histogram,
    stacked,
    status_colors,
)

__all__ = ["render"]

_STYLE: Final = """
:root{color-scheme:light;--ink:#1d2330;--mute:#5b6475;--line:#e3e6ec;--bg:#f5f6f8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:20px 32px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c5cad6}
main{max-width:1240px;margin:0 auto;padding:16px 24px 48px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;
margin:16px 0}
h2{font-size:17px;margin:0 0 4px}p.note{color:var(--mute);margin:0 0 12px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.tile{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.tile b{display:block;font-size:24px}.tile small{color:var(--mute)}
svg{width:100%;max-width:1000px;height:auto;display:block;margin:8px 0}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#fafbfc;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px;white-space:nowrap}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:4px 0;color:var(--mute)}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;
vertical-align:-1px}
.controls{display:flex;gap:12px;align-items:center;flex-wrap:wrap;margin:8px 0}
.controls input,.controls select{font:inherit;padding:4px 8px}
.scroll{max-height:520px;overflow:auto;border:1px solid var(--line);border-radius:6px}
.scroll th{position:sticky;top:0;cursor:pointer;user-select:none}
#candidates td,#candidates th{white-space:nowrap}
.scroll th[aria-sort=ascending]::after{content:" \\25B2"}
.scroll th[aria-sort=descending]::after{content:" \\25BC"}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
"""

_SCRIPT: Final = """
(function(){
var table=document.getElementById('candidates');if(!table)return;
var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
var text=document.getElementById('filter'),reason=document.getElementById('reason');
var shown=document.getElementById('shown');
function apply(){var q=text.value.trim().toLowerCase(),r=reason.value,n=0;
rows.forEach(function(row){var ok=(!q||row.textContent.toLowerCase().indexOf(q)>=0)&&
(!r||row.getAttribute('data-reasons').split(' ').indexOf(r)>=0);
row.hidden=!ok;if(ok)n++;});shown.textContent=n.toLocaleString('en-US');}
text.addEventListener('input',apply);reason.addEventListener('change',apply);
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
th.addEventListener('click',function(){
var down=th.getAttribute('aria-sort')==='ascending',num=th.classList.contains('n');
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){c.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',down?'descending':'ascending');
rows.sort(function(a,b){var x=a.cells[i].getAttribute('data-v'),y=b.cells[i].getAttribute('data-v');
var c=num?(parseFloat(x)-parseFloat(y)):(x<y?-1:x>y?1:0);return down?-c:c;});
rows.forEach(function(row){body.appendChild(row);});});});
})();
"""


CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline';"
    f" script-src 'sha256-{base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()}';"
    " base-uri 'none'; form-action 'none'"
)
"""The page's policy: no request of any kind, and no script but the page's own, by its
hash, so that markup a value smuggled past the escaping could still not run."""


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _legend(colors: Mapping[str, str]) -> str:
    items = "".join(
        f'<span><i style="background:{c}"></i>{escape(name)}</span>' for name, c in colors.items()
    )
    return f'<div class="legend">{items}</div>'


def _tile(label: str, key: str, n: int, note: str = "") -> str:
    small = f"<small>{escape(note)}</small>" if note else ""
    return f'<div class="tile">{count(key, n, "b")}{escape(label)} {small}</div>'


def _section(title: str, note: str, *parts: str) -> str:
    return f"<section><h2>{escape(title)}</h2><p class=note>{note}</p>{''.join(parts)}</section>"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    cells = "".join(
        f"<th{' class=n' if i in numeric else ''}>{escape(h)}</th>" for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{v}</td>" for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _summary(fleet: Fleet, inputs: Mapping[str, int] | None) -> str:
    late = sum(b.cards for b in fleet.late_bins if b.low is not None and b.low > 0)
    tiles = [
        _tile("cards", "cards", fleet.cards),
        _tile("settled", "settled", fleet.settled, "final, shipped or failed"),
        _tile("unsettled", "unsettled", fleet.unsettled),
        _tile("late", "late", late, "unsettled, past due"),
        _tile("to reconcile", "reconcile", fleet.reconcile),
        _tile("with shipment", "shipped", fleet.shipped),
    ]
    extra = ""
    if inputs:
        extra = (
            '<p class=note style="margin-top:10px">Read: '
            + ", ".join(f"{count('input:' + k, v)} {escape(k)}" for k, v in inputs.items())
            + "</p>"
        )
    return f'<div class="tiles">{"".join(tiles)}</div>{extra}'


def _funnel(fleet: Fleet, colors: Mapping[str, str], lifecycle: Lifecycle) -> str:
    bars = [
        Bar(s or "(no status)", n, colors[s], f"status:{s}") for s, n in fleet.by_status.items()
    ]
    ops = _table(
        ["operation status", "cards"],
        [
            [escape(s or "(none)"), count(f"op:{s}", n)]
            for s, n in fleet.by_operation_status.items()
        ],
        {1},
    )
    note = (
        "Each card counted once, at its current status, in the lifecycle's order"
        f" ({escape(lifecycle.name)}); hover a bar for its share."
    )
    return _section("Cards by status", note, hbars(bars, "cards by status", fleet.cards), ops)


def _started(fleet: Fleet, colors: Mapping[str, str]) -> str:
    note = (
        f"Cards by the {fleet.period} (UTC) their current production request started,"
        f" coloured by the status they are at now. Hover a column for the {fleet.period}'s"
        " counts."
    )
    return _section(
        f"Cards started per {fleet.period}",
        note,
        _legend({s or "(no status)": colors[s] for s in fleet.statuses}),
        columns(fleet.started, fleet.period, colors, "cards started, by current status"),
    )


def _late(fleet: Fleet) -> str:
    bins = [
        (
            b.label,
            b.cards,
            f' data-low="{"" if b.low is None else b.low}"'
            f' data-high="{"" if b.high is None else b.high}"',
        )
        for b in fleet.late_bins
    ]
    note = (
        f"Unsettled cards by whole days from their due date to {_time(fleet.now)}."
        f" Not shown: {count('no-due', fleet.no_due_date)} unsettled cards without a due"
        " date. (Reconciliation calls a card OVERDUE only past a margin: two days by default.)"
    )
    return _section("Days late", note, histogram(bins, "unsettled cards by days past due"))


def _candidates(fleet: Fleet) -> str:
    reasons = [Bar(r, n, "#e15759", f"reason:{r}") for r, n in fleet.by_reason.items()]
    options = "".join(f'<option value="{escape(r)}">{escape(r)}</option>' for r in fleet.by_reason)
    rows = []
    for c in fleet.candidates:
        late = "" if c.days_late is None else f"{c.days_late:,}"
        cells = [
            (escape(c.card_id), f"<code>{escape(c.card_id)}</code>"),
            (escape(c.status), escape(c.status or "(no status)")),
            (escape(" ".join(c.reasons)), escape(", ".join(c.reasons))),
            ("-1e9" if c.days_late is None else str(c.days_late), late),
            (c.due_date.isoformat() if c.due_date else "", str(c.due_date or "")),
            (_time(c.last_heard), _time(c.last_heard)),
            (escape(c.production_site or ""), escape(c.production_site or "")),
            (escape(c.carrier or ""), escape(c.carrier or "")),
        ]
        tds = "".join(
            f'<td data-v="{v}"{" class=n" if i == 3 else ""}>{shown}</td>'
            for i, (v, shown) in enumerate(cells)
        )
        rows.append(f'<tr data-reasons="{escape(" ".join(c.reasons))}">{tds}</tr>')
    head = ["card", "status", "reasons", "days late", "due date", "last heard", "site", "carrier"]
    ths = "".join(f"<th{' class=n' if i == 3 else ''}>{h}</th>" for i, h in enumerate(head))
    listed = len(fleet.candidates)
    note = (
        f"{count('reconcile', fleet.reconcile)} cards are worth an on-demand status call"
        f" (<code>cardflow.needs_reconcile</code> at {_time(fleet.now)}). The table lists"
        f" {count('listed', listed)}: most reasons first, then the most days late, then the longest"
        " silent. Click a heading to sort."
    )
    controls = (
        '<div class="controls"><input id="filter" type="search" placeholder="filter: card, status,'
        ' site..." aria-label="filter the table"><select id="reason" aria-label="reason">'
        f'<option value="">every reason</option>{options}</select>'
        f'<span>showing <b id="shown">{listed:,}</b> of {listed:,} listed</span></div>'
    )
    table = (
        f'<div class="scroll"><table id="candidates"><thead><tr>{ths}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    chart = hbars(reasons, "reconcile candidates by reason", fleet.reconcile) if reasons else ""
    return _section("Reconcile candidates", note, chart, controls, table)


def _anomalies(fleet: Fleet) -> str:
    def rows(
        kind: str, found: Mapping[str, Examples], meanings: Mapping[str, str]
    ) -> list[list[str]]:
        return [
            [
                f"<code>{escape(name or '(empty)')}</code>"
                + (f"<br><small>{escape(meanings[name])}</small>" if name in meanings else ""),
                count(f"{kind}:{name}", e.cards),
                " ".join(f"<code>{escape(card)}</code>" for card in e.examples),
            ]
            for name, e in found.items()
        ]

    head = ["kind", "cards", "examples (smallest card ids)"]
    parts = [
        "<h3>Anomalies: evidence that contradicts itself</h3>",
        _table(head, rows("anomaly", fleet.anomalies, {}), {1})
        if fleet.anomalies
        else "<p>none</p>",
        "<h3>Lost notifications: statuses passed but never notified</h3>",
        _table(head, rows("gap", fleet.gaps, STATUS_MEANINGS), {1})
        if fleet.gaps
        else "<p>none</p>",
    ]
    if fleet.unknown_statuses:
        parts += [
            "<h3>Statuses the lifecycle does not know</h3>",
            _table(head, rows("unknown", fleet.unknown_statuses, {}), {1}),
        ]
    note = "Cards per kind (a card may show several); examples are the smallest card ids."
    return _section("Anomalies", note, *parts)


def _sites(fleet: Fleet) -> str:
    colors = {"settled": "#59a14f", "unsettled, on time": "#a0cbe8", "unsettled, late": "#e15759"}
    chart_rows = [
        (
            row.site,
            f"site:{row.site}:cards",
            [
                Segment("settled", row.settled, colors["settled"]),
                Segment(
                    "unsettled, on time", row.unsettled - row.late, colors["unsettled, on time"]
                ),
                Segment("unsettled, late", row.late, colors["unsettled, late"]),
            ],
        )
        for row in fleet.sites
    ]
    table = _table(
        ["site", "cards", "settled", "unsettled", "late", "to reconcile"],
        [
            [
                escape(r.site),
                count(f"site:{r.site}:cards", r.cards),
                count(f"site:{r.site}:settled", r.settled),
                count(f"site:{r.site}:unsettled", r.unsettled),
                count(f"site:{r.site}:late", r.late),
                count(f"site:{r.site}:reconcile", r.reconcile),
            ]
            for r in fleet.sites
        ],
        {1, 2, 3, 4, 5},
    )
    note = "Cards by their production site; late means unsettled and past the due date."
    return _section(
        "Production sites",
        note,
        _legend(colors),
        stacked(chart_rows, "cards by production site"),
        table,
    )


def _carriers(fleet: Fleet) -> str:
    statuses = sorted({s for row in fleet.carriers for s in row.statuses})
    colors = status_colors(statuses, statuses)
    chart_rows = [
        (
            row.carrier,
            f"carrier:{row.carrier}:cards",
            [Segment(s, row.statuses.get(s, 0), colors[s]) for s in statuses],
        )
        for row in fleet.carriers
    ]
    spread = [Box(r.carrier, _five(r.estimated)) for r in fleet.carriers if r.estimated]
    head = ["carrier", "cards", *statuses, "estimate: least", "25%", "median", "75%", "greatest"]
    rows = []
    for r in fleet.carriers:
        cells = [escape(r.carrier), count(f"carrier:{r.carrier}:cards", r.cards)]
        cells += [count(f"carrier:{r.carrier}:status:{s}", r.statuses.get(s, 0)) for s in statuses]
        names = ("least", "lower", "median", "upper", "greatest")
        if r.estimated is None:
            cells += [""] * 5
        else:
            cells += [
                count(f"carrier:{r.carrier}:eta:{name}", value)
                for name, value in zip(names, _five(r.estimated), strict=True)
            ]
        rows.append(cells)
    note = (
        f"The {count('shipped', fleet.shipped)} cards with shipment data, by carrier and"
        " shipment status; below, the spread of the estimated delivery date, in days after"
        " the card's production request started (box: the middle half; bar: the median)."
    )
    return _section(
        "Carriers and shipments",
        note,
        _legend(colors),
        stacked(chart_rows, "cards by carrier and shipment status"),
        boxes(spread, "estimated delivery, days after the request", "days after the request")
        if spread
        else "",
        _table(head, rows, set(range(1, len(head)))),
    )


def _five(spread: Spread) -> tuple[int, int, int, int, int]:
    return (spread.least, spread.lower, spread.median, spread.upper, spread.greatest)


def render(
    fleet: Fleet,
    *,
    title: str = "Card fleet",
    inputs: Mapping[str, int] | None = None,
    lifecycle: Lifecycle = D1_LIFECYCLE,
) -> str:
    """The page for ``fleet`` as one HTML document; ``inputs`` are counts of what was read."""
    colors = status_colors(fleet.statuses, lifecycle.statuses)
    body = "".join(
        [
            _section(
                "At a glance",
                f"Counted at {_time(fleet.now)} over every card state.",
                _summary(fleet, inputs),
            ),
            _funnel(fleet, colors, lifecycle),
            _started(fleet, colors),
            _late(fleet),
            _candidates(fleet),
            _anomalies(fleet),
            _sites(fleet),
            _carriers(fleet),
        ]
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{count('cards', fleet.cards)} cards at"
        f" {_time(fleet.now)} &middot; cardflow {__version__}</p></header>"
        f"<main>{body}</main><script>{_SCRIPT}</script></body></html>\n"
    )
