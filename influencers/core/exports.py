"""The owner of the ``export_logs`` table: one row per export batch, i.e. per file.

A batch is ``reserved`` (its rows, file name and quota decided) and then ``published`` (its file
complete and its rows exported); the protocol that moves it is `exporter.batches`. Every
statement on the table and both state words are here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESERVED = "reserved"
PUBLISHED = "published"
_COLUMNS = (
    "id, task_id, account_id, domain, exported_count, file_path, state, quota_date, first_id, last_id, export_format"
)


@dataclass(frozen=True)
class Batch:
    id: int
    task_id: int
    account_id: int
    domain: str
    count: int
    file_path: Path
    quota_date: dt.date
    first_id: int
    last_id: int
    fmt: str
    quota_left: int | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Batch:
        return cls(
            id=row["id"], task_id=row["task_id"], account_id=row["account_id"], domain=row["domain"],
            count=row["exported_count"], file_path=Path(row["file_path"]), quota_date=row["quota_date"],
            first_id=row["first_id"], last_id=row["last_id"], fmt=row["export_format"],
        )


def next_part(cursor: Any, task_id: int) -> int:
    """The sequence number of the task's next file (under the task's row lock: no two alike)."""
    cursor.execute("SELECT COUNT(*) AS parts FROM export_logs WHERE task_id = %s", (task_id,))
    return int(cursor.fetchone()["parts"]) + 1


def insert_reserved(cursor: Any, *, task_id: int, account_id: int, domain: str, count: int, file_path: str,
                    quota_date: dt.date, first_id: int, last_id: int, fmt: str) -> int:
    """Record a reserved batch; returns its id."""
    cursor.execute(
        "INSERT INTO export_logs (task_id, account_id, domain, exported_count, file_path, start_time, state,"
        " quota_date, first_id, last_id, export_format)"
        " VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(), 'reserved', %s, %s, %s, %s)",
        (task_id, account_id, domain, count, file_path, quota_date, first_id, last_id, fmt),
    )
    return int(cursor.lastrowid)


def mark_published(cursor: Any, batch_id: int) -> bool:
    """Publish a reserved batch; False if it was not reserved (another process published it)."""
    return cursor.execute(
        "UPDATE export_logs SET state = 'published', end_time = UTC_TIMESTAMP() WHERE id = %s AND state = 'reserved'",
        (batch_id,),
    ) == 1


def orphaned(cursor: Any, task_id: int | None = None) -> list[int]:
    """Reserved batches no live worker is publishing: of tasks not in progress, and of ``task_id``
    (a task this process has just claimed: its previous holder is gone)."""
    cursor.execute(
        "SELECT e.id FROM export_logs e JOIN tasks t ON t.id = e.task_id"
        " WHERE e.state = 'reserved' AND (t.status <> 'in_progress' OR t.id = %s) ORDER BY e.id",
        (task_id or 0,),
    )
    return [row["id"] for row in cursor.fetchall()]


def lock_reserved(cursor: Any, batch_id: int) -> Batch | None:
    """The batch, locked for re-publishing; None if it is finished or another process has it."""
    cursor.execute(f"SELECT {_COLUMNS} FROM export_logs WHERE id = %s AND state = 'reserved' FOR UPDATE SKIP LOCKED",
                   (batch_id,))
    row = cursor.fetchone()
    return Batch.from_row(row) if row else None


def is_reserved_path(cursor: Any, file_path: str) -> bool:
    """Whether a reserved batch is still to be published to ``file_path``."""
    cursor.execute("SELECT 1 FROM export_logs WHERE file_path = %s AND state = 'reserved' LIMIT 1", (file_path,))
    return cursor.fetchone() is not None


def state(cursor: Any, batch_id: int) -> str | None:
    cursor.execute("SELECT state FROM export_logs WHERE id = %s", (batch_id,))
    row = cursor.fetchone()
    return row["state"] if row else None


def count_reserved(cursor: Any) -> int:
    cursor.execute("SELECT COUNT(*) AS n FROM export_logs WHERE state = 'reserved'")
    return int(cursor.fetchone()["n"])
