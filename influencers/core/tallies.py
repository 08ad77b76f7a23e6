"""Counters that only grow, kept with the work they count: the owner of the ``tallies`` table.

``GET /metrics`` shows how much work the whole deployment did — pages and rows ingested per
domain, rows exported and rate-limited and captcha responses per account, lease recoveries —
whichever process did it, and across restarts. A counter in one process's memory would show
that process only and start from zero at each restart; so the counts live here, added in the
transaction that does the work: `store.write_batch` adds the pages and rows of its batch,
`exporter.batches` the rows of the batch it finalizes, `tasks.recovery` the tasks it recovers.
Either both commit or neither does, so a SIGKILL at any moment neither loses nor doubles a count:
``pages_ingested`` grows by exactly the ``ingestion_logs`` rows each batch writes (migration 0011
filled it from the logs before; a page written again, as when a cursor platform's listing is read
again from page 1, is work done again and counts again). A crawl's 429s and captchas
are not a database change: the crawl counts them in memory and adds them every few seconds
(`influencers.extensions.tallying`).

Like `counts`, each writer adds to one of ``SHARDS`` rows per counter, chosen by its connection
id, so pipeline batches of one domain do not queue on one row until their commits; the rows are
touched in (name, label) order, so two writers never deadlock here, and `totals` adds the shards
up. All of a transaction's additions are one statement: one round trip per batch, whatever its
domains. Counters are never recounted (`db recount` rebuilds ``domain_counts`` only): what was
done stays done, even after the rows it made are gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymysql.connections import Connection

from influencers.core.counts import SHARDS
from influencers.core.db import run_transaction

# The counters (``tallies.name``) and what their label holds.
PAGES_INGESTED = "pages_ingested"  # label: the domain; one per ingestion_logs row
ROWS_INGESTED = "rows_ingested"  # label: the domain; the rows those pages listed
ROWS_EXPORTED = "rows_exported"  # label: the account id; rows in published export files
RATE_LIMITED = "rate_limited"  # label: the account id; listing responses that said "too many requests"
CAPTCHAS = "captchas"  # label: the account id; listing responses that were a captcha
LEASE_RECOVERIES = "lease_recoveries"  # label '': tasks taken back from dead or stuck workers
NAMES = (PAGES_INGESTED, ROWS_INGESTED, ROWS_EXPORTED, RATE_LIMITED, CAPTCHAS, LEASE_RECOVERIES)
LABEL_MAX = 100  # tallies.label

#: (name, label) → amount to add (0 or more).
Delta = Mapping[tuple[str, str], int]

_ADD_HEAD = "INSERT INTO tallies (name, label, shard, value) VALUES "
_ADD_ROW = f"(%s, %s, MOD(CONNECTION_ID(), {SHARDS}), %s)"
_ADD_TAIL = " ON DUPLICATE KEY UPDATE value = value + VALUES(value)"


def add(cursor: Any, delta: Delta) -> None:
    """Add ``delta`` in the caller's transaction (the one that did the work it counts)."""
    changes: list[Any] = []
    for (name, label), amount in sorted(delta.items()):
        if amount < 0:
            raise ValueError(f"tally {name}[{label}]: counters only grow, not by {amount}")
        if amount:
            changes.extend((name, label[:LABEL_MAX], amount))
    if changes:
        cursor.execute(_ADD_HEAD + ", ".join([_ADD_ROW] * (len(changes) // 3)) + _ADD_TAIL, changes)


def record(conn: Connection, delta: Delta) -> None:
    """Add ``delta`` in a transaction of its own (counts of work that wrote nothing else)."""
    run_transaction(conn, lambda cursor: add(cursor, delta))


def totals(conn: Connection) -> dict[tuple[str, str], int]:
    """Every counter as {(name, label): value}, the shards added up."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT name, label, SUM(value) AS value FROM tallies GROUP BY name, label ORDER BY name, label")
        rows = cursor.fetchall()
    conn.commit()
    return {(row["name"], row["label"]): int(row["value"]) for row in rows}
