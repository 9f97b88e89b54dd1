"""docs/d1.md runs: its python examples in order, and every `cardflow` line of its
shell blocks, as written, in a fresh folder (the lines ending in `&` as servers; the
ports it names replaced by free ones)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from .processes import CARDFLOW, free_port, running

ROOT = Path(__file__).parent.parent.parent
PAGE = ROOT / "docs" / "d1.md"
PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
BASH = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def test_the_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs:d1"}
    blocks = PYTHON.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 3
    for number, source in enumerate(blocks, 1):
        exec(compile(source, f"docs/d1.md (example {number})", "exec"), namespace)


def test_the_whole_run_runs_as_written(tmp_path: Path) -> None:
    text = PAGE.read_text(encoding="utf-8")
    reactions = next(b for b in PYTHON.findall(text) if "class Reactions" in b)
    (tmp_path / "reactions.py").write_text(reactions, encoding="utf-8")
    lines = [
        line.strip()
        for block in BASH.findall(text)
        for line in block.splitlines()
        if line.strip().startswith("cardflow ")
    ]
    assert any(line.startswith("cardflow serve") for line in lines)
    ports = {"8000": str(free_port()), "8001": str(free_port())}
    outputs: dict[str, str] = {}
    with ExitStack() as servers:
        for line in lines:
            for doc_port, port in ports.items():
                line = line.replace(doc_port, port)
            argv = shlex.split(line.removesuffix("&"))
            command = [*CARDFLOW, *argv[1:]]
            if line.endswith("&"):
                port = argv[argv.index("--port") + 1]
                servers.enter_context(running(command, int(port), cwd=tmp_path))
                continue
            done = subprocess.run(
                command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
                env={**os.environ, "PYTHONPATH": str(tmp_path)},
            )  # fmt: skip
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
            outputs[argv[1]] = done.stdout + done.stderr
    # The page quotes both summaries: they are what the commands print.
    quoted = re.search(r"^```text\n(reconcile: .*?)^```", text, re.S | re.M)
    assert quoted is not None
    assert outputs["reconcile"] == quoted.group(1)
    verdict = outputs["conformance"].splitlines()[-1]
    assert " ".join(verdict.split()) in " ".join(text.split())
    assert verdict.endswith("conforms")
    assert "dispatched " in outputs["dispatch"]
    assert "shipped: " in outputs["dispatch"]
