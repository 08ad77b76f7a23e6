"""The local day in `INFLUENCERS_TZ`: one notion of "today" and "local midnight".

Quotas, daily-cap cool-downs and reports all count days in the configured zone, and any IANA
zone may be configured, daylight saving included, so local midnight is not a fixed offset from
UTC midnight and a local day may last 23 or 25 hours. Everything here comes from `zoneinfo`;
nothing needs the database server's named time-zone tables, which are often not loaded
(`CONVERT_TZ` with a zone name then returns NULL).

Quota days are compared and stored by the database clock, so every process agrees whatever its
own clock says: `TODAY_SQL` lets the server decide which side of the zone's nearest offset
change "now" is on. The Python methods work from an instant they are given, or from `clock`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

#: The local calendar date now by the database clock; its parameters are
#: `QuotaDay.today_params()`. The session runs in UTC (see `db.connect`), and UTC_TIMESTAMP() is
#: fixed for the whole statement, so every use of this fragment in one statement agrees.
TODAY_SQL = "DATE(UTC_TIMESTAMP() + INTERVAL IF(UTC_TIMESTAMP() < %s, %s, %s) SECOND)"

#: Offset changes are looked for a week apart (no zone changes twice within a week) up to about
#: 200 days away: zones with daylight saving change twice a year, so one change is always nearer;
#: a zone with none in reach is constant.
_STEP = timedelta(days=7)
_STEPS = 29
_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)


def _system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class QuotaDay:
    """Days in one zone: the SQL for "today" by the database clock, and the same arithmetic in Python.

    Naive datetimes given to or returned by these methods are UTC, like the DATETIME columns
    (every session runs with `time_zone = '+00:00'`). `clock` is this process's clock (aware
    UTC), replaceable so that tests can move it together with the database's.
    """

    zone: ZoneInfo
    clock: Callable[[], datetime] = field(default=_system_clock, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.zone.key

    # -- by the database clock ------------------------------------------------------------------

    def today_params(self, near: datetime | None = None) -> tuple[datetime, int, int]:
        """Parameters of `TODAY_SQL`: the zone's offset change nearest to `near` (this process's
        clock by default) and the offsets in seconds before and after it.

        `near` only picks which change the SQL hinges on; the database clock decides the side, so
        the result is exact as long as the two clocks are closer than the zone's offset changes
        are to each other (months). A zone with no change in reach gives the same offset twice.
        """
        instant = _as_utc(near if near is not None else self.clock())
        return _nearest_change(self.zone, instant.replace(minute=0, second=0, microsecond=0))

    # -- in Python, from a given instant ----------------------------------------------------------

    def offset_at(self, instant: datetime) -> timedelta:
        """The zone's UTC offset at `instant`."""
        return _offset(self.zone, _as_utc(instant))

    def utc_offset(self, instant: datetime | None = None) -> str:
        """The offset at `instant` (now by default) as '+08:00': a label for times shown to people."""
        minutes = int(self.offset_at(instant or self.clock()).total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

    def local_date(self, instant: datetime) -> date:
        """The local calendar date at `instant`."""
        return _as_utc(instant).astimezone(self.zone).date()

    def local_time(self, instant: datetime) -> datetime:
        """The local wall-clock time (naive, whole seconds) at `instant`, with the offset that
        applied then: a summer time shows in summer time whatever the season is now."""
        return _as_utc(instant).astimezone(self.zone).replace(tzinfo=None, microsecond=0)

    def today(self) -> date:
        """The local date by this process's clock: for naming a day (reports), never for quotas."""
        return self.local_date(self.clock())

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """The naive UTC interval [start, end) of local `day`: 23 or 25 hours on a DST change."""
        return self._day_start(day), self._day_start(day + _DAY)

    def seconds_until_midnight(self, instant: datetime) -> float:
        """Seconds from `instant` until the next local midnight (the start of the next local day)."""
        utc = _as_utc(instant)
        start = self._day_start(self.local_date(utc) + _DAY)
        return (start.replace(tzinfo=UTC) - utc).total_seconds()

    def _day_start(self, day: date) -> datetime:
        """The first instant (naive UTC) whose local date is `day`.

        Local midnight itself, except where the clocks jump over it: then the day begins when
        they jump, which is the first existing local time of the day.
        """
        guess = datetime.combine(day, time.min, tzinfo=self.zone).astimezone(UTC)  # fold=0: the first midnight
        if self.local_date(guess - _SECOND) == day:  # midnight fell in a gap and fold=0 overshot it
            low, high = guess - _DAY, guess  # local date before `day` at low, `day` at high
            while high - low > _SECOND:
                middle = (low + (high - low) / 2).replace(microsecond=0)
                low, high = (low, middle) if self.local_date(middle) >= day else (middle, high)
            guess = high
        elif self.local_date(guess) != day:  # a zone that skips the whole day (e.g. Pacific/Apia, 2011-12-30)
            guess = self._day_start(day + _DAY)
        return guess.replace(tzinfo=None)


def _as_utc(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def _offset(zone: ZoneInfo, utc: datetime) -> timedelta:
    return utc.astimezone(zone).utcoffset() or timedelta(0)


@lru_cache(maxsize=64)
def _nearest_change(zone: ZoneInfo, instant: datetime) -> tuple[datetime, int, int]:
    """(change instant as naive UTC, offset before, offset after), or (instant, offset, offset).

    Samples a week apart outward from `instant` in both directions, then narrows the change it
    finds to the second. Cached by the hour, since callers ask for every statement they run.
    """
    here = _offset(zone, instant)
    ahead, ahead_offset, behind, behind_offset = instant, here, instant, here
    for _ in range(_STEPS):
        further, further_offset = ahead + _STEP, _offset(zone, ahead + _STEP)
        earlier, earlier_offset = behind - _STEP, _offset(zone, behind - _STEP)
        changes = []
        if further_offset != ahead_offset:
            changes.append(_first_second_of(zone, ahead, further))
        if earlier_offset != behind_offset:
            changes.append(_first_second_of(zone, earlier, behind))
        if changes:
            change = min(changes, key=lambda candidate: abs(candidate - instant))
            before, after = _offset(zone, change - _SECOND), _offset(zone, change)
            return change.replace(tzinfo=None), int(before.total_seconds()), int(after.total_seconds())
        ahead, ahead_offset, behind, behind_offset = further, further_offset, earlier, earlier_offset
    seconds = int(here.total_seconds())
    return instant.replace(tzinfo=None), seconds, seconds


def _first_second_of(zone: ZoneInfo, earlier: datetime, later: datetime) -> datetime:
    """The first whole second in (earlier, later] with the offset `later` has."""
    target = _offset(zone, later)
    while later - earlier > _SECOND:
        middle = (earlier + (later - earlier) / 2).replace(microsecond=0)
        earlier, later = (earlier, middle) if _offset(zone, middle) == target else (middle, later)
    return later
