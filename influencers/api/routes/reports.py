"""Reports and status: the same queries as `python -m influencers report|status`, and the
week of activity the dashboard charts."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Query

from influencers.api.deps import Core, CoreDep
from influencers.api.errors import ApiError
from influencers.api.routes.accounts import accounts_out
from influencers.api.routes.tasks import summary
from influencers.api.schemas import (
    Activity,
    Backlog,
    DayActivity,
    ExportReport,
    ExportRow,
    HourActivity,
    IngestionPage,
    IngestionReport,
    IngestionRow,
    QuotaUse,
    Status,
    TaskCount,
    as_local,
)
from influencers.core import reports

router = APIRouter(tags=["reports"])
#: Days the database can hold activity for; outside them a report is empty without a query.
EARLIEST, LATEST = date(1970, 1, 2), date(9999, 12, 30)

DateParam = Annotated[str | None, Query(
    alias="date", pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", json_schema_extra={"format": "date"},
    description="local date YYYY-MM-DD (default: today)",
)]
DomainParam = Annotated[str | None, Query(max_length=100, description="only this domain")]
AccountParam = Annotated[str | None, Query(max_length=255, description="only this account: username or id")]


@router.get("/reports/ingestion", response_model=IngestionReport,
            summary="Who ingested how many of which domain on a local day (with details: per page)")
def ingestion(
    core: CoreDep, day: DateParam = None, domain: DomainParam = None, account: AccountParam = None,
    details: Annotated[bool, Query(description="also list every page with its nicknames")] = False,
) -> IngestionReport:
    options = _options(core, day, domain, account)
    zone = core.config.quota_day.zone
    if _out_of_range(options["day"]):
        return IngestionReport(date=options["day"], tz=core.config.tz_name, rows=[], pages=[] if details else None)
    rows = [IngestionRow(**_localised(row, zone)) for row in reports.ingestion_report(core.conn, **options)]
    pages = None
    if details:
        pages = [
            IngestionPage(**{**_localised(row, zone), "nicknames": _split(row.get("nicknames"), " | ")})
            for row in reports.ingestion_report(core.conn, details=True, **options)
        ]
    return IngestionReport(date=_day(options["day"], core), tz=core.config.tz_name, rows=rows, pages=pages)


@router.get("/reports/export", response_model=ExportReport,
            summary="Which account exported how many of which domain on a local day, into which files")
def export(
    core: CoreDep, day: DateParam = None, domain: DomainParam = None, account: AccountParam = None,
) -> ExportReport:
    options = _options(core, day, domain, account)
    zone = core.config.quota_day.zone
    if _out_of_range(options["day"]):
        return ExportReport(date=options["day"], tz=core.config.tz_name, rows=[])
    rows = [
        ExportRow(**{**_localised(row, zone), "paths": _split(row.get("paths"), "\n")})
        for row in reports.export_report(core.conn, **options)
    ]
    return ExportReport(date=_day(options["day"], core), tz=core.config.tz_name, rows=rows)


@router.get("/status", response_model=Status, summary="Tasks, accounts, quotas and backlog at a glance (`status`)")
def status(core: CoreDep) -> Status:
    accounts = core.accounts()
    return Status(
        generated_at=datetime.now(UTC),
        today=_day(None, core),
        tz=core.config.tz_name,
        task_counts=[TaskCount(**row) for row in reports.task_counts(core.conn)],
        tasks=[summary(row) for row in reports.task_progress(core.conn)],
        accounts=accounts_out(core, accounts.list()),
        backlog=[Backlog(**row) for row in reports.backlog(core.conn, accounts)],
    )


@router.get("/reports/activity", response_model=Activity,
            summary="Pages ingested per hour and rows exported per day over the last 7 days, quota use per account"
                    " today (the dashboard's charts)")
def activity(core: CoreDep) -> Activity:
    quota_day = core.config.quota_day
    now = quota_day.clock()  # one instant for both windows, so the last hour lies in the last day
    hours = [HourActivity(start=row["start"].replace(tzinfo=UTC).astimezone(quota_day.zone), pages=row["pages"])
             for row in reports.pages_per_hour(core.conn, quota_day, now)]
    days = [DayActivity(**row) for row in reports.exports_per_day(core.conn, quota_day, now)]
    quota = [QuotaUse(id=account.id, username=account.username, status=account.status,
                      used=account.today_export_count, limit=account.daily_export_limit)
             for account in core.accounts().list()]
    return Activity(generated_at=now, today=days[-1].date, tz=core.config.tz_name, hours=hours, days=days,
                    quota=quota)


def _options(core: Core, day: str | None, domain: str | None, account: str | None) -> dict[str, Any]:
    parsed = None
    if day is not None:
        try:
            parsed = date.fromisoformat(day)
        except ValueError:
            raise ApiError(422, "invalid_request", f"query.date: {day!r} is not a calendar date") from None
    if account and account.isdigit() and not account.isascii():
        raise ApiError(422, "invalid_request", "query.account: an id is written with the digits 0-9")
    return {"quota_day": core.config.quota_day, "day": parsed, "domain": domain or None,
            "account": account or None}


def _out_of_range(day: date | None) -> bool:
    return day is not None and not EARLIEST <= day <= LATEST


def _day(day: date | None, core: Core) -> date:
    return reports.local_day_bounds(day, core.config.quota_day)[2]


def _localised(row: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    return {key: as_local(value, zone) for key, value in row.items()}


def _split(text: str | None, separator: str) -> list[str]:
    return [part for part in (text or "").split(separator) if part]
