"""Schedules: periodic crawls and exports (`influencers.core.schedules`), fired by
`python -m influencers scheduler`. List, add, pause, resume, remove; every rule (cron
expressions, what a crawl or an export may be) is the core's, which answers 400 with its message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, BeforeValidator, Field

from influencers.api.deps import Core, CoreDep
from influencers.api.errors import ApiError, error_schema_responses
from influencers.api.schemas import MAX_INT, ExportFormat, Strict, Text, as_utc
from influencers.core.cron import MAX_LENGTH as CRON_MAX
from influencers.core.errors import ScheduleNotFound
from influencers.core.schedules import NAME_MAX, ScheduleStore
from influencers.core.tasks.creating import MAX_PAGES

router = APIRouter(prefix="/schedules", tags=["schedules"])
ScheduleId = Annotated[int, Path(ge=1, le=MAX_INT, description="schedule id")]
Kind = Literal["crawl", "export"]
Missed = Literal["run-once", "skip"]


def _json_integer(value: object) -> object:
    if isinstance(value, (str, bool)):
        raise ValueError("must be a JSON number, not a string or a boolean")
    return value


# The bounds inside the unions' arms, as `schemas.ExportTaskIn.limit` says why.
OptionalPages = Annotated[int, Field(ge=1, le=MAX_PAGES), BeforeValidator(_json_integer)] | None
OptionalLimit = Annotated[int, Field(ge=1, le=MAX_INT), BeforeValidator(_json_integer)] | None


class ScheduleIn(Strict):
    kind: Kind = Field(description="crawl: a periodic start_crawl (takes pages, split); export: a periodic"
                                   " start_export (takes limit, format)")
    domain: Text = Field(min_length=1, max_length=100, examples=["美妆"])
    cron: Text = Field(min_length=1, max_length=CRON_MAX, examples=["0 3 * * *"],
                       description="five-field cron expression in the server's INFLUENCERS_TZ local time")
    name: Annotated[Text, Field(min_length=1, max_length=NAME_MAX)] | None = Field(
        None, description="default: the kind and the domain")
    missed: Missed = Field("run-once", description="occurrences missed while no scheduler ran: fired once, or skipped")
    pages: OptionalPages = Field(None, description="crawl (required): pages 1..pages")
    split: OptionalPages = Field(None, description="crawl: pages per subtask (as POST /tasks/crawl)")
    limit: OptionalLimit = Field(None, description="export: at most this many rows each time; null: all pending")
    format: ExportFormat | None = Field(None, description="export: the file format (default csv)")


class ScheduleOut(BaseModel):
    id: int
    name: str
    kind: Kind
    domain: str
    cron: str
    pages: int | None
    split: int | None
    limit: int | None
    format: ExportFormat | None
    missed: Missed
    paused: bool
    next_run_at: datetime | None = Field(description="UTC; null while paused")
    next_run_local: datetime | None = Field(description="the same in INFLUENCERS_TZ, with its offset")
    last_run_at: datetime | None = Field(description="the last recorded occurrence (UTC)")
    last_outcome: Literal["started", "skipped", "failed"] | None
    last_task_id: int | None
    last_task_status: str | None
    last_reason: str | None


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]


@router.get("", response_model=ScheduleList, summary="Every schedule with its next run and its last outcome")
def list_schedules(core: CoreDep) -> ScheduleList:
    return ScheduleList(schedules=[schedule_out(core, row) for row in _store(core).list()])


@router.post("", status_code=201, response_model=ScheduleOut, responses=error_schema_responses(400, 415),
             summary="Add a periodic crawl or export")
def add_schedule(body: ScheduleIn, response: Response, core: CoreDep) -> ScheduleOut:
    store = _store(core)
    if body.kind == "crawl":
        if body.pages is None or body.limit is not None or body.format is not None:
            raise ApiError(400, "invalid_argument", "a crawl schedule takes pages (required) and split, not limit or"
                                                    " format")
        from influencers.sites.base import pages_with_cursors

        schedule_id = store.add_crawl(body.domain, body.pages, body.split, body.cron, name=body.name,
                                      missed=body.missed,
                                      cursor_listing=pages_with_cursors(core.config.site_adapter))
    else:
        if body.pages is not None or body.split is not None:
            raise ApiError(400, "invalid_argument", "an export schedule takes limit and format, not pages or split")
        schedule_id = store.add_export(body.domain, body.cron, limit=body.limit, fmt=body.format or "csv",
                                       name=body.name, missed=body.missed)
    response.headers["Location"] = f"/api/v1/schedules/{schedule_id}"
    return _one(core, schedule_id)


@router.post("/{schedule_id}/pause", response_model=ScheduleOut, responses=error_schema_responses(404, 415),
             summary="Stop firing a schedule until it is resumed")
def pause_schedule(schedule_id: ScheduleId, core: CoreDep) -> ScheduleOut:
    _known(lambda: _store(core).pause(schedule_id))
    return _one(core, schedule_id)


@router.post("/{schedule_id}/resume", response_model=ScheduleOut, responses=error_schema_responses(404, 415),
             summary="Fire a paused schedule again, from its next occurrence after now")
def resume_schedule(schedule_id: ScheduleId, core: CoreDep) -> ScheduleOut:
    _known(lambda: _store(core).resume(schedule_id))
    return _one(core, schedule_id)


@router.delete("/{schedule_id}", status_code=204, responses=error_schema_responses(404, 415),
               summary="Forget a schedule and its runs (the tasks it started stay)")
def remove_schedule(schedule_id: ScheduleId, core: CoreDep) -> Response:
    _known(lambda: _store(core).remove(schedule_id))
    return Response(status_code=204)


# -- composing --------------------------------------------------------------------------------


def _store(core: Core) -> ScheduleStore:
    return ScheduleStore(core.conn, core.config.quota_day)


def _known(action: Any) -> None:
    try:
        action()
    except ScheduleNotFound as exc:
        raise ApiError(404, "schedule_not_found", str(exc)) from None


def _one(core: Core, schedule_id: int) -> ScheduleOut:
    try:
        return schedule_out(core, _store(core).get(schedule_id))
    except ScheduleNotFound as exc:  # removed meanwhile
        raise ApiError(404, "schedule_not_found", str(exc)) from None


def schedule_out(core: Core, row: dict[str, Any]) -> ScheduleOut:
    zone = core.config.quota_day.zone
    next_run = None if row["paused"] else as_utc(row["next_run_at"])
    return ScheduleOut(
        id=row["id"], name=row["name"], kind=row["kind"], domain=row["domain"], cron=row["cron"],
        pages=row["pages"], split=row["split"], limit=row["export_limit"], format=row["export_format"],
        missed=row["missed"], paused=row["paused"], next_run_at=next_run,
        next_run_local=next_run.astimezone(zone) if isinstance(next_run, datetime) else None,
        last_run_at=as_utc(row["last_run_at"]), last_outcome=row["last_outcome"], last_task_id=row["last_task_id"],
        last_task_status=row["last_task_status"], last_reason=row["last_reason"],
    )

