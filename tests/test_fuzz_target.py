"""The fuzz target of fuzz/fuzz_decode.py: its seeds, its dictionary, its fallback engine."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

TARGET = Path(__file__).parent.parent / "fuzz" / "fuzz_decode.py"


def _target() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_decode", TARGET)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_seeds_are_the_d1_examples_and_keep_the_contract() -> None:
    target = _target()
    seeds = target.seeds()
    examples = sorted(target.SEEDS.glob("*.json"))
    assert len(seeds) == 2 * len(examples) + 1
    for body in seeds:
        target.check(body)
    assert seeds[-1].count(b"\n") == len(examples), "the last seed is JSON Lines"


def test_the_dictionary_holds_the_edges_of_time() -> None:
    words = _target().tokens()
    assert b'"9999-12-31T23:59:59-14:00"' in words
    assert b'"0001-01-01T00:00:00+14:00"' in words
    assert b"\xef\xbb\xbf" in words


def test_the_hypothesis_engine_runs_for_the_time_given(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(TARGET), "--engine", "hypothesis", "--seconds", "2", "--decode-only"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no finding" in run.stdout


def test_reproduce_checks_saved_inputs(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(b'{"operations":[]}')
    bad_json = tmp_path / "bad"
    bad_json.write_bytes(b'{"operations":[{"operationId":')
    run = subprocess.run(
        [sys.executable, str(TARGET), "--reproduce", str(good), str(bad_json)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("passes") == 2
