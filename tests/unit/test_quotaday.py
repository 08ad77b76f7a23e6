"""The local day in a zone: midnights, DST days and the parameters of the database's "today" (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from influencers.core.config import Config
from influencers.core.quotaday import QuotaDay

BERLIN = QuotaDay(ZoneInfo("Europe/Berlin"))  # 2026: CET→CEST 03-29 01:00 UTC, CEST→CET 10-25 01:00 UTC
NEW_YORK = QuotaDay(ZoneInfo("America/New_York"))  # 2026: EST→EDT 03-08 07:00 UTC, EDT→EST 11-01 06:00 UTC
SHANGHAI = QuotaDay(ZoneInfo("Asia/Shanghai"))
HOUR = 3600


def utc(*parts: int) -> datetime:
    return datetime(*parts)  # naive: UTC, like the DATETIME columns


def sql_today(params: tuple[datetime, int, int], db_now: datetime) -> date:
    """What TODAY_SQL computes on a server whose clock reads `db_now`."""
    change, before, after = params
    return (db_now + timedelta(seconds=before if db_now < change else after)).date()


@pytest.mark.parametrize(
    ("zone", "instant", "local_day"),
    [
        # Berlin, into the 23-hour day (03-29) and out of it, into the 25-hour day (10-25) and out of it
        (BERLIN, utc(2026, 3, 28, 22, 59, 59), date(2026, 3, 28)),  # 23:59:59 CET
        (BERLIN, utc(2026, 3, 28, 23, 0, 0), date(2026, 3, 29)),  # 00:00:00 CET
        (BERLIN, utc(2026, 3, 29, 21, 59, 59), date(2026, 3, 29)),  # 23:59:59 CEST
        (BERLIN, utc(2026, 3, 29, 22, 0, 0), date(2026, 3, 30)),  # 00:00:00 CEST
        (BERLIN, utc(2026, 10, 24, 21, 59, 59), date(2026, 10, 24)),  # 23:59:59 CEST
        (BERLIN, utc(2026, 10, 24, 22, 0, 0), date(2026, 10, 25)),  # 00:00:00 CEST
        (BERLIN, utc(2026, 10, 25, 22, 59, 59), date(2026, 10, 25)),  # 23:59:59 CET
        (BERLIN, utc(2026, 10, 25, 23, 0, 0), date(2026, 10, 26)),  # 00:00:00 CET
        # New York, the same four midnights
        (NEW_YORK, utc(2026, 3, 8, 4, 59, 59), date(2026, 3, 7)),  # 23:59:59 EST
        (NEW_YORK, utc(2026, 3, 8, 5, 0, 0), date(2026, 3, 8)),  # 00:00:00 EST
        (NEW_YORK, utc(2026, 3, 9, 3, 59, 59), date(2026, 3, 8)),  # 23:59:59 EDT
        (NEW_YORK, utc(2026, 3, 9, 4, 0, 0), date(2026, 3, 9)),  # 00:00:00 EDT
        (NEW_YORK, utc(2026, 11, 1, 3, 59, 59), date(2026, 10, 31)),  # 23:59:59 EDT
        (NEW_YORK, utc(2026, 11, 1, 4, 0, 0), date(2026, 11, 1)),  # 00:00:00 EDT
        (NEW_YORK, utc(2026, 11, 2, 4, 59, 59), date(2026, 11, 1)),  # 23:59:59 EST
        (NEW_YORK, utc(2026, 11, 2, 5, 0, 0), date(2026, 11, 2)),  # 00:00:00 EST
        # Shanghai, winter and summer alike
        (SHANGHAI, utc(2026, 1, 15, 15, 59, 59), date(2026, 1, 15)),
        (SHANGHAI, utc(2026, 1, 15, 16, 0, 0), date(2026, 1, 16)),
        (SHANGHAI, utc(2026, 7, 15, 15, 59, 59), date(2026, 7, 15)),
        (SHANGHAI, utc(2026, 7, 15, 16, 0, 0), date(2026, 7, 16)),
    ],
)
def test_local_date_on_both_sides_of_midnight(zone: QuotaDay, instant: datetime, local_day: date) -> None:
    assert zone.local_date(instant) == local_day
    assert zone.local_date(instant.replace(tzinfo=UTC)) == local_day  # aware UTC means the same
    assert sql_today(zone.today_params(near=instant), instant) == local_day  # and so does the SQL


@pytest.mark.parametrize(
    ("zone", "day", "start", "end", "hours"),
    [
        (BERLIN, date(2026, 3, 29), utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 23),
        (BERLIN, date(2026, 10, 25), utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 25),
        (BERLIN, date(2026, 7, 1), utc(2026, 6, 30, 22), utc(2026, 7, 1, 22), 24),
        (NEW_YORK, date(2026, 3, 8), utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 23),
        (NEW_YORK, date(2026, 11, 1), utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25),
        (SHANGHAI, date(2026, 7, 1), utc(2026, 6, 30, 16), utc(2026, 7, 1, 16), 24),
        # Santiago jumps from 00:00 to 01:00: the day begins at the jump, local 01:00
        (QuotaDay(ZoneInfo("America/Santiago")), date(2026, 9, 6), utc(2026, 9, 6, 4), utc(2026, 9, 7, 3), 23),
    ],
)
def test_day_bounds_in_utc(zone: QuotaDay, day: date, start: datetime, end: datetime, hours: int) -> None:
    assert zone.day_bounds(day) == (start, end)
    assert end - start == timedelta(hours=hours)
    assert zone.local_date(start) == day and zone.local_date(end - timedelta(seconds=1)) == day
    assert zone.local_date(start - timedelta(seconds=1)) == day - timedelta(days=1)
    assert zone.day_bounds(day + timedelta(days=1))[0] == end  # consecutive days abut


@pytest.mark.parametrize(
    ("zone", "instant", "seconds"),
    [
        (BERLIN, utc(2026, 3, 28, 23), 23 * HOUR),  # from the midnight starting the 23-hour day: the whole day
        (BERLIN, utc(2026, 3, 28, 22), 1 * HOUR),  # 23:00 CET, before the change
        (BERLIN, utc(2026, 3, 28, 22, 59, 59), 1),  # 23:59:59
        (BERLIN, utc(2026, 3, 29, 0, 30), 21.5 * HOUR),  # 01:30 CET, across the jump to CEST
        (BERLIN, utc(2026, 10, 24, 22), 25 * HOUR),  # from the midnight starting the 25-hour day
        (BERLIN, utc(2026, 10, 25, 0, 30), 22.5 * HOUR),  # 02:30 CEST, across the fall back to CET
        (NEW_YORK, utc(2026, 3, 8, 6, 30), 21.5 * HOUR),  # 01:30 EST, across the jump to EDT
        (NEW_YORK, utc(2026, 11, 1, 4), 25 * HOUR),
        (SHANGHAI, utc(2026, 7, 1, 4), 12 * HOUR),  # noon
    ],
)
def test_seconds_until_next_local_midnight(zone: QuotaDay, instant: datetime, seconds: float) -> None:
    assert zone.seconds_until_midnight(instant) == seconds
    assert zone.seconds_until_midnight(instant.replace(tzinfo=UTC)) == seconds


@pytest.mark.parametrize(
    ("zone", "near", "params"),
    [
        (BERLIN, utc(2026, 3, 20, 12), (utc(2026, 3, 29, 1), 1 * HOUR, 2 * HOUR)),
        (BERLIN, utc(2026, 11, 20, 12), (utc(2026, 10, 25, 1), 2 * HOUR, 1 * HOUR)),  # the nearer change is past
        (NEW_YORK, utc(2026, 3, 1), (utc(2026, 3, 8, 7), -5 * HOUR, -4 * HOUR)),
        (NEW_YORK, utc(2026, 11, 3), (utc(2026, 11, 1, 6), -4 * HOUR, -5 * HOUR)),
    ],
)
def test_today_params_hinge_on_the_nearest_offset_change(zone: QuotaDay, near: datetime, params: tuple) -> None:
    assert zone.today_params(near=near) == params


def test_shanghai_is_a_constant_plus_eight() -> None:
    for near in (utc(2026, 1, 15), utc(2026, 7, 15), utc(2030, 3, 31)):
        _, before, after = SHANGHAI.today_params(near=near)
        assert before == after == 8 * HOUR
        assert SHANGHAI.utc_offset(near) == "+08:00"


def test_the_database_clock_decides_the_side_of_a_change_despite_skew() -> None:
    """The process's clock only picks the change; a server clock minutes or days off still gets
    the right day on both sides of it and of the midnights around it."""
    for zone, change in ((BERLIN, utc(2026, 3, 29, 1)), (BERLIN, utc(2026, 10, 25, 1)), (NEW_YORK, utc(2026, 11, 1, 6))):
        for db_offset in range(-3 * 24 * HOUR, 3 * 24 * HOUR, 599):  # every ~10 minutes for three days each way
            db_now = change + timedelta(seconds=db_offset)
            for skew in (timedelta(0), timedelta(minutes=5), -timedelta(minutes=5), timedelta(days=2), -timedelta(days=2)):
                assert sql_today(zone.today_params(near=db_now + skew), db_now) == zone.local_date(db_now), (db_now, skew)


def test_a_year_of_hours_agrees_with_zoneinfo() -> None:
    for zone in (BERLIN, NEW_YORK, SHANGHAI):
        instant = utc(2026, 1, 1)
        while instant < utc(2027, 1, 1):
            assert sql_today(zone.today_params(near=instant), instant) == zone.local_date(instant), (zone.name, instant)
            assert zone.day_bounds(zone.local_date(instant))[0] <= instant < zone.day_bounds(zone.local_date(instant))[1]
            instant += timedelta(hours=5, minutes=17)


def test_the_clock_is_injectable_and_defaults_to_the_system_clock() -> None:
    pinned = QuotaDay(ZoneInfo("Europe/Berlin"), clock=lambda: datetime(2026, 3, 28, 23, tzinfo=UTC))
    assert pinned.today() == date(2026, 3, 29)
    assert pinned.today_params() == (utc(2026, 3, 29, 1), 1 * HOUR, 2 * HOUR)
    assert pinned.utc_offset() == "+01:00" and pinned == BERLIN  # the clock is not part of the value
    assert abs((BERLIN.clock() - datetime.now(UTC)).total_seconds()) < 5


def test_config_gives_the_zone_its_quota_day() -> None:
    config = Config.from_env({"INFLUENCERS_TZ": "America/New_York"})
    assert config.quota_day == NEW_YORK and config.quota_day.name == "America/New_York"
    assert config.utc_offset in ("-05:00", "-04:00")
    assert Config.from_env({}).quota_day == SHANGHAI
