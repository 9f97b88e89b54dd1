"""Hypothesis profiles: ``ci`` (derandomized, reproducible), ``dev``, ``deep``, ``mutation``.

CI sets ``CI=true`` and gets ``ci``; choose another with ``HYPOTHESIS_PROFILE``,
e.g. ``HYPOTHESIS_PROFILE=deep python -m pytest`` for a long local run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=300,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
# Mutation runs (scripts/mutation.sh): each mutant reruns the state's tests, so few
# examples, always the same ones (a mutant's verdict must not depend on luck).
settings.register_profile(
    "mutation",
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
