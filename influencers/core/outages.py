"""What a process finds unreachable, where the alerter can see it: the owner of the ``outages`` table.

A crawl that waits out a platform outage, or a dispatcher that backs off a Scrapyd node, knows it
only in memory; the alerter (`influencers.core.alerts`) is another process. So the one that sees
the outage writes a row (``report``: started when first seen, ``seen_at`` on every failed try)
and deletes it when the source answers again (``clear``). A row whose reporter stopped refreshing
it is stale (the reporter died or lost the database): `ongoing` leaves it out, so a dead crawl
does not keep a platform "down" for ever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymysql.connections import Connection

from influencers.core.db import run_transaction

SOURCE_MAX = 191
PROBLEM_MAX = 255
#: A row not refreshed for this long is no longer believed.
STALE_SECONDS = 900


@dataclass(frozen=True)
class OngoingOutage:
    source: str
    reporter: str
    started_at: datetime
    problem: str | None


def report(conn: Connection, source: str, reporter: str, problem: str | None) -> None:
    """``source`` is unreachable as ``reporter`` sees it now (the first report starts the outage)."""
    run_transaction(conn, lambda cursor: cursor.execute(
        "INSERT INTO outages (source, reporter, started_at, seen_at, problem)"
        " VALUES (%s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), %s)"
        " ON DUPLICATE KEY UPDATE seen_at = VALUES(seen_at), problem = VALUES(problem)",
        (source[:SOURCE_MAX], reporter[:SOURCE_MAX], problem[:PROBLEM_MAX] if problem else None),
    ))


def clear(conn: Connection, source: str, reporter: str) -> None:
    """``source`` answers ``reporter`` again: its outage, as that reporter saw it, is over."""
    run_transaction(conn, lambda cursor: cursor.execute(
        "DELETE FROM outages WHERE source = %s AND reporter = %s", (source[:SOURCE_MAX], reporter[:SOURCE_MAX])))


def ongoing(cursor: Any, *, longer_than: float) -> list[OngoingOutage]:
    """Outages that began more than ``longer_than`` seconds ago and are still being reported,
    the earliest report per source first."""
    cursor.execute(
        "SELECT source, reporter, started_at, problem FROM outages"
        " WHERE started_at <= UTC_TIMESTAMP(6) - INTERVAL %s SECOND"
        " AND seen_at >= UTC_TIMESTAMP(6) - INTERVAL %s SECOND ORDER BY source, started_at",
        (float(longer_than), STALE_SECONDS),
    )
    return [OngoingOutage(row["source"], row["reporter"], row["started_at"], row["problem"])
            for row in cursor.fetchall()]
