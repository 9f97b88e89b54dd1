"""``cardflow.d1`` exports exactly its sorted ``__all__``; importing it costs no server."""

from __future__ import annotations

import subprocess
import sys

import cardflow.d1
import cardflow.testing


def test_all_is_sorted_and_complete() -> None:
    for module in (cardflow.d1, cardflow.testing):
        names = module.__all__
        upper = [n for n in names if n.isupper()]
        assert names == sorted(upper) + sorted(n for n in names if not n.isupper())
        namespace: dict[str, object] = {}
        exec(f"from {module.__name__} import *", namespace)
        del namespace["__builtins__"]
        assert sorted(namespace) == sorted(names)


def test_the_client_does_not_import_starlette() -> None:
    code = "import sys, cardflow.d1; assert 'starlette' not in sys.modules; cardflow.d1.receiver"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_core_imports_no_edge() -> None:
    code = "import sys, cardflow; assert not {'httpx', 'starlette', 'uvicorn'} & set(sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
