"""Task scheduler: create and split tasks, claim them, keep leases, recover, finish, relay.

Claiming is one short transaction: `SELECT … FOR UPDATE SKIP LOCKED` on a claimable task, take an
idle account the same way (`AccountManager`, the owner of the accounts table), then mark both. A
claim carries a fresh `lease_token`; every write a worker makes on behalf of a claim checks that
token under the task's row lock (`fence`).

Liveness has two layers. Each worker process holds `GET_LOCK(<worker id>)` on a connection of its
own for as long as it lives; the server releases that lock the moment the connection drops, so a
SIGKILLed worker's claims are recoverable at once (`IS_FREE_LOCK`). The lease is the backstop for
a worker that is alive but stuck (paused, partitioned): it expires unless heartbeats renew it.
`recover()` runs before a claim (at most every ``recover_every`` seconds, and always before a claim
that would find nothing), so a restarted worker picks up its predecessor's task at once, and a
task that keeps losing its worker without progress fails after `max_attempts`. The worker's lock
is `influencers.core.workers.Worker`; `recover()` is `TaskRecovery`'s (`recovery.py`), with the
grace after a server start during which a free lock proves nothing.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from typing import Any

from pymysql.connections import Connection

from influencers.core.accounts import AccountManager
from influencers.core.db import run_transaction
from influencers.core.errors import InvalidArgument, InvalidTransition, TaskNotFound
from influencers.core.events import record_event, task_events
from influencers.core.tasks.creating import TaskCreation
from influencers.core.tasks.fence import fence, move_marker
from influencers.core.tasks.model import (
    CLEAR_CLAIM,
    PURPOSE,
    TASK_COLUMNS,
    TASK_TYPES,
    Claim,
    Task,
    claimable_conditions,
    task_from_row,
)
from influencers.core.tasks.recovery import TaskRecovery
from influencers.core.workers import Worker

logger = logging.getLogger(__name__)


def count_unfinished(cursor: Any, task_type: str) -> int:
    """Tasks of the type that are not over yet (pending, running or paused)."""
    cursor.execute("SELECT COUNT(*) AS n FROM tasks WHERE task_type = %s AND NOT is_parent"
                   " AND status IN ('pending', 'in_progress', 'paused')", (task_type,))
    return int(cursor.fetchone()["n"])


def pause_window(cursor: Any, task_id: int) -> tuple[bool, bool]:
    """(paused until a time still ahead, paused with no time: by an operator) from
    ``tasks.not_before``, by the database clock, in the caller's transaction."""
    cursor.execute("SELECT not_before > UTC_TIMESTAMP(6) AS later, not_before IS NULL AS manual"
                   " FROM tasks WHERE id = %s", (task_id,))
    row = cursor.fetchone()
    return bool(row["later"]), bool(row["manual"])


class TaskScheduler(TaskCreation, TaskRecovery):
    def __init__(self, conn: Connection, worker: Worker | None, accounts: AccountManager, *, lease_seconds: float = 60,
                 recover_every: float = 0.0):
        """``recover_every``: seconds between the recoveries `claim` runs first (0: before every
        claim). A worker that claims many short tasks in a row spares the scan; a claim that
        finds nothing always recovers first, so "nothing claimable" is never an answer a
        recovery would change."""
        self.conn = conn
        self.worker = worker
        self.accounts = accounts
        self.lease_seconds = lease_seconds
        self.recover_every = recover_every
        self._recovered_at: float | None = None
        self._unsettled_token: str | None = None  # a claim whose COMMIT went unanswered

    @property
    def worker_id(self) -> str | None:
        return self.worker.worker_id if self.worker else None

    # -- reading -------------------------------------------------------------------------------

    def get(self, task_id: int, *, cursor: Any = None) -> Task:
        sql = f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = %s"
        if cursor is not None:
            cursor.execute(sql, (task_id,))
            row = cursor.fetchone()
        else:
            with self.conn.cursor() as own:
                own.execute(sql, (task_id,))
                row = own.fetchone()
            self.conn.commit()
        if row is None:
            raise TaskNotFound(f"no task with id {task_id}")
        return task_from_row(row)

    def events(self, task_id: int) -> list[dict[str, Any]]:
        self.get(task_id)
        with self.conn.cursor() as cursor:
            rows = task_events(cursor, task_id)
        self.conn.commit()
        return rows

    # -- claiming ------------------------------------------------------------------------------

    def claim(self, task_type: str, *, task_id: int | None = None, domain: str | None = None) -> Claim | None:
        """Claim one claimable task of `task_type` with an idle account; None if none can run now.

        Claimable: `pending`, or `paused` by a worker with an auto-resume time that has passed
        (a task paused by an operator waits for `resume`). An export claim needs an account
        with quota left today, so a task paused for quota resumes by itself on the next day.
        """
        if task_type not in TASK_TYPES:
            raise InvalidArgument(f"task type must be one of {', '.join(TASK_TYPES)}")
        if self.worker is None:
            raise InvalidArgument("claiming needs a Worker (its liveness lock makes crash recovery instant)")
        self.worker.ensure_alive()
        if self._unsettled_token is not None:
            settled = self._settle_unanswered_claim(self._unsettled_token)
            if settled is not None:
                return settled
        recovered = self._recover_if_due()
        token = secrets.token_hex(16)

        def claim(cursor: Any) -> Claim | None:
            conditions = ["task_type = %s", "NOT is_parent"]
            params: list[Any] = [task_type]
            if task_id is not None:
                conditions.append("id = %s")
                params.append(task_id)
            if domain is not None:
                conditions.append("domain = %s")
                params.append(domain)
            # One status per query, so each walks ix_tasks_claim in id order and stops at the first
            # row it can lock; an OR of both sorts every task of the type and locks them all.
            # Due paused tasks first: under a steady flow of new tasks
            # they would otherwise never be resumed.
            row = None
            for status_condition in claimable_conditions():
                cursor.execute(
                    f"SELECT id, status FROM tasks WHERE {' AND '.join([*conditions, status_condition])}"
                    " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                    params,
                )
                row = cursor.fetchone()
                if row is not None:
                    break
            if row is None:
                return None
            account = self.accounts.take_idle_account(
                cursor, PURPOSE[task_type], need_quota=task_type == "export", task_id=row["id"], worker=self.worker_id
            )
            if account is None:
                return None
            cursor.execute(
                "UPDATE tasks SET status = 'in_progress', claimed_by = %s, lease_token = %s,"
                " lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND, heartbeat_at = UTC_TIMESTAMP(6),"
                " assigned_account_id = %s, not_before = NULL, dispatch_job = NULL, dispatch_node = NULL,"
                " dispatched_at = NULL WHERE id = %s",
                (self.worker_id, token, self._lease_us(), account.id, row["id"]),
            )
            record_event(cursor, "task", row["id"], "claimed", from_status=row["status"], to_status="in_progress",
                         task_id=row["id"], account_id=account.id, worker=self.worker_id,
                         reason=f"account {account.username}")
            cursor.execute(
                "UPDATE tasks SET status = 'in_progress' WHERE id = (SELECT parent_id FROM tasks WHERE id = %s)"
                " AND status = 'pending'",
                (row["id"],),
            )
            return Claim(self.get(row["id"], cursor=cursor), token, account.id, self.worker_id or "")

        # READ COMMITTED: the SKIP LOCKED scans then lock the one row they return and no gaps in
        # ix_tasks_claim; under REPEATABLE READ their gap locks and the status change of the
        # claimed row (an index insert) deadlock concurrent claimers.
        self._unsettled_token = token  # until the transaction's outcome is known
        claimed = run_transaction(self.conn, claim, isolation="READ COMMITTED")
        if claimed is None and not recovered and self.recover():
            claimed = run_transaction(self.conn, claim, isolation="READ COMMITTED")
        self._unsettled_token = None
        if claimed:
            logger.info("claimed task %s (%s %s) with account %s", claimed.task_id, task_type,
                        claimed.task.domain, claimed.account_id,
                        extra={"task_id": claimed.task_id, "account_id": claimed.account_id})
        return claimed

    def _settle_unanswered_claim(self, token: str) -> Claim | None:
        """The claim whose COMMIT the connection lost may have been made: if a task holds its
        lease token, it is this worker's (it would otherwise stay in progress, held by a live
        worker, until its lease ran out): returned as this claim."""
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT id, assigned_account_id FROM tasks WHERE lease_token = %s AND claimed_by = %s"
                           " AND status = 'in_progress'", (token, self.worker_id))
            row = cursor.fetchone()
            self.conn.commit()
        self._unsettled_token = None
        if row is None:
            return None
        logger.info("claimed task %s with account %s (the claim's commit was not answered; it had been made)",
                    row["id"], row["assigned_account_id"],
                    extra={"task_id": row["id"], "account_id": row["assigned_account_id"]})
        return Claim(self.get(row["id"]), token, row["assigned_account_id"], self.worker_id or "")

    def heartbeat(self, claim: Claim) -> bool:
        """Extend the lease; False means the claim is lost and the worker must stop."""

        def beat(cursor: Any) -> bool:
            cursor.execute(
                "UPDATE tasks SET lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND,"
                " heartbeat_at = UTC_TIMESTAMP(6) WHERE id = %s AND lease_token = %s AND status = 'in_progress'",
                (self._lease_us(), claim.task_id, claim.lease_token),
            )
            return cursor.rowcount == 1

        if self.worker:
            self.worker.ensure_alive()
        return run_transaction(self.conn, beat)

    def check_claim(self, cursor: Any, claim: Claim) -> int | None:
        """`fence`; returns the task's last account (``assigned_account_id``)."""
        return fence(cursor, claim).account_id

    def set_progress(self, cursor: Any, claim: Claim, marker: str, *, exported: int | None = None) -> None:
        """`fence`, then `move_marker`, in the caller's transaction."""
        fence(cursor, claim)
        move_marker(cursor, claim, marker, exported=exported)

    def note(self, claim: Claim, event: str, reason: str) -> None:
        """Record something that happened to a claimed task without changing its state (a cursor
        platform's listing restarted), in the task's history."""
        def note(cursor: Any) -> None:
            record_event(cursor, "task", claim.task_id, event, task_id=claim.task_id, account_id=claim.account_id,
                         worker=claim.worker_id, reason=reason)

        run_transaction(self.conn, note)

    # -- finishing -----------------------------------------------------------------------------

    def complete(self, claim: Claim, reason: str | None = None) -> None:
        self._finish(claim, "completed", "completed", reason)

    def fail(self, claim: Claim, reason: str) -> None:
        self._finish(claim, "failed", "failed", reason)

    def release(self, claim: Claim, reason: str = "worker stopped") -> None:
        """Give the task back untouched (shutdown): pending again, no attempt counted."""
        self._finish(claim, "pending", "released", reason)

    def pause(self, claim: Claim, marker: str | None, reason: str, *, resume_after: float | None = 0,
              count_attempt: bool = False) -> None:
        """Pause with the marker to resume from; `resume_after` seconds until it is claimable
        again by itself (None: only an operator's `resume` restarts it).

        `count_attempt` is for pauses caused by the task itself (pages that keep failing): such a
        round counts like a lost worker, and the task fails once `max_attempts` rounds made no
        progress, instead of being retried forever.
        """
        self._finish(claim, "paused", "paused", reason, marker=marker, resume_after=resume_after,
                     count_attempt=count_attempt)

    def _finish(self, claim: Claim, status: str, event: str, reason: str | None, *, marker: str | None = None,
                resume_after: float | None = None, count_attempt: bool = False) -> None:
        def finish(cursor: Any) -> None:
            last_account = self.check_claim(cursor, claim)
            nonlocal status, event, reason
            if count_attempt:
                cursor.execute("UPDATE tasks SET attempts = attempts + 1 WHERE id = %s", (claim.task_id,))
                cursor.execute("SELECT attempts, max_attempts FROM tasks WHERE id = %s", (claim.task_id,))
                row = cursor.fetchone()
                if row["attempts"] >= row["max_attempts"]:
                    status, event = "failed", "failed"
                    reason = f"{reason}; failed after {row['attempts']} rounds without progress"
            not_before = "UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND" if resume_after is not None else "NULL"
            params: list[Any] = []
            if resume_after is not None:
                params.append(int(resume_after * 1_000_000))
            cursor.execute(
                f"UPDATE tasks SET status = %s, {CLEAR_CLAIM},"
                f" not_before = {not_before}, progress_marker = COALESCE(%s, progress_marker),"
                f" last_error = CASE WHEN %s IN ('failed', 'paused') THEN %s WHEN %s = 'completed' THEN NULL"
                f" ELSE last_error END WHERE id = %s",
                (status, *params, marker, status, reason, status, claim.task_id),
            )
            # A task that handed its account back holds none now; its end names the one it used.
            record_event(cursor, "task", claim.task_id, event, from_status="in_progress", to_status=status,
                         task_id=claim.task_id, account_id=claim.account_id or last_account, worker=claim.worker_id,
                         reason=reason)
            self.accounts.release(cursor, claim.account_id, claim.task_id, claim.worker_id)

        run_transaction(self.conn, finish)
        self._update_parent(claim.task.parent_id)
        logger.info("task %s %s%s", claim.task_id, event, f": {reason}" if reason else "",
                    extra={"task_id": claim.task_id, "account_id": claim.account_id})

    def switch_account(self, claim: Claim, reason: str, *, exclude: tuple[int, ...] = (),
                       at_marker: str | None = None) -> Claim | None:
        """The account relay: hand the task to the next ready account (with quota left, for an
        export) in one transaction; None if there is none. Both the crawl (a banned or capped
        account) and the exporter (a spent quota) switch through here.

        The current account goes back to the pool unless it was disabled or cooled down on the
        way here; the claim (its fence token) stays, so nothing in flight for it is lost. With
        None, the caller still holds the claim (without an account) and pauses the task.

        The history records an ``account_switched`` event; a relay ``at_marker`` (the exporter's
        hand-over exactly where the last account stopped) reads as the seed describes it: the task
        ``paused`` at the marker by one account and ``claimed`` by the next, and with no account
        left, nothing yet (the caller's pause is the last word).
        """
        purpose = PURPOSE[claim.task.task_type]

        def switch(cursor: Any) -> Claim | None:
            fence(cursor, claim)
            self.accounts.release(cursor, claim.account_id, claim.task_id, claim.worker_id)
            excluded = tuple(a for a in (*exclude, claim.account_id) if a is not None)
            account = self.accounts.take_idle_account(
                cursor, purpose, need_quota=purpose == "exporting", exclude=excluded,
                task_id=claim.task_id, worker=claim.worker_id,
            )
            new_id = account.id if account else None
            if at_marker is not None:
                if account is None:
                    return None
                record_event(cursor, "task", claim.task_id, "paused", from_status="in_progress", to_status="paused",
                             task_id=claim.task_id, account_id=claim.account_id, worker=claim.worker_id,
                             reason=f"{reason} at {at_marker}")
                record_event(cursor, "task", claim.task_id, "claimed", from_status="paused", to_status="in_progress",
                             task_id=claim.task_id, account_id=new_id, worker=claim.worker_id,
                             reason=f"account {account.username} (relay)")
            else:
                record_event(cursor, "task", claim.task_id, "account_switched", from_status="in_progress",
                             to_status="in_progress", task_id=claim.task_id, account_id=new_id, worker=claim.worker_id,
                             reason=f"{reason}; account {claim.account_id} -> "
                                    + (account.username if account else "none left"))
            cursor.execute("UPDATE tasks SET assigned_account_id = COALESCE(%s, assigned_account_id) WHERE id = %s",
                           (new_id, claim.task_id))
            return replace(claim, account_id=new_id) if account else None

        return run_transaction(self.conn, switch)

    def hand_back_account(self, claim: Claim) -> Claim:
        """Return the account to the pool while the task still holds its claim: an ingestion task
        whose pages are all fetched only waits for its last writes, and its account can serve the
        next task meanwhile. The claim returned has no account; ending it frees nothing."""

        def hand_back(cursor: Any) -> None:
            fence(cursor, claim)
            self.accounts.release(cursor, claim.account_id, claim.task_id, claim.worker_id)

        run_transaction(self.conn, hand_back)
        return replace(claim, account_id=None)

    # -- operators -----------------------------------------------------------------------------

    def pause_task(self, task_id: int, reason: str = "paused by operator") -> None:
        """Stop a task until `resume_task`; a worker running it loses its claim at its next write."""

        def pause(cursor: Any) -> None:
            task = self._locked(cursor, task_id)
            if task.is_parent:
                cursor.execute("SELECT id FROM tasks WHERE parent_id = %s AND status IN ('pending', 'in_progress', 'paused')",
                               (task_id,))
                for child in cursor.fetchall():
                    self._pause_one(cursor, self._locked(cursor, child["id"]), reason)
                return
            if task.status not in ("pending", "in_progress", "paused"):
                raise InvalidTransition(f"task {task_id} is {task.status}; only pending or running tasks can be paused")
            self._pause_one(cursor, task, reason)

        run_transaction(self.conn, pause)

    def _pause_one(self, cursor: Any, task: Task, reason: str) -> None:
        cursor.execute(f"UPDATE tasks SET status = 'paused', not_before = NULL, {CLEAR_CLAIM}, last_error = %s"
                       " WHERE id = %s", (reason, task.id))
        record_event(cursor, "task", task.id, "paused", from_status=task.status, to_status="paused", task_id=task.id,
                     account_id=task.assigned_account_id, reason=reason)
        if task.status == "in_progress":
            self.accounts.release(cursor, task.assigned_account_id, task.id, None)

    def resume_task(self, task_id: int, reason: str = "resumed by operator") -> None:
        def resume(cursor: Any) -> None:
            task = self._locked(cursor, task_id)
            ids = [task_id]
            if task.is_parent:
                cursor.execute("SELECT id FROM tasks WHERE parent_id = %s AND status = 'paused'", (task_id,))
                ids = [row["id"] for row in cursor.fetchall()]
            elif task.status != "paused":
                raise InvalidTransition(f"task {task_id} is {task.status}; only paused tasks can be resumed")
            for one in ids:
                cursor.execute(f"UPDATE tasks SET status = 'pending', not_before = NULL, {CLEAR_CLAIM} WHERE id = %s",
                               (one,))
                record_event(cursor, "task", one, "resumed", from_status="paused", to_status="pending", task_id=one,
                             reason=reason)

        run_transaction(self.conn, resume)

    def _locked(self, cursor: Any, task_id: int) -> Task:
        cursor.execute(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
        row = cursor.fetchone()
        if row is None:
            raise TaskNotFound(f"no task with id {task_id}")
        return task_from_row(row)

    # -- helpers -------------------------------------------------------------------------------

    def _lease_us(self) -> int:
        return int(self.lease_seconds * 1_000_000)

    def _update_parent(self, parent_id: int | None) -> None:
        """A start_crawl job is completed when all its subtasks are, failed when all ended and one failed.

        Its own transaction after the subtask's commit: the parent row lock serialises siblings
        finishing together, and the count that follows sees every sibling that committed before,
        so the last one to finish always closes the parent.
        """
        if parent_id is None:
            return

        def update(cursor: Any) -> None:
            cursor.execute("SELECT status FROM tasks WHERE id = %s FOR UPDATE", (parent_id,))
            cursor.execute(
                "SELECT SUM(status = 'completed') AS done, SUM(status = 'failed') AS failed, COUNT(*) AS total"
                " FROM tasks WHERE parent_id = %s",
                (parent_id,),
            )
            row = cursor.fetchone()
            done, failed, total = int(row["done"] or 0), int(row["failed"] or 0), int(row["total"])
            status = "completed" if done == total else "failed" if done + failed == total else None
            if status:
                cursor.execute("UPDATE tasks SET status = %s WHERE id = %s AND status <> %s", (status, parent_id, status))
                if cursor.rowcount:
                    record_event(cursor, "task", parent_id, status, to_status=status, task_id=parent_id,
                                 reason=f"{done} of {total} subtasks completed")

        run_transaction(self.conn, update)
