"""``python -m cardflow.cli``: the same as the ``cardflow`` command."""

from . import main

raise SystemExit(main())
