"""cardflow's benchmarks: speed and memory targets, as ratios measured side by side.

Run ``python -m benchmarks`` (``--quick`` for a run under a minute, ``--help`` for the
rest) from the repository root, with the ``bench`` extra installed for the baselines.
Each group lives in its own module: ``throughput`` (decoding and folding against
bare msgspec), ``baselines`` (transitions, python-statemachine, eventsourcing),
``operations`` (merge against apply, the tracker, lenient decoding), ``operation_id``
(the ways to check ``operationId``), ``cli`` (``cardflow fold`` against the library and
against DuckDB, whose queries are in ``duck``, each in a process of its own),
``memory`` (RSS per card, in a fresh process) and ``profile`` (pyinstrument over
decode and fold).
"""
