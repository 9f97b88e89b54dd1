"""A receiver that is not cardflow's: a few lines of Starlette over an in-memory Tracker.

It stands for "a receiver written in any language" in the conformance tests, run as
its own uvicorn process (one worker: its state is one process's memory). The
environment variable ``TRACKER_APP_MODE`` makes it misbehave on purpose:

- ``flaky``: every third POST answers 503 before reading (the fake D1 must retry);
- ``lossy``: every tenth body is answered 204 and thrown away (a conformance check
  must notice).
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import cardflow

MODE = os.environ.get("TRACKER_APP_MODE", "")
tracker = cardflow.Tracker()
posts = itertools.count(1)


async def notify(request: Request) -> Response:
    number = next(posts)
    if MODE == "flaky" and number % 3 == 0:
        return Response(status_code=503)
    body = await request.body()
    if MODE == "lossy" and number % 10 == 0:
        return Response(status_code=204)
    tracker.ingest(body)
    return Response(status_code=204)


async def card(request: Request) -> Response:
    state = tracker.get(request.path_params["card_id"])
    if state is None:
        return Response(status_code=404)
    return JSONResponse(cardflow.json_view(state))


async def reconcile(request: Request) -> Response:
    """Take an on-demand status body the test fetched (read now)."""
    tracker.reconcile(await request.body(), at=datetime.now(UTC))
    return Response(status_code=204)


app = Starlette(
    routes=[
        Route("/notifications/d1/v2/issuers/{issuer_id}/cards", notify, methods=["POST"]),
        Route("/cards/{card_id}", card),
        Route("/reconcile", reconcile, methods=["POST"]),
    ]
)
