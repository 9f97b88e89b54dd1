"""A real HTTP server that answers D1's on-demand status as a test scripts it, per card:
a status and a body, sent whole or trickled a few bytes at a time (a slow D1).

It runs in a thread of the test on a free loopback port, speaks HTTP/1.1 over plain
sockets (so that it can be as slow as a test needs), and closes every connection
after one answer. Each request's card id is recorded.
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote


@dataclass(frozen=True)
class Answer:
    """What to answer for one card: ``trickle`` seconds between bytes, 0 for at once."""

    body: bytes
    status: int = 200
    trickle: float = 0.0


@dataclass
class Script:
    """The answers by card id (404 for a card not named), and the cards asked."""

    answers: dict[str, Answer]
    asked: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def _card(target: str) -> str:
    """The card id of ``.../physicalcards/{cardId}/productionstatus``."""
    parts = target.split("?")[0].split("/")
    return unquote(parts[parts.index("physicalcards") + 1]) if "physicalcards" in parts else ""


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        request = self.rfile.readline().decode("latin-1").split()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        script = self.server.script
        card = _card(request[1]) if len(request) > 1 else ""
        script.asked.append(card)
        answer = script.answers.get(card, Answer(b"", 404))
        head = (
            f"HTTP/1.1 {answer.status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(answer.body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with contextlib.suppress(OSError):
            self.wfile.write(head)
            self.wfile.flush()
            if not answer.trickle:
                self.wfile.write(answer.body)
                return
            for byte in answer.body:
                if script.stop.wait(answer.trickle):
                    return
                self.wfile.write(bytes((byte,)))
                self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    script: Script


@contextlib.contextmanager
def answering(answers: dict[str, Answer]) -> Iterator[tuple[str, Script]]:
    """Serve ``answers`` on a free loopback port: (the base URL, the script)."""
    script = Script(dict(answers))
    server = _Server(("127.0.0.1", 0), _Handler)
    server.script = script
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        script.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
