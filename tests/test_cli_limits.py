"""What ``cardflow fold`` and ``report`` read is bounded: a line or a document past
``--max-line-bytes`` is a reject with its line number, skipped in bounded memory; a
FIFO in an input directory is skipped, and read as a stream when named.

Real files, FIFOs and processes: the memory a process reached is its own
``ru_maxrss``, and Ctrl-C is a real SIGINT.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cardflow.cli import run
from cardflow.cli._console import Console
from cardflow.d1 import DEFAULT_MAX_BODY

NOW = "2025-03-01T00:00:00Z"
CARDFLOW = [sys.executable, "-m", "cardflow.cli"]


def line(card: str, status: str = "CARD_SHIPPED") -> bytes:
    op = {
        "operationId": f"op-{card}",
        "operation": "PRODUCE",
        "status": "PENDING",
        "startTime": "2025-01-17T06:28:02.492Z",
        "cardId": card,
        "details": {"status": status},
    }
    return json.dumps({"operations": [op]}).encode() + b"\n"


def cli(*argv: str | Path) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    console = Console(io.BytesIO(), out, err, {})
    code = run([str(a) for a in argv], console)
    return code, out.getvalue(), err.getvalue()


def cards(out: bytes) -> list[str]:
    return sorted(json.loads(x)["cardId"] for x in out.splitlines())


def test_one_limit_for_a_line_and_a_body(capsys: pytest.CaptureFixture[str]) -> None:
    assert DEFAULT_MAX_BODY == 16 << 20
    for command in ("fold", "report"):
        assert cli(command, "--help")[0] == 0
        said = " ".join(capsys.readouterr().out.split())
        assert "(default: 16,777,216, 16 MiB, the receiver's body limit)" in said


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param((), id="fold"),
        pytest.param(("--jobs", "2", "--part-size", "1"), id="fold-jobs"),
    ],
)
@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b""], ids=["lf", "crlf", "at-eof"])
def test_a_line_over_the_limit_is_a_reject_and_the_next_line_is_folded(
    tmp_path: Path, extra: tuple[str, ...], ending: bytes
) -> None:
    long = b'{"operations": [' + b" " * 5000 + b"]}"
    path = tmp_path / "log.jsonl"
    tail = line("c3") if ending else b""
    path.write_bytes(line("c1") + long + ending + tail)
    code, out, err = cli("fold", path, "--format", "jsonl", "--max-line-bytes", "1000", *extra)
    assert code == 1, err
    assert f"{path}:2: $: a line of 5,018 bytes, over the limit of 1,000 bytes" in err
    assert cards(out) == (["c1", "c3"] if ending else ["c1"])


def test_a_line_at_the_limit_is_read(tmp_path: Path) -> None:
    body = line("c1").rstrip(b"\n")
    path = tmp_path / "log.jsonl"
    path.write_bytes(body + b"\r\n" + body)
    code, out, err = cli("fold", path, "--format", "jsonl", "--max-line-bytes", str(len(body)))
    assert (code, cards(out)) == (0, ["c1"]), err


def test_report_and_the_store_take_the_same_limit(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(line("c1") + b"x" * 3000 + b"\n" + line("c3"))
    html = tmp_path / "report.html"
    code, _, err = cli("report", path, "-o", html, "--now", NOW, "--max-line-bytes", "1000")
    assert code == 1
    assert f"{path}:2: $: a line of 3,000 bytes" in err
    assert 'data-key="cards" data-n="2"' in html.read_text()
    db = f"sqlite:///{tmp_path / 'cards.db'}"
    code, _, err = cli("fold", path, "--db", db, "--max-line-bytes", "1000")
    assert code == 1
    assert f"{path}:2: $: a line of 3,000 bytes" in err


def test_a_multi_line_document_past_the_limit_is_refused(tmp_path: Path) -> None:
    ops = ",\n".join("    " + line(f"c{i}").decode()[16:-3] for i in range(100))
    document = '{\n  "operations": [\n' + ops + "\n  ]\n}\n"
    assert len(document) > 10_000
    path = tmp_path / "log.json"
    path.write_bytes(line("a1") + document.encode() + line("z9"))
    code, out, err = cli("fold", path, "--format", "jsonl", "--max-line-bytes", "2000")
    assert code == 1
    assert f"{path}:2: $: a document of more than 2,000 bytes (--max-line-bytes)" in err
    assert cards(out) == ["a1", "z9"]
    code, out, _ = cli("fold", path, "--format", "jsonl")  # under the default: read whole
    assert (code, len(cards(out))) == (0, 102)


_MEASURED = """
import resource, sys
from cardflow.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def peak_kib(*argv: str | Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return int(done.stderr.splitlines()[-1]), done.stderr


def test_a_64_mib_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_bytes(line("c1") + line("c3"))
    big = tmp_path / "big.jsonl"
    with big.open("wb") as out:
        out.write(line("c1"))
        for _ in range(64):
            out.write(b"7" * (1 << 20))
        out.write(b"\n" + line("c3"))
    base, _ = peak_kib("fold", small, "--max-line-bytes", "65536")
    peak, err = peak_kib("fold", big, "--max-line-bytes", "65536")
    assert "a line of 67,108,864 bytes, over the limit of 65,536 bytes" in err
    assert peak - base < 16 << 10, (base, peak)  # KiB: far below the line's 64 MiB


def test_dev_zero_is_read_in_bounded_memory_and_ctrl_c_stops_it() -> None:
    process = subprocess.Popen(
        [*CARDFLOW, "fold", "/dev/zero", "--max-line-bytes", "1048576"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        assert process.poll() is None
        status = Path(f"/proc/{process.pid}/status").read_text()
        rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1])
        process.send_signal(signal.SIGINT)
        code = process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert rss < 200 << 10, rss  # KiB
    assert code == 130


def test_a_fifo_in_a_directory_is_skipped_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(line("c1"))
    os.mkfifo(tmp_path / "b.jsonl")  # nobody ever writes: reading it would wait forever
    done = subprocess.run(
        [*CARDFLOW, "fold", str(tmp_path), "--format", "jsonl"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert cards(done.stdout) == ["c1"]
    said = done.stderr.decode()
    assert f"warning: {tmp_path / 'b.jsonl'}: not a regular file" in said


def test_a_fifo_named_on_the_command_line_is_read_as_a_stream(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as out:
            for card in ("c1", "c2", "c3"):
                out.write(line(card))
                out.flush()
                time.sleep(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        code, out, err = cli("fold", fifo, "--format", "jsonl")
    finally:
        writer.join(10)
    assert (code, cards(out)) == (0, ["c1", "c2", "c3"]), err


def test_the_limit_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("fold", "--max-line-bytes", "0")[0] == 2
    assert "--max-line-bytes: must be 1 or more" in capsys.readouterr().err
