"""Rows per domain and export status, kept with the rows: the owner of the ``domain_counts`` table.

`status`, the API and the dashboard show every domain's backlog every few seconds; counting
``influencers`` for it reads every pending row's index entry, a cost that grows with the table
(seconds at ten million rows). So the count is kept instead, exact, in the same transaction as
the change it counts: `store.write_batch` adds the rows it inserts and the rows it moves between
domains, `store.mark_exported` moves rows from pending to exported. Either both commit or
neither does, so a SIGKILL at any moment leaves the counts equal to ``COUNT(*)``.

Every writer updates one of ``SHARDS`` rows per domain, chosen by its connection id, so two
pipeline batches of one domain do not queue on one row until their commits; readers add the
shards up. Writers touch their domains in sorted order, so two of them never deadlock here.
`recount` rebuilds the table from ``influencers`` (`db recount`), for a database whose rows were
loaded or changed around the application.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from pymysql.connections import Connection

from influencers.core.db import run_transaction

#: Rows per domain a writer spreads its updates over (by connection id).
SHARDS = 16

#: (domain, status) → rows added (negative: removed), with status 'pending_export' or 'exported'.
Delta = Mapping[tuple[str, str], int]

_ADD = (
    f"INSERT INTO domain_counts (domain, shard, pending, exported) VALUES (%s, MOD(CONNECTION_ID(), {SHARDS}), %s, %s)"
    " ON DUPLICATE KEY UPDATE pending = pending + VALUES(pending), exported = exported + VALUES(exported)"
)


def add(cursor: Any, delta: Delta) -> None:
    """Apply ``delta`` in the caller's transaction (the one that changed the rows)."""
    by_domain: dict[str, list[int]] = {}
    for (domain, status), rows in delta.items():
        if rows:
            counts = by_domain.setdefault(domain, [0, 0])
            counts[0 if status == "pending_export" else 1] += rows
    changes = [(domain, pending, exported) for domain, (pending, exported) in sorted(by_domain.items())
               if pending or exported]
    if changes:
        cursor.executemany(_ADD, changes)


def pending_by_domain(conn: Connection) -> dict[str, int]:
    """Rows waiting for export per domain (domains with none left out), in domain order."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT domain, SUM(pending) AS pending FROM domain_counts GROUP BY domain"
                       " HAVING SUM(pending) > 0 ORDER BY domain")
        rows = {row["domain"]: int(row["pending"]) for row in cursor.fetchall()}
    conn.commit()
    return rows


def counted(conn: Connection) -> Counter[tuple[str, str]]:
    """The kept counts as {(domain, status): rows}, nonzero ones only (tests compare it with COUNT(*))."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT domain, SUM(pending) AS pending, SUM(exported) AS exported FROM domain_counts"
                       " GROUP BY domain")
        rows = cursor.fetchall()
    conn.commit()
    kept: Counter[tuple[str, str]] = Counter()
    for row in rows:
        kept[(row["domain"], "pending_export")] = int(row["pending"])
        kept[(row["domain"], "exported")] = int(row["exported"])
    return +kept


def recount(conn: Connection) -> None:
    """Rebuild the counts from ``influencers`` in one transaction. The scan takes shared locks on
    the rows it reads, so writers wait for it rather than count into a table being replaced."""
    def rebuild(cursor: Any) -> None:
        cursor.execute("SELECT domain, SUM(status = 'pending_export') AS pending, SUM(status = 'exported') AS exported"
                       " FROM influencers GROUP BY domain LOCK IN SHARE MODE")
        rows = [(row["domain"], int(row["pending"]), int(row["exported"])) for row in cursor.fetchall()]
        cursor.execute("DELETE FROM domain_counts")
        if rows:
            cursor.executemany("INSERT INTO domain_counts (domain, shard, pending, exported) VALUES (%s, 0, %s, %s)",
                               rows)
    run_transaction(conn, rebuild)
