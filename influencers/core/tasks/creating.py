"""Creating tasks: `start_crawl`'s parent and page-range subtasks, a domain's own task, an export.

A part of `TaskScheduler` (which inherits it): every task is created here, with its `created`
event in the same transaction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pymysql.connections import Connection

from influencers.core.db import run_transaction
from influencers.core.errors import InvalidArgument
from influencers.core.events import record_event
from influencers.core.selection import Selection
from influencers.core.tasks.model import EXPORT_FORMATS, id_marker, validate_domain

DEFAULT_SPLIT = 10  # pages per subtask of a page platform's crawl
#: The most pages one `start_crawl` may plan, and the most subtasks it may split them into (all
#: are created in one transaction); the CLI and the API (`influencers.api.schemas`) share these.
MAX_PAGES = 100_000
MAX_SUBTASKS = 1_000


def split_for(pages: int, split: int | None, *, cursor_listing: bool) -> int:
    """The pages per subtask of a crawl of ``pages`` pages asked for with ``split`` (None: the
    default); InvalidArgument for a split a cursor platform cannot read."""
    if split is None:
        return pages if cursor_listing else DEFAULT_SPLIT
    if split < 1:
        raise InvalidArgument("--split must be 1 or more")
    if cursor_listing and split < pages:
        raise InvalidArgument(f"the platform pages with cursors (page n is read with page n-1's cursor), so a crawl"
                              f" cannot be split into page ranges: leave out --split {split}")
    return split


def subtask_count(pages: int, split: int) -> int:
    """How many page-range subtasks `pages` pages make at `split` pages a subtask."""
    return -(-pages // split)


class TaskCreation:
    conn: Connection

    def create_crawl(self, domain: str, pages: int, split: int | None = None, *, cursor_listing: bool = False) -> int:
        """The seed's `start_crawl`: an ingestion parent task and page-range subtasks of ``split``
        pages (default `DEFAULT_SPLIT`). On a platform that pages with cursors
        (``cursor_listing``) page *n* can only be read after page *n - 1*: one subtask reads
        them all, and a split into ranges is refused."""
        domain, split = check_crawl(domain, pages, split, cursor_listing=cursor_listing)  # before MySQL is asked
        return run_transaction(self.conn, lambda cursor: insert_crawl(cursor, domain, pages, split,
                                                                      cursor_listing=cursor_listing))

    def find_or_create_domain_task(self, domain: str, pages: int | None = None) -> int:
        """The unfinished stand-alone ingestion task of a domain, or a new one (`-a domain=`).

        A failed one counts as unfinished: running the crawl again resumes from its marker.
        """
        domain = validate_domain(domain)
        if pages is not None and pages < 1:
            raise InvalidArgument("pages must be 1 or more")

        def find_or_create(cursor: Any) -> int:
            cursor.execute(
                "SELECT id, status FROM tasks WHERE task_type = 'ingestion' AND domain = %s AND parent_id IS NULL"
                " AND NOT is_parent AND status IN ('pending', 'in_progress', 'paused', 'failed')"
                " ORDER BY status = 'failed', id DESC LIMIT 1 FOR UPDATE",
                (domain,),
            )
            row = cursor.fetchone()
            if row and row["status"] == "failed":  # rerunning a failed crawl resumes from its marker
                cursor.execute("UPDATE tasks SET status = 'pending', attempts = 0, not_before = NULL WHERE id = %s",
                               (row["id"],))
                record_event(cursor, "task", row["id"], "resumed", from_status="failed", to_status="pending",
                             task_id=row["id"], reason="crawl of the domain started again")
            if row:
                return row["id"]
            cursor.execute(
                "INSERT INTO tasks (task_type, domain, status, page_from, page_to) VALUES ('ingestion', %s, 'pending', 1, %s)",
                (domain, pages),
            )
            task_id = cursor.lastrowid
            record_event(cursor, "task", task_id, "created", to_status="pending", task_id=task_id,
                         reason=f"crawl {domain} " + (f"pages 1-{pages}" if pages else "to the end of the listing"))
            return task_id

        return run_transaction(self.conn, find_or_create)

    def create_export(self, domain: str, limit: int | None = None, fmt: str = "csv",
                      selection: Selection | None = None) -> int:
        """An export of ``domain``'s pending rows; with ``selection``, only the rows it selects
        (its domain is the task's; the filter is stored with the task)."""
        domain = check_export(domain, limit, fmt)  # before MySQL is asked
        return run_transaction(self.conn, lambda cursor: insert_export(cursor, domain, limit, fmt, selection))


# Cursor-level: the task made in the caller's transaction, so that a schedule's run
# (`influencers.core.schedules`) commits with the task it started, or not at all.


def check_crawl(domain: str, pages: int, split: int | None, *, cursor_listing: bool) -> tuple[str, int]:
    """The domain as stored and the pages per subtask of a crawl; InvalidArgument for what cannot be made."""
    domain = validate_domain(domain)
    if pages < 1:
        raise InvalidArgument("--pages must be 1 or more")
    if pages > MAX_PAGES:
        raise InvalidArgument(f"--pages {pages} is more than {MAX_PAGES} pages")
    split = split_for(pages, split, cursor_listing=cursor_listing)
    subtasks = subtask_count(pages, split)
    if subtasks > MAX_SUBTASKS:
        raise InvalidArgument(f"--pages {pages} --split {split} makes {subtasks} subtasks; at most"
                              f" {MAX_SUBTASKS} (raise --split)")
    return domain, split


def insert_crawl(cursor: Any, domain: str, pages: int, split: int | None = None, *, cursor_listing: bool = False,
                 origin: str = "start_crawl") -> int:
    """`create_crawl` within the caller's transaction; ``origin`` opens the `created` event's reason."""
    domain, split = check_crawl(domain, pages, split, cursor_listing=cursor_listing)
    cursor.execute(
        "INSERT INTO tasks (task_type, domain, status, is_parent, page_from, page_to)"
        " VALUES ('ingestion', %s, 'pending', TRUE, 1, %s)",
        (domain, pages),
    )
    parent_id = cursor.lastrowid
    record_event(cursor, "task", parent_id, "created", to_status="pending", task_id=parent_id,
                 reason=f"{origin} {domain} pages 1-{pages}, {split} a subtask")
    for first in range(1, pages + 1, split):
        last = min(first + split - 1, pages)
        cursor.execute(
            "INSERT INTO tasks (task_type, domain, status, parent_id, page_from, page_to)"
            " VALUES ('ingestion', %s, 'pending', %s, %s, %s)",
            (domain, parent_id, first, last),
        )
        record_event(cursor, "task", cursor.lastrowid, "created", to_status="pending",
                     task_id=cursor.lastrowid, reason=f"pages {first}-{last} of task {parent_id}")
    return parent_id


def check_export(domain: str, limit: int | None, fmt: str) -> str:
    """The domain as stored; InvalidArgument for an export that cannot be made."""
    domain = validate_domain(domain)
    if limit is not None and limit < 1:
        raise InvalidArgument("--limit must be 1 or more")
    if fmt not in EXPORT_FORMATS:
        raise InvalidArgument(f"--format must be one of {', '.join(EXPORT_FORMATS)}")
    return domain


def insert_export(cursor: Any, domain: str, limit: int | None = None, fmt: str = "csv",
                  selection: Selection | None = None, *, origin: str = "start_export") -> int:
    """`create_export` within the caller's transaction; ``origin`` opens the `created` event's reason."""
    domain = check_export(domain, limit, fmt)
    export_filter = None
    if selection is not None:
        selection = dataclasses.replace(selection, domain=None, status=None)
        export_filter = selection.to_json() if selection.filters else None
    filtered = f" where {selection.describe()}" if export_filter and selection else ""
    cursor.execute(
        "INSERT INTO tasks (task_type, domain, status, export_limit, export_format, export_filter,"
        " progress_marker) VALUES ('export', %s, 'pending', %s, %s, %s, %s)",
        (domain, limit, fmt, export_filter, id_marker(0)),
    )
    task_id = cursor.lastrowid
    record_event(cursor, "task", task_id, "created", to_status="pending", task_id=task_id,
                 reason=(f"{origin} {domain} {fmt}" + (f" limit {limit}" if limit else "") + filtered)[:1024])
    return task_id
