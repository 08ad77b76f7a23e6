"""The few reads the ingestion service makes itself (claims and finishing go through TaskScheduler)."""

from __future__ import annotations

from typing import Any


def committed_pages(conn: Any, task_id: int) -> set[int]:
    with conn.cursor() as cursor:
        cursor.execute("SELECT page_number FROM ingestion_logs WHERE task_id = %s", (task_id,))
        pages = {row["page_number"] for row in cursor.fetchall()}
    conn.commit()
    return pages

