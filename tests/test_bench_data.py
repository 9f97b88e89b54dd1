"""The benchmarks' data cache keeps only the files of the current simulator version."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import _data


def test_the_cache_keeps_only_the_current_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARDFLOW_BENCH_CACHE", str(tmp_path))
    stale = [
        tmp_path / "d1-10-0123456789abcdef.jsonl",
        tmp_path / "d1-shipments-10-0123456789abcdef.jsonl",
        tmp_path / "d1-100-fedcba9876543210.part",
    ]
    for path in stale:
        path.write_bytes(b"{}\n")
    other = tmp_path / "notes.txt"
    other.write_text("not the cache's")
    first = _data.dataset_file(100, log=False)
    shipments = _data.dataset_file(100, log=False, kind=_data.SHIPMENTS)
    assert sorted(tmp_path.iterdir()) == sorted([first, shipments, other])
    assert _data.dataset_file(100, log=False) == first  # kept, not generated again
    assert first.stat().st_size > 0
