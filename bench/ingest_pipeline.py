"""Ingestion pipeline throughput: the project's MySQL pipeline inside a running crawler.

    python -m bench.ingest_pipeline [--items 200000] [--naive-items 20000] [--split 100] [--repeat 3]
                                    [--set NAME=VALUE] [--processes N]

A crawl of the ``bench_pipeline`` spider (below) runs in its own process under the project's
settings, in the operator's shape: ``start_crawl`` subtasks of ``--split`` pages, the real
ingestion service claiming them with accounts in service mode (``INGEST_MAX_TASKS``, two at once),
pages requested through the engine as ``data:`` URIs (no network, no platform; the middleware that
logs in is off), and each page's callback yielding one ``InfluencerPage`` item with its 20 rows
exactly like the ``influencers`` spider does, after one ``orjson.loads`` of the page, as the
sandbox adapter parses a listing. The pipeline commits them with everything a page costs: the upsert by uid, the
page's ``ingestion_logs`` row, the fence and the task's progress marker; every subtask ends
``completed`` at its last page. Items are synthetic (~600 bytes of JSON with Chinese text, emoji,
2% spreadsheet-hostile nicknames), and 30% of them repeat the uid of an earlier item with fresh
values, as a re-crawl does. Items/s = items / (first page requested → spider closed, the last
batch committed). ``--split 0`` crawls one task over every page instead (``-a domain= -a pages=``).

In the same run, from the same empty tables:

* ``parallel``  (``--processes N`` > 1) N such crawls at once over the same subtasks, as several
                Scrapyd jobs on one node would run, each with two tasks and two accounts;
* ``naive``     the same crawl with a per-item ``INSERT … ON DUPLICATE KEY UPDATE`` + ``COMMIT``
                pipeline on the reactor thread (and a log row + marker per page), on
                ``--naive-items`` items (its rate does not depend on the count);
* ``none``      the same crawl with a pipeline that stores nothing and acknowledges each page
                at once: what Scrapy and the ingestion service cost per item of this shape, the
                ceiling for any pipeline in this crawl;
* ``write``     the pipeline's database side alone: ``influencers.core.store.write_batch``
                (the transaction its thread runs: log rows, upserts, fence, marker) called in a
                loop on the same pages, 2,000 rows a transaction, no Scrapy;
* ``load data`` ``LOAD DATA LOCAL INFILE … REPLACE`` of the same rows (newest wins, like the
                upserts): the server's own limit for this table.

Afterwards every crawl is checked: one row per distinct uid holding one of its versions (the newest
when one task commits pages in order), one log row per page, every task completed at its last page.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import scrapy

from bench.common import (
    REPO_ROOT,
    Measured,
    Row,
    add_accounts,
    bench_database,
    child_env,
    connect_infile,
    cpu_seconds,
    dumps,
    iter_synthetic_rows,
    load_data,
    local_infile_on,
    machine_line,
    mariadb_pid,
    median,
    python_module,
    run_measured,
    server_line,
    spread,
    write_load_file,
)
from influencers.core.db import connect
from influencers.core.profile import default_profile
from influencers.core.searchterms import row_terms
from influencers.core.tasks import TaskScheduler
from influencers.extensions.ingestion import IngestionService
from influencers.extensions.runs import META_ACCOUNT, META_PAGE, META_STARTED, META_TASK
from influencers.items import InfluencerPage
from influencers.spiders.influencers import InfluencersSpider, utcnow

DOMAIN = "美妆"
PAGE_SIZE = 20
REPEAT_SHARE = 0.30
SEED = 7
BATCH_ITEMS = 2000  # the project's MYSQL_BATCH_ITEMS
TARGET_RATE = 25_000
TARGET_VS_NAIVE = 10
TARGET_VS_LOAD = 0.40
#: The crawl's settings on top of the project's: nothing but data: URIs, no logins.
CRAWL_SETTINGS: dict[str, Any] = {
    "ACCOUNTS_ENABLED": False,  # no platform to log in to
    "DOWNLOAD_HANDLERS": {},  # the project maps http(s) to Playwright; only data: URIs here
    "INGEST_PAGES_IN_FLIGHT": 64,  # pages are instant: keep the pipeline, not the requests, busy
    "CONCURRENT_REQUESTS": 64,
    # Pages in page order (Scrapy's default queue is LIFO): with 64 in flight, a later page's
    # batch could otherwise commit before an earlier one and an older copy of a repeated uid win.
    "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
    "INGEST_CLAIM_WAIT": 10,
    "PROGRESS_ENABLED": False,
    "LOG_LEVEL": "INFO",
}


# -- inside the crawl process ---------------------------------------------------------------------


class BenchPipelineSpider(InfluencersSpider):
    """The `influencers` spider with its pages served from memory: same service, same items."""

    name = "bench_pipeline"

    def __init__(self, pages_file: str = "", result: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # One JSON array of rows per line, read when its page is parsed: the crawl's memory is the
        # pipeline's, and a page costs one json.loads, as a listing does.
        self.pages_file = open(pages_file, "rb")  # noqa: SIM115 - closed in closed()
        self.offsets = [0]
        for line in self.pages_file:
            self.offsets.append(self.offsets[-1] + len(line))
        self.total_pages = len(self.offsets) - 1
        self.result_path = result
        self.first_request: float | None = None
        self.first_request_at: float | None = None  # wall clock, to join several processes' spans

    def page_request(self, run: Any, page: int) -> scrapy.Request:
        if self.first_request is None:
            self.first_request, self.first_request_at = time.monotonic(), time.time()
        meta = {META_TASK: run.task_id, META_PAGE: page, META_STARTED: utcnow(), META_ACCOUNT: run.claim.account_id}
        return scrapy.Request(f"data:,{page}", callback=self.memory_page, errback=self.page_error, meta=meta,
                              dont_filter=True)

    def listing(self, page: int) -> list[dict[str, Any]]:
        self.pages_file.seek(self.offsets[page - 1])
        return orjson.loads(self.pages_file.readline())  # what the sandbox adapter's parse costs

    def memory_page(self, response: scrapy.http.Response) -> Any:
        meta = response.meta
        task_id, page = meta[META_TASK], meta[META_PAGE]
        run = self.service.run_for(task_id)
        if run is None or run.stop:
            if run is not None:
                self.service.page_dropped(task_id, page, "task stopping")
            return
        yield InfluencerPage(task_id=task_id, page_number=page, domain=run.domain, account_id=meta[META_ACCOUNT],
                             source_url=source_page(page), started_at=meta[META_STARTED], finished_at=utcnow(),
                             rows=self.listing(page))
        self.crawler.stats.inc_value("ingest/pages_fetched")
        self.service.page_fetched(task_id, page, has_more=page < self.total_pages, total_pages=self.total_pages)

    def closed(self, reason: str) -> None:
        self.pages_file.close()
        seconds = time.monotonic() - self.first_request if self.first_request else None
        stats = {k: v for k, v in self.crawler.stats.get_stats().items() if k.startswith(("pipeline/", "ingest/"))}
        Path(self.result_path).write_text(json.dumps({"seconds": seconds, "reason": reason, "stats": stats,
                                                      "started_at": self.first_request_at, "ended_at": time.time()}))


def naive_values(row: dict[str, Any], item: InfluencerPage) -> tuple[Any, ...]:
    """The textbook upsert's parameters for one row (`store.UPSERT_COLUMNS`), typed fields too."""
    profile = default_profile(row)
    growth = None if profile.fans is None else 0
    return (row["uid"], row.get("nickname"), item.domain, item.source_url, dumps(row), None, profile.fans,
            profile.region, dumps(list(profile.tags)) if profile.tags else None, profile.has_contact,
            profile.profile_url, row_terms(row.get("nickname"), profile.tags), 0, growth, growth, profile.fans)


class NaivePipeline:
    """The anchor: what a first pipeline often looks like. One upsert and one COMMIT per item,
    on the reactor thread; per page a log row and the marker, committed."""

    def __init__(self, service: IngestionService) -> None:
        self.service = service
        self.conn: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> NaivePipeline:
        return cls(IngestionService.of(crawler))

    def open_spider(self) -> None:
        from influencers.core.config import get_config

        self.conn = connect(get_config().mysql)

    def close_spider(self) -> None:
        self.conn.close()

    def process_item(self, item: Any) -> Any:
        from influencers.core.store import INSERT_LOGS, UPSERT_INFLUENCERS

        if not isinstance(item, InfluencerPage):
            return item
        with self.conn.cursor() as cursor:
            for row in item.rows:
                cursor.execute(UPSERT_INFLUENCERS, naive_values(row, item))
                self.conn.commit()
            claim = self.service.claim_for(item.task_id)
            cursor.execute(INSERT_LOGS, (item.task_id, item.account_id, item.domain, item.page_number,
                                         len(item.rows), item.started_at, item.finished_at, item.source_url))
            marker = self.service.marker_for(item.task_id, [item.page_number])
            TaskScheduler(self.conn, None, None).set_progress(cursor, claim, f"page={marker}")
            self.conn.commit()
            self.service.pages_committed(item.task_id, [item.page_number])
        return item


def crawl(mode: str, items: int, result: str, pages_file: str, extra: list[str], split: int) -> int:
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    settings.setdict(CRAWL_SETTINGS, priority="cmdline")
    for assignment in extra:  # --set NAME=VALUE, as scrapy crawl -s does
        name, _, value = assignment.partition("=")
        settings.set(name, value, priority="cmdline")
    settings.set("LOG_FILE", f"{result}.log", priority="cmdline")
    if mode != "real":
        pipeline = {"naive": "bench.ingest_pipeline.NaivePipeline", "none": "bench.pipelines.AckPipeline"}[mode]
        settings.set("ITEM_PIPELINES", {pipeline: 300}, priority="cmdline")
    process = CrawlerProcess(settings, install_root_handler=True)
    pages = (items + PAGE_SIZE - 1) // PAGE_SIZE
    # The class from the importable module, not __main__'s copy (the pipelines are loaded by path).
    from bench.ingest_pipeline import BenchPipelineSpider as Spider

    # split > 0: service mode over the start_crawl subtasks the parent created (the operator's
    # shape); 0: one task over every page (`-a domain= -a pages=`).
    target = {"once": "1"} if split else {"domain": DOMAIN, "pages": str(pages)}
    process.crawl(Spider, **target, pages_file=pages_file, result=result)
    process.start()
    return 0


# -- the parent -----------------------------------------------------------------------------------


def reset(settings, pages: int = 0, split: int = 0, accounts: int = 2) -> None:
    """Empty tables, the accounts, and (``split`` > 0) the ``start_crawl`` subtasks of ``pages``."""
    conn = connect(settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
            # Every table a run writes: a history left behind would answer the next run's growth
            # look-ups for the same (restarted) influencer ids, slower with every run.
            for table in ("influencers", "influencer_history", "ingestion_logs", "export_logs", "events", "tasks",
                          "accounts", "domain_counts", "tallies", "account_budgets"):
                cursor.execute(f"TRUNCATE TABLE {table}")
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
        conn.commit()
        add_accounts(conn, accounts)
        if split and pages:
            TaskScheduler(conn, None, None).create_crawl(DOMAIN, pages, split)
    finally:
        conn.close()


def pages_of(items: int) -> int:
    return (items + PAGE_SIZE - 1) // PAGE_SIZE


def source_page(page: int) -> str:
    return f"https://sandbox.invalid/api?page={page}"


def write_pages_file(path: Path, rows: list[Row]) -> None:
    """One line per page: the JSON array of its rows' raw data, as a listing API returns them."""
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, len(rows), PAGE_SIZE):
            fh.write(json.dumps([row.raw for row in rows[start:start + PAGE_SIZE]], ensure_ascii=False))
            fh.write("\n")


def run_crawl(settings, workdir: Path, mode: str, items: int, attempt: int, args: argparse.Namespace) -> dict:
    result = workdir / f"{mode}-{items}-{attempt}.json"
    env = child_env(settings, workdir)
    server = mariadb_pid()
    cpu0 = cpu_seconds(server)
    with open(workdir / f"{mode}.err", "w", encoding="utf-8") as err:
        finished = run_measured(python_module("bench.ingest_pipeline", "--crawl", mode, "--items", str(items),
                                              "--result", str(result), "--pages-file",
                                              str(workdir / f"pages-{items}.jsonl"),
                                              "--split", str(args.split),
                                              *(f"--set={assignment}" for assignment in args.set)),
                                workdir=workdir, timeout=120 + items / 500, env=env, cwd=REPO_ROOT,
                                stdout=subprocess.DEVNULL, stderr=err)
    server_cpu = cpu_seconds(server) - cpu0
    if finished.returncode != 0 or not result.exists():
        err = (workdir / f"{mode}.err").read_text()[-3000:]
        raise RuntimeError(f"{mode} crawl exited {finished.returncode}: {err}")
    data = json.loads(result.read_text())
    if data["reason"] not in ("finished", "queue_empty") or not data["seconds"]:
        log = Path(f"{result}.log").read_text()[-3000:]
        raise RuntimeError(f"{mode} crawl closed with {data['reason']!r}: {log}")
    return {"seconds": data["seconds"], "wall": finished.wall, "cpu": finished.cpu, "rss": finished.maxrss_mb,
            "server_cpu": server_cpu, "stats": data["stats"]}


def run_parallel_crawls(settings, workdir: Path, items: int, attempt: int, args: argparse.Namespace) -> dict:
    """``--processes`` crawls of the real pipeline at once over the same subtasks (several Scrapyd
    jobs on one node). Items/s = items / (first page requested by any → last spider closed)."""
    env = child_env(settings, workdir)
    results = [workdir / f"parallel-{items}-{attempt}-{n}.json" for n in range(args.processes)]
    errors = [open(workdir / f"parallel-{n}.err", "w", encoding="utf-8") for n in range(args.processes)]  # noqa: SIM115
    server = mariadb_pid()
    cpu0 = cpu_seconds(server)
    try:
        crawls = [Measured(python_module("bench.ingest_pipeline", "--crawl", "real", "--items", str(items),
                                         "--result", str(result), "--pages-file", str(workdir / f"pages-{items}.jsonl"),
                                         "--split", str(args.split), *(f"--set={a}" for a in args.set)),
                           workdir=workdir, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=err)
                  for result, err in zip(results, errors, strict=True)]
        finished = [crawl.wait(120 + items / 500) for crawl in crawls]
    finally:
        for err in errors:
            err.close()
    server_cpu = cpu_seconds(server) - cpu0
    data = [json.loads(result.read_text()) for result in results if result.exists()]
    if any(f.returncode != 0 for f in finished) or len(data) != args.processes:
        raise RuntimeError(f"parallel crawls exited {[f.returncode for f in finished]}")
    started = min(d["started_at"] for d in data if d["started_at"])
    seconds = max(d["ended_at"] for d in data) - started
    wall = max(f.wall for f in finished)
    return {"seconds": seconds, "server_cpu": server_cpu, "wall": wall,
            "cpu": sum(f.cpu for f in finished), "pages": [d["stats"].get("pipeline/pages", 0) for d in data]}


def write_path_alone(settings, rows: list[Row], batch_items: int) -> float:
    """The pipeline's database side without Scrapy: ``store.write_batch`` (the transaction the
    pipeline's thread runs) over the same pages, ``batch_items`` rows a transaction, on a
    claimed task. Returns seconds."""
    from influencers.core.accounts import AccountManager
    from influencers.core.store import PageBatch, TaskBatch, write_batch
    from influencers.core.workers import Worker

    pages = (len(rows) + PAGE_SIZE - 1) // PAGE_SIZE
    conn = connect(settings)
    worker = Worker.start(settings, "bench")
    try:
        scheduler = TaskScheduler(conn, worker, AccountManager(conn))
        scheduler.find_or_create_domain_task(DOMAIN, pages)
        claim = scheduler.claim("ingestion")
        started = time.monotonic()
        marker, per_batch = 0, max(1, batch_items // PAGE_SIZE)
        for first in range(1, pages + 1, per_batch):
            numbers = range(first, min(first + per_batch, pages + 1))
            batch = [PageBatch(task_id=claim.task_id, page_number=page, domain=DOMAIN, account_id=claim.account_id,
                               source_url=source_page(page), started_at=utcnow(), finished_at=utcnow(),
                               rows=[(row.uid, row.nickname, DOMAIN, row.source_page, row.raw,
                                      default_profile(row.raw))
                                     for row in rows[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]])
                     for page in numbers]
            committed, lost = write_batch(conn, [TaskBatch(claim, batch, numbers[-1], marker)])
            if lost or not committed:
                raise RuntimeError(f"write path: claim lost {lost}")
            marker = numbers[-1]
        seconds = time.monotonic() - started
        scheduler.complete(claim)
        return seconds
    finally:
        worker.close()
        conn.close()


def uid_versions(rows: list[Row]) -> dict[str, list[str]]:
    """uid → the JSON text of each of its occurrences, in page order (the last is the newest)."""
    versions: dict[str, list[str]] = {}
    for row in rows:
        versions.setdefault(row.uid, []).append(dumps(row.raw))
    return versions


def check_crawl(settings, versions: dict[str, list[str]], items: int, *, ordered: bool) -> dict:
    """One row per distinct uid holding one of its versions (the newest when pages were committed
    in page order, i.e. one task), a log row per page, every task completed at its last page."""
    newest = versions
    pages = (items + PAGE_SIZE - 1) // PAGE_SIZE
    conn = connect(settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) AS n, COUNT(DISTINCT uid) AS d FROM influencers")
            counts = cursor.fetchone()
            cursor.execute("SELECT COUNT(*) AS n, SUM(ingested_count) AS rows_logged FROM ingestion_logs")
            logs = cursor.fetchone()
            cursor.execute("SELECT COUNT(*) AS n, SUM(status = 'completed' AND progress_marker = CONCAT('page=', page_to))"
                           " AS done, MAX(page_to) AS last FROM tasks WHERE task_type = 'ingestion' AND NOT is_parent")
            task = cursor.fetchone()
            cursor.execute("SELECT COUNT(*) AS n FROM tasks WHERE is_parent AND status <> 'completed'")
            task["open_parents"] = cursor.fetchone()["n"]
            sample = sorted(newest)[:: max(1, len(newest) // 200)]
            cursor.execute(f"SELECT uid, raw_data FROM influencers WHERE uid IN ({', '.join(['%s'] * len(sample))})",
                           sample)
            stored = {row["uid"]: row["raw_data"] for row in cursor.fetchall()}
        conn.commit()
    finally:
        conn.close()
    problems = []
    if counts["n"] != len(newest) or counts["d"] != len(newest):
        problems.append(f"{counts['n']} rows for {len(newest)} distinct uids")
    if logs["n"] != pages or int(logs["rows_logged"] or 0) != items:
        problems.append(f"{logs['n']} page logs with {logs['rows_logged']} rows (want {pages}, {items})")
    if not task["n"] or int(task["done"] or 0) != task["n"] or task["last"] != pages or task["open_parents"]:
        problems.append(f"tasks: {task}")
    # Two tasks run at once, so a uid repeated in both may be committed in either order: any of
    # its versions is right then; with one task, pages commit in order and the newest must win.
    allowed = {uid: versions[uid][-1:] if ordered else versions[uid] for uid in sample}
    wrong = [uid for uid in sample if json.loads(stored.get(uid) or "null") not in [json.loads(v) for v in allowed[uid]]]
    if wrong:
        problems.append(f"{len(wrong)} of {len(sample)} sampled rows hold none of their {'newest ' if ordered else ''}values")
    if problems:
        raise RuntimeError("pipeline check failed: " + "; ".join(problems))
    return {"distinct": len(newest), "pages": pages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--naive-items", type=int, default=20_000, help="items for the per-item COMMIT anchor")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--split", type=int, default=100,
                        help="pages per start_crawl subtask, crawled in service mode (0: one task over every page)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a Scrapy setting for every crawl of the run (e.g. CONCURRENT_ITEMS=32)")
    parser.add_argument("--processes", type=int, default=1,
                        help="also run this many crawler processes at once with the real pipeline (service mode)")
    parser.add_argument("--crawl", choices=("real", "naive", "none"), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--pages-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.processes > 1 and not args.split:
        parser.error("--processes needs subtasks to share (--split > 0)")
    if args.crawl:
        return crawl(args.crawl, args.items, args.result, args.pages_file, args.set, args.split)

    naive_items = min(args.naive_items, args.items)
    print(machine_line())
    rates: dict[str, list[float]] = collections.defaultdict(list)
    server_share: dict[str, list[float]] = collections.defaultdict(list)
    real_runs = []
    with bench_database() as settings, tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        load_file = workdir / "items.tsv"
        rows = list(iter_synthetic_rows(args.items, domain=DOMAIN, page_size=PAGE_SIZE, repeat_share=REPEAT_SHARE,
                                        seed=SEED))
        write_load_file(load_file, rows)
        for count in {args.items, naive_items}:
            write_pages_file(workdir / f"pages-{count}.jsonl", rows[:count])
        newest = {count: uid_versions(rows[:count]) for count in {args.items, naive_items}}
        conn = connect_infile(settings)
        try:
            print(server_line(conn), flush=True)
            with local_infile_on(conn):
                for attempt in range(1, args.repeat + 1):
                    reset(settings, pages_of(args.items), args.split)
                    real = run_crawl(settings, workdir, "real", args.items, attempt, args)
                    check = check_crawl(settings, newest[args.items], args.items, ordered=not args.split)
                    rates["real"].append(args.items / real["seconds"])
                    server_share["real"].append(real["server_cpu"] / real["wall"])
                    real_runs.append(real)

                    if args.processes > 1:
                        reset(settings, pages_of(args.items), args.split, accounts=2 * args.processes)
                        parallel = run_parallel_crawls(settings, workdir, args.items, attempt, args)
                        check_crawl(settings, newest[args.items], args.items, ordered=False)
                        rates["parallel"].append(args.items / parallel["seconds"])
                        server_share["parallel"].append(parallel["server_cpu"] / parallel["wall"])

                    reset(settings, pages_of(naive_items), args.split)
                    naive = run_crawl(settings, workdir, "naive", naive_items, attempt, args)
                    check_crawl(settings, newest[naive_items], naive_items, ordered=not args.split)
                    rates["naive"].append(naive_items / naive["seconds"])
                    server_share["naive"].append(naive["server_cpu"] / naive["wall"])

                    reset(settings, pages_of(args.items), args.split)
                    bare = run_crawl(settings, workdir, "none", args.items, attempt, args)
                    rates["none"].append(args.items / bare["seconds"])
                    server_share["none"].append(bare["server_cpu"] / bare["wall"])

                    reset(settings)
                    server = mariadb_pid()
                    cpu0 = cpu_seconds(server)
                    seconds = write_path_alone(settings, rows, BATCH_ITEMS)
                    check_crawl(settings, newest[args.items], args.items, ordered=True)
                    rates["write"].append(args.items / seconds)
                    server_share["write"].append((cpu_seconds(server) - cpu0) / seconds)

                    reset(settings)
                    server = mariadb_pid()
                    cpu0 = cpu_seconds(server)
                    started = time.monotonic()
                    load_data(conn, load_file, mode="REPLACE")
                    seconds = time.monotonic() - started
                    rates["load"].append(args.items / seconds)
                    server_share["load"].append((cpu_seconds(server) - cpu0) / seconds)
                    print(f"  run {attempt}: pipeline {rates['real'][-1]:,.0f} items/s"
                          f" (crawl process {real['cpu'] / real['wall']:.2f} cores, peak RSS {real['rss']:.0f} MB),"
                          + (f" {args.processes} processes {rates['parallel'][-1]:,.0f}," if rates["parallel"] else "")
                          + f" naive {rates['naive'][-1]:,.0f}, no storage {rates['none'][-1]:,.0f},"
                          f" write path {rates['write'][-1]:,.0f},"
                          f" LOAD DATA {rates['load'][-1]:,.0f} rows/s", flush=True)
        finally:
            conn.close()

    real, naive, load = median(rates["real"]), median(rates["naive"]), median(rates["load"])
    stats = real_runs[-1]["stats"]
    print(f"\ningestion of {args.items:,} items ({check['pages']:,} pages of {PAGE_SIZE}, {check['distinct']:,} distinct"
          f" uids, {REPEAT_SHARE:.0%} repeats), medians of {args.repeat}")
    print(f"  {'path':<58} {'items/s (min–max)':>30} {'vs naive':>9} {'vs LOAD':>8} {'server CPU':>11}")
    for key, label in (("real", "MySQLPipeline in a running crawl (batched, off-reactor)"),
                       ("parallel", f"the same, {args.processes} crawler processes at once"),
                       ("naive", f"naive pipeline: per-item upsert + COMMIT ({naive_items:,})"),
                       ("none", "the same crawl, no storage (pages acknowledged at once)"),
                       ("write", f"the pipeline's write path alone, no Scrapy ({BATCH_ITEMS:,} a commit)"),
                       ("load", "LOAD DATA LOCAL INFILE … REPLACE (same rows)")):
        if not rates[key]:
            continue
        print(f"  {label:<58} {spread(rates[key]):>30} {median(rates[key]) / naive:>8.1f}x"
              f" {median(rates[key]) / load:>7.0%} {median(server_share[key]):>10.2f}c")
    print(f"  the pipeline delivers {real / median(rates['none']):.0%} of what this crawl does without storage")
    print(f"  pipeline stats (last run): {stats.get('pipeline/batches', 0)} batches,"
          f" {stats.get('pipeline/backpressure', 0)} back-pressure waits, peak RSS {real_runs[-1]['rss']:.0f} MB")
    print("\ntargets:")
    print(f"  {real:,.0f} items/s ({'met' if real >= TARGET_RATE else 'NOT met'}: ≥ {TARGET_RATE:,});"
          f" {real / naive:.1f}x naive ({'met' if real / naive >= TARGET_VS_NAIVE else 'NOT met'}: ≥ {TARGET_VS_NAIVE}x);"
          f" {real / load:.0%} of LOAD DATA ({'met' if real / load >= TARGET_VS_LOAD else 'NOT met'}:"
          f" ≥ {TARGET_VS_LOAD:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
