"""cardflow.batch: files of D1 bodies folded on every core, from Python.

``fold_files(paths, jobs=N)`` reads files and directories of D1 bodies (JSON Lines
and pretty-printed documents, as ``cardflow fold`` reads them), folds them in ``N``
worker processes (one per core by default; ``jobs=1``: in this process), and returns
a :class:`FoldedFiles`: its ``rejects`` (each with its file and line) and ``totals``
at once, then its ``states()`` in card id order, range by range, or its cards
written as JSON Lines or CSV by the workers themselves. Any split of the input gives
the states one process gives: the fold is a join (docs/scale.md).

:func:`store_files` stores the bodies of such files in a cardflow store, a
transaction per batch (``cardflow fold --db``).

``cardflow fold`` is a shell over this package. ``import cardflow`` never imports it.
"""

from ._files import FoldedFiles, fold_files
from ._formats import write_csv, write_jsonl
from ._report import Rejected, Totals
from ._storing import BodyStore, store_files

__all__ = [
    "BodyStore",
    "FoldedFiles",
    "Rejected",
    "Totals",
    "fold_files",
    "store_files",
    "write_csv",
    "write_jsonl",
]
