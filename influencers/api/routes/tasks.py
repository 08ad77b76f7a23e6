"""Tasks: create crawls and exports, list them with progress, show one with its history,
pause and resume. Every rule (domain names, splitting, transitions) is the scheduler's."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from influencers.api.deps import Core, CoreDep
from influencers.api.errors import ApiError, error_schema_responses
from influencers.api.schemas import (
    MAX_BIGINT,
    MAX_SUBTASKS,
    CrawlTaskIn,
    Event,
    ExportTaskIn,
    PauseIn,
    Progress,
    TaskDetail,
    TaskList,
    TaskState,
    TaskSummary,
    TaskType,
    as_utc,
)
from influencers.core import reports
from influencers.core import selection as selections
from influencers.core.selection import Selection
from influencers.core.tasks.creating import split_for, subtask_count
from influencers.sites.base import pages_with_cursors

router = APIRouter(prefix="/tasks", tags=["tasks"])
TaskId = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="task id")]
#: Unfinished and completed tasks `reports.task_progress` lists at most for the API (each).
FINISHED_WINDOW = 1000


@router.post("/crawl", status_code=201, response_model=TaskDetail, responses=error_schema_responses(400, 415),
             summary="Create a crawl: an ingestion parent task split into page-range subtasks")
def create_crawl(body: CrawlTaskIn, response: Response, core: CoreDep) -> TaskDetail:
    cursor_listing = pages_with_cursors(core.config.site_adapter)
    split = split_for(body.pages, body.split, cursor_listing=cursor_listing)
    subtasks = subtask_count(body.pages, split)
    if subtasks > MAX_SUBTASKS:
        raise ApiError(400, "invalid_argument",
                       f"pages {body.pages} split {split} makes {subtasks} subtasks; at most {MAX_SUBTASKS}"
                       " per request (raise split)")
    task_id = core.scheduler().create_crawl(body.domain, body.pages, split, cursor_listing=cursor_listing)
    response.headers["Location"] = f"/api/v1/tasks/{task_id}"
    return task_detail(core, task_id)


@router.post("/export", status_code=201, response_model=TaskDetail, responses=error_schema_responses(400, 404, 415),
             summary="Create an export task")
def create_export(body: ExportTaskIn, response: Response, core: CoreDep) -> TaskDetail:
    chosen = None
    if body.search is not None:
        chosen = selections.load(core.conn, body.search)
        if chosen is None:
            raise ApiError(404, "search_not_found", f"no saved search named {body.search!r}")
    if body.filter is not None:
        given = body.filter.model_dump(exclude_unset=True)
        chosen = dataclasses.replace(chosen or Selection(), **given)
    task_id = core.scheduler().create_export(body.domain, body.limit, body.format, chosen)
    response.headers["Location"] = f"/api/v1/tasks/{task_id}"
    return task_detail(core, task_id)


@router.get("", response_model=TaskList, summary="Unfinished tasks and recent finished ones, with progress")
def list_tasks(
    core: CoreDep,
    state: Annotated[TaskState | None, Query(description="only tasks in this state")] = None,
    task_type: Annotated[TaskType | None, Query(alias="type", description="ingestion or export")] = None,
    domain: Annotated[str | None, Query(max_length=100, description="only this domain")] = None,
    limit: Annotated[int, Query(ge=1, le=FINISHED_WINDOW, description="at most this many (the newest)")] = 200,
) -> TaskList:
    rows = [
        row for row in reports.task_progress(core.conn, include_finished=limit, unfinished=FINISHED_WINDOW)
        if (state is None or row["status"] == state)
        and (task_type is None or row["task_type"] == task_type)
        and (domain is None or row["domain"] == domain)
    ]
    return TaskList(total=len(rows), tasks=[summary(row) for row in rows[-limit:]])


@router.get("/{task_id}", response_model=TaskDetail, responses=error_schema_responses(404),
            summary="One task with its progress, subtasks and event history")
def get_task(task_id: TaskId, core: CoreDep) -> TaskDetail:
    return task_detail(core, task_id)


@router.post("/{task_id}/pause", response_model=TaskDetail, responses=error_schema_responses(404, 409, 415),
             summary="Pause a pending or running task (a parent pauses its open subtasks)")
def pause_task(task_id: TaskId, core: CoreDep, body: Annotated[PauseIn | None, Body()] = None) -> TaskDetail:
    core.scheduler().pause_task(task_id, (body or PauseIn()).reason)
    return task_detail(core, task_id)


@router.post("/{task_id}/resume", response_model=TaskDetail, responses=error_schema_responses(404, 409, 415),
             summary="Resume a paused task (a parent resumes its paused subtasks)")
def resume_task(task_id: TaskId, core: CoreDep) -> TaskDetail:
    core.scheduler().resume_task(task_id)
    return task_detail(core, task_id)


# -- composing --------------------------------------------------------------------------------


def progress(row: dict[str, Any]) -> Progress:
    if row["task_type"] == "ingestion":
        done, total = int(row["pages_done"] or 0), row["pages_total"]
        percent = min(100.0, 100.0 * done / total) if total else None
        return Progress(pages_done=done, pages_total=total, percent=percent)
    exported, pending, limit = int(row["exported_count"] or 0), int(row["rows_pending"] or 0), row["export_limit"]
    goal = min(limit, exported + pending) if limit else exported + pending
    percent = 100.0 if row["status"] == "completed" else (min(100.0, 100.0 * exported / goal) if goal else 0.0)
    return Progress(exported=exported, rows_pending=pending, percent=percent)


def summary(row: dict[str, Any]) -> TaskSummary:
    fields = {name: row.get(name) for name in TaskSummary.model_fields if name != "progress"}
    fields["is_parent"] = bool(row["is_parent"])
    return TaskSummary(**fields, progress=progress(row))


def task_detail(core: Core, task_id: int) -> TaskDetail:
    scheduler = core.scheduler()
    task = scheduler.get(task_id)
    events = [Event(**{**event, "created_at": as_utc(event["created_at"])}) for event in scheduler.events(task_id)]
    rows = reports.task_progress(core.conn, include_finished=FINISHED_WINDOW, unfinished=FINISHED_WINDOW)
    own = next((row for row in rows if row["id"] == task_id), None)
    return TaskDetail(
        id=task.id, task_type=task.task_type, domain=task.domain, status=task.status, parent_id=task.parent_id,
        is_parent=task.is_parent, page_from=task.page_from, page_to=task.page_to,
        progress_marker=task.progress_marker, export_limit=task.export_limit, export_format=task.export_format,
        export_filter=Selection.from_json(task.export_filter).filters if task.export_filter else None,
        exported_count=task.exported_count, assigned_account_id=task.assigned_account_id,
        account=own["account"] if own else _username(core, task.assigned_account_id),
        attempts=task.attempts, max_attempts=task.max_attempts,
        last_error=task.last_error, created_at=as_utc(task.created_at), updated_at=as_utc(task.updated_at),
        progress=progress(own) if own else None,
        subtasks=[summary(row) for row in rows if row["parent_id"] == task_id],
        events=events,
    )


def _username(core: Core, account_id: int | None) -> str | None:
    return core.accounts().get(account_id).username if account_id is not None else None
