"""The data of `bench.growth`: a deployment's history after months of work, generated as files and
loaded with ``LOAD DATA LOCAL INFILE`` (the server's own bulk path), streamed in chunks.

The history is what the services would have written, consistent with itself: start_crawl jobs
(a parent and page-range subtasks, a domain each, round robin over the domains), one
``ingestion_logs`` row per committed page of the completed subtasks, the influencers of those
pages (each log's rows follow each other in id order, so a domain's rows come in runs of a job's
size, as crawls write them), each domain's newest rows ``pending_export`` and the older ones
``exported`` in published batches of 5,000 (``export_logs`` with the batch's id range, under
export tasks), logs and batches spread over the last 30 days with a thirtieth today. The unfinished
tasks are the newest subtasks (pending, held back by ``not_before`` so that no crawl of the bench
claims them; in progress, held by live workers whose locks the bench holds) and some paused
(by an operator) and failed ones among the old. No events, budgets or identities.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import dumps, make_raw
from influencers.core.quotaday import QuotaDay

DOMAINS = ("美妆", "游戏", "美食", "穿搭", "母婴", "科技", "旅行", "汽车")
EXPORT_DOMAIN = DOMAINS[0]
SUBTASKS_PER_JOB = 10
BATCH_ROWS = 5000
DAYS = 30
CHUNK_ROWS = 250_000
WORKERS = ("growth-worker-1", "growth-worker-2")  # claimed_by of the in-progress tasks; the bench holds their locks
_TSV = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
_UID_MARK = "\x01UID\x01"
NULL = "\\N"

INFLUENCER_COLUMNS = "(uid, nickname, domain, source_page, raw_data, status, ingested_at, ingestion_log_id, export_log_id)"
LOG_COLUMNS = "(id, task_id, account_id, domain, page_number, ingested_count, start_time, end_time, source_url)"
EXPORT_LOG_COLUMNS = ("(id, task_id, account_id, domain, exported_count, file_path, start_time, end_time, state, quota_date,"
                      " first_id, last_id, export_format)")
TASK_COLUMNS = ("(id, task_type, domain, status, progress_marker, assigned_account_id, created_at, updated_at, parent_id,"
                " is_parent, page_from, page_to, export_format, exported_count, claimed_by, lease_token,"
                " lease_expires_at, heartbeat_at, attempts, not_before, last_error)")


@dataclass(frozen=True)
class Sizes:
    """What a large database holds; a kept database is reused only with the same sizes."""

    rows: int
    logs: int
    tasks: int
    accounts: int
    export_rows: int
    pending_share: float = 0.10

    def key(self) -> str:
        return (f"rows={self.rows} logs={self.logs} tasks={self.tasks} accounts={self.accounts}"
                f" export_rows={self.export_rows} pending={self.pending_share} v1")


@dataclass
class Task:
    id: int
    kind: str
    domain: str
    status: str = "completed"
    parent: int | None = None
    is_parent: bool = False
    page_from: int | None = None
    page_to: int | None = None
    logs: tuple[int, int] = (0, 0)  # [first, end) of its log numbers
    account: int | None = None
    exported: int = 0
    last_id: int = 0


@dataclass
class Layout:
    """Every task and the mapping rows → logs → subtasks, computed before any file is written."""

    sizes: Sizes
    tasks: list[Task] = field(default_factory=list)
    completed: list[Task] = field(default_factory=list)  # subtasks with logs, in order
    domain_rows: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    export_tasks: dict[str, list[Task]] = field(default_factory=dict)


def plan(sizes: Sizes) -> Layout:
    """Tasks (ids from 1), the completed subtasks' logs, and each domain's rows and pending rows."""
    layout = Layout(sizes)
    exports = max(len(DOMAINS), sizes.tasks // 100)
    ingestion = sizes.tasks - exports
    jobs = max(1, math.ceil(ingestion / (SUBTASKS_PER_JOB + 1)))
    subtasks = ingestion - jobs
    if subtasks < 20 or sizes.logs < subtasks // 2 or sizes.rows < sizes.logs:
        raise SystemExit("bench.growth: need --tasks ≥ 250, --logs ≥ half the subtasks and --rows ≥ --logs")
    special = _special_states(subtasks, sizes.tasks)
    next_id, sub_index, export_index = 1, 0, 0
    for job in range(jobs):
        domain = DOMAINS[job % len(DOMAINS)]
        parent = Task(next_id, "ingestion", domain, is_parent=True)
        layout.tasks.append(parent)
        next_id += 1
        children = []
        for position in range(min(SUBTASKS_PER_JOB, subtasks - sub_index)):
            child = Task(next_id, "ingestion", domain, special.get(sub_index, "completed"), parent.id)
            child.page_from = position * 100 + 1
            children.append(child)
            layout.tasks.append(child)
            next_id, sub_index = next_id + 1, sub_index + 1
        parent.status = _parent_status([c.status for c in children])
        while export_index < exports and export_index * jobs < (job + 1) * exports:
            kind_domain = DOMAINS[export_index % len(DOMAINS)]
            task = Task(next_id, "export", kind_domain, "failed" if export_index % 50 == 49 else "completed")
            layout.tasks.append(task)
            layout.export_tasks.setdefault(kind_domain, []).append(task)
            next_id, export_index = next_id + 1, export_index + 1
    layout.completed = [t for t in layout.tasks if not t.is_parent and t.kind == "ingestion" and t.status == "completed"]
    count = len(layout.completed)
    for number, task in enumerate(layout.completed):
        task.logs = (number * sizes.logs // count, (number + 1) * sizes.logs // count)
        task.page_to = task.page_from + max(0, task.logs[1] - task.logs[0] - 1)
        first, end = (log * sizes.rows // sizes.logs for log in task.logs)
        layout.domain_rows[task.domain] = layout.domain_rows.get(task.domain, 0) + end - first
    others = round((sizes.pending_share * sizes.rows - sizes.export_rows) / (len(DOMAINS) - 1))
    for domain, rows in layout.domain_rows.items():
        layout.pending[domain] = max(0, min(rows, sizes.export_rows if domain == EXPORT_DOMAIN else others))
    if layout.domain_rows.get(EXPORT_DOMAIN, 0) < sizes.export_rows:
        raise SystemExit(f"bench.growth: {EXPORT_DOMAIN} gets {layout.domain_rows.get(EXPORT_DOMAIN, 0):,} rows,"
                         f" fewer than --export-rows {sizes.export_rows:,}; raise --rows")
    return layout


def _special_states(subtasks: int, tasks: int) -> dict[int, str]:
    """Subtask index → state for the unfinished: the newest pending or in progress, some old paused
    or failed."""
    states: dict[int, str] = {}
    in_progress, pending = min(10, max(1, tasks // 10_000)), max(2, tasks // 500)
    for offset in range(in_progress + pending):
        states[subtasks - 1 - offset] = "in_progress" if offset < in_progress else "pending"
    for count, state, phase in ((max(1, tasks // 1000), "failed", 3), (max(1, tasks // 2000), "paused", 7)):
        step = max(1, (subtasks - in_progress - pending) // count)
        for number in range(count):
            states.setdefault(number * step + phase % step, state)
    return states


def _parent_status(children: list[str]) -> str:
    if "in_progress" in children or ("pending" in children and "completed" in children):
        return "in_progress"
    for state in ("pending", "failed", "paused"):
        if state in children:
            return state
    return "completed"


# -- time ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """Stored times (naive UTC): the last ``DAYS`` local days, a thirtieth of the activity today."""

    now: datetime
    midnight: datetime  # today's local midnight, in UTC
    quota_day: QuotaDay

    @classmethod
    def of(cls, quota_day: QuotaDay) -> Clock:
        today = quota_day.today()
        return cls(datetime.now(UTC).replace(microsecond=0, tzinfo=None), quota_day.day_bounds(today)[0], quota_day)

    def at(self, number: int, total: int) -> datetime:
        """The time of the number-th of ``total`` events in order: the last thirtieth today."""
        today_first = total - max(1, total // DAYS)
        if number >= today_first:
            span = max(60.0, (self.now - self.midnight).total_seconds() - 60)
            return self.midnight + timedelta(seconds=span * (number - today_first) / max(1, total - today_first))
        start = self.midnight - timedelta(days=DAYS - 1)
        return start + timedelta(seconds=(DAYS - 1) * 86400 * number / max(1, today_first))

    def today(self) -> date:
        return self.quota_day.local_date(self.now)


def sql_time(value: datetime | None) -> str:
    return NULL if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


# -- files --------------------------------------------------------------------------------------


class Templates:
    """~600-byte raw_data documents per domain (bench.common.make_raw), with the uid left open:
    a row costs a str.replace instead of a json.dumps."""

    def __init__(self, per_domain: int = 256, seed: int = 21) -> None:
        rng = random.Random(seed)
        self.rows: dict[str, list[tuple[str, str]]] = {}
        for domain in DOMAINS:
            items = []
            for index in range(per_domain):
                raw = make_raw(rng, domain, _UID_MARK, index)
                items.append((raw["nickname"].translate(_TSV), dumps(raw).translate(_TSV)))
            self.rows[domain] = items

    def line(self, uid: str, domain: str, index: int, tail: str) -> str:
        nickname, raw = self.rows[domain][index % 256]
        page = index // 20 + 1
        return f"{uid}\t{nickname}\t{domain}\thttps://sandbox.invalid/api?page={page}\t{raw.replace(_UID_MARK, uid)}\t{tail}\n"


def influencer_lines(layout: Layout, clock: Clock, templates: Templates,
                     export_logs: list[str]) -> Iterator[str]:
    """Every influencer as a LOAD DATA line, in id order (ids from 1); fills ``export_logs`` with
    the batches as they close and each export task's count and last id."""
    sizes = layout.sizes
    seen = dict.fromkeys(layout.domain_rows, 0)
    open_batch: dict[str, list[int]] = {}  # domain -> [export log id, first id, count, batch number]
    batches = {d: math.ceil((layout.domain_rows[d] - layout.pending[d]) / BATCH_ROWS) for d in layout.domain_rows}
    total_batches = sum(batches.values())
    next_batch, row_id = 1, 0
    for task in layout.completed:
        domain = task.domain
        exported_rows = layout.domain_rows[domain] - layout.pending[domain]
        for log in range(*task.logs):
            when = clock.at(log, sizes.logs)
            log_tail = f"{sql_time(when)}\t{log + 1}"
            for _ in range(log * sizes.rows // sizes.logs, (log + 1) * sizes.rows // sizes.logs):
                row_id += 1
                number = seen[domain]
                seen[domain] = number + 1
                if number >= exported_rows:
                    yield templates.line(f"g{row_id:09d}", domain, row_id, f"pending_export\t{log_tail}\t0")
                    continue
                batch = open_batch.get(domain)
                if batch is None:
                    batch = open_batch[domain] = [next_batch, row_id, 0, number // BATCH_ROWS]
                    next_batch += 1
                batch[2] += 1
                yield templates.line(f"g{row_id:09d}", domain, row_id, f"exported\t{log_tail}\t{batch[0]}")
                if batch[2] == BATCH_ROWS or number + 1 == exported_rows:
                    export_logs.append(_export_log(layout, clock, domain, batch, row_id, batches[domain], total_batches))
                    del open_batch[domain]


def _export_log(layout: Layout, clock: Clock, domain: str, batch: list[int], last_id: int, domain_batches: int,
                total: int) -> str:
    log_id, first_id, count, number = batch
    tasks = layout.export_tasks.get(domain) or next(iter(layout.export_tasks.values()))
    task = tasks[number * len(tasks) // domain_batches]
    task.exported += count
    task.last_id = last_id
    task.account = (log_id % layout.sizes.accounts) + 1
    start = clock.at(log_id - 1, total)
    fields = (log_id, task.id, task.account, domain, count, f"{domain}/export-{task.id}-{log_id}.csv", sql_time(start),
              sql_time(start + timedelta(seconds=2)), "published", clock.quota_day.local_date(start).isoformat(),
              first_id, last_id, "csv")
    return "\t".join(str(f) for f in fields) + "\n"


def log_lines(layout: Layout, clock: Clock) -> Iterator[str]:
    accounts = layout.sizes.accounts
    for task in layout.completed:
        task.account = task.id % accounts + 1
        for number, log in enumerate(range(*task.logs)):
            start = clock.at(log, layout.sizes.logs)
            rows = (log + 1) * layout.sizes.rows // layout.sizes.logs - log * layout.sizes.rows // layout.sizes.logs
            page = task.page_from + number
            yield (f"{log + 1}\t{task.id}\t{task.account}\t{task.domain}\t{page}\t{rows}\t{sql_time(start)}\t"
                   f"{sql_time(start + timedelta(seconds=1))}\thttps://sandbox.invalid/api?page={page}\n")


def task_lines(layout: Layout, clock: Clock, held: dict[int, int]) -> Iterator[str]:
    """The tasks; ``held``: in-progress task id → the account it holds."""
    far = clock.now + timedelta(days=3650)
    for task in layout.tasks:
        first, end = task.logs
        created = clock.at(first, layout.sizes.logs) if end > first else clock.now - timedelta(days=1)
        updated = clock.at(max(first, end - 1), layout.sizes.logs) if end > first else created
        marker = None
        if task.kind == "export":
            marker = f"last_id={task.last_id}" if task.last_id else None
        elif not task.is_parent and end > first:
            marker = f"page={task.page_to}"
        in_progress = task.status == "in_progress" and not task.is_parent
        values = (
            task.id, task.kind, task.domain, task.status, marker, held.get(task.id, task.account), sql_time(created),
            sql_time(updated), task.parent, int(task.is_parent), task.page_from, task.page_to,
            "csv" if task.kind == "export" else None, task.exported,
            WORKERS[task.id % len(WORKERS)] if in_progress else None, f"{task.id:032x}" if in_progress else None,
            sql_time(far) if in_progress else None, sql_time(clock.now) if in_progress else None,
            1 if task.status != "pending" else 0,
            sql_time(far) if task.status == "pending" and not task.is_parent else None,  # held back: never claimed here
            {"failed": "platform answered 500 five times", "paused": "运营暂停"}.get(task.status),
        )
        yield "\t".join(NULL if v is None else str(v).translate(_TSV) for v in values) + "\n"


# -- loading ------------------------------------------------------------------------------------


def load_lines(conn: Any, path: Path, table: str, columns: str, lines: Iterator[str], chunk: int = CHUNK_ROWS,
               progress: str | None = None) -> int:
    """LOAD DATA of ``lines`` in chunks of ``chunk`` through one file (rewritten per chunk)."""
    total, started = 0, time.monotonic()
    while True:
        count = 0
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            for line in lines:
                fh.write(line)
                count += 1
                if count == chunk:
                    break
        if count == 0:
            break
        with conn.cursor() as cursor:
            cursor.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 {columns}", (str(path),))
            if cursor.rowcount != count:
                raise RuntimeError(f"LOAD DATA into {table} took {cursor.rowcount} of {count} rows")
        conn.commit()
        total += count
        if progress and total % (chunk * 8) == 0:
            rate = total / (time.monotonic() - started)
            print(f"  {progress}: {total:,} rows loaded ({rate:,.0f} rows/s)", flush=True)
        if count < chunk:
            break
    path.unlink(missing_ok=True)
    return total


def load_history(conn: Any, layout: Layout, clock: Clock, workdir: Path, held: dict[int, int]) -> None:
    """Influencers, logs, batches and tasks of ``layout`` into the connection's database."""
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
    templates = Templates()
    batches: list[str] = []
    file = workdir / "growth-load.tsv"
    load_lines(conn, file, "influencers", INFLUENCER_COLUMNS, influencer_lines(layout, clock, templates, batches),
               progress="influencers")
    load_lines(conn, file, "ingestion_logs", LOG_COLUMNS, log_lines(layout, clock), chunk=CHUNK_ROWS * 2)
    load_lines(conn, file, "export_logs", EXPORT_LOG_COLUMNS, iter(batches))
    load_lines(conn, file, "tasks", TASK_COLUMNS, task_lines(layout, clock, held))
    with conn.cursor() as cursor:
        cursor.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")


def export_rows_lines(count: int, templates: Templates, clock: Clock) -> Iterator[str]:
    """``count`` pending rows of the export domain (the empty database's export)."""
    when = sql_time(clock.now - timedelta(hours=1))
    for number in range(1, count + 1):
        yield templates.line(f"e{number:09d}", EXPORT_DOMAIN, number, f"pending_export\t{when}\t{NULL}\t0")


