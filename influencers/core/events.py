"""The event table: every task and account state change with its reason.

Written inside the same transaction as the change it describes, so the history never claims
something that was rolled back.
"""

from __future__ import annotations

from typing import Any

INSERT_EVENT = (
    "INSERT INTO events (entity, entity_id, event, from_status, to_status, task_id, account_id, worker, reason)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def record_event(
    cursor: Any,
    entity: str,
    entity_id: int,
    event: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    task_id: int | None = None,
    account_id: int | None = None,
    worker: str | None = None,
    reason: str | None = None,
) -> None:
    cursor.execute(
        INSERT_EVENT,
        (entity, entity_id, event, from_status, to_status, task_id, account_id, worker, reason[:1024] if reason else None),
    )


def task_events(cursor: Any, task_id: int) -> list[dict[str, Any]]:
    """A task's history, oldest first, including the account changes made on its behalf."""
    cursor.execute(
        "SELECT id, created_at, entity, entity_id, event, from_status, to_status, task_id, account_id, worker, reason"
        " FROM events WHERE (entity = 'task' AND entity_id = %s) OR task_id = %s ORDER BY id",
        (task_id, task_id),
    )
    return list(cursor.fetchall())
