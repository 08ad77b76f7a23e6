"""Cron expressions in the configured zone: when a schedule's occurrences fall, as UTC instants.

An operator writes `0 3 * * *` meaning three o'clock on the wall clock of `INFLUENCERS_TZ`, in
summer and in winter, so occurrences are computed in the zone (croniter does the calendar) and
stored in UTC like every DATETIME column. Daylight saving, as Vixie cron does it:

- a time the clocks jump over (02:30 on a spring-forward night in New York) fires when they land
  (03:00), once;
- a time that happens twice (01:30 on a fall-back night) fires once, at its first occurrence, for
  an expression with fixed hours; an hourly or finer expression (hour field `*`) fires in both
  hours, since each is an hour of real time.

Pure functions of (expression, zone, instant): unit-tested without a clock or a database.
Naive datetimes given and returned are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, CroniterNotAlphaError, croniter

from influencers.core.errors import InvalidArgument

MAX_LENGTH = 100  # schedules.cron
#: Occurrences counted one by one when catching up; beyond this many the count says "at least".
MAX_ENUMERATED = 1000


def validate(expression: str) -> str:
    """The expression, trimmed, if it is a five-field cron expression (or an alias such as
    `@daily`) that fires at some time; InvalidArgument with one line saying why not."""
    text = " ".join(expression.split())
    if not text:
        raise InvalidArgument("--cron is empty: give five fields, e.g. \"0 3 * * *\" (minute hour day month weekday)")
    if len(text) > MAX_LENGTH:
        raise InvalidArgument(f"--cron is longer than {MAX_LENGTH} characters")
    if not text.startswith("@") and len(text.split()) != 5:
        raise InvalidArgument(f"--cron {text!r} has {len(text.split())} fields; give five, e.g. \"0 3 * * *\""
                              " (minute hour day month weekday)")
    try:
        croniter(text)
    except (CroniterBadCronError, CroniterNotAlphaError, CroniterError, ValueError, KeyError) as exc:
        raise InvalidArgument(f"--cron {text!r} is not a cron expression: {' '.join(str(exc).split())}") from None
    try:
        croniter(text, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidArgument(f"--cron {text!r} never fires") from None
    return text


def next_after(expression: str, zone: ZoneInfo, instant: datetime) -> datetime:
    """The first occurrence strictly after ``instant`` (naive UTC in, naive UTC out)."""
    current = _aware(instant)
    hourly = _every_hour(expression)
    while True:
        local = croniter(expression, current.astimezone(zone)).get_next(datetime)
        found = local.astimezone(UTC)
        if hourly or not _second_pass(local, zone, found):
            return found.replace(tzinfo=None)
        current = found  # the repeated hour's second pass of a fixed-hour time: fired in the first


def due(expression: str, zone: ZoneInfo, first: datetime, now: datetime,
        limit: int = MAX_ENUMERATED) -> tuple[list[datetime], bool]:
    """The occurrences from ``first`` (itself one, already computed) up to ``now``, oldest first,
    at most ``limit`` of them; and whether there were more."""
    found: list[datetime] = []
    current = first
    while current <= now:
        if len(found) == limit:
            return found, True
        found.append(current)
        current = next_after(expression, zone, current)
    return found, False


def _every_hour(expression: str) -> bool:
    hours = croniter(expression).expanded[1]
    return hours == ["*"] or len(set(hours)) == 24


def _second_pass(local: datetime, zone: ZoneInfo, utc: datetime) -> bool:
    """Whether this wall-clock time already happened earlier (the clocks were turned back)."""
    first = local.replace(tzinfo=None).replace(tzinfo=zone, fold=0).astimezone(UTC)
    return first < utc


def _aware(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
