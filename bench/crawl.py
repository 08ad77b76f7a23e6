"""Crawl throughput: the `influencers` spider against the reference platform, persistence on vs off,
and `scrapy bench`, in the same run.

    python -m bench.crawl [--pages 1000] [--tasks 2] [--split 10] [--repeat 11] [--bench-runs 3]
                          [--bench-seconds 10]

The platform is ``python -m sandbox --profile clean --pages N --page-size 20`` (the JSON listing).
Each crawl is the operator's own shape: ``start_crawl --domain 美妆 --pages N --split S`` (page-range
subtasks), then ``scrapy crawl influencers -a once=1 -a render=json`` in service mode keeping
``--tasks`` claims at once (``INGEST_MAX_TASKS``), each task with its own sandbox account that logs
in over HTTP; every other setting is the project's, except the per-account pause between requests
(``ACCOUNTS_REQUEST_INTERVAL=0``: the clean platform has no rate limit, and the pause is a
politeness knob, not a cost of the code).

* ``on``    the project's MySQL pipeline: rows upserted, a log row per page, markers, tasks completed
            (checked afterwards: N × 20 rows, N log rows, every subtask completed);
* ``off``   the same crawl with ``bench.pipelines.AckPipeline``: nothing stored, pages acknowledged;
* ``scrapy bench``  Scrapy's own benchmark (its local link-following server) for
            ``--bench-seconds``, run outside the project so none of its settings apply.

pages/s = pages fetched / the crawl's ``elapsed_time_seconds`` (Scrapy's stats, the same figure
``scrapy bench`` reports). CPU: user+sys seconds of the crawler (wait4), the platform and MariaDB
(``/proc/<pid>/stat``), per 1,000 pages. An unmeasured crawl warms the platform's page cache first,
and the order of ``on`` and ``off`` alternates between runs.

The persistence cost is judged by the median of the per-pair costs (each ``on`` against the ``off``
run next to it) and its 95% confidence interval from order statistics: one pair's cost swings by
±10 points on this VM, so only an interval that lies wholly below (or above) the target decides it;
11 pairs is the fewest whose interval leaves out the two most extreme pairs on either side.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import (
    REPO_ROOT,
    bench_database,
    child_env,
    cpu_seconds,
    machine_line,
    mariadb_pid,
    median,
    median_interval,
    python_module,
    run_measured,
    server_line,
    spread,
    start_sandbox,
    stop,
)
from influencers.core.accounts import AccountManager
from influencers.core.config import Config
from influencers.core.credentials import CredentialCipher
from influencers.core.db import connect
from influencers.core.tasks import TaskScheduler

DOMAIN = "美妆"
TARGET_COST = 0.15
TARGET_VS_BENCH = 0.5
STAT = r"'{name}': ([0-9.]+)"


def stat(log: str, name: str) -> float | None:
    found = re.findall(STAT.format(name=re.escape(name)), log)
    return float(found[-1]) if found else None


def prepare(env: dict[str, str], pages: int, split: int, accounts: int) -> None:
    """Empty tables, sandbox accounts demo1..N (encrypted passwords), the start_crawl tasks."""
    config = Config.from_env(env)
    conn = connect(config.mysql)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
            for table in ("influencers", "ingestion_logs", "export_logs", "events", "tasks", "accounts"):
                cursor.execute(f"TRUNCATE TABLE {table}")
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
        conn.commit()
        manager = AccountManager(conn, quota_day=config.quota_day, cipher=CredentialCipher.from_config(config))
        for number in range(1, accounts + 1):
            manager.add(f"demo{number}", f"sandbox-demo{number}")
        TaskScheduler(conn, None, manager).create_crawl(DOMAIN, pages, split)
    finally:
        conn.close()


def crawl_settings(args: argparse.Namespace, log: Path, persist: bool) -> list[str]:
    settings = {
        "ACCOUNTS_REQUEST_INTERVAL": 0,
        "INGEST_MAX_TASKS": args.tasks,
        "INGEST_POLL_INTERVAL": 0.5,
        "LOG_FILE": str(log),
        "LOG_LEVEL": "INFO",
        "PROGRESS_ENABLED": "False",
    }
    if not persist:
        settings["ITEM_PIPELINES"] = '{"bench.pipelines.AckPipeline": 300}'
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        settings[name] = value
    return [arg for name, value in settings.items() for arg in ("-s", f"{name}={value}")]


def run_crawl(args: argparse.Namespace, env: dict[str, str], workdir: Path, sandbox_pid: int, persist: bool,
              label: str) -> dict:
    log = workdir / f"crawl-{label}.log"
    command = python_module("scrapy", "crawl", "influencers", "-a", "once=1", "-a", "render=json",
                            *crawl_settings(args, log, persist))
    server = mariadb_pid()
    cpu_platform, cpu_server = cpu_seconds(sandbox_pid), cpu_seconds(server)
    finished = run_measured(command, workdir=workdir, timeout=120 + args.pages, env=env, cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    platform, database = cpu_seconds(sandbox_pid) - cpu_platform, cpu_seconds(server) - cpu_server
    text = log.read_text(encoding="utf-8", errors="replace")
    pages, elapsed = stat(text, "ingest/pages_fetched"), stat(text, "elapsed_time_seconds")
    if finished.returncode != 0 or not pages or not elapsed or "'finish_reason': 'queue_empty'" not in text:
        raise RuntimeError(f"crawl ({label}) exited {finished.returncode}; log tail:\n{text[-3000:]}")
    if int(pages) != args.pages:
        raise RuntimeError(f"crawl ({label}) fetched {pages:.0f} pages, expected {args.pages}")
    per_k = 1000 / pages
    return {"rate": pages / elapsed, "crawler": finished.cpu * per_k, "platform": platform * per_k,
            "server": database * per_k, "rss": finished.maxrss_mb, "elapsed": elapsed, "wall": finished.wall}


def check_stored(env: dict[str, str], pages: int, page_size: int) -> None:
    conn = connect(Config.from_env(env).mysql)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) AS n, COUNT(DISTINCT uid) AS d FROM influencers WHERE domain = %s", (DOMAIN,))
            rows = cursor.fetchone()
            cursor.execute("SELECT COUNT(*) AS n FROM ingestion_logs")
            logs = cursor.fetchone()["n"]
            cursor.execute("SELECT COUNT(*) AS n FROM tasks WHERE NOT is_parent AND status <> 'completed'")
            open_tasks = cursor.fetchone()["n"]
        conn.commit()
    finally:
        conn.close()
    if rows["n"] != pages * page_size or rows["d"] != rows["n"] or logs != pages or open_tasks:
        raise RuntimeError(f"crawl check failed: {rows['n']} rows ({rows['d']} distinct), {logs} page logs,"
                           f" {open_tasks} subtasks not completed (want {pages * page_size}, {pages}, 0)")


def run_scrapy_bench(seconds: int, workdir: Path) -> dict:
    """`scrapy bench` from an empty directory: Scrapy's defaults, not this project's settings."""
    outside = workdir / "scrapy-bench"
    outside.mkdir(exist_ok=True)
    log = outside / "bench.log"
    finished = run_measured(python_module("scrapy", "bench", "-s", f"CLOSESPIDER_TIMEOUT={seconds}",
                                          "-s", f"LOG_FILE={log}", "-s", "LOG_LEVEL=INFO"),
                            workdir=workdir, timeout=seconds + 60, cwd=outside,
                            env={k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
                            | {"PYTHONPATH": str(REPO_ROOT)},  # for bench.measure only
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = log.read_text(encoding="utf-8", errors="replace")
    pages, elapsed = stat(text, "response_received_count"), stat(text, "elapsed_time_seconds")
    if not pages or not elapsed:
        raise RuntimeError(f"scrapy bench exited {finished.returncode}; log tail:\n{text[-2000:]}")
    # wait4 also counts the benchmark's own server, a child that scrapy bench reaps.
    return {"rate": pages / elapsed, "crawler": finished.cpu * 1000 / pages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crawl", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=2, help="INGEST_MAX_TASKS, and as many accounts")
    parser.add_argument("--split", type=int, default=10, help="pages per subtask (start_crawl --split)")
    parser.add_argument("--repeat", type=int, default=11,
                        help="on/off pairs (the cost of one pair swings by ±10 points; 6 at least for an interval)")
    parser.add_argument("--bench-runs", type=int, default=3, help="scrapy bench runs, one after each of the first pairs")
    parser.add_argument("--bench-seconds", type=int, default=10, help="how long scrapy bench runs")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a Scrapy setting for both crawls (e.g. INGEST_PAGES_IN_FLIGHT=4)")
    args = parser.parse_args(argv)

    print(machine_line())
    results: dict[str, list[dict]] = collections.defaultdict(list)
    sandbox = None
    with bench_database() as settings, tempfile.TemporaryDirectory(prefix="bench-crawl-") as tmp:
        workdir = Path(tmp)
        try:
            sandbox, url = start_sandbox(args.pages, page_size=args.page_size, log=workdir / "sandbox.log")
            env = child_env(settings, workdir, INFLUENCERS_SITE_URL=url)
            conn = connect(settings)
            print(server_line(conn), flush=True)
            conn.close()
            print(f"platform {url} (clean, {args.pages} pages of {args.page_size}); crawl: {args.pages // args.split}"
                  f" subtasks of {args.split} pages, {args.tasks} at once, one account each", flush=True)
            # The platform renders each listing page once and serves it from a cache afterwards: an
            # unmeasured crawl first, so neither measured crawl pays for the rendering (it used to
            # fall on the first, persistence on, and cost it ~1.3 ms of a shared core a page).
            prepare(env, args.pages, args.split, args.tasks)
            run_crawl(args, env, workdir, sandbox.pid, False, "warm-up")
            for attempt in range(1, args.repeat + 1):
                order = ((True, "on"), (False, "off"))
                for persist, label in order if attempt % 2 else order[::-1]:  # alternate which goes first
                    prepare(env, args.pages, args.split, args.tasks)
                    results[label].append(run_crawl(args, env, workdir, sandbox.pid, persist, f"{label}-{attempt}"))
                    if persist:
                        check_stored(env, args.pages, args.page_size)
                benched = attempt <= max(1, args.bench_runs)
                if benched:
                    results["bench"].append(run_scrapy_bench(args.bench_seconds, workdir))
                print(f"  run {attempt}: persistence on {results['on'][-1]['rate']:,.0f} pages/s,"
                      f" off {results['off'][-1]['rate']:,.0f}"
                      + (f", scrapy bench {results['bench'][-1]['rate']:,.0f}" if benched else ""), flush=True)
        finally:
            stop(sandbox)

    def med(label: str, key: str) -> float:
        return median([r[key] for r in results[label]])

    on, off, bench = med("on", "rate"), med("off", "rate"), med("bench", "rate")
    print(f"\ncrawl of {args.pages:,} pages ({args.pages * args.page_size:,} influencers), medians of {args.repeat}"
          f" (scrapy bench: {len(results['bench'])}); CPU in seconds per 1,000 pages")
    print(f"  {'path':<40} {'pages/s (min–max)':>26} {'vs bench':>9} {'crawler':>8} {'platform':>9} {'MariaDB':>8}")
    rows = (("on", "spider, MySQL pipeline (persistence on)"), ("off", "spider, no storage (persistence off)"),
            ("bench", "scrapy bench (no items, Scrapy defaults)"))
    for label, title in rows:
        platform = f"{med(label, 'platform'):>9.2f}" if label != "bench" else f"{'-':>9}"
        server = f"{med(label, 'server'):>8.2f}" if label != "bench" else f"{'-':>8}"
        print(f"  {title:<40} {spread([r['rate'] for r in results[label]]):>26} {med(label, 'rate') / bench:>8.2f}x"
              f" {med(label, 'crawler'):>8.2f}{platform}{server}")
    print(f"  crawler peak RSS: on {med('on', 'rss'):.0f} MB, off {med('off', 'rss'):.0f} MB")
    cost = 1 - on / off
    # The same cost run by run: each on/off pair ran back to back, so drift between runs (other
    # tenants of this VM steal CPU) cancels out of it.
    paired = [1 - a["rate"] / b["rate"] for a, b in zip(results["on"], results["off"], strict=True)]
    interval = median_interval(paired)
    print(f"  persistence cost per run (on vs the off run next to it): {', '.join(f'{c:.0%}' for c in paired)};"
          f" median {median(paired):.1%}"
          + (f", 95% confidence interval {interval[0]:.1%} – {interval[1]:.1%}" if interval else
             " (too few pairs for a confidence interval)"))
    if interval is None:
        verdict = "undecided: too few pairs"
    elif interval[1] < TARGET_COST:
        verdict = "met: the whole interval is below"
    elif interval[0] >= TARGET_COST:
        verdict = "NOT met: the whole interval is above"
    else:
        verdict = "undecided: the interval straddles it"
    print("\ntargets:")
    print(f"  persistence costs {median(paired):.1%} of pages/s by the per-pair median, {cost:.1%} by the medians"
          f" ({verdict} < {TARGET_COST:.0%});"
          f" with persistence {on / bench:.0%} of scrapy bench ({'met' if on / bench >= TARGET_VS_BENCH else 'NOT met'}:"
          f" ≥ {TARGET_VS_BENCH:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
