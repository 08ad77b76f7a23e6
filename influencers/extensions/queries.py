"""The few reads the ingestion service makes itself (claims and finishing go through TaskScheduler)."""

from __future__ import annotations

from typing import Any


def committed_pages(conn: Any, task_id: int) -> set[int]:
    with conn.cursor() as cursor:
        cursor.execute("SELECT page_number FROM ingestion_logs WHERE task_id = %s", (task_id,))
        pages = {row["page_number"] for row in cursor.fetchall()}
    conn.commit()
    return pages


def seconds_until_an_account_now(conn: Any) -> float | None:
    with conn.cursor() as cursor:
        wait = seconds_until_an_account(cursor)
    conn.commit()
    return wait


def seconds_until_an_account(cursor: Any) -> float | None:
    """Seconds until some account may be idle again: 0 if one is idle now, the end of the
    earliest cool-down, a poll interval if all usable ones are busy; None if all are disabled."""
    cursor.execute(
        "SELECT SUM(status = 'idle' AND (cooldown_until IS NULL OR cooldown_until <= UTC_TIMESTAMP(6))) AS ready,"
        " MIN(IF(status = 'idle' AND cooldown_until > UTC_TIMESTAMP(6),"
        "        TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), cooldown_until), NULL)) AS cooling_us,"
        " SUM(status IN ('ingesting', 'exporting')) AS busy FROM accounts"
    )
    row = cursor.fetchone()
    if row["ready"]:
        return 0.0
    if row["cooling_us"] is not None:
        return float(row["cooling_us"]) / 1_000_000
    if row["busy"]:
        return 30.0
    return None

