"""The queries behind `status` and `report`: what operators ask every day.

Plain SELECTs over the tables the services write; nothing here changes state.
"""

from __future__ import annotations

from typing import Any

from pymysql.connections import Connection

from influencers.accounts import AccountManager


def _rows(conn: Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = list(cursor.fetchall())
    conn.commit()
    return rows


def task_counts(conn: Connection) -> list[dict[str, Any]]:
    """Subtasks (what workers claim) by type and state."""
    return _rows(
        conn,
        "SELECT task_type, status, COUNT(*) AS tasks FROM tasks WHERE NOT is_parent"
        " GROUP BY task_type, status ORDER BY task_type, FIELD(status, 'in_progress', 'pending', 'paused', 'failed', 'completed')",
    )


def task_progress(conn: Connection, *, include_finished: int = 10) -> list[dict[str, Any]]:
    """Unfinished tasks and the most recent finished ones, with their progress.

    Ingestion progress is pages committed (one ingestion log per page) over the page range;
    export progress is rows exported by the task and rows of its domain still pending.
    """
    return _rows(
        conn,
        "SELECT t.id, t.task_type, t.domain, t.status, t.parent_id, t.is_parent, t.progress_marker,"
        " t.page_from, t.page_to, t.exported_count, t.export_limit, t.attempts, t.last_error,"
        " a.username AS account,"
        " CASE WHEN t.task_type = 'ingestion' THEN"
        "   (SELECT COUNT(*) FROM ingestion_logs l WHERE l.task_id = t.id"
        "      OR l.task_id IN (SELECT c.id FROM tasks c WHERE c.parent_id = t.id)) END AS pages_done,"
        " CASE WHEN t.task_type = 'ingestion' AND t.page_to IS NOT NULL THEN t.page_to - t.page_from + 1 END AS pages_total,"
        " CASE WHEN t.task_type = 'export' THEN"
        "   (SELECT COUNT(*) FROM influencers i WHERE i.domain = t.domain AND i.status = 'pending_export') END AS rows_pending"
        " FROM tasks t LEFT JOIN accounts a ON a.id = t.assigned_account_id"
        " WHERE t.status <> 'completed' OR t.id IN (SELECT id FROM (SELECT id FROM tasks WHERE status = 'completed'"
        "   ORDER BY updated_at DESC, id DESC LIMIT %s) recent)"
        " ORDER BY t.id",
        (include_finished,),
    )


def backlog(conn: Connection, accounts: AccountManager) -> list[dict[str, Any]]:
    """Pending rows per domain and the days of quota they need at the usable accounts' limits."""
    daily = sum(a.daily_export_limit for a in accounts.list() if a.status != "disabled")
    rows = _rows(
        conn,
        "SELECT domain, COUNT(*) AS pending FROM influencers WHERE status = 'pending_export' GROUP BY domain ORDER BY domain",
    )
    for row in rows:
        row["daily_quota"] = daily
        row["days_needed"] = None if daily == 0 else -(-row["pending"] // daily)
    return rows
