"""Recovering tasks from dead or stuck workers: an expired lease, or a worker lock the server freed.

A part of `TaskScheduler` (which inherits it). A free worker lock means the worker's connection
closed, so its claims can go back to the queue at once; but a server that has just (re)started
holds no locks at all while every live worker reconnects (each backs off up to ten seconds), so
for its first ``LOCK_GRACE_SECONDS`` only expired leases count, and a worker never takes back its
own claims by its lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pymysql.connections import Connection

from influencers.core import tallies
from influencers.core.accounts import AccountManager
from influencers.core.db import run_transaction
from influencers.core.events import record_event
from influencers.core.tasks.model import CLEAR_CLAIM

logger = logging.getLogger(__name__)

#: Seconds after the server starts during which a free worker lock does not make a task recoverable.
LOCK_GRACE_SECONDS = 15


class TaskRecovery:
    # TaskScheduler's
    conn: Connection
    accounts: AccountManager
    worker_id: str | None
    recover_every: float
    _recovered_at: float | None
    _update_parent: Callable[[int | None], None]

    def _recover_if_due(self) -> bool:
        """Recover unless the last recovery is younger than ``recover_every``; True if it ran."""
        if self._recovered_at is not None and time.monotonic() - self._recovered_at < self.recover_every:
            return False
        self.recover()
        return True

    def recover(self) -> int:
        """Return claims of dead or stuck workers to the queue; counts an attempt for each.

        By a free worker lock only once the server has been up ``LOCK_GRACE_SECONDS``, and never
        this worker's own claims (they are alive; its lock comes back with its next check)."""
        started = time.monotonic()

        def recover(cursor: Any) -> int:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Uptime'")
            locks_tell = int(cursor.fetchone()["Value"]) >= LOCK_GRACE_SECONDS
            cursor.execute(
                "SELECT id, parent_id, claimed_by, assigned_account_id, attempts, max_attempts,"
                " lease_expires_at < UTC_TIMESTAMP(6) AS expired FROM tasks"
                " WHERE status = 'in_progress' AND (lease_expires_at < UTC_TIMESTAMP(6)"
                " OR (%s AND IS_FREE_LOCK(claimed_by) = 1 AND claimed_by <> %s))"
                " ORDER BY id FOR UPDATE SKIP LOCKED",
                (locks_tell, self.worker_id or ""),
            )
            rows = cursor.fetchall()
            requeued = 0
            for row in rows:
                why = "lease expired" if row["expired"] else "worker gone (its database connection closed)"
                reason = f"{why}: {row['claimed_by']}"
                attempts = row["attempts"] + 1
                status = "failed" if attempts >= row["max_attempts"] else "pending"
                requeued += status == "pending"
                if status == "failed":
                    reason += f"; failed after {attempts} attempts"
                cursor.execute(
                    f"UPDATE tasks SET status = %s, attempts = %s, {CLEAR_CLAIM}, not_before = NULL, last_error = %s"
                    " WHERE id = %s",
                    (status, attempts, reason, row["id"]),
                )
                record_event(cursor, "task", row["id"], "recovered" if status == "pending" else "failed",
                             from_status="in_progress", to_status=status, task_id=row["id"],
                             account_id=row["assigned_account_id"], worker=self.worker_id, reason=reason)
                self.accounts.release(cursor, row["assigned_account_id"], row["id"], self.worker_id)
            tallies.add(cursor, {(tallies.LEASE_RECOVERIES, ""): requeued})  # as many as 'recovered' events
            return rows

        # READ COMMITTED: the scan reads every in_progress task; under REPEATABLE READ it would keep
        # all of them locked until commit, and concurrent claimers would skip or wait for them.
        rows = run_transaction(self.conn, recover, isolation="READ COMMITTED")
        self._recovered_at = started
        for parent_id in {row["parent_id"] for row in rows}:
            self._update_parent(parent_id)
        recovered = len(rows)
        if recovered:
            logger.warning("recovered %d task(s) from dead or stuck workers", recovered)
        return recovered
