"""Real components that tests start themselves (PostgreSQL, Chromium, servers, Dask).

Where one is missing, a test calls :func:`missing`: outside CI it skips and says
why; with ``CARDFLOW_REQUIRE_COMPONENTS=1`` (``.ci/run`` sets it) it fails instead,
so that CI never passes by skipping what it was meant to prove.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRED: bool = os.environ.get("CARDFLOW_REQUIRE_COMPONENTS") == "1"


def missing(component: str, reason: str) -> NoReturn:
    """Skip (or, where components are required, fail) a test that needs ``component``."""
    message = f"{component} is not available: {reason}"
    if REQUIRED:
        pytest.fail(f"{message} (CARDFLOW_REQUIRE_COMPONENTS=1: CI must run this test)")
    pytest.skip(message)
