"""A process that writes to or dispatches from a store, for the multi-process tests.

``python tests/store/worker.py ingest URL BODIES OUT``: ingest every line of BODIES
(JSON lines; a line ``@<iso time> <body>`` is an on-demand status read at that time),
appending the idempotency key of each reaction its changes imply to OUT, after each
commit (and, with a last argument ``progress``, writing a dot to stdout after each).
``... dispatch URL LOG MAX_ATTEMPTS LEASE LIMIT``: dispatch (claims of LIMIT rows, a
lease of LEASE seconds) until no row is pending, with a reaction that takes a few
milliseconds, now and then longer than the lease, and fails at random (and always for
one key in twenty), logging every attempt and every delivery to LOG (O_APPEND).
Prints ``ready`` once the store is open.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
from datetime import datetime, timedelta

import cardflow
import cardflow.store

REACTIONS = {cardflow.ChangeKind.STATUS.value, cardflow.ChangeKind.SHIPMENT.value}


def ingest(url: str, bodies: str, out: str, progress: bool) -> None:
    with cardflow.store.open(url) as store, open(out, "a", encoding="utf-8") as keys:
        print("ready", flush=True)
        with open(bodies, "rb") as lines:
            for line in lines:
                body = line.rstrip(b"\n")
                if body.startswith(b"@"):
                    stamp, _, body = body[1:].partition(b" ")
                    result = store.reconcile(body, at=datetime.fromisoformat(stamp.decode()))
                else:
                    result = store.ingest(body)
                found = [c.key for c in result.changes if c.kind in REACTIONS]
                if found:
                    keys.write("".join(k + "\n" for k in found))
                    keys.flush()
                if progress:
                    sys.stdout.write(".")
                    sys.stdout.flush()


class Flaky:
    """Reactions that log each attempt and each delivery, fail now and then, and take
    a few milliseconds (one in a hundred: ``slow`` seconds)."""

    def __init__(self, log: str, seed: int, slow: float) -> None:
        self.fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.rng = random.Random(seed)
        self.slow = slow

    def _react(self, change: cardflow.Change) -> None:
        key = change.key
        os.write(self.fd, f"attempt {key}\n".encode())
        digest = hashlib.sha256(key.encode()).digest()
        time.sleep(self.slow if digest[1] % 100 == 0 else self.rng.uniform(0.0005, 0.003))
        if digest[0] % 20 == 0 or self.rng.random() < 0.2:
            raise RuntimeError(f"the reaction to {key} failed")
        os.write(self.fd, f"delivered {key}\n".encode())

    def __getattr__(self, name: str) -> object:
        if name.startswith("on_enter_") or name == "on_shipment":
            return self._react
        raise AttributeError(name)


def dispatch(url: str, log: str, max_attempts: int, lease: float, limit: int) -> None:
    reactions = Flaky(log, os.getpid(), slow=lease * 1.5)
    with cardflow.store.open(url) as store:
        print("ready", flush=True)
        while store.outbox_counts().get("pending", 0):
            done = store.dispatch(
                reactions,
                limit=limit,
                lease=timedelta(seconds=lease),
                max_attempts=max_attempts,
                backoff=lambda n: timedelta(0),
            )
            if not done:
                time.sleep(0.005)


def main(argv: list[str]) -> None:
    if argv[0] == "ingest":
        ingest(argv[1], argv[2], argv[3], progress=argv[4:] == ["progress"])
    else:
        dispatch(argv[1], argv[2], int(argv[3]), float(argv[4]), int(argv[5]))


if __name__ == "__main__":
    main(sys.argv[1:])
