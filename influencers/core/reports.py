"""The queries behind `status`, `report` and the dashboard's charts: what operators ask every day.

Plain SELECTs over the tables the services write; nothing here changes state.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymysql.connections import Connection

from influencers.core import counts
from influencers.core.accounts import AccountManager
from influencers.core.quotaday import QuotaDay


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


#: Unfinished tasks `status` lists at most (the counts by state cover the rest).
UNFINISHED_LISTED = 50


def task_progress(conn: Connection, *, include_finished: int = 10,
                  unfinished: int = UNFINISHED_LISTED) -> list[dict[str, Any]]:
    """The first ``unfinished`` unfinished tasks and the ``include_finished`` most recently
    finished ones, with their progress; bounded, whatever the number of tasks.

    Ingestion progress is pages committed (one ingestion log per page) over the page range;
    export progress is rows exported by the task and rows of its domain still pending (the kept
    domain counts, `influencers.core.counts`; for a filtered export, an upper bound).
    """
    return _rows(
        conn,
        "SELECT t.id, t.task_type, t.domain, t.status, t.parent_id, t.is_parent, t.progress_marker,"
        " t.page_from, t.page_to, t.exported_count, t.export_limit, t.export_filter, t.attempts, t.last_error,"
        " a.username AS account,"
        " CASE WHEN t.task_type = 'ingestion' THEN"
        "   (SELECT COUNT(*) FROM ingestion_logs l WHERE l.task_id = t.id)"
        "   + (SELECT COUNT(*) FROM tasks c JOIN ingestion_logs l ON l.task_id = c.id WHERE c.parent_id = t.id)"
        " END AS pages_done,"
        " CASE WHEN t.task_type = 'ingestion' AND t.page_to IS NOT NULL THEN t.page_to - t.page_from + 1 END AS pages_total,"
        " CASE WHEN t.task_type = 'export' THEN"
        "   (SELECT COALESCE(SUM(dc.pending), 0) FROM domain_counts dc WHERE dc.domain = t.domain) END AS rows_pending"
        " FROM ((SELECT id FROM tasks WHERE status IN ('in_progress', 'pending', 'paused', 'failed') ORDER BY id LIMIT %s)"
        "   UNION (SELECT id FROM tasks WHERE status = 'completed' ORDER BY updated_at DESC, id DESC LIMIT %s)) listed"
        " JOIN tasks t ON t.id = listed.id LEFT JOIN accounts a ON a.id = t.assigned_account_id"
        " ORDER BY t.id",
        (unfinished, include_finished),
    )


def backlog(conn: Connection, accounts: AccountManager) -> list[dict[str, Any]]:
    """Pending rows per domain and the days of quota they need at the usable accounts' limits."""
    daily = sum(a.daily_export_limit for a in accounts.list() if a.status != "disabled")
    rows = [{"domain": domain, "pending": pending} for domain, pending in counts.pending_by_domain(conn).items()]
    for row in rows:
        row["daily_quota"] = daily
        row["days_needed"] = None if daily == 0 else -(-row["pending"] // daily)
    return rows


def local_day_bounds(day: date | None, quota_day: QuotaDay) -> tuple[datetime, datetime, date]:
    """The UTC interval [start, end) of a local calendar day, 23 or 25 hours on a DST change.

    Today's when `day` is None, by this process's clock: a report only names a day, and the
    figures for that day are exact whichever clock chose it.
    """
    if day is None:
        day = quota_day.today()
    start, end = quota_day.day_bounds(day)
    return start, end, day


def to_local(value: Any, quota_day: QuotaDay) -> Any:
    """A stored (UTC, naive) datetime as local wall time in the zone; anything else unchanged."""
    return quota_day.local_time(value) if isinstance(value, datetime) else value


def _localised(rows: list[dict[str, Any]], quota_day: QuotaDay, *keys: str) -> list[dict[str, Any]]:
    return [{**row, **{key: to_local(row.get(key), quota_day) for key in keys}} for row in rows]


def _filters(alias: str, domain: str | None, account: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if domain:
        clauses.append(f"{alias}.domain = %s")
        params.append(domain)
    if account:
        if account.isascii() and account.isdecimal():
            clauses.append("(a.username = %s OR a.id = %s)")
            params.extend([account, int(account)])
        else:
            clauses.append("a.username = %s")
            params.append(account)
    return "".join(f" AND {clause}" for clause in clauses), params


def ingestion_report(
    conn: Connection, *, quota_day: QuotaDay, day: date | None = None, domain: str | None = None,
    account: str | None = None, details: bool = False,
) -> list[dict[str, Any]]:
    """什么类型的达人今天哪个账号入库了多少个: per domain and account, or per page with `details`.

    Counted from `ingestion_logs` (one row per committed page). Times are local. With
    `details`, each page lists the nicknames whose latest crawl was that page.
    """
    start, end, _ = local_day_bounds(day, quota_day)
    where, params = _filters("l", domain, account)
    if details:
        return _localised(_rows(
            conn,
            "SELECT l.domain, a.username AS account, l.task_id, l.page_number,"
            " l.ingested_count AS influencers, l.start_time, l.end_time,"
            " (SELECT GROUP_CONCAT(i.nickname ORDER BY i.id SEPARATOR ' | ') FROM influencers i"
            "   WHERE i.ingestion_log_id = l.id) AS nicknames"
            " FROM ingestion_logs l LEFT JOIN accounts a ON a.id = l.account_id"
            f" WHERE l.start_time >= %s AND l.start_time < %s{where}"
            " ORDER BY l.domain, account, l.start_time, l.page_number",
            (start, end, *params),
        ), quota_day, "start_time", "end_time")
    return _localised(_rows(
        conn,
        "SELECT l.domain, a.username AS account, SUM(l.ingested_count) AS influencers, COUNT(*) AS pages,"
        " MIN(l.page_number) AS first_page, MAX(l.page_number) AS last_page,"
        " MIN(l.start_time) AS first_time, MAX(l.end_time) AS last_time"
        " FROM ingestion_logs l LEFT JOIN accounts a ON a.id = l.account_id"
        f" WHERE l.start_time >= %s AND l.start_time < %s{where}"
        " GROUP BY l.domain, a.username ORDER BY l.domain, account",
        (start, end, *params),
    ), quota_day, "first_time", "last_time")


def export_report(
    conn: Connection, *, quota_day: QuotaDay, day: date | None = None, domain: str | None = None,
    account: str | None = None,
) -> list[dict[str, Any]]:
    """账号一导出了4000个什么类型的达人: rows and files per account and domain.

    Counts finished (published) files only; a batch still being written is not an export yet.
    """
    start, end, _ = local_day_bounds(day, quota_day)
    where, params = _filters("e", domain, account)
    return _localised(_rows(
        conn,
        "SELECT a.username AS account, e.domain, SUM(e.exported_count) AS rows_exported, COUNT(*) AS files,"
        " MIN(e.start_time) AS first_time, MAX(e.end_time) AS last_time,"
        " GROUP_CONCAT(e.file_path ORDER BY e.id SEPARATOR '\n') AS paths"
        " FROM export_logs e JOIN accounts a ON a.id = e.account_id"
        f" WHERE e.state = 'published' AND e.start_time >= %s AND e.start_time < %s{where}"
        " GROUP BY a.username, e.domain ORDER BY account, e.domain",
        (start, end, *params),
    ), quota_day, "first_time", "last_time")


# -- the dashboard's activity charts ------------------------------------------------------------

#: Days the activity charts cover; the hourly chart covers as many hours (24 each).
ACTIVITY_DAYS = 7
ACTIVITY_HOURS = 24 * ACTIVITY_DAYS
_HOUR = timedelta(hours=1)
#: Pages per hour from a window's start; parameters: (start, start, end). The index
#: ix_ingestion_logs_day (start_time, domain, account_id) covers it: a range scan, no table rows.
#: TIMESTAMPDIFF(HOUR) counts whole hours (UTC DATETIMEs, no zone arithmetic in SQL): a quarter
#: cheaper than FLOOR over seconds.
PAGES_PER_HOUR_SQL = (
    "SELECT TIMESTAMPDIFF(HOUR, %s, start_time) AS bucket, COUNT(*) AS pages"
    " FROM ingestion_logs FORCE INDEX (ix_ingestion_logs_day)"
    " WHERE start_time >= %s AND start_time < %s GROUP BY bucket ORDER BY NULL"
)


def activity_window(quota_day: QuotaDay, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The naive UTC interval [start, end) of the ACTIVITY_HOURS hours that end with the current local hour.

    The current local hour starts where the local clock last read HH:00, which is not a UTC hour
    boundary in a zone like Asia/Kolkata (+05:30); the hours before it are 3600 s each, so a
    day-light saving change shows as a repeated or a missing hour label, never a 2-hour bucket.
    """
    moment = now or quota_day.clock()  # a naive `now` is UTC, like the DATETIME columns
    instant = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    local = instant.astimezone(quota_day.zone)
    hour_start = instant - timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
    end = hour_start.replace(tzinfo=None) + _HOUR
    return end - ACTIVITY_HOURS * _HOUR, end


def pages_per_hour(conn: Connection, quota_day: QuotaDay, now: datetime | None = None) -> list[dict[str, Any]]:
    """Pages committed (ingestion_logs rows, by start time) in each hour of `activity_window`,
    oldest first, every hour present (0 when idle): ``{"start": naive UTC, "pages": n}``.

    One range scan of an index that covers the count (`PAGES_PER_HOUR_SQL`), so the cost follows
    the pages of the last 7 days, not the table, and no row of `influencers` is read.
    """
    start, end = activity_window(quota_day, now)
    counted = _rows(conn, PAGES_PER_HOUR_SQL, (start, start, end))
    pages = {int(row["bucket"]): int(row["pages"]) for row in counted}
    return [{"start": start + n * _HOUR, "pages": pages.get(n, 0)} for n in range(ACTIVITY_HOURS)]


def exports_per_day(conn: Connection, quota_day: QuotaDay, now: datetime | None = None) -> list[dict[str, Any]]:
    """Rows and files exported (published batches, by start time, as `report export` counts them)
    on each of the ACTIVITY_DAYS local days ending today, oldest first, zeros included.

    Each day's bounds come from `QuotaDay.day_bounds` (23 or 25 hours on a DST change); one range
    scan of ix_export_logs_day sorts the batches into them with a CASE over those bounds.
    """
    today = quota_day.local_date(now or quota_day.clock())
    days = [today - timedelta(days=back) for back in range(ACTIVITY_DAYS - 1, -1, -1)]
    bounds = [quota_day.day_bounds(day)[0] for day in days] + [quota_day.day_bounds(today)[1]]
    bucket = "CASE" + "".join(f" WHEN start_time < %s THEN {n}" for n in range(ACTIVITY_DAYS)) + " END"
    counted = _rows(
        conn,
        f"SELECT {bucket} AS bucket, SUM(exported_count) AS rows_exported, COUNT(*) AS files"
        " FROM export_logs WHERE state = 'published' AND start_time >= %s AND start_time < %s GROUP BY bucket",
        (*bounds[1:], bounds[0], bounds[-1]),
    )
    by_day = {int(row["bucket"]): row for row in counted}
    return [{"date": day, "rows_exported": int(by_day[n]["rows_exported"]) if n in by_day else 0,
             "files": int(by_day[n]["files"]) if n in by_day else 0} for n, day in enumerate(days)]
