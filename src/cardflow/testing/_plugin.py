"""The pytest plugin of cardflow (entry point ``pytest11``): one option, one fixture.

``--cardflow-examples=N`` sets how many examples the ``cardflow_check`` fixture's
checks run (default: the Hypothesis profile's). ``cardflow_check`` is
:func:`cardflow.testing.check_handler` with that option applied.

pytest imports every plugin when it starts, before measuring coverage and for runs
that never use cardflow: this module imports neither Hypothesis nor the harness
until a test asks for the fixture.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._coverage import Coverage

__all__ = ["cardflow_check", "pytest_addoption"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--cardflow-examples``."""
    group = parser.getgroup("cardflow", "cardflow D1 handler checks")
    group.addoption(
        "--cardflow-examples",
        type=_positive,
        default=None,
        metavar="N",
        help="examples per check of the cardflow_check fixture (default: Hypothesis's profile)",
    )


@pytest.fixture
def cardflow_check(request: pytest.FixtureRequest) -> Callable[..., Coverage]:
    """:func:`cardflow.testing.check_handler`, running ``--cardflow-examples`` examples."""
    from ._check import check_handler

    examples: Any = request.config.getoption("cardflow_examples")
    if examples is None:
        return check_handler
    return functools.partial(check_handler, max_examples=examples)
