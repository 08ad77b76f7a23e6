"""The owner of the ``schedules`` and ``schedule_runs`` tables: periodic crawls and exports.

A schedule is a `start_crawl` or `start_export` with a cron expression (`influencers.core.cron`,
local time in `INFLUENCERS_TZ`) and ``next_run_at``, the next occurrence not yet handled (UTC).
`python -m influencers scheduler` calls `ScheduleStore.fire_due` every few seconds; any number of
them may run at once.

**Exactly once.** An occurrence is handled in one READ COMMITTED transaction that

1. locks the schedule row (`SELECT … FOR UPDATE SKIP LOCKED`, re-checking that it is active and
   due: a scheduler that finds it locked leaves it to the one holding it);
2. decides what each due occurrence gets (`plan`): the task, a skip, or one catch-up;
3. creates the task (`tasks.creating.insert_crawl` / `insert_export` on the same cursor), inserts
   the `schedule_runs` row (unique on schedule and occurrence, the second guard), and moves
   ``next_run_at`` past the database clock's now.

All of it commits or none of it does: a scheduler killed mid-way leaves the occurrence due for the
next one, and a committed occurrence is never handled again. Occurrences at or before the latest
recorded one are never fired again either, whatever ``next_run_at`` says.

**Never twice at once.** An occurrence whose schedule's previous run still has a task pending, in
progress or paused (a crawl: any of its subtasks) is recorded `skipped`, with that reason.

**Catch-up.** The latest due occurrence is on time when it is at most `ON_TIME` old; due ones
older than that were missed while no scheduler ran (or MySQL was away). They are recorded in one
row: fired once (``missed = 'run-once'``, the default) or skipped (``'skip'``). A paused
schedule records nothing; resuming it starts from the next occurrence after now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymysql.connections import Connection

from influencers.core import cron
from influencers.core.db import run_transaction
from influencers.core.errors import InvalidArgument, ScheduleNotFound
from influencers.core.quotaday import QuotaDay
from influencers.core.tasks.creating import check_crawl, check_export, insert_crawl, insert_export

KINDS = ("crawl", "export")
MISSED_POLICIES = ("run-once", "skip")
OUTCOMES = ("started", "skipped", "failed")
UNFINISHED = ("pending", "in_progress", "paused")
#: How late the latest due occurrence may be and still count as on time (a scheduler restarting,
#: a round's wait); older due occurrences were missed.
ON_TIME = timedelta(seconds=60)
NAME_MAX = 100
MAX_INT = 2**31 - 1
REASON_MAX = 255
#: Due schedules one round handles at most (the next round takes the rest).
ROUND_LIMIT = 100

SCHEDULE_SQL = (
    "SELECT s.id, s.name, s.kind, s.domain, s.cron, s.pages, s.split, s.export_limit, s.export_format, s.missed,"
    " s.paused, s.next_run_at, s.created_at, r.occurrence_at AS last_run_at, r.outcome AS last_outcome,"
    " r.task_id AS last_task_id, r.reason AS last_reason, t.status AS last_task_status"
    " FROM schedules s"
    " LEFT JOIN schedule_runs r ON r.id = (SELECT id FROM schedule_runs WHERE schedule_id = s.id"
    "  ORDER BY occurrence_at DESC, id DESC LIMIT 1)"
    " LEFT JOIN tasks t ON t.id = r.task_id"
)


@dataclass(frozen=True)
class Decision:
    """What one `schedule_runs` row will record: an occurrence (standing for ``occurrences`` of
    them) that starts a task (``fire``) or is skipped, and why."""

    occurrence: datetime
    occurrences: int
    fire: bool
    reason: str | None = None


@dataclass(frozen=True)
class Run:
    """A recorded occurrence, as `fire_due` returns it."""

    schedule_id: int
    name: str
    occurrence_at: datetime
    outcome: str
    task_id: int | None
    reason: str | None


def plan(occurrences: list[datetime], more: bool, now: datetime, missed: str, *, on_time: timedelta = ON_TIME,
         when: Callable[[datetime], str] = str) -> list[Decision]:
    """What to record for the due ``occurrences`` (oldest first; ``more``: there were more than
    listed) at ``now``: the on-time one fires; missed ones are one row, fired once or skipped."""
    if not occurrences:
        return []
    latest = occurrences[-1]
    current = latest if not more and now - latest <= on_time else None
    late = occurrences[:-1] if current else occurrences
    if not late:
        return [Decision(latest, 1, True)]
    span = when(late[0]) + (f" to {when(late[-1])}" if len(late) > 1 else "")
    text = f"{len(late)}{'+' if more else ''} occurrence(s) missed ({span}) while no scheduler ran"
    if missed == "run-once":
        if current:
            return [Decision(current, len(late) + 1, True, f"{text}: fired once, now")]
        return [Decision(late[-1], len(late), True, f"{text}: fired once (missed: run-once)")]
    decisions = [Decision(late[-1], len(late), False, f"{text} (missed: skip)")]
    if current:
        decisions.append(Decision(current, 1, True))
    return decisions


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


class ScheduleStore:
    """Every statement that writes the schedule tables, over one connection; times in ``quota_day``'s zone."""

    def __init__(self, conn: Connection, quota_day: QuotaDay) -> None:
        self.conn = conn
        self.quota_day = quota_day

    # -- operator ------------------------------------------------------------------------------

    def add_crawl(self, domain: str, pages: int, split: int | None, expression: str, *, name: str | None = None,
                  missed: str = "run-once", cursor_listing: bool = False) -> int:
        """A periodic `start_crawl`; refused (InvalidArgument) now, not at its first occurrence,
        when the crawl or the expression cannot be made."""
        domain, _ = check_crawl(domain, pages, split, cursor_listing=cursor_listing)
        return self._add("crawl", domain, expression, name, missed, pages=pages, split=split)

    def add_export(self, domain: str, expression: str, *, limit: int | None = None, fmt: str = "csv",
                   name: str | None = None, missed: str = "run-once") -> int:
        """A periodic `start_export` of the domain's pending rows."""
        domain = check_export(domain, limit, fmt)
        if limit is not None and limit > MAX_INT:
            raise InvalidArgument(f"--limit must be {MAX_INT} or less")
        return self._add("export", domain, expression, name, missed, export_limit=limit, export_format=fmt)

    def _add(self, kind: str, domain: str, expression: str, name: str | None, missed: str, **fields: Any) -> int:
        expression = cron.validate(expression)
        if missed not in MISSED_POLICIES:
            raise InvalidArgument(f"--missed must be one of {', '.join(MISSED_POLICIES)}")
        name = _one_line(name or "", NAME_MAX + 1) or f"{kind} {domain}"
        if len(name) > NAME_MAX:
            raise InvalidArgument(f"--name is longer than {NAME_MAX} characters")

        def add(cursor: Any) -> int:
            next_run = cron.next_after(expression, self.quota_day.zone, _database_now(cursor))
            cursor.execute(
                "INSERT INTO schedules (name, kind, domain, cron, pages, split, export_limit, export_format, missed,"
                " next_run_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (name, kind, domain, expression, fields.get("pages"), fields.get("split"),
                 fields.get("export_limit"), fields.get("export_format"), missed, next_run),
            )
            return cursor.lastrowid

        return run_transaction(self.conn, add)

    def list(self) -> list[dict[str, Any]]:
        """Every schedule with its last recorded run (and that run's task state), by id."""
        def read(cursor: Any) -> list[dict[str, Any]]:
            cursor.execute(SCHEDULE_SQL + " ORDER BY s.id")
            return [_row(row) for row in cursor.fetchall()]

        return run_transaction(self.conn, read, isolation="READ COMMITTED")

    def get(self, schedule_id: int) -> dict[str, Any]:
        def read(cursor: Any) -> dict[str, Any] | None:
            cursor.execute(SCHEDULE_SQL + " WHERE s.id = %s", (schedule_id,))
            row = cursor.fetchone()
            return _row(row) if row else None

        found = run_transaction(self.conn, read, isolation="READ COMMITTED")
        if found is None:
            raise ScheduleNotFound(f"no schedule {schedule_id}")
        return found

    def runs(self, schedule_id: int, limit: int = 50) -> list[dict[str, Any]]:
        """A schedule's recorded occurrences, newest first."""
        def read(cursor: Any) -> list[dict[str, Any]]:
            cursor.execute("SELECT occurrence_at, occurrences, outcome, task_id, reason, fired_by, fired_at"
                           " FROM schedule_runs WHERE schedule_id = %s ORDER BY occurrence_at DESC LIMIT %s",
                           (schedule_id, limit))
            return list(cursor.fetchall())

        return run_transaction(self.conn, read, isolation="READ COMMITTED")

    def pause(self, schedule_id: int) -> None:
        """Stop firing until `resume`; occurrences meanwhile are not recorded. Idempotent."""
        def pause(cursor: Any) -> int:
            return cursor.execute("UPDATE schedules SET paused = TRUE WHERE id = %s", (schedule_id,))

        if not run_transaction(self.conn, pause):  # FOUND_ROWS: 0 only when there is no such row
            raise ScheduleNotFound(f"no schedule {schedule_id}")

    def resume(self, schedule_id: int) -> None:
        """Fire again from the next occurrence after now (a pause is not missed time). Idempotent."""
        def resume(cursor: Any) -> bool:
            cursor.execute("SELECT cron, paused FROM schedules WHERE id = %s FOR UPDATE", (schedule_id,))
            row = cursor.fetchone()
            if row is None:
                return False
            if row["paused"]:
                next_run = cron.next_after(row["cron"], self.quota_day.zone, _database_now(cursor))
                cursor.execute("UPDATE schedules SET paused = FALSE, next_run_at = %s WHERE id = %s",
                               (next_run, schedule_id))
            return True

        if not run_transaction(self.conn, resume):
            raise ScheduleNotFound(f"no schedule {schedule_id}")

    def remove(self, schedule_id: int) -> None:
        """Forget a schedule and its runs (the tasks it started stay)."""
        def remove(cursor: Any) -> int:
            removed = cursor.execute("DELETE FROM schedules WHERE id = %s", (schedule_id,))
            cursor.execute("DELETE FROM schedule_runs WHERE schedule_id = %s", (schedule_id,))
            return removed

        if not run_transaction(self.conn, remove):
            raise ScheduleNotFound(f"no schedule {schedule_id}")

    # -- the scheduler -------------------------------------------------------------------------

    def fire_due(self, *, actor: str, cursor_listing: bool = False, limit: int = ROUND_LIMIT) -> list[Run]:
        """Handle every due occurrence of up to ``limit`` schedules, each schedule in its own
        transaction (see the module's docstring); the runs this call recorded."""
        def due_ids(cursor: Any) -> list[int]:
            cursor.execute("SELECT id FROM schedules WHERE NOT paused AND next_run_at <= UTC_TIMESTAMP()"
                           " ORDER BY next_run_at, id LIMIT %s", (limit,))
            return [row["id"] for row in cursor.fetchall()]

        runs: list[Run] = []
        for schedule_id in run_transaction(self.conn, due_ids, isolation="READ COMMITTED"):
            runs.extend(run_transaction(self.conn, lambda cursor, sid=schedule_id: self._fire(
                cursor, sid, actor, cursor_listing), isolation="READ COMMITTED"))
        return runs

    def _fire(self, cursor: Any, schedule_id: int, actor: str, cursor_listing: bool) -> list[Run]:
        cursor.execute("SELECT id, name, kind, domain, cron, pages, split, export_limit, export_format, missed,"
                       " next_run_at, UTC_TIMESTAMP(6) AS now FROM schedules"
                       " WHERE id = %s AND NOT paused AND next_run_at <= UTC_TIMESTAMP() FOR UPDATE SKIP LOCKED",
                       (schedule_id,))
        schedule = cursor.fetchone()
        if schedule is None:  # handled meanwhile, or being handled by another scheduler right now
            return []
        zone, expression, now = self.quota_day.zone, schedule["cron"], schedule["now"]
        cursor.execute("SELECT MAX(occurrence_at) AS last FROM schedule_runs WHERE schedule_id = %s", (schedule_id,))
        last = cursor.fetchone()["last"]
        first = schedule["next_run_at"]
        if last is not None and first <= last:  # never an occurrence again that was recorded
            first = cron.next_after(expression, zone, last)
        occurrences, more = cron.due(expression, zone, first, now)
        runs = []
        for decision in plan(occurrences, more, now, schedule["missed"], when=self._when):
            outcome, task_id, reason = "skipped", None, decision.reason
            if decision.fire:
                outcome, task_id, reason = self._start(cursor, schedule, decision, cursor_listing)
            reason = _one_line(reason, REASON_MAX) if reason else None
            cursor.execute(
                "INSERT INTO schedule_runs (schedule_id, occurrence_at, occurrences, outcome, task_id, reason,"
                " fired_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (schedule_id, decision.occurrence, decision.occurrences, outcome, task_id, reason, actor[:191]),
            )
            runs.append(Run(schedule_id, schedule["name"], decision.occurrence, outcome, task_id, reason))
        handled = max([now, *occurrences[-1:], *([last] if last else [])])
        cursor.execute("UPDATE schedules SET next_run_at = %s WHERE id = %s",
                       (cron.next_after(expression, zone, handled), schedule_id))
        return runs

    def _start(self, cursor: Any, schedule: dict[str, Any], decision: Decision,
               cursor_listing: bool) -> tuple[str, int | None, str | None]:
        """The task of an occurrence, unless the previous run's is unfinished: (outcome, task, reason)."""
        busy = _unfinished_previous(cursor, schedule["id"])
        if busy:
            return "skipped", None, busy
        origin = f"schedule {schedule['id']} {'start_crawl' if schedule['kind'] == 'crawl' else 'start_export'}"
        try:
            if schedule["kind"] == "crawl":
                task_id = insert_crawl(cursor, schedule["domain"], schedule["pages"], schedule["split"],
                                       cursor_listing=cursor_listing, origin=origin)
            else:
                task_id = insert_export(cursor, schedule["domain"], schedule["export_limit"],
                                        schedule["export_format"] or "csv", origin=origin)
        except InvalidArgument as exc:  # checked before any insert: nothing to undo
            return "failed", None, f"cannot create the task: {exc}"
        return "started", task_id, decision.reason

    def _when(self, instant: datetime) -> str:
        return f"{self.quota_day.local_time(instant):%Y-%m-%d %H:%M}"


def _unfinished_previous(cursor: Any, schedule_id: int) -> str | None:
    """Why the schedule's previous run is still going (its task, or a crawl's subtask, is
    pending, in progress or paused), or None."""
    cursor.execute("SELECT task_id FROM schedule_runs WHERE schedule_id = %s AND outcome = 'started'"
                   " ORDER BY occurrence_at DESC LIMIT 1", (schedule_id,))
    row = cursor.fetchone()
    if row is None or row["task_id"] is None:
        return None
    previous = row["task_id"]
    cursor.execute("SELECT id, status FROM tasks WHERE (id = %s OR parent_id = %s) AND NOT is_parent"
                   " AND status IN ('pending', 'in_progress', 'paused') ORDER BY id LIMIT 1", (previous, previous))
    open_task = cursor.fetchone()
    if open_task is None:
        return None
    which = "" if open_task["id"] == previous else f": subtask {open_task['id']} is {open_task['status']}"
    state = "" if which else f" ({open_task['status']})"
    return f"the previous run is unfinished: task {previous}{state}{which}"


def _database_now(cursor: Any) -> datetime:
    cursor.execute("SELECT UTC_TIMESTAMP(6) AS now")
    return cursor.fetchone()["now"]


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "paused": bool(row["paused"])}
