"""Claim throughput: 8 worker processes claiming and completing 5,000 tasks with TaskScheduler.

    python -m bench.claims [--tasks 5000] [--workers 8] [--accounts 16] [--repeat 3] [--anchor-rows 200000]

Each repeat starts from fresh tables: ``--accounts`` accounts (default two per worker: a claim
needs an idle account) and ``--tasks`` claimable ingestion subtasks (``start_crawl`` parents of
100 one-page subtasks, as ``--split 1`` makes them). The
workers (``python -m bench.claims --worker``, each with its own ``Worker`` liveness lock) connect
first and start together; each loops ``claim("ingestion")`` → ``complete()`` until no task is left.
claims/s = tasks / (wall time from the start signal to the last worker's exit). Afterwards the
events prove zero double claims: one ``claimed`` event per task, every task completed once (the
workers' own lists agree), every account taken → freed → taken … and idle at the end. "Empty
claims" counts claims that found nothing to take while tasks were still left (lock contention).

Anchors in the same run, on a bare table (no leases, events or accounts):

* ``batch``  2 processes claiming 1,000 rows per transaction (``SELECT … ORDER BY id LIMIT 1000
             FOR UPDATE SKIP LOCKED`` + ``UPDATE … WHERE id IN``) on ``--anchor-rows`` rows: the
             issue's anchor (rows/s).
* ``single`` ``--workers`` processes claiming one row per transaction and completing it in a
             second one: what one task's claim + completion costs in SQL alone (rows/s).
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

from bench.common import (
    REPO_ROOT,
    add_accounts,
    bench_database,
    child_env,
    connect_infile,
    cpu_seconds,
    machine_line,
    mariadb_pid,
    median,
    server_line,
    spread,
    stop,
)
from influencers.core.accounts import AccountManager
from influencers.core.db import connect
from influencers.core.errors import TransactionConflict
from influencers.core.tasks import TaskScheduler

DOMAINS = ("美妆", "游戏", "美食", "穿搭", "母婴", "科技")
SUBTASKS_PER_PARENT = 100
ANCHOR_TABLE = (
    "CREATE TABLE claim_anchor (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " status ENUM('pending', 'claimed', 'done') NOT NULL DEFAULT 'pending', claimed_by VARCHAR(64) NULL,"
    " KEY ix_claim_anchor (status, id)) ENGINE=InnoDB"
)


# -- worker processes ---------------------------------------------------------------------------


def scheduler_worker() -> int:
    """Claim and complete until nothing is left; print one JSON line with what this process did."""
    from influencers.core.config import get_config
    from influencers.core.workers import Worker

    config = get_config()
    conn = connect(config.mysql)
    scheduler = TaskScheduler(conn, Worker.start(config.mysql, "bench"), AccountManager(conn, quota_day=config.quota_day))
    print("ready", flush=True)
    sys.stdin.readline()
    done, idle = [], 0
    while True:
        claim = scheduler.claim("ingestion")
        if claim is None:
            with conn.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) AS n FROM tasks WHERE NOT is_parent AND status <> 'completed'")
                left = cursor.fetchone()["n"]
            conn.commit()
            if left == 0:
                break
            idle += 1
            time.sleep(0.001)
            continue
        scheduler.complete(claim)
        done.append(claim.task_id)
    print(json.dumps({"done": done, "idle": idle}), flush=True)
    return 0


def anchor_worker(mode: str, name: str) -> int:
    """The bare-SQL anchors: 'batch' (1,000 rows per claim) or 'single' (claim, then complete)."""
    from influencers.core.config import get_config

    conn = connect(get_config().mysql)
    print("ready", flush=True)
    sys.stdin.readline()
    claimed = retries = 0
    size = 1000 if mode == "batch" else 1
    with conn.cursor() as cursor:
        while True:
            try:
                conn.begin()
                cursor.execute("SELECT id FROM claim_anchor WHERE status = 'pending' ORDER BY id LIMIT %s"
                               " FOR UPDATE SKIP LOCKED", (size,))
                ids = [row["id"] for row in cursor.fetchall()]
                if not ids:
                    conn.commit()
                    break
                cursor.execute(f"UPDATE claim_anchor SET status = 'claimed', claimed_by = %s"
                               f" WHERE id IN ({', '.join(['%s'] * len(ids))}) AND status = 'pending'",
                               (name, *ids))
                if cursor.rowcount != len(ids):
                    raise RuntimeError(f"claimed {cursor.rowcount} of {len(ids)} locked rows")
                conn.commit()
            except TransactionConflict:  # a deadlock victim retries, as a real claimer does
                conn.rollback()
                retries += 1
                continue
            if mode == "single":
                cursor.execute("UPDATE claim_anchor SET status = 'done' WHERE id = %s AND claimed_by = %s",
                               (ids[0], name))
                conn.commit()
            claimed += len(ids)
    print(json.dumps({"claimed": claimed, "retries": retries}), flush=True)
    return 0


# -- the parent ---------------------------------------------------------------------------------


def start_workers(args: list[list[str]], env: dict[str, str]) -> list[subprocess.Popen]:
    workers = [subprocess.Popen([sys.executable, "-m", "bench.claims", *a], cwd=REPO_ROOT, env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True) for a in args]
    for worker in workers:
        line = worker.stdout.readline()
        if line.strip() != "ready":
            for other in workers:
                stop(other)
            raise RuntimeError(f"a worker did not start: {line!r} {worker.stderr.read()[-2000:]}")
    return workers


def race(workers: list[subprocess.Popen], timeout: float) -> tuple[float, float, list[dict]]:
    """Start them together; (seconds until the last one exits, server CPU seconds, their reports)."""
    server = mariadb_pid()
    cpu0 = cpu_seconds(server)
    started = time.monotonic()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    reports = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=max(1.0, started + timeout - time.monotonic()))
            if worker.returncode != 0:
                raise RuntimeError(f"worker exited {worker.returncode}: {err[-3000:]}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            stop(worker)
    seconds = time.monotonic() - started
    return seconds, cpu_seconds(server) - cpu0, reports


def prepare_tasks(settings, tasks: int, accounts: int) -> None:
    conn = connect(settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
            for table in ("events", "tasks", "accounts"):
                cursor.execute(f"TRUNCATE TABLE {table}")
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
        conn.commit()
        add_accounts(conn, accounts)
        scheduler = TaskScheduler(conn, None, AccountManager(conn))
        left, number = tasks, 0
        while left > 0:
            pages = min(SUBTASKS_PER_PARENT, left)
            scheduler.create_crawl(DOMAINS[number % len(DOMAINS)], pages, 1)
            left -= pages
            number += 1
    finally:
        conn.close()


def check_scheduler_run(settings, tasks: int, reports: list[dict]) -> dict:
    """Zero double claims, from the events and from the workers' own lists."""
    completions = collections.Counter(task for report in reports for task in report["done"])
    conn = connect(settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) AS n FROM tasks WHERE NOT is_parent AND status = 'completed'")
            completed = cursor.fetchone()["n"]
            cursor.execute("SELECT COUNT(*) AS tasks, COALESCE(MAX(n), 0) AS most FROM (SELECT task_id, COUNT(*) AS n"
                           " FROM events WHERE entity = 'task' AND event = 'claimed' GROUP BY task_id) AS claims")
            claims = cursor.fetchone()
            cursor.execute("SELECT entity_id, event FROM events WHERE entity = 'account'"
                           " AND event IN ('taken', 'freed') ORDER BY id")
            held: dict[int, bool] = collections.defaultdict(bool)
            bound_twice = 0
            for row in cursor.fetchall():
                taking = row["event"] == "taken"
                bound_twice += held[row["entity_id"]] == taking
                held[row["entity_id"]] = taking
            cursor.execute("SELECT COUNT(*) AS n FROM accounts WHERE status <> 'idle'")
            busy = cursor.fetchone()["n"]
        conn.commit()
    finally:
        conn.close()
    double = sum(1 for n in completions.values() if n > 1) + max(0, int(claims["most"]) - 1)
    problems = []
    if completed != tasks or len(completions) != tasks or claims["tasks"] != tasks:
        problems.append(f"{completed} completed, {len(completions)} reported, {claims['tasks']} claimed (want {tasks})")
    if double:
        problems.append(f"{double} double claims")
    if bound_twice or busy:
        problems.append(f"accounts bound twice: {bound_twice}, not idle at the end: {busy}")
    if problems:
        raise RuntimeError("claims check failed: " + "; ".join(problems))
    busiest = max(len(report["done"]) for report in reports)
    quietest = min(len(report["done"]) for report in reports)
    return {"double": double, "busiest": busiest, "quietest": quietest,
            "idle_polls": sum(report["idle"] for report in reports)}


def prepare_anchor(conn, rows: int) -> None:
    with conn.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS claim_anchor")
        cursor.execute(ANCHOR_TABLE)
        for start in range(0, rows, 10_000):  # executemany sends multi-row INSERTs
            cursor.executemany("INSERT INTO claim_anchor (claimed_by) VALUES (%s)", [None] * min(10_000, rows - start))
    conn.commit()


def check_anchor(conn, rows: int, reports: list[dict]) -> tuple[int, int]:
    """(double claims, deadlock retries): each worker counted what it claimed; more than the
    table holds is a double claim."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM claim_anchor WHERE status <> 'pending'")
        taken = cursor.fetchone()[0]
    conn.commit()
    counted = sum(report["claimed"] for report in reports)
    if taken != rows or counted < rows:
        raise RuntimeError(f"anchor: {taken} rows taken, {counted} counted by the workers (want {rows})")
    return counted - rows, sum(report["retries"] for report in reports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.claims", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--accounts", type=int, default=0, help="accounts in the pool (default: 2 per worker)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--anchor-rows", type=int, default=200_000, help="rows for the 1,000-a-claim anchor")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--anchor-worker", nargs=2, metavar=("MODE", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return scheduler_worker()
    if args.anchor_worker:
        return anchor_worker(*args.anchor_worker)

    print(machine_line())
    rates: dict[str, list[float]] = collections.defaultdict(list)
    server_share: dict[str, list[float]] = collections.defaultdict(list)
    checks = []
    with bench_database() as settings, tempfile.TemporaryDirectory(prefix="bench-claims-") as tmp:
        env = child_env(settings, Path(tmp))
        conn = connect_infile(settings, autocommit=False)
        try:
            print(server_line(conn), flush=True)
            timeout = 120 + args.tasks / 20
            for attempt in range(1, args.repeat + 1):
                prepare_tasks(settings, args.tasks, args.accounts or 2 * args.workers)
                workers = start_workers([["--worker"]] * args.workers, env)
                seconds, server, reports = race(workers, timeout)
                checks.append(check_scheduler_run(settings, args.tasks, reports))
                rates["scheduler"].append(args.tasks / seconds)
                server_share["scheduler"].append(server / seconds)

                prepare_anchor(conn, args.anchor_rows)
                workers = start_workers([["--anchor-worker", "batch", f"b{n}"] for n in range(2)], env)
                seconds, server, reports = race(workers, timeout)
                checks[-1]["anchor_double"], checks[-1]["anchor_retries"] = check_anchor(conn, args.anchor_rows, reports)
                rates["batch"].append(args.anchor_rows / seconds)
                server_share["batch"].append(server / seconds)

                prepare_anchor(conn, args.tasks)
                workers = start_workers([["--anchor-worker", "single", f"s{n}"] for n in range(args.workers)], env)
                seconds, server, reports = race(workers, timeout)
                checks[-1]["single_double"], checks[-1]["single_retries"] = check_anchor(conn, args.tasks, reports)
                rates["single"].append(args.tasks / seconds)
                server_share["single"].append(server / seconds)
                print(f"  run {attempt}: scheduler {rates['scheduler'][-1]:,.0f} claims/s"
                      f" (double claims {checks[-1]['double']}, per worker {checks[-1]['quietest']}–"
                      f"{checks[-1]['busiest']}, empty claims while tasks were left {checks[-1]['idle_polls']}),"
                      f" batch anchor {rates['batch'][-1]:,.0f} rows/s,"
                      f" single anchor {rates['single'][-1]:,.0f} rows/s", flush=True)
        finally:
            conn.close()

    batch, single = median(rates["batch"]), median(rates["single"])
    scheduler = median(rates["scheduler"])
    doubles = sum(c["double"] + c["anchor_double"] + c["single_double"] for c in checks)
    print(f"\nclaims: {args.workers} processes, {args.tasks:,} tasks, medians of {args.repeat}")
    print(f"  {'path':<62} {'per second (min–max)':>30} {'server CPU':>11}")
    print(f"  {'TaskScheduler claim + complete (claims/s)':<62} {spread(rates['scheduler']):>30}"
          f" {median(server_share['scheduler']):>10.2f}c")
    print(f"  {f'bare SQL: claim 1 row + complete, {args.workers} processes (rows/s)':<62}"
          f" {spread(rates['single']):>30} {median(server_share['single']):>10.2f}c")
    print(f"  {'bare SQL: SKIP LOCKED batches of 1,000, 2 processes (rows/s)':<62}"
          f" {spread(rates['batch']):>30} {median(server_share['batch']):>10.2f}c")
    print(f"  scheduler vs bare single-row claims: {scheduler / single:.2f}x;"
          f" vs 1,000-row batch claims: {scheduler / batch:.3f}x")
    print(f"  double claims: {doubles} (checked from events, the workers' lists and the anchors' counts);"
          f" anchors' deadlock retries: {sum(c['anchor_retries'] + c['single_retries'] for c in checks)}")
    return 0 if doubles == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
