"""The documentation's examples run: every ```python block, in order, per page.

The README's test command is also the one .ci/run runs, word for word.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [
    "README.md",
    "docs/semantics.md",
    "docs/state-format.md",
    "docs/report.md",
    "docs/scale.md",
    "docs/store.md",
]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(page: str) -> list[str]:
    return BLOCK.findall((ROOT / page).read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page: str) -> None:
    found = blocks(page)
    assert found, f"{page} has no python example"
    namespace: dict[str, object] = {"__name__": f"docs:{page}"}
    for number, source in enumerate(found, 1):
        code = compile(source, f"{page} (example {number})", "exec")
        exec(code, namespace)


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "pip install -e '.[test]' && python -m pytest"
    assert command in readme
    assert ci.rstrip().splitlines()[-1] == command
