"""Service mode: two spider processes share the subtasks of one `start_crawl --pages 40` (on a
cursor platform, of four one-subtask crawls)."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from tests.fixtures.crawl import add_accounts, assert_matches_truth, query, tasks
from tests.fixtures.processes import run_cli

pytestmark = pytest.mark.timeout(180)

DOMAIN = "母婴"
SETTINGS = {"INGEST_MAX_TASKS": 1, "ACCOUNTS_REQUEST_INTERVAL": 0.08}


def four_subtasks(api) -> dict[str, int]:
    """The crawls to create, {domain: pages}, four subtasks in all: on /api/v1 one crawl of 40
    pages in four page ranges of 10; on a cursor platform, whose crawl is one subtask reading
    from page 1, four crawls of 10 pages."""
    if api.cursors:
        return dict.fromkeys((DOMAIN, "美妆", "游戏", "美食"), 10)
    return {DOMAIN: 40}


def test_two_service_processes_run_each_subtask_once(api, start_sandbox, crawls, env, mysql_settings, db) -> None:
    site = start_sandbox(**api.sandbox_flags, pages=40)
    add_accounts(env, "demo1", "demo2", "demo3", "demo4")
    planned = four_subtasks(api)
    for domain, pages in planned.items():
        created = run_cli(env, "start_crawl", "--domain", domain, "--pages", str(pages))
        assert created.returncode == 0, created.stderr
    first = crawls.start(site.url, "once=1", **SETTINGS)
    second = crawls.start(site.url, "once=1", **SETTINGS)
    for crawl in (first, second):
        assert crawl.wait(120) == 0, crawl.log[-3000:]
        assert "no claimable ingestion task left; stopping (once=1)" in crawl.log
        assert f"adapter {api.adapter})" in crawl.log

    rows = tasks(mysql_settings)
    parents = [row for row in rows if row["is_parent"]]
    subtasks = [row for row in rows if row["parent_id"]]
    assert len(parents) == len(planned) and all(row["status"] == "completed" for row in parents), parents
    assert len(subtasks) == 4
    assert sorted(Counter(row["parent_id"] for row in subtasks).values()) == ([1, 1, 1, 1] if api.cursors else [4])
    assert all(row["status"] == "completed" for row in subtasks), subtasks
    events = query(mysql_settings, "SELECT task_id, event, worker FROM events WHERE entity = 'task'"
                                   " AND event IN ('claimed', 'completed')")
    per_task = Counter((row["task_id"], row["event"]) for row in events)
    for row in subtasks:
        assert per_task[(row["id"], "claimed")] == 1 and per_task[(row["id"], "completed")] == 1
    workers = {row["worker"] for row in events if row["event"] == "claimed"}
    assert len(workers) == 2, "both processes should have taken subtasks"
    # A subtask hands its account back once its pages are fetched, and the account may serve the
    # next subtask before the first one completes; still no account is ever taken twice at once.
    assert "goes back to the pool while the last pages commit" in first.log + second.log
    account_events = query(mysql_settings, "SELECT entity_id, event FROM events WHERE entity = 'account'"
                                           " AND event IN ('taken', 'freed') ORDER BY id")
    per_account: dict[int, list[str]] = {}
    for row in account_events:
        per_account.setdefault(row["entity_id"], []).append(row["event"])
    for sequence in per_account.values():
        assert sequence == ["taken", "freed"] * (len(sequence) // 2), sequence
    idle = query(mysql_settings, "SELECT COUNT(*) AS n FROM accounts WHERE status = 'idle' AND held_by_task_id IS NULL")
    assert idle[0]["n"] == 4

    for domain, pages in planned.items():
        logs = query(mysql_settings, "SELECT l.page_number, t.page_from, t.page_to FROM ingestion_logs l"
                                     " JOIN tasks t ON t.id = l.task_id WHERE l.domain = %s ORDER BY l.page_number",
                     domain)
        assert [row["page_number"] for row in logs] == list(range(1, pages + 1))
        assert all(row["page_from"] <= row["page_number"] <= row["page_to"] for row in logs)
        assert_matches_truth(mysql_settings, domain, site.truth(domain, 1, pages))


def test_sigterm_releases_every_claim(start_sandbox, crawls, env, mysql_settings, db) -> None:
    site = start_sandbox(pages=40)
    add_accounts(env, "demo1", "demo2")
    assert run_cli(env, "start_crawl", "--domain", DOMAIN, "--pages", "40").returncode == 0
    crawl = crawls.start(site.url, INGEST_MAX_TASKS=2, ACCOUNTS_REQUEST_INTERVAL=0.2)
    crawl.wait_for("crawling", 30)
    crawl.signal(signal.SIGTERM)
    assert crawl.wait(30) == 0, crawl.log[-3000:]
    subtasks = [row for row in tasks(mysql_settings, DOMAIN) if row["parent_id"]]
    assert all(row["status"] in ("pending", "completed") and row["claimed_by"] is None for row in subtasks)
    assert {row["status"] for row in query(mysql_settings, "SELECT status FROM accounts")} == {"idle"}
    released = query(mysql_settings, "SELECT reason FROM events WHERE event = 'released'")
    assert released and all(row["reason"] in ("spider closed (shutdown)", "worker stopping") for row in released)
    # Whatever was committed is whole and the markers match it.
    for row in subtasks:
        pages = [log["page_number"] for log in query(
            mysql_settings, "SELECT page_number FROM ingestion_logs WHERE task_id = %s", row["id"])]
        marker = int(row["progress_marker"].split("=")[1]) if row["progress_marker"] else row["page_from"] - 1
        assert set(range(row["page_from"], marker + 1)) <= set(pages)
