"""Costs flat in the data (issue 21): `status`, `report`, the API and a crawl and an export on a
database of 10,000,000 influencers against the same on an empty one, in the same run.

    python -m bench.growth [--rows 10000000] [--logs 1000000] [--tasks 100000] [--accounts 50]
                           [--repeat 5] [--heavy-repeat 3] [--pages 200] [--split 10] [--export-rows 100000]
                           [--cap 60] [--keep NAME] [--server shared|private --buffer-pool 1G] [--explain]

Two databases: ``empty`` (the schema and 4 accounts) and ``large`` (``bench.growth_data``: by
default 10M influencers over 8 domains, 10% ``pending_export``, 1M ingestion logs and 100,000
tasks over the last 30 days, a thirtieth today; loaded with LOAD DATA LOCAL INFILE, then
``influencers.core.counts.recount``). ``--keep NAME`` keeps the large one as
``influencers_growth_NAME`` and reuses it when it holds the same sizes (loading 10M rows takes
minutes); whatever the timed steps added to it is removed first.

* ``status`` (table and ``--format json``), ``report ingestion`` and ``report export`` (today):
  ``influencers.cli.main`` in this process with stdout captured, so Python's start-up is not
  timed; the first call is shown apart (a cold cache), the others give the median. One
  ``python -m influencers status`` subprocess for reference.
* the API (``python -m influencers api`` with a token): ``GET /api/v1/status`` on a kept-alive
  connection, and the dashboard's refresh: the three requests ``dashboard.js`` sends every 5 s,
  at once on three kept-alive connections, until the last answers.
* a crawl: the reference platform with ``--pages`` pages of 20 per domain (domains 采集1…, one per
  repeat, uids unlike the loaded ones), ``start_crawl --pages P --split K`` and ``scrapy crawl
  influencers -a once=1`` (2 tasks at once, no pause between requests), rows/s by Scrapy's elapsed
  time; then the same pages again (every row already stored). An unmeasured crawl of each domain
  into a third database first, so the platform renders each page before a measured crawl.
* an export: ``--export-rows`` pending rows of 美妆 (on the large database exactly its pending
  rows, among the 10M), ``start_export`` then ``python -m exporter run --once`` (wall time, three
  accounts relaying); the rows are made pending again after each repeat.

Each statement of the in-process commands runs under MariaDB's ``max_statement_time`` (``--cap``):
a command cut there is reported as more than the cap, and the API (the same statements) is then
not started on that database. Ratios are large / empty; the targets: ≤ 200 ms on the large
database, crawl and export ≥ 0.8×.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pymysql

from bench.common import (
    SERVER_URL,
    child_env,
    connect_infile,
    drop_database,
    local_infile_on,
    machine_line,
    median,
    server_line,
)
from bench.growth_data import INFLUENCER_COLUMNS, WORKERS, Clock, RowMaker, Sizes, export_rows_lines
from bench.growth_data import load_lines as load_tsv
from bench.growth_io import ApiClient, crawl, explain, export, start_platform, stop_process
from bench.growth_store import Marks, PrivateServer, cleanup, load_large, make_small, prepare_export_accounts, recount
from influencers import cli
from influencers.core.config import Config, MySQLSettings, get_config, parse_mysql_url
from influencers.core.db import connect
from influencers.core.sizing import index_fit, mebibytes
from sandbox.data import uid_prefix

TARGET_MS, TARGET_RATIO = 200.0, 0.8
API_NAMES = ("GET /api/v1/status", "dashboard refresh (3 requests at once)")
COMMANDS = {"status": ["status"], "status --format json": ["status", "--format", "json"],
            "report ingestion": ["report", "ingestion"], "report export": ["report", "export"]}


@dataclass
class Db:
    """One database of the run: its settings, its key, what the loaded history ends at."""

    label: str
    settings: MySQLSettings
    key: str
    marks: Marks

    def env(self, workdir: Path, **extra: str) -> dict[str, str]:
        return child_env(self.settings, workdir, INFLUENCERS_SECRET_KEY=self.key, **extra)


def derived_key(name: str) -> str:
    """A Fernet key of the database's own (the bench's sandbox passwords only): a kept database
    is opened with the key it recorded."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"bench.growth:{name}".encode()).digest()).decode()


# -- timing in this process ---------------------------------------------------------------------


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ as a child's would be, for ``cli.main`` (its config is read once per process)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    get_config.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_config.cache_clear()


class Cut(Exception):
    """A statement ran past ``--cap``: the call is reported as more than the cap."""


@contextlib.contextmanager
def capped(seconds: float) -> Iterator[None]:
    """Every SELECT this process sends runs under MariaDB's ``max_statement_time``: one status
    that scans for minutes is reported as such instead of holding the run."""
    original = pymysql.connections.Connection.query

    def query(self: Any, sql: Any, unbuffered: bool = False) -> Any:
        if not (isinstance(sql, str) and sql.lstrip()[:6].upper() == "SELECT"):
            return original(self, sql, unbuffered)  # the application's own limits (db.capped) stay its own
        sql = f"SET STATEMENT max_statement_time = {seconds:g} FOR {sql}"
        try:
            return original(self, sql, unbuffered)
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == 1969:  # ER_STATEMENT_TIMEOUT
                raise Cut(sql[:200]) from None
            raise

    pymysql.connections.Connection.query = query
    try:
        yield
    finally:
        pymysql.connections.Connection.query = original


def run_cli(argv: list[str], cap: float | None = None) -> float:
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), capped(cap) if cap else contextlib.nullcontext():
        code = cli.main(argv)
    seconds = time.perf_counter() - started
    if code == 130:
        raise KeyboardInterrupt
    if code != 0 or not out.getvalue():
        raise RuntimeError(f"influencers {' '.join(argv)} exited {code}")
    return seconds


def sample(fn: Callable[[], float], repeat: int, budget: float) -> dict[str, Any]:
    """The first call, then up to ``repeat`` more while the calls so far took less than ``budget``
    seconds (a status that takes a minute is not run five times more)."""
    try:
        first = fn()
    except Cut:
        return {"first": budget, "runs": [], "cut": True}
    runs: list[float] = []
    while len(runs) < repeat and first + sum(runs) < budget:
        runs.append(fn())
    return {"first": first, "runs": runs}


def time_commands(db: Db, workdir: Path, repeat: int, cap: float) -> dict[str, dict[str, Any]]:
    env = db.env(workdir)
    results = {}
    with environment(env):
        for name, argv in COMMANDS.items():
            results[name] = sample(lambda argv=argv: run_cli(argv, cap), repeat, cap)
    if results["status"].get("cut"):
        results["python -m influencers status"] = {"first": cap, "runs": [], "once": True, "cut": True}
        return results
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "influencers", "status"], env=env, check=True, stdout=subprocess.DEVNULL)
    results["python -m influencers status"] = {"first": time.perf_counter() - started, "runs": [], "once": True}
    return results


def time_api(db: Db, workdir: Path, repeat: int, budget: float, cut: bool = False) -> dict[str, dict[str, Any]]:
    if cut:  # the same queries as `status`, which ran past the cap
        return {name: {"first": budget, "runs": [], "cut": True} for name in API_NAMES}
    client = ApiClient.start(db.env(workdir), workdir / f"api-{db.label}")
    try:
        return {API_NAMES[0]: sample(lambda: client.timed(["/api/v1/status"]), repeat, budget),
                API_NAMES[1]: sample(lambda: client.timed(
                    ["/api/v1/status", "/api/v1/reports/ingestion", "/api/v1/reports/export"]), repeat, budget)}
    finally:
        client.stop()


# -- the run ------------------------------------------------------------------------------------


def ms(values: list[float]) -> str:
    if not values:
        return "- (n=0)"
    return f"{median(values) * 1000:,.1f} ms ({min(values) * 1000:,.1f}–{max(values) * 1000:,.1f}, n={len(values)})"


def print_times(title: str, empty: dict, large: dict, targets: list) -> None:
    print(f"\n{title}: medians (min–max, n) of the calls after the first, which is shown apart (n=0: only it)")
    print(f"  {'command':<40} {'empty':>32} {'large':>36} {'large/empty':>11} {'first: empty / large':>24}")
    for name in empty:
        e, g = empty[name], large[name]
        values = [r["runs"] or [r["first"]] for r in (e, g)]
        ratio = median(values[1]) / median(values[0])
        label = name + (" (once)" if e.get("once") else "")
        first = [f"> {r['first']:g} s (cut)" if r.get("cut") else f"{r['first'] * 1000:,.0f} ms" for r in (e, g)]
        print(f"  {label:<40} {ms(e['runs']):>32} {ms(g['runs']):>36} {('≥ ' if g.get('cut') else '') + f'{ratio:.2f}x':>11}"
              f" {first[0]:>12} / {first[1]}")
        if not e.get("once"):
            targets.append((name, median(values[1]) * 1000, bool(g.get("cut"))))


def print_rates(title: str, rates: dict[str, list[float]], unit: str) -> float:
    empty, large = rates["empty"], rates["large"]
    ratio = median(large) / median(empty)
    spread = lambda v: f"{median(v):,.0f} ({min(v):,.0f}–{max(v):,.0f}, n={len(v)})"  # noqa: E731
    pairs = [g / e for e, g in zip(empty, large, strict=True)]  # each repeat ran both back to back
    print(f"  {title:<40} empty {spread(empty)} {unit}, large {spread(large)}: {ratio:.2f}x;"
          f" per repeat {', '.join(f'{p:.2f}' for p in pairs)} (median {median(pairs):.2f}x)")
    return ratio


def open_databases(args: argparse.Namespace, base: MySQLSettings, workdir: Path, stack: contextlib.ExitStack
                   ) -> tuple[Db, Db]:
    prefix = f"influencers_growth_{os.getpid()}"
    name = f"influencers_growth_{args.keep}" if args.keep else f"{prefix}_large"
    sizes = Sizes(args.rows, args.logs, args.tasks, args.accounts, args.export_rows)
    empty_settings = replace(base, database=f"{prefix}_empty")
    stack.callback(drop_database, empty_settings)
    empty = Db("empty", empty_settings, derived_key(empty_settings.database),
               make_small(empty_settings, derived_key(empty_settings.database), 4, workdir))
    large_settings = replace(base, database=name)
    if not args.keep:
        stack.callback(drop_database, large_settings)
    key = derived_key(name)
    started = time.monotonic()
    marks, loaded = load_large(large_settings, key, sizes, workdir)
    print(f"large database {name}: {'loaded' if loaded else 'reused (same sizes)'} in {time.monotonic() - started:,.0f} s;"
          f" {sizes.key()}", flush=True)
    return empty, Db("large", large_settings, key, marks)


def hold_worker_locks(settings: MySQLSettings, stack: contextlib.ExitStack) -> None:
    """The in-progress tasks' workers are alive: their locks held, so no crawl recovers the tasks."""
    conn = connect(settings, autocommit=True)
    stack.callback(conn.close)
    with conn.cursor() as cursor:
        for worker in WORKERS:
            cursor.execute("SELECT GET_LOCK(%s, 0) AS held", (worker,))


def crawl_phase(args: argparse.Namespace, dbs: tuple[Db, Db], workdir: Path) -> dict[str, dict[str, list[float]]]:
    domains = [f"采集{n}" for n in range(1, args.heavy_repeat + 1)]
    platform, url = start_platform(args, domains, workdir)
    rates: dict[str, dict[str, list[float]]] = {"new": {"empty": [], "large": []}, "again": {"empty": [], "large": []}}
    warm = None
    try:
        warm_settings = replace(dbs[0].settings, database=f"influencers_growth_{os.getpid()}_warm")
        warm = Db("warm", warm_settings, derived_key(warm_settings.database),
                  make_small(warm_settings, derived_key(warm_settings.database), 2, workdir))
        for domain in domains:
            crawl(args, warm, domain, url, workdir, "warm-up")
        drop_database(warm_settings)
        for number, domain in enumerate(domains):
            order = dbs if number % 2 == 0 else dbs[::-1]
            for which in ("new", "again"):
                for db in order:
                    if which == "new":
                        check_no_rows(db, domain)
                    rates[which][db.label].append(crawl(args, db, domain, url, workdir, f"{which}-{number}"))
            print(f"  crawl {domain}: new {rates['new']['empty'][-1]:,.0f} / {rates['new']['large'][-1]:,.0f} rows/s,"
                  f" again {rates['again']['empty'][-1]:,.0f} / {rates['again']['large'][-1]:,.0f} (empty / large)",
                  flush=True)
    finally:
        stop_process(platform)
        if warm is not None:
            drop_database(warm.settings)
    return rates


def check_no_rows(db: Db, domain: str) -> None:
    conn = connect(db.settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) AS n FROM influencers WHERE uid LIKE %s", (uid_prefix(domain) + "-%",))
            found = cursor.fetchone()["n"]
        conn.commit()
    finally:
        conn.close()
    if found:
        raise RuntimeError(f"{db.label}: {found} rows already carry the platform's uids of {domain}")


def export_phase(args: argparse.Namespace, dbs: tuple[Db, Db], workdir: Path) -> dict[str, list[float]]:
    empty = dbs[0]
    conn = connect_infile(empty.settings)
    try:
        with local_infile_on(conn):
            load_tsv(conn, workdir / "export-rows.tsv", "influencers", INFLUENCER_COLUMNS,
                     export_rows_lines(args.export_rows, RowMaker(), Clock.of(Config.from_env({}).quota_day)))
    finally:
        conn.close()
    recount(empty.settings)
    rates: dict[str, list[float]] = {"empty": [], "large": []}
    for number in range(args.heavy_repeat):
        for db in dbs if number % 2 == 0 else dbs[::-1]:
            prepare_export_accounts(db.settings, args.export_rows)
            rates[db.label].append(export(db, workdir, args.export_rows))
            started = time.monotonic()
            cleanup(db.settings, db.marks)
            recount(db.settings)
            reset = time.monotonic() - started
        print(f"  export {number + 1}: {rates['empty'][-1]:,.0f} / {rates['large'][-1]:,.0f} rows/s (empty / large);"
              f" rows made pending again and counts recomputed in {reset:.1f} s", flush=True)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="timings of status, report and the API")
    parser.add_argument("--cap", type=float, default=60,
                        help="seconds: a statement of status or report is stopped there (MariaDB max_statement_time), and"
                             " a timing is not repeated once its calls took that long")
    parser.add_argument("--heavy-repeat", type=int, default=3, help="crawls and exports on each database")
    parser.add_argument("--pages", type=int, default=200, help="pages of 20 per crawl")
    parser.add_argument("--split", type=int, default=10, help="start_crawl --split")
    parser.add_argument("--crawl-tasks", type=int, default=2, help="INGEST_MAX_TASKS of the crawls")
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--keep", metavar="NAME", help="keep the large database as influencers_growth_NAME; reuse it")
    parser.add_argument("--server", choices=("shared", "private"), default="shared")
    parser.add_argument("--buffer-pool", default="1G", help="innodb_buffer_pool_size of --server private")
    parser.add_argument("--explain", action="store_true", help="the statements behind status and report, EXPLAINed")
    args = parser.parse_args(argv)
    if args.keep is not None and not re.fullmatch(r"[A-Za-z0-9_]{1,40}", args.keep):
        parser.error("--keep takes letters, digits and _")
    if args.keep and args.server == "private":
        parser.error("--keep keeps a database of the shared server; a private server's data directory is removed")
    if args.repeat < 1 or args.heavy_repeat < 1 or args.accounts < 8 or args.pages < args.split:
        parser.error("--repeat and --heavy-repeat ≥ 1, --accounts ≥ 8, --pages ≥ --split")

    print(machine_line(), flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    targets: list[tuple[str, float, bool]] = []
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        workdir = Path(tmp)
        stack.callback(signal.signal, signal.SIGTERM, previous)
        base = parse_mysql_url(SERVER_URL)
        if args.server == "private":
            server = PrivateServer(workdir / "mariadb", args.buffer_pool)
            (workdir / "mariadb").mkdir()
            stack.callback(server.stop)
            server.start()
            base = parse_mysql_url(server.url)
        dbs = open_databases(args, base, workdir, stack)
        if args.keep:
            stack.callback(cleanup, dbs[1].settings, dbs[1].marks)
        conn = connect(base, database=False)
        print(server_line(conn), flush=True)
        conn.close()
        conn = connect(dbs[1].settings)
        fit = index_fit(conn)  # new rows read index pages from disk when the pool is smaller
        conn.close()
        print(f"large database: {fit.line()}", flush=True)
        hold_worker_locks(dbs[1].settings, stack)

        commands = [time_commands(db, workdir, args.repeat, args.cap) for db in dbs]
        print_times("CLI in this process (influencers.cli.main, stdout captured)", *commands, targets)
        api = [time_api(db, workdir, args.repeat, args.cap, bool(c["status"].get("cut")))
               for db, c in zip(dbs, commands, strict=True)]
        print_times("API over HTTP (keep-alive)", *api, targets)
        if args.explain:
            with environment(dbs[1].env(workdir)):
                explain(dbs[1].settings, [["status"], ["report", "ingestion"], ["report", "export"]],
                        lambda argv: run_cli(argv, args.cap))

        print(f"\ncrawls of {args.pages} pages of 20 (start_crawl --split {args.split}, {args.crawl_tasks} tasks at once)"
              f" and exports of {args.export_rows:,} rows; empty / large alternate which goes first", flush=True)
        crawls = crawl_phase(args, dbs, workdir)
        exports = export_phase(args, dbs, workdir)
        print("\nrates, medians (min–max), large / empty:")
        new = print_rates("crawl, new rows", crawls["new"], "rows/s")
        again = print_rates("crawl again (rows already stored)", crawls["again"], "rows/s")
        exported = print_rates("exporter run --once", exports, "rows/s")

    print("\ntargets:")
    for name, value, cut in targets:
        shown = f"more than {value / 1000:g} s (cut)" if cut else f"{value:,.1f} ms"
        print(f"  {name} on the large database: {shown} ({'met' if value <= TARGET_MS and not cut else 'NOT met'}:"
              f" ≤ {TARGET_MS:.0f} ms)")
    for name, ratio in (("crawl, new rows", new), ("crawl again", again), ("export", exported)):
        print(f"  {name}: {ratio:.2f}x of the empty database ({'met' if ratio >= TARGET_RATIO else 'NOT met'}:"
              f" ≥ {TARGET_RATIO})")
    if not fit.holds:
        print(f"  (the {mebibytes(fit.pool_bytes)} buffer pool does not hold the large database's indexes; README:"
              " Sizing MariaDB)")
    return 0


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())

