"""`python -m influencers schedule …`: periodic crawls and exports, and the `scheduler` that fires them.

Every rule (cron expressions, what a crawl or an export may be, exactly-once firing) is the
core's (`influencers.core.schedules`); here are the options and the output. An unknown schedule
id is a usage error like a bad cron expression: one line, exit 2.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from influencers import scheduling
from influencers.argtypes import positive_int, utf8_text
from influencers.core.errors import InvalidArgument, ScheduleNotFound
from influencers.core.schedules import MISSED_POLICIES, ScheduleStore
from influencers.core.tasks import EXPORT_FORMATS
from influencers.tables import render

if TYPE_CHECKING:
    from influencers.cli import Context

SCHEDULE_COLUMNS = [
    ("id", "id"), ("name", "name"), ("cron", "cron"), ("domain", "domain"), ("kind", "kind"), ("what", "what"),
    ("state", "state"), ("next_run", "next run"), ("last_run", "last run"), ("last_outcome", "outcome"),
]


def store(ctx: Context) -> ScheduleStore:
    return ScheduleStore(ctx.conn, ctx.config.quota_day)


def schedule_rows(ctx: Context) -> list[dict[str, Any]]:
    """Every schedule as operators read it: times local (INFLUENCERS_TZ), the last run's outcome in words."""
    return [view(row, ctx) for row in store(ctx).list()]


def view(row: dict[str, Any], ctx: Context) -> dict[str, Any]:
    local = ctx.config.quota_day.local_time
    if row["kind"] == "crawl":
        what = f"pages 1-{row['pages']}" + (f", {row['split']} a subtask" if row["split"] else "")
    else:
        what = (row["export_format"] or "csv") + (f", at most {row['export_limit']} rows" if row["export_limit"] else "")
    return {
        **row, "what": what, "state": "paused" if row["paused"] else "active",
        "next_run": None if row["paused"] else local(row["next_run_at"]),
        "last_run": local(row["last_run_at"]) if row["last_run_at"] else None,
        "last_outcome": outcome_text(row),
    }


def outcome_text(row: dict[str, Any]) -> str | None:
    """`started task 12 (completed)`, `skipped: the previous run is unfinished …`, or None before any run."""
    if row["last_outcome"] is None:
        return None
    if row["last_outcome"] == "started":
        state = f" ({row['last_task_status']})" if row["last_task_status"] else ""
        return f"started task {row['last_task_id']}{state}"
    return f"{row['last_outcome']}: {row['last_reason']}" if row["last_reason"] else row["last_outcome"]


def _known(action: Any, schedule_id: int) -> None:
    try:
        action(schedule_id)
    except ScheduleNotFound as exc:
        raise InvalidArgument(str(exc)) from None


def cmd_add(args: argparse.Namespace, ctx: Context) -> int:
    from influencers.sites.base import pages_with_cursors

    cursor_listing = pages_with_cursors(ctx.config.site_adapter)
    schedule_id = store(ctx).add_crawl(args.domain, args.pages, args.split, args.cron, name=args.name,
                                       missed=args.missed, cursor_listing=cursor_listing)
    return _added(ctx, schedule_id)


def cmd_add_export(args: argparse.Namespace, ctx: Context) -> int:
    schedule_id = store(ctx).add_export(args.domain, args.cron, limit=args.limit, fmt=args.format, name=args.name,
                                        missed=args.missed)
    return _added(ctx, schedule_id)


def _added(ctx: Context, schedule_id: int) -> int:
    row = view(store(ctx).get(schedule_id), ctx)
    print(f"schedule {schedule_id} added: {row['kind']} {row['domain']} ({row['what']}) at {row['cron']!r},"
          f" next run {row['next_run']} {ctx.config.tz_name}")
    return 0


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    print(render(schedule_rows(ctx), SCHEDULE_COLUMNS, args.format))
    return 0


def cmd_pause(args: argparse.Namespace, ctx: Context) -> int:
    _known(store(ctx).pause, args.id)
    print(f"schedule {args.id} paused")
    return 0


def cmd_resume(args: argparse.Namespace, ctx: Context) -> int:
    _known(store(ctx).resume, args.id)
    row = view(store(ctx).get(args.id), ctx)
    print(f"schedule {args.id} resumed, next run {row['next_run']} {ctx.config.tz_name}")
    return 0


def cmd_remove(args: argparse.Namespace, ctx: Context) -> int:
    _known(store(ctx).remove, args.id)
    print(f"schedule {args.id} removed (the tasks it started stay)")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cron", required=True, type=utf8_text,
                        help="when, in INFLUENCERS_TZ local time: minute hour day month weekday, e.g. \"0 3 * * *\"")
    parser.add_argument("--name", type=utf8_text, help="a name to recognise it by (default: kind and domain)")
    parser.add_argument("--missed", choices=MISSED_POLICIES, default="run-once",
                        help="occurrences missed while no scheduler ran: fire once on start, or skip them"
                             " (default %(default)s)")


def register(commands: Any) -> None:
    """Add `schedule …` and `scheduler` to the CLI's sub-parsers."""
    schedule = commands.add_parser("schedule", help="periodic crawls and exports").add_subparsers(
        dest="schedule_command", required=True)
    add = schedule.add_parser("add", help="a periodic start_crawl")
    add.add_argument("--domain", required=True, type=utf8_text, help="the domain (领域), e.g. 美妆")
    add.add_argument("--pages", type=positive_int, required=True)
    add.add_argument("--split", type=positive_int, help="pages per subtask (as start_crawl)")
    _common(add)
    add.set_defaults(handler=cmd_add)
    export = schedule.add_parser("add-export", help="a periodic start_export of a domain's pending rows")
    export.add_argument("--domain", required=True, type=utf8_text)
    export.add_argument("--limit", type=positive_int, help="export at most this many rows each time")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="csv")
    _common(export)
    export.set_defaults(handler=cmd_add_export)
    listing = schedule.add_parser("list", help="the schedules, their next run and last outcome")
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    listing.set_defaults(handler=cmd_list)
    for name, handler, text in (("pause", cmd_pause, "stop firing a schedule until it is resumed"),
                                ("resume", cmd_resume, "fire a paused schedule again, from its next occurrence"),
                                ("remove", cmd_remove, "forget a schedule (the tasks it started stay)")):
        command = schedule.add_parser(name, help=text)
        command.add_argument("id", type=positive_int)
        command.set_defaults(handler=handler)
    scheduling.register(commands)
