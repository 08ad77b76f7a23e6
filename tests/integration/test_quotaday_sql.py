"""TODAY_SQL and the lazy quota reset on the real server, its clock pinned around local midnights
and DST changes in Europe/Berlin (the server has no named time-zone tables to lean on)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from influencers.core.accounts import AccountManager
from influencers.core.errors import QuotaExceeded
from influencers.core.quotaday import TODAY_SQL, QuotaDay

BERLIN = ZoneInfo("Europe/Berlin")  # 2026: CET→CEST 03-29 01:00 UTC, CEST→CET 10-25 01:00 UTC


class Clocks:
    """The database session's clock (`SET timestamp` pins UTC_TIMESTAMP()) and this process's, moved together."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.process = datetime.now(UTC)

    def set(self, utc: datetime, *, process_skew: timedelta = timedelta(0)) -> None:
        instant = utc.replace(tzinfo=UTC)
        with self.conn.cursor() as cursor:
            cursor.execute("SET timestamp = %s", (int(instant.timestamp()),))
        self.process = instant + process_skew

    def now(self) -> datetime:
        return self.process

    def release(self) -> None:
        with self.conn.cursor() as cursor:
            cursor.execute("SET timestamp = DEFAULT")


@pytest.fixture
def clocks(db) -> Iterator[Clocks]:
    pinned = Clocks(db)
    try:
        yield pinned
    finally:
        pinned.release()


def one(conn, sql: str, params: tuple = ()) -> dict:
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    conn.commit()
    return row


def test_set_timestamp_pins_the_database_clock(db, clocks: Clocks) -> None:
    clocks.set(datetime(2026, 3, 29, 0, 59, 59))
    for _ in range(2):  # statement after statement, transaction after transaction
        row = one(db, "SELECT UTC_TIMESTAMP() AS now, UTC_TIMESTAMP(6) AS precise")
        assert row["now"] == datetime(2026, 3, 29, 0, 59, 59)
        assert row["precise"] == datetime(2026, 3, 29, 0, 59, 59)


@pytest.mark.parametrize(
    ("utc", "local_day", "offset_hours"),
    [
        (datetime(2026, 3, 28, 22, 59, 59), date(2026, 3, 28), 1),  # 23:59:59 CET: the last second before the 23-hour day
        (datetime(2026, 3, 28, 23, 0, 0), date(2026, 3, 29), 1),  # 00:00:00 CET
        (datetime(2026, 3, 29, 0, 59, 59), date(2026, 3, 29), 1),  # 01:59:59 CET: just before the jump
        (datetime(2026, 3, 29, 1, 0, 0), date(2026, 3, 29), 2),  # 03:00:00 CEST: just after it
        (datetime(2026, 3, 29, 21, 59, 59), date(2026, 3, 29), 2),  # 23:59:59 CEST
        (datetime(2026, 3, 29, 22, 0, 0), date(2026, 3, 30), 2),  # 00:00:00 CEST (a fixed +01:00 says 23:00)
        (datetime(2026, 10, 24, 21, 59, 59), date(2026, 10, 24), 2),  # 23:59:59 CEST: before the 25-hour day
        (datetime(2026, 10, 24, 22, 0, 0), date(2026, 10, 25), 2),  # 00:00:00 CEST
        (datetime(2026, 10, 25, 0, 59, 59), date(2026, 10, 25), 2),  # 02:59:59 CEST: just before the fall back
        (datetime(2026, 10, 25, 1, 0, 0), date(2026, 10, 25), 1),  # 02:00:00 CET: just after it
        (datetime(2026, 10, 25, 22, 59, 59), date(2026, 10, 25), 1),  # 23:59:59 CET (a fixed +02:00 says 00:59:59)
        (datetime(2026, 10, 25, 23, 0, 0), date(2026, 10, 26), 1),  # 00:00:00 CET
    ],
)
@pytest.mark.parametrize("process_skew", [timedelta(0), timedelta(seconds=90), timedelta(seconds=-90)])
def test_today_sql_by_the_database_clock(db, clocks: Clocks, utc: datetime, local_day: date, offset_hours: int,
                                         process_skew: timedelta) -> None:
    clocks.set(utc, process_skew=process_skew)  # this process's clock only picks the change; the server's decides
    params = QuotaDay(BERLIN, clock=clocks.now).today_params()
    row = one(db, f"SELECT {TODAY_SQL} AS today, IF(UTC_TIMESTAMP() < %s, %s, %s) AS seconds", params * 2)
    assert row["today"] == local_day
    assert row["seconds"] == offset_hours * 3600


@pytest.mark.parametrize(
    ("last_second", "first_second", "early", "new_day"),
    [
        # the end of the 23-hour day: midnight comes at 22:00 UTC; a fixed +01:00 would wait until 23:00
        (datetime(2026, 3, 29, 21, 59, 59), datetime(2026, 3, 29, 22, 0, 0), None, date(2026, 3, 30)),
        # the end of the 25-hour day: midnight comes at 23:00 UTC; a fixed +02:00 would reset at 22:00
        (datetime(2026, 10, 25, 22, 59, 59), datetime(2026, 10, 25, 23, 0, 0), datetime(2026, 10, 25, 22, 0, 0),
         date(2026, 10, 26)),
    ],
)
def test_quota_resets_at_local_midnight_on_a_dst_change_day(
    db, accounts: AccountManager, clocks: Clocks, last_second: datetime, first_second: datetime,
    early: datetime | None, new_day: date,
) -> None:
    berlin = AccountManager(db, quota_day=QuotaDay(BERLIN, clock=clocks.now))
    account_id = accounts.add("berlin", "pw", daily_export_limit=100)
    old_day = new_day - timedelta(days=1)
    clocks.set(berlin.quota_day.day_bounds(old_day)[0])  # 00:00:00 local, the start of the DST-change day
    assert berlin.update_export_count(account_id, 100) == 0
    assert berlin.get(account_id).quota_date == old_day
    for instant in filter(None, (early, last_second)):  # still the DST-change day: nothing resets
        clocks.set(instant)
        assert berlin.get_remaining_quota(account_id) == 0
        with pytest.raises(QuotaExceeded):
            berlin.update_export_count(account_id, 1)
    clocks.set(first_second)  # 00:00:00 local: a new quota day, no reset command ran
    assert berlin.get_remaining_quota(account_id) == 100
    assert berlin.get(account_id).today_export_count == 0
    assert berlin.get_idle_account("exporting", need_quota=True).id == account_id
    assert berlin.update_export_count(account_id, 30) == 70
    assert berlin.get(account_id).quota_date == new_day
    clocks.set(last_second)  # the command path writes the same day as the lazy reset
    assert berlin.reset_quotas() == 1
    assert berlin.get(account_id).quota_date == old_day
