"""Fuzz the readers of D1 bodies: decode, decode_lenient, the CLI's reader, fold, Tracker.

The contract, on any bytes:

- ``cardflow.decode`` returns operations or raises ``cardflow.InvalidNotification``,
  nothing else; when it returns, ``decode_lenient`` returns the same operations and
  no rejects;
- ``cardflow.decode_lenient`` never raises;
- the command line's reader (``cardflow.batch._inputs.Reader``) never raises and reads
  every byte;
- whatever they return folds (``cardflow.fold``), and the bytes ingest
  (``cardflow.Tracker().ingest``), without raising; the folded states answer
  ``needs_reconcile`` and come back equal from ``encode_state``/``decode_state``.

Two engines run it. atheris (libFuzzer, coverage-guided) when it is installed; a
Hypothesis-driven loop over mutated corpus bodies otherwise, or when asked. Both
start from the D1 example bodies of tests/data/track_production and use the tokens
of fuzz/d1.dict (extreme timestamps and dates, JSON structure). See docs/proof.md.

    python fuzz/fuzz_decode.py --seconds 60                # atheris if installed
    python fuzz/fuzz_decode.py --engine hypothesis --seconds 60
    python fuzz/fuzz_decode.py --seconds 0 -jobs=2         # atheris, until stopped
    python fuzz/fuzz_decode.py --reproduce fuzz/artifacts/crash-*

Exits 0 when the time ran out without a finding, 1 with the failing input written
to the artifacts directory (``crash-*``) and shown.
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import random
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEEDS = ROOT / "tests" / "data" / "track_production"
DICTIONARY = HERE / "d1.dict"
CORPUS = HERE / "corpus"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
"""The time needs_reconcile is asked at (fixed: a finding must reproduce)."""


class ContractError(AssertionError):
    """An input broke the contract without raising (two decoders disagreed...)."""


def check(data: bytes, *, decode_only: bool = False) -> None:
    """Run every reader over ``data``; raise when the contract above does not hold.

    With ``decode_only``, stop after the decoders and the reader (no fold, no
    tracker): the step CI can fall back to while a known crash of the fold stands.
    """
    import cardflow
    from cardflow.batch._inputs import Reader

    try:
        strict: list[cardflow.Operation] | None = cardflow.decode(data)
    except cardflow.InvalidNotification:
        strict = None
    lenient = cardflow.decode_lenient(data)
    if strict is not None and (lenient.rejects or lenient.operations != strict):
        raise ContractError("decode returned operations that decode_lenient did not")
    if strict is None and not lenient.rejects:
        raise ContractError("decode raised on a body that decode_lenient fully accepted")
    reader = Reader(io.BytesIO(data))
    bodies = list(reader)
    if reader.bytes_read != len(data):
        raise ContractError(f"the reader read {reader.bytes_read} of {len(data)} bytes")
    if decode_only:
        return
    folded = cardflow.fold(lenient.operations)
    for body in bodies:
        cardflow.fold(body.decoded.operations)
    cardflow.Tracker().ingest(data)
    for state in folded.values():
        cardflow.needs_reconcile(state, NOW)
        if cardflow.decode_state(cardflow.encode_state(state)) != state:
            raise ContractError(f"the state of card {state.card_id!r} did not round-trip")


# -- the seed corpus and the dictionary ---------------------------------------------


def seeds() -> list[bytes]:
    """The D1 example bodies: each as written, each on one line, and all as JSON Lines."""
    import msgspec

    found = sorted(SEEDS.glob("*.json"))
    if not found:
        raise SystemExit(f"no seed bodies in {SEEDS}")
    bodies = [path.read_bytes() for path in found]
    lines = [msgspec.json.encode(msgspec.json.decode(body)) for body in bodies]
    return [*bodies, *lines, b"\n".join(lines) + b"\n"]


def seed_corpus(directory: Path) -> Path:
    """``directory``, holding the seeds (added when missing; findings already there stay)."""
    directory.mkdir(parents=True, exist_ok=True)
    for number, body in enumerate(seeds()):
        path = directory / f"seed-{number:02d}"
        if not path.exists():
            path.write_bytes(body)
    return directory


def tokens() -> list[bytes]:
    """The dictionary's tokens (libFuzzer's format: one quoted string per line)."""
    out = []
    for line in DICTIONARY.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            text = ast.literal_eval(line[line.index('"') :])
            out.append(text.encode("latin-1"))
    return out


# -- the Hypothesis engine ----------------------------------------------------------

_VALUE = re.compile(rb'"[A-Za-z]+"\s*:\s*("(?:[^"\\]|\\.)*"|-?[0-9.eE+-]+|null|true|false)')
"""A member's value in a body (a string, number or literal), to swap for a token."""


def mutations(base: Sequence[bytes], words: Sequence[bytes]) -> Any:
    """A strategy of corpus bodies with a few edits: values swapped for tokens,
    spans cut, bytes and tokens inserted, pieces of other bodies spliced in."""
    from hypothesis import strategies as st

    @st.composite
    def mutated(draw: Callable[[Any], Any]) -> bytes:
        data = bytearray(draw(st.sampled_from(base)))
        for _ in range(draw(st.integers(0, 6))):
            kind = draw(st.integers(0, 5))
            at = draw(st.integers(0, len(data)))
            if kind == 0:
                values = list(_VALUE.finditer(data))
                if values:
                    match = draw(st.sampled_from(values))
                    start, end = match.span(1)
                    data[start:end] = draw(st.sampled_from(words))
            elif kind == 1:
                data[at:at] = draw(st.sampled_from(words))
            elif kind == 2:
                data[at : at + draw(st.integers(1, 64))] = b""
            elif kind == 3:
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
            elif kind == 4 and data:
                data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
            else:
                other = draw(st.sampled_from(base))
                start = draw(st.integers(0, len(other)))
                data[at:at] = other[start : start + draw(st.integers(1, 200))]
        return bytes(data)

    return mutated()


def run_hypothesis(seconds: float, decode_only: bool, artifacts: Path) -> int:
    """Check mutated corpus bodies for ``seconds``, in batches; shrink the first finding."""
    from hypothesis import HealthCheck, Phase, given, settings

    strategy = mutations(seeds(), tokens())
    failing: list[bytes] = []

    @settings(
        max_examples=500,
        deadline=None,
        report_multiple_bugs=False,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def batch(data: bytes) -> None:
        try:
            check(data, decode_only=decode_only)
        except BaseException:
            failing.append(data)  # the last one is the shrunk input Hypothesis reports
            raise

    stop = time.monotonic() + seconds
    batches = 0
    while time.monotonic() < stop:
        try:
            batch()
        except Exception:
            traceback.print_exc()
            return _report(failing[-1], artifacts)
        batches += 1
    print(f"fuzz (hypothesis): {batches * 500} inputs in {seconds:g} s, no finding")
    return 0


def _report(data: bytes, artifacts: Path) -> int:
    import hashlib

    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"crash-{hashlib.sha1(data).hexdigest()}"
    path.write_bytes(data)
    print(f"fuzz: the contract failed on {data!r}\nfuzz: input written to {path}")
    return 1


# -- the atheris engine -------------------------------------------------------------


def run_atheris(
    seconds: float, decode_only: bool, artifacts: Path, corpus: Path, extra: list[str]
) -> int:
    """libFuzzer over ``corpus`` (seeded), coverage-guided through cardflow's Python code."""
    import atheris

    with atheris.instrument_imports(include=["cardflow"]):
        import cardflow
        import cardflow.batch._inputs  # noqa: F401

    def one_input(data: bytes) -> None:
        check(data, decode_only=decode_only)

    words = tokens()

    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        """libFuzzer's own mutations, and half the time a member's value swapped for a
        token: byte-level edits alone seldom write a whole valid extreme timestamp."""
        rng = random.Random(seed)
        values = list(_VALUE.finditer(data)) if rng.random() < 0.5 else []
        if not values:
            return bytes(atheris.Mutate(data, max_size))
        start, end = rng.choice(values).span(1)
        return (data[:start] + rng.choice(words) + data[end:])[:max_size]

    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.argv[0],
        f"-dict={DICTIONARY}",
        f"-artifact_prefix={artifacts}{os.sep}",
        "-max_len=4096",
        *([f"-max_total_time={int(seconds)}"] if seconds > 0 else []),
        *extra,
        str(seed_corpus(corpus)),
    ]
    atheris.Setup(argv, one_input, custom_mutator=mutate)
    atheris.Fuzz()  # libFuzzer exits the process: 0 when the time ran out
    return 0


def reproduce(paths: Sequence[Path], decode_only: bool) -> int:
    """Check saved inputs (a finding, a corpus file) directly, showing each failure."""
    failed = 0
    for path in paths:
        try:
            check(path.read_bytes(), decode_only=decode_only)
        except Exception:
            failed += 1
            print(f"fuzz: {path} fails the contract:")
            traceback.print_exc()
        else:
            print(f"fuzz: {path} passes")
    return 1 if failed else 0


def has_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="0: until stopped (atheris)")
    parser.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    parser.add_argument("--decode-only", action="store_true", help="decoders and reader only")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="atheris's corpus")
    parser.add_argument("--artifacts", type=Path, default=HERE / "artifacts")
    parser.add_argument(
        "--reproduce", type=Path, nargs="+", metavar="FILE", help="check these inputs, then stop"
    )
    args, extra = parser.parse_known_args(argv)
    if args.reproduce:
        return reproduce(args.reproduce, args.decode_only)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if has_atheris() else "hypothesis"
    print(f"fuzz: engine {engine}, {args.seconds:g} s, decode only: {args.decode_only}")
    if engine == "atheris":
        return run_atheris(args.seconds, args.decode_only, args.artifacts, args.corpus, extra)
    if args.seconds <= 0:
        parser.error("the Hypothesis engine needs --seconds above 0")
    return run_hypothesis(args.seconds, args.decode_only, args.artifacts)


if __name__ == "__main__":
    sys.exit(main())
