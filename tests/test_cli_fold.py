"""``cardflow fold`` in-process, on real files: inputs, outputs, filters, rejects, exit codes.

The end-to-end runs through a real process, pipe and terminal are in test_cli.py and
test_cli_progress.py; these drive :func:`cardflow.cli.run` with an explicit console
(buffers for the streams, a fixed clock) so that each case is fast and exact.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cardflow
from cardflow import CardState, decode_lenient, fold
from cardflow.batch._cards import card_object, csv_columns
from cardflow.cli import run
from cardflow.cli._console import Console
from cardflow.testing import Traffic, traffic

DATA = Path(__file__).parent / "data" / "track_production"
NOW = datetime(2025, 3, 1, tzinfo=UTC)
T0 = "2025-01-17T06:28:02.492Z"


@dataclass
class Result:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode()

    def jsonl(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]


def cli(*argv: str | Path, stdin: bytes = b"", now: datetime = NOW) -> Result:
    out = io.BytesIO()
    err = io.StringIO()
    console = Console(
        stdin=io.BytesIO(stdin), stdout=out, stderr=err, environ={}, clock=lambda: now
    )
    code = run([str(a) for a in argv], console)
    return Result(code, out.getvalue(), err.getvalue())


def op(
    card: str,
    status: str | None,
    *,
    op_id: str = "op1",
    start: str = T0,
    op_status: str = "PENDING",
    operation: str = "PRODUCE",
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op_id,
        "operation": operation,
        "status": op_status,
        "startTime": start,
        "cardId": card,
        **extra,
    }
    if status is not None and "details" not in extra:
        out["details"] = {"status": status}
    return out


def line(*ops: dict[str, Any]) -> bytes:
    return msgspec.json.encode({"operations": list(ops)})


def jsonl(*lines: bytes) -> bytes:
    return b"".join(x + b"\n" for x in lines)


def states_of(bodies: list[bytes]) -> dict[str, CardState]:
    ops = [o for b in bodies for o in decode_lenient(b).operations]
    return dict(fold(ops))


# -- inputs ---------------------------------------------------------------------------


def test_stdin_is_read_with_no_path_and_with_dash() -> None:
    data = jsonl(line(op("c1", "CARD_PROD_REQUESTED")), line(op("c2", "DATA_PREPARED")))
    for argv in ([], ["-"]):
        result = cli("fold", "--format", "jsonl", *argv, stdin=data)
        assert result.code == 0, result.err
        assert [c["cardId"] for c in result.jsonl()] == ["c1", "c2"]


def test_files_directories_and_pretty_documents(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "deeper").mkdir(parents=True)
    (logs / "a.jsonl").write_bytes(jsonl(line(op("c1", "CARD_PROD_REQUESTED"))))
    (logs / "deeper" / "b.ndjson").write_bytes(jsonl(line(op("c2", "DATA_PREPARED"))))
    (logs / "notes.txt").write_bytes(b"not D1 at all\n")  # not a JSON suffix: skipped
    (logs / ".hidden.json").write_bytes(b"garbage\n")  # hidden: skipped
    result = cli("fold", "--format", "jsonl", logs, *sorted(DATA.glob("*.json")))
    assert result.code == 0, result.err
    cards = {c["cardId"]: c for c in result.jsonl()}
    assert sorted(cards) == ["271b-6e47-8ec3-7f3f", "c1", "c2"]
    d1 = cards["271b-6e47-8ec3-7f3f"]
    expected = fold(
        op for p in sorted(DATA.glob("*.json")) for op in cardflow.decode(p.read_bytes())
    )
    assert d1 == card_object(expected["271b-6e47-8ec3-7f3f"])
    assert d1["status"] == "CARD_SHIPPED"


def test_pretty_documents_and_lines_mix_in_one_stream() -> None:
    pretty = json.dumps({"operations": [op("c1", "DATA_PREPARED")]}, indent=2).encode()
    data = jsonl(line(op("c0", "CARD_PROD_REQUESTED")), pretty, line(op("c2", "CARD_SHIPPED")))
    result = cli("fold", "--format", "jsonl", stdin=b"\xef\xbb\xbf" + data)
    assert result.code == 0, result.err
    assert [c["cardId"] for c in result.jsonl()] == ["c0", "c1", "c2"]


def test_empty_input_gives_an_empty_report() -> None:
    assert cli("fold", "--format", "jsonl").out == b""
    summary = cli("fold")
    assert summary.code == 0
    assert "0 cards" in summary.text


def test_output_matches_the_core_fold_and_is_sorted(tmp_path: Path) -> None:
    bodies = [
        line(op("b", "CARD_PROD_REQUESTED"), op("a", "CARD_SHIPPED", op_status="SUCCESSFUL")),
        line(op("b", "CARD_PROD_DONE"), op("a", "DATA_PREPARED")),
        line(op("x", "ACTIVE", operation="ACTIVATE")),
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(jsonl(*bodies))
    result = cli("fold", "--format", "jsonl", path)
    expected = states_of(bodies)
    assert result.jsonl() == [card_object(expected[c]) for c in sorted(expected)]


@settings(max_examples=25, deadline=None)
@given(traffic(max_cards=5, lose=True, unknown_statuses=True, other_operations=True))
def test_any_delivery_folds_like_the_core(t: Traffic) -> None:
    result = cli("fold", "--format", "jsonl", stdin=jsonl(*t.bodies))
    assert result.code == 0, result.err
    expected = states_of(list(t.bodies))
    assert result.jsonl() == [card_object(expected[c]) for c in sorted(expected)]


# -- output formats -------------------------------------------------------------------


def test_jsonl_has_every_public_field_in_camel_case_and_no_internals() -> None:
    result = cli("fold", "--format", "jsonl", stdin=jsonl(line(op("c1", "DATA_PREPARED"))))
    (card,) = result.jsonl()
    public = [f for f in msgspec.structs.fields(CardState) if not f.name.startswith("_")]
    camel = [
        "".join(w if i == 0 else w.title() for i, w in enumerate(f.name.split("_"))) for f in public
    ]
    assert list(card) == camel
    for key in ("cardId", "status", "operationStatus", "operationId", "gaps", "anomalies"):
        assert key in card
    assert card["gaps"] == ["CARD_PROD_REQUESTED"]
    assert card["startTime"] == T0  # D1's own spelling of times
    assert "reconcile" not in card  # only when asked: it depends on the time


def test_json_document_holds_input_summary_and_cards() -> None:
    data = jsonl(line(op("c1", "DATA_PREPARED")), line(op("c2", "CARD_PROD_REQUESTED")))
    result = cli("fold", "--format", "json", "--now", "2025-01-18T00:00:00Z", stdin=data)
    document = json.loads(result.out)
    assert list(document) == ["input", "filters", "summary", "cards"]
    assert document["input"]["operations"] == 2
    assert document["input"]["cards"] == 2
    summary = document["summary"]
    assert summary["byStatus"] == {"CARD_PROD_REQUESTED": 1, "DATA_PREPARED": 1}
    assert summary["withGaps"] == 1
    assert summary["reconcile"] == {
        "now": "2025-01-18T00:00:00Z",
        "cards": 1,
        "byReason": {"GAPS": 1},
    }
    assert [c["reconcile"] for c in document["cards"]] == [["GAPS"], []]


def test_csv_has_a_fixed_header_and_flat_rows() -> None:
    shipped = op(
        "c1",
        None,
        op_status="SUCCESSFUL",
        details={
            "status": "CARD_SHIPPED",
            "shipment": {"carrier": "dhl", "lastCheckpoint": {"city": "Paris"}},
        },
    )
    result = cli("fold", "--format", "csv", stdin=jsonl(line(shipped), line(op("c2", None))))
    rows = list(csv.reader(io.StringIO(result.text)))
    assert rows[0] == [".".join(c) for c in csv_columns()]
    assert rows[0][:5] == ["cardId", "operationId", "startTime", "status", "operationStatus"]
    assert "shipment.lastCheckpoint.city" in rows[0]
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["shipment.carrier"] == "dhl"
    assert first["shipment.lastCheckpoint.city"] == "Paris"
    assert first["observed"] == "CARD_SHIPPED"
    assert first["gaps"].split(";")[:2] == ["CARD_PROD_REQUESTED", "DATA_PREPARED"]
    second = dict(zip(rows[0], rows[2], strict=True))
    assert second["anomalies"] == "MISSING_STATUS"
    assert second["shipment.carrier"] == ""


def test_summary_is_readable() -> None:
    data = jsonl(
        line(op("c1", "CARD_PROD_REQUESTED")),
        line(op("c2", "CARD_SHIPPED", op_status="SUCCESSFUL")),
        line(op("c3", "CARD_PROD_ONGOING")),
        line(op("c4", "ACTIVE", operation="ACTIVATE")),
    )
    text = cli("fold", stdin=data).text
    assert text.startswith("3 cards, folded from 3 PRODUCE operations.")
    for heading in ("Cards by status", "Operation status", "Anomalies", "Lost notifications"):
        assert f"\n{heading}" in text
    assert "  CARD_SHIPPED         1   33.3%" in text
    assert "Reconcile candidates as of 2025-03-01T00:00:00Z: 3 cards" in text
    assert "  CARD_PROD_ONGOING never notified    1\n" in text
    assert "    c3  CARD_PROD_ONGOING    PENDING     GAPS SILENT\n" in text
    assert "passed over 1 of other types" in text
    assert text.rstrip().endswith("Rejected nothing.")


# -- filters --------------------------------------------------------------------------


def test_status_filter_is_repeatable() -> None:
    data = jsonl(
        *(
            line(op(f"c{i}", s))
            for i, s in enumerate(["DATA_PREPARED", "CARD_SHIPPED", "CARD_PROD_DONE"])
        )
    )
    result = cli(
        "fold",
        "--format",
        "jsonl",
        "--status",
        "CARD_SHIPPED",
        "--status",
        "DATA_PREPARED",
        stdin=data,
    )
    assert [c["cardId"] for c in result.jsonl()] == ["c0", "c1"]
    text = cli("fold", "--status", "CARD_SHIPPED", stdin=data).text
    assert text.startswith("1 of 3 cards with status CARD_SHIPPED.")
    assert "\nCards\n  c1  CARD_SHIPPED  PENDING" in text


def test_a_long_selection_is_listed_in_part() -> None:
    shipped = (op(f"c{i:02d}", "CARD_SHIPPED", op_status="SUCCESSFUL") for i in range(25))
    text = cli("fold", "--status", "CARD_SHIPPED", stdin=jsonl(*map(line, shipped))).text
    assert "\n  c19  CARD_SHIPPED  SUCCESSFUL  GAPS\n" in text
    assert "c20" not in text
    assert "\n  ... and 5 more: run again with --format jsonl for all\n" in text


def test_anomalies_and_unknown_statuses_are_counted() -> None:
    data = jsonl(
        line(op("c1", None), op("c2", "FUTURE_STATUS")),
        line(op("c3", "CARD_SHIPPED", op_status="FAILED"), op("c3", "CARD_PROD_CANCELED")),
    )
    text = cli("fold", stdin=data).text
    assert (
        "\nAnomalies (cards)\n  CONFLICTING_STATUSES       1\n  MISSING_STATUS             1\n"
        "  OPERATION_STATUS_MISMATCH  1\n"
    ) in text
    assert "\nUnknown statuses (cards)\n  FUTURE_STATUS  1\n" in text
    assert "\n  (no status)    1   33.3%\n" in text


def test_unknown_status_filter_gets_a_note() -> None:
    result = cli("fold", "--status", "CARD_SHIPED", stdin=jsonl(line(op("c1", "CARD_SHIPPED"))))
    assert result.code == 0
    assert "--status 'CARD_SHIPED' is not a status of d1-central-issuance" in result.err


def test_needs_reconcile_uses_now_and_gives_reasons() -> None:
    data = jsonl(
        line(op("gap", "CARD_PROD_READY", start="2025-02-27T00:00:00Z")),
        line(op("quiet", "CARD_PROD_REQUESTED", start="2025-01-01T00:00:00Z")),
        line(op("fresh", "CARD_PROD_REQUESTED", start="2025-02-28T00:00:00Z")),
        line(op("done", "CARD_SHIPPED", op_status="SUCCESSFUL", start="2024-01-01T00:00:00Z")),
    )
    # "done" has gaps (lost notifications) too: a shipped card is still worth a look.
    early = cli(
        "fold",
        "--format",
        "jsonl",
        "--needs-reconcile",
        "--now",
        "2025-03-01T00:00:00+01:00",
        stdin=data,
    )
    assert {c["cardId"]: c["reconcile"] for c in early.jsonl()} == {
        "done": ["GAPS"],
        "gap": ["GAPS"],
        "quiet": ["SILENT"],
    }
    late = cli(
        "fold",
        "--format",
        "jsonl",
        "--needs-reconcile",
        stdin=data,
        now=datetime(2025, 6, 1, tzinfo=UTC),
    )
    assert [c["cardId"] for c in late.jsonl()] == ["done", "fresh", "gap", "quiet"]


@pytest.mark.parametrize("bad", ["yesterday", "2025-03-01T00:00:00", "2025-03-01"])
def test_now_must_be_iso_with_an_offset(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("fold", "--now", bad).code == 2
    assert "--now" in capsys.readouterr().err


def test_card_view_shows_every_field_and_every_event(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(
        jsonl(
            line(op("c1", "CARD_PROD_REQUESTED"), op("other", "CARD_PROD_REQUESTED")),
            line(
                op(
                    "c1",
                    "DATA_PREPARED",
                    details={"status": "DATA_PREPARED", "dueDate": "2025-01-21"},
                )
            ),
            line(op("c1", "CARD_PROD_REQUESTED")),
            line(op("c1", "ACTIVE", operation="ACTIVATE", op_id="act")),
        )
    )
    result = cli("fold", path, "--card", "c1")
    assert result.code == 0, result.err
    text = result.text
    assert text.startswith("Card c1\n")
    assert "  status           DATA_PREPARED  (D1 processed the card data without error.)" in text
    assert "  dueDate          2025-01-21" in text
    assert "  reconcile        OVERDUE SILENT (as of 2025-03-01T00:00:00Z)" in text
    assert "Events (3 distinct, 4 delivered):" in text
    assert f"CARD_PROD_REQUESTED  PENDING  x2  {path}:1" in text
    assert f"ACTIVATE             PENDING      {path}:4" in text
    assert "other" not in text
    machine = cli("fold", path, "--card", "c1", "--format", "jsonl").jsonl()
    assert [c["cardId"] for c in machine] == ["c1"]


def test_missing_card_exits_4() -> None:
    result = cli(
        "fold", "--card", "nope", "--card", "c1", stdin=jsonl(line(op("c1", "CARD_SHIPPED")))
    )
    assert result.code == 4
    assert "card nope: no PRODUCE operation in the input" in result.err
    assert result.text.startswith("Card c1")


# -- bad input loses nothing ------------------------------------------------------------

GOOD = op("c1", "CARD_PROD_REQUESTED")
BAD_TIME = op("c1", "DATA_PREPARED", start="not a time")
CUT = line(op("c2", "CARD_PROD_REQUESTED"))[:-20]


def test_every_reject_is_reported_and_kept_and_the_rest_is_folded(tmp_path: Path) -> None:
    pretty = json.dumps(
        {"operations": [op("c3", "DATA_PREPARED"), {"operationId": "op3"}]}, indent=2
    )
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        jsonl(
            line(GOOD, BAD_TIME),  # line 1: one good, one bad operation
            CUT,  # line 2: a line cut short
            line(op("c4", "CARD_SHIPPED")),  # line 3: good, after the cut line
            b"",  # line 4: blank
            b"not json",  # line 5
            pretty.encode(),  # lines 6-: a document, its second operation bad
        )
    )
    rejects = tmp_path / "rejects.jsonl"
    result = cli("fold", path, "--format", "jsonl", "--rejects", rejects)
    assert result.code == 1
    lines = [x for x in result.err.splitlines() if x.startswith(str(path))]
    bad_op_line = 6 + pretty.splitlines().index("    {", 2 + pretty.splitlines().index("    {"))
    assert lines == [
        f"{path}:1: $.operations[1].startTime: Invalid RFC3339 encoded datetime",
        f"{path}:2: $: Input data was truncated",
        f"{path}:5: $: JSON is malformed: invalid character (byte 4)",
        f"{path}:{bad_op_line}: $.operations[1].operation:"
        " Object missing required field `operation`",
    ]
    assert "rejected 2 bodies and 2 operations; written to" in result.err
    assert rejects.read_bytes().splitlines() == [
        msgspec.json.encode(BAD_TIME),
        CUT,
        b"not json",
        b'{"operationId": "op3"}',
    ]
    cards = {c["cardId"]: c for c in result.jsonl()}
    assert sorted(cards) == ["c1", "c3", "c4"]
    assert cards["c1"]["status"] == "CARD_PROD_REQUESTED"
    allowed = cli("fold", path, "--allow-rejects")
    assert allowed.code == 0
    assert "Rejected 2 bodies and 2 operations (listed on stderr)." in allowed.text
    assert len([x for x in allowed.err.splitlines() if x.startswith(str(path))]) == 4


def test_an_unclosed_document_costs_only_itself() -> None:
    data = jsonl(
        b'{"operations": [', b"  " + msgspec.json.encode(GOOD), line(op("c9", "CARD_SHIPPED"))
    )
    result = cli("fold", "--format", "jsonl", stdin=data)
    assert result.code == 1
    assert "<stdin>:1: $: Input data was truncated" in result.err
    assert [c["cardId"] for c in result.jsonl()] == ["c9"]


def test_unreadable_paths_exit_3_and_the_others_are_folded(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(line(GOOD)))
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("fold", tmp_path / "missing.jsonl", empty, good, "--format", "jsonl")
    assert result.code == 3
    assert f"cannot read {tmp_path / 'missing.jsonl'}: No such file or directory" in result.err
    assert f"warning: {empty}: directory holds no .json, .jsonl, .ndjson files" in result.err
    assert [c["cardId"] for c in result.jsonl()] == ["c1"]


def test_an_unwritable_rejects_file_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("fold", "--rejects", tmp_path / "no" / "such" / "dir.txt")
    assert result.code == 2
    assert "cannot write --rejects" in result.err


def test_a_rejects_file_that_fails_stops_the_fold() -> None:
    result = cli("fold", "--rejects", "/dev/full", stdin=jsonl(line(GOOD), b"bad"))
    assert result.code == 3
    assert "<stdin>:2: $: JSON is malformed" in result.err
    assert "cannot write --rejects /dev/full: No space left on device; stopped" in result.err
    assert result.out == b""


def test_paths_may_follow_options(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_bytes(line(op("a", "CARD_SHIPPED")))
    b.write_bytes(line(op("b", "CARD_SHIPPED")))
    result = cli("fold", a, "--format", "jsonl", b)
    assert [c["cardId"] for c in result.jsonl()] == ["a", "b"]


def test_unknown_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("fold", "--bogus").code == 2
    assert cli("diagram", "extra").code == 2
    assert cli("fold", "--needs").code == 2  # no abbreviations: options may be added later
    err = capsys.readouterr().err
    assert "unrecognized arguments: --bogus" in err
    assert "unrecognized arguments: extra" in err


@given(st.binary(max_size=200))
@settings(max_examples=50, deadline=None)
def test_any_bytes_are_folded_or_rejected_never_lost(data: bytes) -> None:
    result = cli("fold", "--format", "jsonl", stdin=data)
    assert result.code in (0, 1)
    rejected = result.err.count("<stdin>:")
    assert (result.code == 1) == (rejected > 0)
