"""Schedules end to end, as processes: three `python -m influencers scheduler` at once fire each
occurrence exactly once; one SIGKILLed mid-way loses and doubles nothing; SIGTERM ends them
cleanly; the process rides out its database SIGKILLed and restarted; bad input is one line and
exit 2. Occurrences are made due by rewriting the stored times, never by waiting for the clock."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from influencers.core.config import Config
from influencers.core.db import connect
from influencers.core.schedules import ScheduleStore
from tests.fixtures.database import mysql_url
from tests.fixtures.processes import Processes, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def query(settings: Any, statement: str, *args: Any) -> list[dict[str, Any]]:
    """One statement on a connection of its own, committed."""
    conn = connect(settings, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, args)
            return list(cursor.fetchall())
    finally:
        conn.close()


def wait_for(check: Callable[[], bool], timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tails = "\n".join(log.read_text()[-2000:] for log in logs if log.exists())
            raise AssertionError(f"{what} not within {timeout}s\n{tails}")
        time.sleep(0.1)


def make_due(settings: Any, ids: list[int]) -> datetime:
    """Make the schedules due at the current minute (out of a minute's last seconds, so the
    occurrence is on time when they fire)."""
    now = query(settings, "SELECT UTC_TIMESTAMP(6) AS now")[0]["now"]
    if now.second >= 50:
        time.sleep(61 - now.second)
        now = query(settings, "SELECT UTC_TIMESTAMP(6) AS now")[0]["now"]
    minute = now.replace(second=0, microsecond=0)
    marks = ", ".join(["%s"] * len(ids))
    query(settings, f"UPDATE schedules SET next_run_at = %s WHERE id IN ({marks})", minute, *ids)
    return minute


def add_schedules(settings: Any, env: dict[str, str], count: int, kind: str) -> list[int]:
    conn = connect(settings)
    try:
        store = ScheduleStore(conn, Config.from_env(env).quota_day)
        if kind == "crawl":
            return [store.add_crawl(f"域{number}", 3, 1, "* * * * *") for number in range(count)]
        return [store.add_export(f"域{number}", "* * * * *", limit=5) for number in range(count)]
    finally:
        conn.close()


def start_scheduler(processes: Processes, env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen:
    return processes.python("influencers", "scheduler", "--interval", "0.2", *extra, env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("a"))


def handled(settings: Any, ids: list[int], minute: datetime) -> int:
    marks = ", ".join(["%s"] * len(ids))
    return query(settings, f"SELECT COUNT(*) AS n FROM schedule_runs WHERE occurrence_at = %s AND schedule_id IN"
                           f" ({marks})", minute, *ids)[0]["n"]


def assert_one_task_per_started_run(settings: Any, *, subtasks: int | None = None) -> list[dict[str, Any]]:
    """Every task the schedulers made belongs to exactly one started run, and every started run has one."""
    started = query(settings, "SELECT schedule_id, occurrence_at, task_id FROM schedule_runs WHERE outcome = 'started'")
    tasks = [row["id"] for row in query(settings, "SELECT id FROM tasks WHERE parent_id IS NULL")]
    assert sorted(row["task_id"] for row in started) == sorted(tasks)
    if subtasks is not None:
        for row in query(settings, "SELECT COUNT(*) AS n FROM tasks WHERE parent_id IS NOT NULL GROUP BY parent_id"):
            assert row["n"] == subtasks
    return started


def stop(process: subprocess.Popen, log: Path, signum: int = signal.SIGTERM) -> int:
    """Signal a scheduler once it has set up its handlers (its first log line), and wait for its end."""
    wait_for(lambda: "firing due schedules" in log.read_text(), 30, "the scheduler's start", [log])
    process.send_signal(signum)
    return process.wait(timeout=30)


def test_three_schedulers_fire_each_occurrence_exactly_once(db, mysql_settings, env, processes, tmp_path):
    ids = add_schedules(mysql_settings, env, 20, "crawl") + add_schedules(mysql_settings, env, 20, "export")
    logs = [tmp_path / f"scheduler{number}.log" for number in range(3)]
    minute = make_due(mysql_settings, ids)
    schedulers = [start_scheduler(processes, env, log) for log in logs]
    wait_for(lambda: handled(mysql_settings, ids, minute) == len(ids), 60, "every schedule's occurrence", logs)
    started = assert_one_task_per_started_run(mysql_settings)
    assert sorted(row["schedule_id"] for row in started if row["occurrence_at"] == minute) == sorted(ids)
    assert len({row["task_id"] for row in started}) == len(started)

    # The next occurrence comes while every task is still pending: each is recorded, skipped.
    query(mysql_settings, "UPDATE schedule_runs SET occurrence_at = occurrence_at - INTERVAL 1 HOUR")
    minute = make_due(mysql_settings, ids)
    wait_for(lambda: handled(mysql_settings, ids, minute) == len(ids), 60, "the second occurrence", logs)
    second = query(mysql_settings, "SELECT outcome, reason FROM schedule_runs WHERE occurrence_at = %s", minute)
    assert {row["outcome"] for row in second} == {"skipped"}
    assert all("the previous run is unfinished" in row["reason"] for row in second)
    assert_one_task_per_started_run(mysql_settings)

    for process, log in zip(schedulers, logs, strict=True):  # SIGTERM: a clean end
        assert stop(process, log) == 0
    text = "".join(log.read_text() for log in logs)
    assert "Traceback" not in text, text
    assert text.count("stopped") == 3
    fired = sum(log.read_text().count(" UTC: task ") for log in logs)
    assert fired == len(ids)  # each started task logged once, by the scheduler that made it


def test_a_scheduler_killed_midway_neither_doubles_nor_loses_an_occurrence(
        db, mysql_settings, env, processes, tmp_path):
    logs = [tmp_path / f"scheduler{number}.log" for number in range(6)]
    schedulers = [(start_scheduler(processes, env, logs[number]), logs[number]) for number in range(3)]
    everyone: list[int] = []
    rng = random.Random(7)
    for round_number in range(3):
        ids = add_schedules(mysql_settings, env, 60, "crawl")
        everyone += ids
        minute = make_due(mysql_settings, ids)
        time.sleep(rng.uniform(0.05, 0.4))
        victim, _ = schedulers.pop(rng.randrange(len(schedulers)))
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        log = logs[3 + round_number]
        schedulers.append((start_scheduler(processes, env, log), log))
        wait_for(lambda ids=ids, minute=minute: handled(mysql_settings, ids, minute) == len(ids), 60,
                 f"round {round_number}'s occurrences", logs)
    started = assert_one_task_per_started_run(mysql_settings, subtasks=3)
    assert sorted(row["schedule_id"] for row in started) == sorted(everyone)  # one task each, none lost
    for process, log in schedulers:
        assert stop(process, log, signal.SIGINT) == 0


def test_the_scheduler_rides_out_its_database_restarted(private_mysql, env, processes, tmp_path):
    settings = private_mysql.settings
    env = {**env, "INFLUENCERS_MYSQL_URL": mysql_url(settings)}
    log = tmp_path / "scheduler.log"
    [first, second] = add_schedules(settings, env, 2, "export")
    scheduler = start_scheduler(processes, env, log)
    minute = make_due(settings, [first])
    wait_for(lambda: handled(settings, [first], minute) == 1, 30, "the first occurrence", [log])
    private_mysql.kill()
    time.sleep(3)
    assert scheduler.poll() is None, log.read_text()
    private_mysql.start()
    minute = make_due(settings, [second])
    wait_for(lambda: handled(settings, [second], minute) == 1, 60, "the occurrence after the outage", [log])
    assert stop(scheduler, log) == 0
    text = log.read_text()
    assert "Traceback" not in text, text
    assert text.count("MySQL unreachable") == 1, text
    assert text.count("MySQL reachable again after") == 1, text
    assert_one_task_per_started_run(settings)


def test_schedule_commands_and_their_bad_input(db, env):
    added = run_cli(env, "schedule", "add", "--domain", "美妆", "--pages", "50", "--split", "10", "--cron",
                    "0 3 * * *", "--name", "nightly")
    assert added.returncode == 0, added.stderr
    assert "next run" in added.stdout and "03:00:00" in added.stdout
    exported = run_cli(env, "schedule", "add-export", "--domain", "美妆", "--cron", "30 4 * * 1", "--limit", "100",
                       "--format", "jsonl", "--missed", "skip")
    assert exported.returncode == 0, exported.stderr
    listed = json.loads(run_cli(env, "schedule", "list", "--format", "json").stdout)
    assert [(row["id"], row["name"], row["kind"], row["state"]) for row in listed] == [
        (1, "nightly", "crawl", "active"), (2, "export 美妆", "export", "active")]
    assert run_cli(env, "schedule", "pause", "1").returncode == 0
    status = run_cli(env, "status")
    assert status.returncode == 0 and "Schedules" in status.stdout and "nightly" in status.stdout
    assert json.loads(run_cli(env, "status", "--format", "json").stdout)["Schedules"][0]["state"] == "paused"
    assert run_cli(env, "schedule", "resume", "1").returncode == 0
    assert run_cli(env, "schedule", "remove", "2").returncode == 0

    for args in (["add", "--domain", "美妆", "--pages", "5", "--cron", "bad cron"],
                 ["add", "--domain", "美妆", "--pages", "5", "--cron", "61 * * * *"],
                 ["add-export", "--domain", "美妆", "--cron", "0 0 30 2 *"],
                 ["add", "--domain", "a/b", "--pages", "5", "--cron", "* * * * *"],
                 ["add", "--domain", "美妆", "--pages", "5", "--cron", "* * * * *", "--missed", "twice"],
                 ["pause", "999"], ["resume", "999"], ["remove", "999"], ["pause", "x"]):
        result = run_cli(env, "schedule", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, (args, result.stderr)
        assert result.stdout == ""
    assert [row["id"] for row in json.loads(run_cli(env, "schedule", "list", "--format", "json").stdout)] == [1]


def test_the_dashboard_lists_the_schedules_as_text(on_browser, api_server, db, env):
    store = ScheduleStore(db, Config.from_env(env).quota_day)
    hostile = '<img src=x onerror="document.body.dataset.owned=1">夜间'
    crawl = store.add_crawl("美妆", 4, 2, "* * * * *", name=hostile)
    paused = store.add_export("游戏", "0 3 * * *", name="导出")
    store.pause(paused)
    with db.cursor() as cursor:
        cursor.execute("UPDATE schedules SET next_run_at = UTC_TIMESTAMP() WHERE id = %s", (crawl,))
    db.commit()
    [run] = store.fire_due(actor="test")

    def check(page):
        page.goto(f"{api_server.url}/dashboard#token={api_server.token}")
        page.wait_for_function("() => Number(document.body.dataset.refreshes || 0) > 0", timeout=15_000)
        row = f'#schedules tr[data-key="{crawl}"]'
        assert page.locator(f'{row} td[data-field="name"]').inner_text() == hostile
        assert page.locator(f'{row} td[data-field="kind"]').inner_text() == "采集"
        assert f"任务 #{run.task_id}" in page.locator(f'{row} td[data-field="last_outcome"]').inner_text()
        assert page.locator(f'#schedules tr[data-key="{paused}"] td[data-field="next_run_at"]').inner_text() == "已暂停"
        assert page.evaluate("document.body.dataset.owned") is None
        assert page.problems == []

    on_browser(check)
