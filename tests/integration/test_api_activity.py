"""The dashboard's activity charts (`GET /api/v1/reports/activity`, `reports.pages_per_hour`,
`reports.exports_per_day`) against the real database, with rows placed in known hours and days:
on both sides of the window's edges and of a local midnight, in a zone with daylight saving, and
with a quota count of yesterday that must read as 0 today.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from influencers.core import reports
from influencers.core.quotaday import TODAY_SQL, QuotaDay

SHANGHAI = QuotaDay(ZoneInfo("Asia/Shanghai"))
NEW_YORK = QuotaDay(ZoneInfo("America/New_York"))
HOUR = timedelta(hours=1)


@pytest.fixture
def place(db, accounts, scheduler):
    """``place.page(utc)`` / ``place.batch(utc, rows, state)``: an ingestion log / an export batch at a
    naive UTC time (each page its own page number, so none collides with another)."""

    class Place:
        account = accounts.add("图表账号", "pw", 100)
        task = scheduler.create_export("美妆", None, "csv")
        pages = 0

        def page(self, at: datetime) -> None:
            self.pages += 1
            with db.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO ingestion_logs (task_id, account_id, domain, page_number, ingested_count,"
                    " start_time, end_time) VALUES (%s, %s, '美妆', %s, 20, %s, %s)",
                    (self.task, self.account, self.pages, at, at + timedelta(seconds=3)))
            db.commit()

        def batch(self, at: datetime, rows: int, state: str = "published") -> None:
            with db.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO export_logs (task_id, account_id, domain, exported_count, file_path, start_time,"
                    " end_time, state, quota_date) VALUES (%s, %s, '美妆', %s, %s, %s, %s, %s, %s)",
                    (self.task, self.account, rows, f"美妆/{at:%Y%m%d%H%M%S}-{rows}.csv", at, at, state, at.date()))
            db.commit()

    return Place()


def utc(zone: QuotaDay, *fields: int, fold: int = 0) -> datetime:
    """Local wall time ``fields`` in ``zone`` as the naive UTC time the tables store."""
    return datetime(*fields, tzinfo=zone.zone, fold=fold).astimezone(UTC).replace(tzinfo=None)


# -- the queries, at a fixed instant ----------------------------------------------------------


def test_pages_per_hour_in_local_hours(db, place):
    now = datetime(2026, 12, 1, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))  # 02:30 UTC
    start, end = reports.activity_window(SHANGHAI, now)
    assert (start, end) == (utc(SHANGHAI, 2026, 11, 24, 11), utc(SHANGHAI, 2026, 12, 1, 11))
    placed = {
        start - timedelta(seconds=1): None,  # before the window
        start: 0,  # its first instant
        utc(SHANGHAI, 2026, 11, 30, 23, 59, 59): 156,  # the last second of a local day …
        utc(SHANGHAI, 2026, 12, 1, 0, 0, 0): 157,  # … and the first of the next
        utc(SHANGHAI, 2026, 12, 1, 10, 5): 167,  # the current hour (twice)
        utc(SHANGHAI, 2026, 12, 1, 10, 29, 59): 167,
        end: None,  # the next hour has not begun
        utc(SHANGHAI, 2026, 11, 20, 12): None,  # 11 days ago
    }
    for at in placed:
        place.page(at)

    hours = reports.pages_per_hour(db, SHANGHAI, now)
    assert len(hours) == reports.ACTIVITY_HOURS == 168
    assert [hour["start"] for hour in hours] == [start + n * HOUR for n in range(168)]  # no gap, zeros included
    assert SHANGHAI.local_time(hours[156]["start"]) == datetime(2026, 11, 30, 23)
    expected = [0] * 168
    for bucket in placed.values():
        if bucket is not None:
            expected[bucket] += 1
    assert [hour["pages"] for hour in hours] == expected
    assert sum(expected) == 5 and expected.count(0) == 164


def test_exports_per_day_in_local_days(db, place):
    now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=ZoneInfo("Asia/Shanghai"))  # one second into the day
    place.batch(utc(SHANGHAI, 2026, 11, 24, 23, 59, 59), 13)  # the day before the first charted
    place.batch(utc(SHANGHAI, 2026, 11, 25, 0, 0, 0), 11)  # the first charted day's first second
    place.batch(utc(SHANGHAI, 2026, 11, 30, 23, 59, 59), 5)  # yesterday's last second
    place.batch(utc(SHANGHAI, 2026, 11, 30, 8), 2)
    place.batch(utc(SHANGHAI, 2026, 12, 1, 0, 0, 0), 7)  # today's first second
    place.batch(utc(SHANGHAI, 2026, 12, 1, 0, 0, 0), 50, state="reserved")  # not a finished file
    place.batch(utc(SHANGHAI, 2026, 12, 2, 0, 0, 0), 9)  # tomorrow (a clock ahead): not charted

    days = reports.exports_per_day(db, SHANGHAI, now)
    assert [day["date"] for day in days] == [date(2026, 11, 25) + timedelta(days=n) for n in range(7)]
    assert [(day["rows_exported"], day["files"]) for day in days] == [
        (11, 1), (0, 0), (0, 0), (0, 0), (0, 0), (7, 2), (7, 1)]


def test_a_day_of_25_hours_and_a_repeated_hour(db, place):
    """New York falls back on 2026-11-01 at 02:00 EDT: that day has 25 hours and 01:00 twice."""
    now = datetime(2026, 11, 2, 12, 15, tzinfo=ZoneInfo("America/New_York"))
    place.batch(utc(NEW_YORK, 2026, 11, 1, 0, 30), 1)  # EDT
    place.batch(utc(NEW_YORK, 2026, 11, 1, 23, 30), 2)  # EST, 24.5 hours later: still the same day
    place.batch(utc(NEW_YORK, 2026, 11, 2, 0, 0), 4)
    place.page(utc(NEW_YORK, 2026, 11, 1, 1, 10, fold=0))  # the first 01:00 (EDT)
    place.page(utc(NEW_YORK, 2026, 11, 1, 1, 10, fold=1))  # the second (EST)

    days = {day["date"]: day["rows_exported"] for day in reports.exports_per_day(db, NEW_YORK, now)}
    assert days[date(2026, 11, 1)] == 3 and days[date(2026, 11, 2)] == 4

    hours = reports.pages_per_hour(db, NEW_YORK, now)
    local = [(hour["start"].replace(tzinfo=UTC).astimezone(NEW_YORK.zone), hour["pages"]) for hour in hours]
    ones = [(at.utcoffset(), pages) for at, pages in local if (at.month, at.day, at.hour) == (11, 1, 1)]
    assert ones == [(timedelta(hours=-4), 1), (timedelta(hours=-5), 1)]
    assert local[-1][0].replace(tzinfo=None) == datetime(2026, 11, 2, 12)


def test_the_hours_of_a_half_hour_zone_start_on_its_hours():
    kolkata = QuotaDay(ZoneInfo("Asia/Kolkata"))  # +05:30
    start, end = reports.activity_window(kolkata, datetime(2026, 12, 1, 4, 50, tzinfo=UTC))  # 10:20 local
    assert kolkata.local_time(end) == datetime(2026, 12, 1, 11)
    assert end - start == timedelta(hours=168)


def test_the_hourly_count_is_one_covered_range_scan(db):
    start, end = reports.activity_window(SHANGHAI, datetime(2026, 12, 1, tzinfo=UTC))
    with db.cursor() as cursor:
        cursor.execute("EXPLAIN " + reports.PAGES_PER_HOUR_SQL, (start, start, end))
        plan = cursor.fetchall()
    db.commit()
    assert [(row["table"], row["type"], row["key"]) for row in plan] == [
        ("ingestion_logs", "range", "ix_ingestion_logs_day")]
    assert "Using index" in plan[0]["Extra"]  # the index alone answers: no row of the table is read


# -- over HTTP, by the server's clock ---------------------------------------------------------


def test_activity_endpoint(api_server, db, place, accounts, config):
    quota_day = config.quota_day
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    today_start, _ = quota_day.day_bounds(quota_day.today())
    inside = [now - 2 * HOUR, now - 30 * HOUR, now - 30 * HOUR, today_start - timedelta(seconds=1), today_start]
    for at in [*inside, now - timedelta(days=8)]:
        place.page(at)
    place.batch(today_start - timedelta(seconds=1), 4)  # yesterday
    place.batch(today_start, 6)  # today
    place.batch(today_start, 50, state="reserved")
    place.batch(now - timedelta(days=8), 100)  # before the week

    spent = accounts.add("昨日用尽", "pw", 100)
    with db.cursor() as cursor:  # 100 exported on a quota day that is over: none used today
        cursor.execute(f"UPDATE accounts SET today_export_count = 100, quota_date = {TODAY_SQL} - INTERVAL 1 DAY"
                       " WHERE id = %s", (*quota_day.today_params(), spent))
    db.commit()
    accounts.update_export_count(place.account, 10)
    accounts.disable(spent, "测试")

    reply = api_server.get("/api/v1/reports/activity")
    assert reply.status == 200, reply.text
    activity = reply.json()
    assert activity["tz"] == "Asia/Shanghai" and activity["today"] == quota_day.today().isoformat()

    hours = activity["hours"]
    starts = [datetime.fromisoformat(hour["start"]) for hour in hours]
    assert len(hours) == 168 and all(start.utcoffset() == timedelta(hours=8) for start in starts)
    assert all(later - earlier == HOUR for earlier, later in zip(starts, starts[1:], strict=False))
    assert starts[-1] <= datetime.now(UTC) < starts[-1] + HOUR
    expected = [0] * 168
    for at in inside:
        expected[next(n for n, start in enumerate(starts) if start <= at.replace(tzinfo=UTC) < start + HOUR)] += 1
    assert [hour["pages"] for hour in hours] == expected

    days = activity["days"]
    assert [day["date"] for day in days] == [(quota_day.today() - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
    assert [(day["rows_exported"], day["files"]) for day in days] == [(0, 0)] * 5 + [(4, 1), (6, 1)]

    assert activity["quota"] == [
        {"id": place.account, "username": "图表账号", "status": "idle", "used": 10, "limit": 100},
        {"id": spent, "username": "昨日用尽", "status": "disabled", "used": 0, "limit": 100},
    ]


def test_activity_takes_no_parameters(api_server):
    reply = api_server.get("/api/v1/reports/activity", params={"date": "2026-12-01"})
    assert reply.status == 422 and reply.error["code"] == "invalid_request"
    assert "query.date" in reply.error["message"]
    assert api_server.get("/api/v1/reports/activity", token="wrong-token-0123456789").status == 401
