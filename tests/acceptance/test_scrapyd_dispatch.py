"""`python -m influencers dispatch` against real Scrapyd nodes running the real spider."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from influencers.core.tasks import TaskScheduler
from influencers.dispatch import Dispatcher, DispatchLedger, ScrapydClient, parse_dispatch_reason, parse_node
from tests.fixtures.processes import run_cli
from tests.fixtures.scrapyd import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def add_accounts(accounts, count: int) -> None:
    for number in range(1, count + 1):
        accounts.add(f"demo{number}", f"sandbox-demo{number}")


def query(db, sql: str, *params: Any) -> list[dict[str, Any]]:
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = list(cursor.fetchall())
    db.commit()  # a fresh snapshot next time
    return rows


def wait_until(check: Callable[[], Any], timeout: float, what: str, *, explain: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout}s\n{explain()}")
        time.sleep(0.3)


def parent_done(db, parent_id: int) -> bool:
    return query(db, "SELECT status FROM tasks WHERE id = %s", parent_id)[0]["status"] in ("completed", "failed")


def dispatches(db) -> list[tuple[int, str, str]]:
    """(task, job id, node) of every handing-over, oldest first."""
    rows = query(db, "SELECT entity_id, reason FROM events WHERE event = 'dispatched' ORDER BY id")
    return [(row["entity_id"], *parse_dispatch_reason(row["reason"])) for row in rows]


def events_of(db, task_id: int) -> list[str]:
    rows = query(db, "SELECT event FROM events WHERE entity = 'task' AND entity_id = %s ORDER BY id", task_id)
    return [row["event"] for row in rows]


def assert_data_exact(db, truth: list[dict], domain: str, pages: int) -> None:
    stored = [row["uid"] for row in query(db, "SELECT uid FROM influencers WHERE domain = %s", domain)]
    assert len(stored) == len(truth)
    assert sorted(stored) == sorted(row["uid"] for row in truth)
    logged = Counter(row["page_number"] for row in
                     query(db, "SELECT page_number FROM ingestion_logs WHERE domain = %s", domain))
    assert sorted(logged) == list(range(1, pages + 1))
    assert set(logged.values()) == {1}, logged  # every page ingested exactly once


def start_dispatcher(processes, env: dict[str, str], log: Path, *urls: str, extra_env: dict[str, str] | None = None,
                     slots: str = "2") -> Any:
    args = ["dispatch", "--interval", "0.5", "--slots", slots]
    for url in urls:
        args += ["--scrapyd", url]
    return processes.python("influencers", *args, env={**env, **(extra_env or {})},
                            stdout=log.open("w"), stderr=log.open("a"))


def stop(process) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


def four_subtasks(api) -> dict[str, int]:
    """The crawls to create, {domain: pages}, four subtasks in all: on /api/v1 one crawl of 40
    pages split in four; on a cursor platform, whose crawl is one subtask, four crawls of 10."""
    if api.cursors:
        return dict.fromkeys(("美妆", "游戏", "美食", "穿搭"), 10)
    return {"美妆": 40}


def test_two_nodes_share_the_subtasks_each_run_once(api, db, env, accounts, start_sandbox, start_scrapyd,  # noqa: F811
                                                    project_egg, processes, tmp_path):  # noqa: F811
    site = start_sandbox(**api.sandbox_flags, pages=40)
    add_accounts(accounts, 4)
    first, second = start_scrapyd(site.url), start_scrapyd(site.url)  # their jobs inherit env's site adapter
    for node in (first, second):
        node.add_version(project_egg)
    planned = four_subtasks(api)
    for domain, pages in planned.items():
        split = [] if api.cursors else ["--split", "10"]
        created = run_cli(env, "start_crawl", "--domain", domain, "--pages", str(pages), *split)
        assert created.returncode == 0, created.stderr
    parents = [row["id"] for row in query(db, "SELECT id FROM tasks WHERE is_parent ORDER BY id")]

    # Two dispatchers racing for the same subtasks; one node's credentials in its URL, the
    # other's from SCRAPYD_USERNAME/SCRAPYD_PASSWORD.
    logs = [tmp_path / "dispatch1.log", tmp_path / "dispatch2.log"]
    dispatchers = [start_dispatcher(processes, env, log, first.url_with(), second.url,
                                    extra_env={"SCRAPYD_USERNAME": second.username,
                                               "SCRAPYD_PASSWORD": second.password}) for log in logs]
    text = lambda: "\n".join(log.read_text() for log in logs)  # noqa: E731
    wait_until(lambda: all(parent_done(db, parent) for parent in parents), 120, "the crawl", explain=text)
    assert [stop(dispatcher) for dispatcher in dispatchers] == [0, 0]

    subtasks = [row["id"] for row in query(db, "SELECT id FROM tasks WHERE parent_id IS NOT NULL ORDER BY id")]
    assert len(subtasks) == 4
    assert {row["status"] for row in query(db, "SELECT status FROM tasks WHERE is_parent")} == {"completed"}
    handed = dispatches(db)
    assert sorted(task for task, _, _ in handed) == subtasks  # each subtask dispatched exactly once
    for task_id in subtasks:
        assert events_of(db, task_id) == ["created", "dispatched", "claimed", "completed"]
    for node in (first, second):
        ours = {job for _, job, url in handed if url == node.url}
        assert ours, f"nothing ran on {node.url}: {handed}"  # spread over both nodes
        node.wait_finished(ours, timeout=30)  # the processes close just after their last commit
        assert node.finished_ids() == ours
    for node in (first, second):
        for job in node.finished_ids():
            assert "'finish_reason': 'finished'" in node.job_log(job)
            assert f"adapter {api.adapter})" in node.job_log(job)
    for domain, pages in planned.items():
        assert_data_exact(db, site.truth(domain, 1, pages), domain, pages)
    assert text().count("dispatched to") == 4
    assert first.password not in text()
    assert second.password not in text()


def test_a_refusing_node_and_a_dead_node_do_not_stop_the_dispatcher(db, env, accounts, sandbox,
                                                                    start_scrapyd, project_egg,  # noqa: F811
                                                                    processes, tmp_path):
    sandbox.reset()
    add_accounts(accounts, 2)
    good, locked = start_scrapyd(sandbox.url), start_scrapyd(sandbox.url)
    for node in (good, locked):  # deployed on both: only the wrong credentials keep `locked` out
        node.add_version(project_egg)
    dead = f"http://127.0.0.1:{free_port()}"
    assert run_cli(env, "start_crawl", "--domain", "游戏", "--pages", "4", "--split", "2").returncode == 0
    parent_id = query(db, "SELECT id FROM tasks WHERE is_parent")[0]["id"]

    log = tmp_path / "dispatch.log"
    wrong = "wrong-Passw0rd"
    dispatcher = start_dispatcher(processes, env, log, locked.url_with(password=wrong), "http://ops:dead-Secret@"
                                  + dead.removeprefix("http://"), good.url_with())
    wait_until(lambda: parent_done(db, parent_id), 90, "the crawl", explain=log.read_text)
    assert dispatcher.poll() is None  # still serving
    reported = query(db, "SELECT source, problem FROM outages ORDER BY source")  # for the alerter
    assert {row["source"] for row in reported} == {f"scrapyd {dead}", f"scrapyd {locked.url}"}, reported
    assert stop(dispatcher) == 0

    handed = dispatches(db)
    assert {url for _, _, url in handed} == {good.url}
    assert len(handed) == 2
    good.wait_finished({job for _, job, _ in handed}, timeout=30)
    assert sum(len(jobs) for state, jobs in locked.jobs().items() if state in ("pending", "running", "finished")) == 0
    assert_data_exact(db, sandbox.truth("游戏", 1, 4), "游戏", 4)
    text = log.read_text()
    assert f"scrapyd node {locked.url} skipped: daemonstatus.json: HTTP 401" in text
    assert f"scrapyd node {dead} skipped: daemonstatus.json: connection refused" in text
    for secret in (wrong, "dead-Secret", good.password, locked.password):
        assert secret not in text and secret not in repr(reported)


def test_a_killed_job_is_noticed_and_its_subtask_dispatched_again(db, env, accounts, start_sandbox,
                                                                 start_scrapyd, project_egg,  # noqa: F811
                                                                 processes, tmp_path):
    site = start_sandbox(pages=8, slow_rate=1.0, slow_ms=400)
    add_accounts(accounts, 1)
    node = start_scrapyd(site.url)
    node.add_version(project_egg)
    assert run_cli(env, "start_crawl", "--domain", "美食", "--pages", "8", "--split", "8").returncode == 0
    task_id = query(db, "SELECT id FROM tasks WHERE parent_id IS NOT NULL")[0]["id"]
    log = tmp_path / "dispatch.log"
    dispatcher = start_dispatcher(processes, env, log, node.url_with(), slots="1")

    wait_until(lambda: query(db, "SELECT 1 FROM ingestion_logs WHERE task_id = %s", task_id), 60,
               "a first committed page", explain=log.read_text)
    (running,) = wait_until(lambda: node.jobs()["running"], 10, "the running job")
    os.kill(running["pid"], signal.SIGKILL)

    wait_until(lambda: query(db, "SELECT status FROM tasks WHERE id = %s", task_id)[0]["status"] == "completed", 90,
               "the subtask's completion", explain=log.read_text)
    assert stop(dispatcher) == 0
    history = events_of(db, task_id)
    assert history[:4] == ["created", "dispatched", "claimed", "recovered"]
    assert history[4:] == ["dispatched", "claimed", "completed"]
    (first_job, second_job) = [job for _, job, _ in dispatches(db)]
    assert first_job == running["id"]
    node.wait_finished({first_job, second_job}, timeout=30)
    assert node.finished_ids() == {first_job, second_job}  # Scrapyd lists the killed job as finished too
    assert_data_exact(db, site.truth("美食", 1, 8), "美食", 8)


def test_jobs_that_ended_without_claiming_or_were_never_queued_are_withdrawn(db, env, accounts, sandbox,
                                                                           start_scrapyd, project_egg):  # noqa: F811
    """In process: a dispatcher that died before schedule.json, and a job that found no account."""
    sandbox.reset()
    add_accounts(accounts, 1)
    node_process = start_scrapyd(sandbox.url, max_proc=1)
    node_process.add_version(project_egg)
    node = parse_node(node_process.url_with(), 1)
    scheduler = TaskScheduler(db, None, accounts)
    parent_id = scheduler.create_crawl("穿搭", 2, 2)
    (task_id,) = [row["id"] for row in query(db, "SELECT id FROM tasks WHERE parent_id = %s", parent_id)]
    ledger = DispatchLedger(db, "test-dispatcher")
    dispatcher = Dispatcher(ledger, scheduler, ScrapydClient(), [node], grace=0)

    ghost = ledger.reserve(task_id, node, f"task{task_id}-ghost")  # recorded, never scheduled
    assert ledger.reserve(task_id, node, "task-twice") is None  # out on dispatch: not twice
    first = dispatcher.run_round()
    assert first.withdrawn == [(task_id, f"scrapyd job {ghost.job_id} is unknown to {node.url} 0s after dispatch")]
    ((_, job, _),) = first.dispatched
    accounts.disable(accounts.find("demo1").id, "test: no account for the job")  # before the job can claim

    node_process.wait_finished(job, timeout=60)
    second = dispatcher.run_round()
    assert second.withdrawn == [(task_id, f"scrapyd job {job} on {node.url} ended without claiming the task")]
    assert second.dispatched == []  # no idle account: nothing is sent to fail the same way
    accounts.enable(accounts.find("demo1").id)
    ((_, again, _),) = dispatcher.run_round().dispatched
    node_process.wait_finished(again, timeout=60)
    assert dispatcher.run_round().dispatched == []
    assert events_of(db, task_id) == ["created", "dispatched", "undispatched", "dispatched", "undispatched",
                                      "dispatched", "claimed", "completed"]
    assert_data_exact(db, sandbox.truth("穿搭", 1, 2), "穿搭", 2)

