"""The dispatcher's record in the ``tasks`` table: which subtask is out to which Scrapyd job.

Recorded before the job is scheduled, under the subtask's row lock, so two dispatchers never send
one subtask twice; a claim, recovery, release, pause or resume clears it (`model.CLEAR_CLAIM`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from influencers.core.events import record_event
from influencers.core.tasks.model import claimable_sql

#: A subtask a worker could claim now, as `TaskScheduler.claim` sees it (the dispatcher's candidates).
_DISPATCHABLE = f"t.task_type = 'ingestion' AND NOT t.is_parent AND t.parent_id IS NOT NULL AND {claimable_sql('t')}"


@dataclass(frozen=True)
class Dispatch:
    """A subtask out on dispatch: handed to a Scrapyd job that has not claimed it yet."""

    task_id: int
    job_id: str
    node_url: str
    age: float  # seconds since the handing-over, by the database clock


def outstanding_dispatches(cursor: Any) -> list[Dispatch]:
    """Subtasks handed to a job that has not claimed them (a claim, recovery, release, pause or
    resume ends a dispatch: they clear the columns)."""
    cursor.execute(
        "SELECT id, dispatch_job, dispatch_node,"
        " TIMESTAMPDIFF(MICROSECOND, dispatched_at, UTC_TIMESTAMP(6)) / 1000000 AS age FROM tasks"
        " WHERE dispatch_job IS NOT NULL AND task_type = 'ingestion' AND NOT is_parent"
        " AND status IN ('pending', 'paused') ORDER BY id"
    )
    return [Dispatch(row["id"], row["dispatch_job"], row["dispatch_node"], float(row["age"] or 0))
            for row in cursor.fetchall()]


def dispatch_candidates(cursor: Any, limit: int) -> list[int]:
    """Claimable subtasks not out on dispatch, oldest first (a plain read: no locks)."""
    cursor.execute(f"SELECT t.id FROM tasks t WHERE {_DISPATCHABLE} AND t.dispatch_job IS NULL ORDER BY t.id LIMIT %s",
                   (limit,))
    return [row["id"] for row in cursor.fetchall()]


def record_dispatch(cursor: Any, task_id: int, job_id: str, node_url: str, actor: str, reason: str) -> Dispatch | None:
    """Record the handing-over under the subtask's row lock, before the job is scheduled; None if
    it is no longer claimable or already out (so two dispatchers never send one subtask twice)."""
    cursor.execute(f"SELECT t.id, t.status FROM tasks t WHERE t.id = %s AND {_DISPATCHABLE}"
                   " AND t.dispatch_job IS NULL FOR UPDATE", (task_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    cursor.execute("UPDATE tasks SET dispatch_job = %s, dispatch_node = %s, dispatched_at = UTC_TIMESTAMP(6)"
                   " WHERE id = %s", (job_id, node_url[:255], task_id))
    record_event(cursor, "task", task_id, "dispatched", from_status=row["status"], to_status=row["status"],
                 task_id=task_id, worker=actor, reason=reason)
    return Dispatch(task_id, job_id, node_url, 0.0)


def withdraw_dispatch(cursor: Any, dispatch: Dispatch, actor: str, reason: str) -> bool:
    """End a dispatch if it is still the subtask's current one (not claimed, not sent again)."""
    cursor.execute("SELECT status FROM tasks WHERE id = %s AND dispatch_job = %s FOR UPDATE",
                   (dispatch.task_id, dispatch.job_id))
    row = cursor.fetchone()
    if row is None:
        return False
    cursor.execute("UPDATE tasks SET dispatch_job = NULL, dispatch_node = NULL, dispatched_at = NULL WHERE id = %s",
                   (dispatch.task_id,))
    record_event(cursor, "task", dispatch.task_id, "undispatched", from_status=row["status"], to_status=row["status"],
                 task_id=dispatch.task_id, worker=actor, reason=reason)
    return True
