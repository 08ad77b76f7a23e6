"""Alerts: what needs a person, each cause once per window, kept with its delivery: the owner of
the ``alerts`` and ``alert_watch`` tables.

Causes come from two places. *Events* (`influencers.core.events`) are the record every process
writes in the transaction of the change: an account disabled, a task failed, a task recovered from
a dead worker, a crawl completed (with no rows?). The alerter reads them after ``alert_watch``'s
mark, so every process's work is seen and nothing twice. *Conditions* are states read now: the pool
out of ready accounts while work waits, every export quota spent while an export waits, an outage
reported by a crawl or a dispatcher (`influencers.core.outages`).

`raise_alerts` runs under the ``alert_watch`` row lock: any number of alerters may run, they take
turns, and a cause (kind, subject) alerted within the last ``window`` seconds is not alerted again
(no storms when an account is disabled ten times or a crawl's hundred subtasks fail). Delivery is
separate (`due`, `delivered`, `failed`): an alert is leased while being sent, retried with a
growing delay when sending fails, and shown by `alerts list` whatever happened.

Events are read ``EVENT_LAG`` seconds after they were written: an event id is taken at insert and
becomes visible at commit, so a short transaction that commits after a later one is still read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymysql.connections import Connection

from influencers.core import outages
from influencers.core.accounts import count_ready, export_quota_left, usernames
from influencers.core.db import run_transaction
from influencers.core.quotaday import QuotaDay
from influencers.core.tasks.model import claimable_waiting, rows_ingested_by, tasks_brief
from influencers.core.tasks.scheduler import count_unfinished

#: kind → what it means, for `alerts list` and the README.
KINDS = {
    "account_disabled": "an account was disabled or banned (with its reason)",
    "pool_exhausted": "no account could take waiting work for longer than the outage threshold",
    "task_failed": "a task failed (a crawl's subtasks count as their crawl)",
    "crawl_empty": "a crawl completed without committing a row",
    "quota_spent": "every account's export quota for today is spent while an export waits",
    "worker_gone": "a worker died or stopped renewing its lease; its tasks went back to the queue",
    "node_gone": "a Scrapyd node has not answered for longer than the threshold",
    "platform_unreachable": "the platform has not answered a crawl for longer than the threshold",
    "database_unreachable": "MySQL has not answered the alerter for longer than the threshold",
}
EVENT_LAG = 5.0  # seconds
EVENTS_PER_ROUND = 5000
MESSAGE_MAX = 1024
SUBJECT_MAX = 191
_DEAD_WORKER = re.compile(r"^(?:worker gone \(.*?\)|lease expired): (?P<worker>[^;]+)")


@dataclass(frozen=True)
class Cause:
    """Something to alert: ``kind`` (one of `KINDS`), ``subject`` (what it is about: an account,
    a task, a node; empty for the whole system) and the one-line message a person reads."""

    kind: str
    subject: str
    message: str


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str
    subject: str
    message: str
    created_at: datetime
    attempts: int
    delivered_at: datetime | None
    last_error: str | None


_COLUMNS = "id, kind, subject, message, created_at, attempts, delivered_at, last_error"


def _alert(row: dict[str, Any]) -> Alert:
    return Alert(int(row["id"]), row["kind"], row["subject"], row["message"], row["created_at"],
                 int(row["attempts"]), row["delivered_at"], row["last_error"])


class AlertStore:
    def __init__(self, conn: Connection, quota_day: QuotaDay, *, window: float, event_lag: float = EVENT_LAG) -> None:
        self.conn = conn
        self.quota_day = quota_day
        self.window = window
        self.event_lag = event_lag

    # -- causes ---------------------------------------------------------------------------------

    def raise_alerts(self, conditions: Iterable[Cause] = (), *, delivered: bool = False) -> list[Alert]:
        """Read the events after the mark, add ``conditions``, and record each cause not alerted
        within the window; returns the alerts recorded. ``delivered``: they were sent already (an
        alert made while the database was away, recorded once it is back)."""
        given = list(conditions)

        def watch(cursor: Any) -> list[Alert]:
            mark = self._lock_mark(cursor)
            causes, last_id = self._event_causes(cursor, mark)
            alert_ids = [alert_id for cause in [*causes, *given]
                         if (alert_id := self._record(cursor, cause, delivered)) is not None]
            if last_id > mark:
                cursor.execute("UPDATE alert_watch SET last_event_id = %s WHERE id = 1", (last_id,))
            if not alert_ids:
                return []
            cursor.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id IN ({', '.join(['%s'] * len(alert_ids))})"
                           " ORDER BY id", alert_ids)
            return [_alert(row) for row in cursor.fetchall()]

        return run_transaction(self.conn, watch)

    def pool_starved(self) -> bool:
        """Work could be claimed now, and no account is ready to take it."""
        with self.conn.cursor() as cursor:
            return claimable_waiting(cursor) and count_ready(cursor) == 0

    def quota_spent(self) -> bool:
        """An export waits, and no account may export another row today."""
        with self.conn.cursor() as cursor:
            return count_unfinished(cursor, "export") > 0 and export_quota_left(cursor, self.quota_day) == 0

    def outages(self, longer_than: float) -> list[Cause]:
        """An outage cause per source unreachable for longer than ``longer_than`` seconds."""
        with self.conn.cursor() as cursor:
            found = outages.ongoing(cursor, longer_than=longer_than)
        causes: dict[str, Cause] = {}
        for outage in found:
            kind = "node_gone" if outage.source.startswith("scrapyd ") else "platform_unreachable"
            problem = f": {outage.problem}" if outage.problem else ""
            causes.setdefault(outage.source, Cause(
                kind, outage.source,
                f"{outage.source} unreachable since {outage.started_at:%Y-%m-%d %H:%M:%S} UTC"
                f" (seen by {outage.reporter}){problem}"))
        return list(causes.values())

    def _lock_mark(self, cursor: Any) -> int:
        cursor.execute("SELECT last_event_id FROM alert_watch WHERE id = 1 FOR UPDATE")
        row = cursor.fetchone()
        if row is not None:
            return int(row["last_event_id"])
        # A database whose row is missing: start from now, not from the whole history. A plain
        # read (no INSERT … SELECT): that would lock the end of the events index against writers.
        cursor.execute("SELECT COALESCE(MAX(id), 0) AS id FROM events")
        mark = int(cursor.fetchone()["id"])
        cursor.execute("INSERT IGNORE INTO alert_watch (id, last_event_id) VALUES (1, %s)", (mark,))
        cursor.execute("SELECT last_event_id FROM alert_watch WHERE id = 1 FOR UPDATE")
        return int(cursor.fetchone()["last_event_id"])

    def _event_causes(self, cursor: Any, mark: int) -> tuple[list[Cause], int]:
        cursor.execute(
            "SELECT id, entity, entity_id, event, to_status, reason,"
            " created_at <= UTC_TIMESTAMP(6) - INTERVAL %s SECOND AS settled"
            " FROM events WHERE id > %s ORDER BY id LIMIT %s",
            (self.event_lag, mark, EVENTS_PER_ROUND),
        )
        rows = []
        for row in cursor.fetchall():
            if not row["settled"]:
                break  # this one and the later ones wait for the next round
            rows.append(row)
        if not rows:
            return [], mark
        relevant = [row for row in rows if _relevant(row)]
        names = usernames(cursor, [row["entity_id"] for row in relevant if row["entity"] == "account"])
        tasks = tasks_brief(cursor, [row["entity_id"] for row in relevant if row["entity"] == "task"])
        causes = [cause for row in relevant for cause in self._event_causes_of(cursor, row, names, tasks)]
        return causes, int(rows[-1]["id"])

    def _event_causes_of(self, cursor: Any, row: dict[str, Any], names: dict[int, str],
                         tasks: dict[int, dict[str, Any]]) -> list[Cause]:
        entity_id, reason = int(row["entity_id"]), row["reason"] or "no reason given"
        if row["entity"] == "account":
            name = names.get(entity_id, f"#{entity_id}")
            return [Cause("account_disabled", str(entity_id), f"account {name} (id {entity_id}) disabled: {reason}")]
        task = tasks.get(entity_id)
        what = f"{task['task_type']} {task['domain']}" if task else "unknown"
        causes = []
        dead = _DEAD_WORKER.match(reason)
        if dead is not None and (row["event"] == "recovered" or row["to_status"] == "failed"):
            worker = dead["worker"].strip()
            causes.append(Cause("worker_gone", worker,
                                f"worker {worker} gone: task {entity_id} ({what})"
                                f" {'back in the queue' if row['to_status'] == 'pending' else 'failed'} ({reason})"))
        if row["to_status"] == "failed":
            root = int(task["parent_id"]) if task and task["parent_id"] else entity_id
            causes.append(Cause("task_failed", str(root), f"task {entity_id} ({what}) failed: {reason}"))
        elif (row["to_status"] == "completed" and task and task["task_type"] == "ingestion"
              and not task["parent_id"] and rows_ingested_by(cursor, entity_id) == 0):
            causes.append(Cause("crawl_empty", str(entity_id),
                                f"crawl task {entity_id} ({task['domain']}) completed without committing a row"))
        return causes

    def _record(self, cursor: Any, cause: Cause, delivered: bool) -> int | None:
        """The new alert's id, or None when the cause was alerted within the window."""
        subject = cause.subject[:SUBJECT_MAX]
        cursor.execute(
            "INSERT IGNORE INTO alerts (kind, subject, window_start, message, delivered_at)"
            " SELECT %s, %s, UTC_TIMESTAMP(), %s, IF(%s, UTC_TIMESTAMP(6), NULL) FROM DUAL WHERE NOT EXISTS ("
            " SELECT 1 FROM alerts WHERE kind = %s AND subject = %s"
            " AND window_start > UTC_TIMESTAMP() - INTERVAL %s SECOND)",
            (cause.kind, subject, cause.message[:MESSAGE_MAX], delivered, cause.kind, subject, self.window),
        )
        return cursor.lastrowid if cursor.rowcount else None

    # -- delivery -------------------------------------------------------------------------------

    def due(self, *, limit: int, lease: float) -> list[Alert]:
        """Undelivered alerts whose next try is due, leased to the caller for ``lease`` seconds
        (another alerter does not send them meanwhile); each counts an attempt."""
        def take(cursor: Any) -> list[Alert]:
            cursor.execute(f"SELECT {_COLUMNS} FROM alerts WHERE delivered_at IS NULL"
                           " AND next_attempt_at <= UTC_TIMESTAMP(6) ORDER BY next_attempt_at, id LIMIT %s"
                           " FOR UPDATE SKIP LOCKED", (limit,))
            rows = cursor.fetchall()
            if rows:
                cursor.execute("UPDATE alerts SET attempts = attempts + 1,"
                               " next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL %s SECOND"
                               f" WHERE id IN ({', '.join(['%s'] * len(rows))})", (lease, *[r["id"] for r in rows]))
            return [_alert({**row, "attempts": row["attempts"] + 1}) for row in rows]

        return run_transaction(self.conn, take)

    def delivered(self, alert_id: int) -> None:
        run_transaction(self.conn, lambda cursor: cursor.execute(
            "UPDATE alerts SET delivered_at = UTC_TIMESTAMP(6), last_error = NULL WHERE id = %s", (alert_id,)))

    def failed(self, alert_id: int, error: str, *, retry_in: float) -> None:
        run_transaction(self.conn, lambda cursor: cursor.execute(
            "UPDATE alerts SET last_error = %s, next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL %s SECOND"
            " WHERE id = %s", (error[:MESSAGE_MAX], retry_in, alert_id)))

    def recent(self, limit: int) -> list[Alert]:
        """The latest alerts, newest first."""
        with self.conn.cursor() as cursor:
            cursor.execute(f"SELECT {_COLUMNS} FROM alerts ORDER BY id DESC LIMIT %s", (limit,))
            return [_alert(row) for row in cursor.fetchall()]


def _relevant(row: dict[str, Any]) -> bool:
    if row["entity"] == "account":
        return row["to_status"] == "disabled"
    return row["event"] == "recovered" or row["to_status"] in ("failed", "completed")
