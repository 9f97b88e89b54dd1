"""The report shows hostile strings as text: nothing from the data becomes markup or runs.

A status is an arbitrary wire string kept by design, and so are card ids, sites,
operation statuses, carriers and shipment statuses. Each field of a log gets markup
that would run if written unescaped; the page is parsed as browsers parse it (html5lib)
and must hold exactly the elements and attributes of the same page built from harmless
strings, each hostile string shown verbatim as text; then opened in headless Chromium,
where no script of the data may run and the page's own script still must.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from xml.etree.ElementTree import Element

import html5lib
import pytest

from browser import Browser, find_chromium
from cardflow.cli import run
from components import missing
from reportdata import NOW, console

FIELDS: Final = ("card", "status", "operation", "site", "carrier", "shipment", "title")


def hostile(field: str) -> str:
    """Markup that runs, or breaks out of where it is written, if it is not escaped."""
    return (
        f"<script>window.pwned=(window.pwned||[]).concat('{field}')</script>"
        f"<img src=x onerror=\"window.pwned=['{field}-img']\">"
        f"</title><svg onload=\"window.pwned=['{field}-svg']\"></svg>"
        f"\"'><b data-x='{field}'>&amp;</b><!--"
    )


def harmless(field: str) -> str:
    return f"plain {field}"


def log(text: Any) -> bytes:
    """Bodies whose every string the page shows is ``text(field)``."""
    start = "2025-06-01T10:00:00.000Z"

    def body(card: str, n: int, status: str, details: dict[str, Any]) -> str:
        op = {
            "operationId": f"00000000-0000-4000-8000-0000000000{n:02d}",
            "operation": "PRODUCE",
            "status": status,
            "startTime": start,
            "cardId": card,
            "details": details,
        }
        return json.dumps({"operations": [op]})

    shipment = {
        "carrier": text("carrier"),
        "status": text("shipment"),
        "lastUpdatedAt": "2025-06-03T10:00:00Z",
        "estimatedDeliveryDate": "2025-06-09T10:00:00Z",
    }
    lines = [
        body(text("card"), 1, text("operation"), {"status": "DATA_PREPARED"}),
        body(
            text("card") + "2",
            2,
            "PENDING",
            {"status": text("status"), "productionSite": text("site"), "dueDate": "2025-06-05"},
        ),
        body("card-3", 3, "SUCCESSFUL", {"status": "CARD_SHIPPED", "shipment": shipment}),
        body(text("card") + "4", 4, "FAILED", {"status": "CARD_SHIPPED"}),
    ]
    return ("\n".join(lines) + "\n").encode()


def page(where: Path, text: Any) -> Path:
    source = where / "log.jsonl"
    source.write_bytes(log(text))
    html = where / "report.html"
    con, _, err = console()
    argv = ["report", str(source), "-o", str(html), "--now", NOW.isoformat()]
    assert run([*argv, "--title", text("title")], con) == 0, err.getvalue()
    return html


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return (
        page(tmp_path_factory.mktemp("hostile"), hostile),
        page(tmp_path_factory.mktemp("harmless"), harmless),
    )


def parsed(html: Path) -> Element:
    tree: Element = html5lib.parse(html.read_bytes(), namespaceHTMLElements=False)
    return tree


def tags(root: Element) -> set[str]:
    return {element.tag for element in root.iter()}


def attributes(root: Element) -> set[str]:
    return {name for element in root.iter() for name in element.attrib}


def texts(root: Element) -> str:
    """Every text node and attribute value, as a browser reads them (entities decoded)."""
    found: list[str] = []
    for element in root.iter():
        found += [element.text or "", element.tail or "", *element.attrib.values()]
    return "\n".join(found)


def test_no_element_or_attribute_comes_from_the_data(pages: tuple[Path, Path]) -> None:
    bad, good = (parsed(p) for p in pages)
    assert tags(bad) == tags(good)
    assert attributes(bad) == attributes(good)
    scripts = [e for e in bad.iter() if e.tag.endswith("script")]
    assert [s.text for s in scripts] == [s.text for s in good.iter() if s.tag.endswith("script")]
    assert len(scripts) == 1


@pytest.mark.parametrize("field", FIELDS)
def test_each_hostile_string_is_shown_as_text(pages: tuple[Path, Path], field: str) -> None:
    assert hostile(field) in texts(parsed(pages[0]))


def test_the_policy_allows_only_the_pages_own_script(pages: tuple[Path, Path]) -> None:
    root = parsed(pages[0])
    (meta,) = [e for e in root.iter("meta") if e.get("http-equiv") == "Content-Security-Policy"]
    policy = {
        part.split()[0]: part.split()[1:] for part in meta.get("content", "").split(";") if part
    }
    (script,) = list(root.iter("script"))
    digest = base64.b64encode(hashlib.sha256((script.text or "").encode()).digest()).decode()
    assert policy["script-src"] == [f"'sha256-{digest}'"]
    assert policy["default-src"] == ["'none'"]
    head = pages[0].read_text()
    assert head.index("Content-Security-Policy") < head.index("<title>")


_SHOWN: Final = "document.getElementById('shown').textContent"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        missing("chromium", "no /usr/bin/chromium (apt-get install chromium)")
    with Browser(executable, timeout=20) as browser:
        yield browser


def test_no_script_of_the_data_runs_in_a_browser(
    pages: tuple[Path, Path], chromium: Browser
) -> None:
    opened = chromium.open(pages[0])
    chromium.settle(opened)
    assert chromium.evaluate(opened, "typeof window.pwned") == "undefined"
    assert opened.of("Page.javascriptDialogOpening") == []
    assert chromium.evaluate(opened, "document.querySelectorAll('img,b[data-x]').length") == 0
    assert opened.console_errors == []  # not even a script that the policy had to block
    # The page's own script runs: the filter of the candidates' table answers.
    before = chromium.evaluate(opened, _SHOWN)
    chromium.evaluate(
        opened,
        "(() => {const f = document.getElementById('filter'); f.value = 'card-3';"
        " f.dispatchEvent(new Event('input'));})()",
    )
    assert re.fullmatch(r"\d+", before)
    assert chromium.evaluate(opened, _SHOWN) != before
