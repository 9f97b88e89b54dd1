"""The receiver mounted under a prefix in someone else's Starlette application, with a
token (``MOUNTED_DB``, ``MOUNTED_TOKEN``): as docs/d1.md shows it, run by uvicorn."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.routing import Mount

import cardflow.d1

app = Starlette(
    routes=[
        Mount(
            "/d1",
            app=cardflow.d1.receiver(
                os.environ["MOUNTED_DB"], token=os.environ["MOUNTED_TOKEN"], issuers=["I1"]
            ),
        )
    ]
)
