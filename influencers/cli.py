"""`python -m influencers …`: the operator's commands over the shared core.

Every known failure (bad argument, missing setting, MySQL down, wrong key) ends as one line on
stderr and a non-zero exit: 2 for usage and configuration, 1 for everything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from influencers import dispatch, progress
from influencers.api import register as register_api
from influencers.argtypes import OneLineParser, iso_date, positive_int, utf8_text
from influencers.cli_accounts import ACCOUNT_COLUMNS, account_rows
from influencers.cli_accounts import register as register_accounts
from influencers.cli_alerts import register as register_alerts
from influencers.cli_schedules import SCHEDULE_COLUMNS, schedule_rows
from influencers.cli_schedules import register as register_schedules
from influencers.cli_search import add_filter_arguments, option_values_joined, selection_of
from influencers.cli_search import register as register_search
from influencers.core import counts, profilefill, reports
from influencers.core.accounts import AccountManager
from influencers.core.config import Config, get_config
from influencers.core.credentials import CredentialCipher
from influencers.core.db import connect
from influencers.core.errors import (
    ConfigError,
    DatabaseUnavailable,
    InfluencersError,
    InvalidArgument,
    SchemaMissing,
)
from influencers.core.identities import IdentityStore
from influencers.core.schema import apply_schema, migration_status
from influencers.core.selection import Selection
from influencers.core.sizing import index_fit
from influencers.core.tasks import EXPORT_FORMATS, TaskScheduler, validate_domain
from influencers.core.tasks.creating import DEFAULT_SPLIT, split_for, subtask_count
from influencers.sites.base import configured_adapter, pages_with_cursors
from influencers.tables import json_text, render

logger = logging.getLogger("influencers")
#: Exit 2: the command could not start (bad usage or configuration, no database to talk to).
USAGE_ERRORS = (ConfigError, InvalidArgument, DatabaseUnavailable, SchemaMissing)
Handler = Callable[[argparse.Namespace, "Context"], int]


class Context:
    """Lazily opened core objects, so `--help` and argument errors never touch MySQL."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._conn = connect(self.config.mysql)
        return self._conn

    def accounts(self, *, with_cipher: bool = False) -> AccountManager:
        cipher = CredentialCipher.from_config(self.config) if with_cipher else None
        return AccountManager(self.conn, quota_day=self.config.quota_day, cipher=cipher)

    def identities(self, *, with_cipher: bool = False) -> IdentityStore:
        cipher = CredentialCipher.from_config(self.config) if with_cipher else None
        return IdentityStore(self.conn, cipher=cipher)

    def scheduler(self) -> TaskScheduler:
        return TaskScheduler(self.conn, None, self.accounts())

    def local(self, row: dict[str, Any], *keys: str) -> dict[str, Any]:
        """A copy of `row` with the named UTC datetimes in INFLUENCERS_TZ (what operators read)."""
        return {**row, **{key: reports.to_local(row.get(key), self.config.quota_day) for key in keys}}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# -- commands ---------------------------------------------------------------------------------


def cmd_db_init(args: argparse.Namespace, ctx: Context) -> int:
    applied = apply_schema(ctx.config.mysql)
    for migration_id in applied:
        print(f"applied  {migration_id}")
    done = f"{len(applied)} migration(s) applied" if applied else "nothing to apply"
    print(f"schema of {ctx.config.mysql.display} is up to date ({done})")
    if profilefill.pending(ctx.conn):
        adapter = configured_adapter(ctx.config.site_adapter, ctx.config.site_url)
        with progress.bar("filling typed fields", total=profilefill.ids_left(ctx.conn), unit="row") as bar:
            filled = profilefill.fill(ctx.conn, adapter.profile, progress=lambda so_far: bar.update(so_far - bar.n))
        print(f"typed fields filled for {filled} stored row(s) by {adapter.name}")
    return 0


def cmd_db_status(args: argparse.Namespace, ctx: Context) -> int:
    states = migration_status(ctx.config.mysql)
    for state in states:
        print(state.line())
    if any(state.applied for state in states):
        print(index_fit(ctx.conn).line())
    return 0


def cmd_db_recount(args: argparse.Namespace, ctx: Context) -> int:
    counts.recount(ctx.conn)
    pending = counts.pending_by_domain(ctx.conn)
    print(f"domain counts rebuilt from the rows: {sum(pending.values())} pending in {len(pending)} domain(s)")
    return 0


def cmd_start_crawl(args: argparse.Namespace, ctx: Context) -> int:
    domain = validate_domain(args.domain)  # as stored: NFKC-normalised
    cursor_listing = pages_with_cursors(ctx.config.site_adapter)
    split = split_for(args.pages, args.split, cursor_listing=cursor_listing)  # refused before MySQL is asked
    parent = ctx.scheduler().create_crawl(domain, args.pages, split, cursor_listing=cursor_listing)
    subtasks = subtask_count(args.pages, split)
    print(f"ingestion task {parent} created for {domain}: pages 1-{args.pages} in {subtasks} subtask(s)")
    return 0


def cmd_start_export(args: argparse.Namespace, ctx: Context) -> int:
    chosen = selection_of(args, ctx)
    if chosen.domain is None:
        raise InvalidArgument("--domain is required (or a saved --search with a domain)")
    domain = validate_domain(chosen.domain)  # as stored: NFKC-normalised
    task_id = ctx.scheduler().create_export(domain, args.limit, args.format, chosen)
    limit = f", at most {args.limit} rows" if args.limit else ""
    only = dataclasses.replace(chosen, domain=None)
    selected = f", only {only.describe()}" if only.filters else ""
    print(f"export task {task_id} created for {domain} ({args.format}{limit}{selected})")
    return 0


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    accounts = ctx.accounts()
    tasks = reports.task_progress(ctx.conn, unfinished=args.tasks)
    for row in tasks:
        row["progress"] = _progress(row)
    sections = [
        ("Tasks by state", reports.task_counts(ctx.conn), COUNT_COLUMNS),
        ("Tasks", tasks, TASK_COLUMNS),
        ("Accounts", account_rows(ctx, table=args.format == "table"), ACCOUNT_COLUMNS),
        ("Pending export backlog", reports.backlog(ctx.conn, accounts), BACKLOG_COLUMNS),
        ("Schedules", schedule_rows(ctx), SCHEDULE_COLUMNS),
    ]
    if args.format == "table":
        print("\n\n".join(f"{title}\n{render(rows, columns)}" for title, rows, columns in sections))
    else:
        document = {title: [{k: row.get(k) for k, _ in cols} for row in rows] for title, rows, cols in sections}
        print(json_text(document))
    return 0


def _progress(row: dict[str, Any]) -> str:
    if row["task_type"] == "ingestion":
        total = row["pages_total"] if row["pages_total"] is not None else "?"
        return f"{row['pages_done']}/{total} pages"
    limit = f"/{row['export_limit']}" if row["export_limit"] else ""
    if row.get("export_filter"):
        only = Selection.from_json(row["export_filter"]).describe()
        return f"{row['exported_count']}{limit} exported of {only}, ≤ {row['rows_pending']} pending"
    return f"{row['exported_count']}{limit} exported, {row['rows_pending']} pending"


def cmd_report(args: argparse.Namespace, ctx: Context) -> int:
    options = {"quota_day": ctx.config.quota_day, "day": args.date, "domain": args.domain, "account": args.account}
    if args.kind == "ingestion":
        rows = reports.ingestion_report(ctx.conn, details=args.details, **options)
        columns = INGESTION_DETAIL_COLUMNS if args.details else INGESTION_COLUMNS
    else:
        rows = reports.export_report(ctx.conn, **options)
        columns = EXPORT_COLUMNS
    _, _, day = reports.local_day_bounds(args.date, ctx.config.quota_day)
    if args.format == "table":
        print(f"{args.kind} report for {day} ({ctx.config.tz_name})")
    print(render(rows, columns, args.format))
    return 0


def cmd_task_show(args: argparse.Namespace, ctx: Context) -> int:
    scheduler = ctx.scheduler()
    task = scheduler.get(args.id)
    print(f"task {task.id}: {task.task_type} {task.domain} {task.status} marker={task.progress_marker or '-'}"
          f" account={task.assigned_account_id or '-'} attempts={task.attempts}"
          + (f" filter: {Selection.from_json(task.export_filter).describe()}" if task.export_filter else "")
          + (f" last_error={task.last_error}" if task.last_error else ""))
    print(render([ctx.local(event, "created_at") for event in scheduler.events(args.id)], EVENT_COLUMNS, args.format))
    return 0


def cmd_task_pause(args: argparse.Namespace, ctx: Context) -> int:
    ctx.scheduler().pause_task(args.id, args.reason)
    print(f"task {args.id} paused")
    return 0


def cmd_task_resume(args: argparse.Namespace, ctx: Context) -> int:
    ctx.scheduler().resume_task(args.id)
    print(f"task {args.id} resumed")
    return 0


COUNT_COLUMNS = [("task_type", "type"), ("status", "state"), ("tasks", "subtasks")]
TASK_COLUMNS = [
    ("id", "id"), ("task_type", "type"), ("domain", "domain"), ("status", "state"), ("parent_id", "parent"),
    ("progress", "progress"), ("progress_marker", "marker"), ("account", "account"), ("attempts", "attempts"),
    ("last_error", "last error"),
]
INGESTION_COLUMNS = [
    ("domain", "domain"), ("account", "account"), ("influencers", "influencers"), ("pages", "pages"),
    ("first_page", "first page"), ("last_page", "last page"), ("first_time", "first"), ("last_time", "last"),
]
INGESTION_DETAIL_COLUMNS = [
    ("domain", "domain"), ("account", "account"), ("task_id", "task"), ("page_number", "page"),
    ("influencers", "influencers"), ("start_time", "start"), ("end_time", "end"), ("nicknames", "nicknames"),
]
EXPORT_COLUMNS = [
    ("account", "account"), ("domain", "domain"), ("rows_exported", "rows"), ("files", "files"),
    ("first_time", "first"), ("last_time", "last"), ("paths", "paths"),
]
BACKLOG_COLUMNS = [("domain", "domain"), ("pending", "pending rows"), ("daily_quota", "quota/day"),
                   ("days_needed", "days needed")]
EVENT_COLUMNS = [
    ("created_at", "time"), ("entity", "entity"), ("entity_id", "id"), ("event", "event"),
    ("from_status", "from"), ("to_status", "to"), ("account_id", "account"), ("worker", "worker"),
    ("reason", "reason"),
]


# -- parser -----------------------------------------------------------------------------------





def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m influencers", description="Influencer crawling: tasks, accounts, status.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    db = commands.add_parser("db", help="database set-up").add_subparsers(dest="db_command", required=True)
    db.add_parser("init", help="create the database if missing and apply the pending migrations of sql/migrations/"
                  ).set_defaults(handler=cmd_db_init)
    db.add_parser("status", help="the migrations applied to the database and those pending, one per line, and whether"
                  " the buffer pool holds the indexes"
                  ).set_defaults(handler=cmd_db_status)
    db.add_parser("recount", help="rebuild the kept rows-per-domain counts from the influencers table (after rows"
                  " were loaded or changed around the application)").set_defaults(handler=cmd_db_recount)

    register_accounts(commands)
    register_search(commands)
    register_schedules(commands)
    register_alerts(commands)

    crawl = commands.add_parser("start_crawl", help="create an ingestion task split into page-range subtasks")
    crawl.add_argument("--domain", required=True, type=utf8_text, help="the domain (领域), e.g. 美妆")
    crawl.add_argument("--pages", type=positive_int, required=True)
    crawl.add_argument("--split", type=positive_int, help=f"pages per subtask (default {DEFAULT_SPLIT}; a platform"
                       " that pages with cursors is read by one subtask and takes no --split)")
    crawl.set_defaults(handler=cmd_start_crawl)

    export = commands.add_parser("start_export", help="create an export task (of the rows a search selects, with"
                                 " its filters)")
    add_filter_arguments(export, status=False)
    export.add_argument("--limit", type=positive_int, help="export at most this many rows")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="csv")
    export.set_defaults(handler=cmd_start_export)

    status = commands.add_parser("status", help="tasks, accounts, quotas and backlog at a glance")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.add_argument("--tasks", type=positive_int, default=reports.UNFINISHED_LISTED, metavar="N",
                        help="list at most N unfinished tasks (default %(default)s; 'Tasks by state' counts all)")
    status.set_defaults(handler=cmd_status)

    report = commands.add_parser("report", help="who ingested or exported what, on a local day")
    report.add_argument("kind", choices=("ingestion", "export"))
    report.add_argument("--date", type=iso_date, help="local date YYYY-MM-DD (default: today)")
    report.add_argument("--domain", type=utf8_text)
    report.add_argument("--account", type=utf8_text, help="username or id")
    report.add_argument("--details", action="store_true", help="ingestion: one row per page with the nicknames")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.set_defaults(handler=cmd_report)

    task = commands.add_parser("task", help="one task").add_subparsers(dest="task_command", required=True)
    show = task.add_parser("show", help="a task and its event history")
    show.add_argument("id", type=positive_int)
    show.add_argument("--format", choices=("table", "csv", "json"), default="table")
    show.set_defaults(handler=cmd_task_show)
    pause = task.add_parser("pause", help="pause a task until it is resumed")
    pause.add_argument("id", type=positive_int)
    pause.add_argument("--reason", default="paused by operator", type=utf8_text)
    pause.set_defaults(handler=cmd_task_pause)
    resume = task.add_parser("resume", help="resume a paused task")
    resume.add_argument("id", type=positive_int)
    resume.set_defaults(handler=cmd_task_resume)

    dispatch.register(commands)
    register_api(commands)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(option_values_joined(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx: Context | None = None
    try:
        ctx = Context(get_config())
        handler: Handler = args.handler
        return handler(args, ctx)
    except USAGE_ERRORS as exc:
        print(f"influencers: error: {exc}", file=sys.stderr)
        return 2
    except InfluencersError as exc:
        print(f"influencers: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if ctx is not None:
            ctx.close()
