"""DuckDB answering cardflow's question over the same JSON Lines: the baseline a user would pick.

``python -m benchmarks.duck {close,highest} FILE [--threads N]`` runs one query over
a file that ``cardflow simulate`` wrote and writes its answer, sorted by card, as JSON to
/dev/null (as the command line's report is written to /dev/null), so that a parent process can
measure its time and peak memory.

- **close**: per card, the current operation (latest start time, then operation id),
  the highest status of its events by lifecycle precedence, the statuses observed,
  the fields of the event that carries that status (operation status, end time, error
  code, error, reason), the latest shipment (by its update time), and the due date and
  production site of the highest event that has them. The same answer as the fold on
  those fields, but without gaps, anomalies or the lattice's tie-breaking rules.
- **highest**: per card, the highest status alone.

The JSON is read with an explicit schema (the fields the queries read), which is
DuckDB's fastest way; the statuses' precedence is a table of (status, rank) joined in.
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import Final

from cardflow import D1_LIFECYCLE

_CHECKPOINT: Final = (
    "STRUCT(checkpointTime TIMESTAMPTZ, city VARCHAR, countryName VARCHAR, message VARCHAR)"
)
_SHIPMENT: Final = (
    "STRUCT(carrier VARCHAR, trackingNumber VARCHAR, status VARCHAR, message VARCHAR,"
    " trackingUrl VARCHAR, estimatedDeliveryDate TIMESTAMPTZ, lastUpdatedAt TIMESTAMPTZ,"
    f" lastCheckpoint {_CHECKPOINT})"
)
_OPERATION: Final = (
    "STRUCT(operationId VARCHAR, operation VARCHAR, status VARCHAR, startTime TIMESTAMPTZ,"
    " cardId VARCHAR, endTime TIMESTAMPTZ, errorCode VARCHAR, error VARCHAR,"
    " details STRUCT(status VARCHAR, reason VARCHAR, dueDate DATE, productionSite VARCHAR,"
    f" shipment {_SHIPMENT}))"
)
_RANKS: Final = ", ".join(f"('{s}', {rank})" for rank, s in enumerate(D1_LIFECYCLE.statuses))
_OPERATIONS: Final = (
    "(SELECT unnest(operations) AS op FROM read_json($file, format = 'newline_delimited',"
    f" columns = {{operations: '{_OPERATION}[]'}}))"
)

CLOSE: Final = f"""
WITH events AS (
  SELECT op.cardId AS card, op.operationId AS operation_id, op.startTime AS start_time,
         op.status AS operation_status, op.endTime AS end_time, op.errorCode AS error_code,
         op.error AS error, op.details.status AS status, op.details.reason AS reason,
         op.details.dueDate AS due_date, op.details.productionSite AS site,
         op.details.shipment AS shipment, ranks.rank AS rank
  FROM {_OPERATIONS}
  LEFT JOIN (VALUES {_RANKS}) ranks(status, rank) ON ranks.status = op.details.status
  WHERE op.operation = 'PRODUCE'
), current AS (
  SELECT card, arg_max(operation_id, (start_time, operation_id)) AS operation_id,
         max(start_time) AS start_time
  FROM events GROUP BY card
)
SELECT e.card, c.operation_id, c.start_time,
       arg_max(e.status, e.rank) AS status,
       arg_max(e.operation_status, e.rank) AS operation_status,
       arg_max(e.end_time, e.rank) AS end_time,
       arg_max(e.error_code, e.rank) AS error_code,
       arg_max(e.error, e.rank) AS error,
       arg_max(e.reason, e.rank) AS reason,
       list(DISTINCT e.status ORDER BY e.status) AS observed,
       arg_max(e.shipment, coalesce(e.shipment.lastUpdatedAt, '-infinity'::TIMESTAMPTZ))
         FILTER (WHERE e.shipment IS NOT NULL) AS shipment,
       arg_max(e.due_date, e.rank) FILTER (WHERE e.due_date IS NOT NULL) AS due_date,
       arg_max(e.site, e.rank) FILTER (WHERE e.site IS NOT NULL) AS site
FROM events e JOIN current c ON e.card = c.card AND e.operation_id = c.operation_id
GROUP BY e.card, c.operation_id, c.start_time
ORDER BY e.card
"""

HIGHEST: Final = f"""
SELECT op.cardId AS card, arg_max(op.details.status, ranks.rank) AS status
FROM {_OPERATIONS}
JOIN (VALUES {_RANKS}) ranks(status, rank) ON ranks.status = op.details.status
WHERE op.operation = 'PRODUCE'
GROUP BY op.cardId
ORDER BY op.cardId
"""

QUERIES: Final = {"close": CLOSE, "highest": HIGHEST}


def available() -> bool:
    return importlib.util.find_spec("duckdb") is not None


def answer(query: str, path: str, threads: int, out: str = "/dev/null") -> None:
    """Run ``query`` over the file at ``path`` and write its rows to ``out`` as JSON."""
    import duckdb

    with duckdb.connect() as con:
        con.execute(f"SET threads = {int(threads)}")
        con.execute(f"COPY ({QUERIES[query]}) TO '{out}' (FORMAT json)", {"file": path})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.duck")
    parser.add_argument("query", choices=sorted(QUERIES))
    parser.add_argument("file")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="/dev/null")
    args = parser.parse_args()
    answer(args.query, args.file, args.threads, args.out)


if __name__ == "__main__":
    main()
