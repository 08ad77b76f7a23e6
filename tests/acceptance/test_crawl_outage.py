"""The crawl rides out its database going away: a private MariaDB SIGKILLed while the spider
starts and while it crawls, down for a few seconds, started again on the same data directory.

Each test would fail without the outage handling: the crawl exited 2 at start, and later logged
an ERROR line per failed batch, dozens a second, or recovered its own live claims (counting an
attempt) once the server had dropped its worker lock.
"""
from __future__ import annotations

import random
import re
import time

import pytest

from tests.fixtures.crawl import add_accounts, assert_matches_truth, query
from tests.fixtures.database import mysql_url
from tests.fixtures.processes import run_cli

pytestmark = pytest.mark.slow

#: Pacing that makes a crawl of a few hundred pages last long enough to be cut several times.
SLOW = {"ACCOUNTS_REQUEST_INTERVAL": 0.04, "INGEST_DB_RETRY_MAX": 2}


def _outage_lines(log: str) -> tuple[int, int]:
    return log.count("MySQL unreachable"), len(re.findall(r"MySQL reachable again after \d", log))


def _cut_mid_crawl(server, crawl, rng: random.Random, *, times: int) -> int:
    """SIGKILL the database up to ``times`` times at random moments while the crawl runs, each
    time for 2-4 s; returns how many times it was cut."""
    killed = 0
    for _ in range(times):
        time.sleep(rng.uniform(0.5, 2.0))
        if crawl.process.poll() is not None:
            break
        server.kill()
        killed += 1
        time.sleep(rng.uniform(2.0, 4.0))
        server.start()
    return killed


def _check_log(log: str, killed: int) -> None:
    assert "Traceback" not in log, log[-4000:]
    went, back = _outage_lines(log)
    lines = "\n".join(line for line in log.splitlines() if "MySQL" in line)
    assert 1 <= went == back <= killed, f"{went} went / {back} back for {killed} outages:\n{lines}"
    assert "could not commit" not in log and "claiming failed" not in log, log[-4000:]


def test_a_domain_crawl_rides_out_outages_at_start_and_mid_crawl(private_mysql, env, crawls, start_sandbox):
    env = {**env, "INFLUENCERS_MYSQL_URL": mysql_url(private_mysql.settings)}
    crawls.env = env
    add_accounts(env, "demo1")
    sandbox = start_sandbox(pages=300)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)

    private_mysql.kill()  # gone before the spider first connects: it waits, it does not exit 2
    crawl = crawls.start(sandbox.url, "domain=美妆", "pages=300", **SLOW)
    time.sleep(rng.uniform(2.0, 3.0))
    assert crawl.process.poll() is None, f"the crawl gave up at start (seed {seed}): {crawl.log[-3000:]}"
    private_mysql.start()
    crawl.wait_for("crawling 美妆 pages 1-300", timeout=30)
    killed = 1 + _cut_mid_crawl(private_mysql, crawl, rng, times=2)  # batches, heartbeats, the marker in flight
    crawl.wait(120)

    log = crawl.log
    assert crawl.process.returncode == 0, f"seed {seed}: {log[-3000:]}"
    assert "'finish_reason': 'finished'" in log, f"seed {seed}: {log[-3000:]}"
    _check_log(log, killed)
    (task,) = query(private_mysql.settings, "SELECT * FROM tasks WHERE domain = %s", "美妆")
    assert (task["status"], task["progress_marker"]) == ("completed", "page=300"), f"seed {seed}"
    assert task["attempts"] == 0, f"seed {seed}: a live claim was recovered: {task['last_error']}"
    assert_matches_truth(private_mysql.settings, "美妆", sandbox.truth("美妆", 1, 300))
    pages = query(private_mysql.settings, "SELECT COUNT(*) AS n, COUNT(DISTINCT page_number) AS d FROM ingestion_logs")
    assert pages == [{"n": 300, "d": 300}]
    assert query(private_mysql.settings, "SELECT status FROM accounts") == [{"status": "idle"}]
    print(f"\n{killed} outages, seed {seed}")


def test_the_service_rides_out_outages_with_several_tasks_in_flight(private_mysql, env, crawls, start_sandbox):
    env = {**env, "INFLUENCERS_MYSQL_URL": mysql_url(private_mysql.settings)}
    crawls.env = env
    add_accounts(env, "demo2", "demo3")
    sandbox = start_sandbox(pages=120)
    result = run_cli(env, "start_crawl", "--domain", "游戏", "--pages", "120", "--split", "10")
    assert result.returncode == 0, result.stderr
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    crawl = crawls.start(sandbox.url, "once=1", **SLOW)
    crawl.wait_for("crawling 游戏 pages", timeout=30)
    killed = _cut_mid_crawl(private_mysql, crawl, rng, times=2)
    crawl.wait(120)

    log = crawl.log
    assert crawl.process.returncode == 0, f"seed {seed}: {log[-3000:]}"
    assert "'finish_reason': 'queue_empty'" in log, f"seed {seed}: {log[-3000:]}"
    _check_log(log, killed)
    subtasks = query(private_mysql.settings, "SELECT status, attempts FROM tasks WHERE NOT is_parent")
    assert len(subtasks) == 12
    assert {row["status"] for row in subtasks} == {"completed"}, f"seed {seed}: {subtasks}"
    assert sum(row["attempts"] for row in subtasks) == 0, f"seed {seed}: live claims were recovered"
    assert_matches_truth(private_mysql.settings, "游戏", sandbox.truth("游戏", 1, 120))
    print(f"\n{killed} outages, seed {seed}")
