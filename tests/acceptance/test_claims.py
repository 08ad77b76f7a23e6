"""No double claims with real processes; dead workers lose their claims at once; fences hold."""

from __future__ import annotations

import collections
import os
import signal
import time

import pytest

from influencers.core.accounts import AccountManager
from influencers.core.errors import ClaimLost

pytestmark = pytest.mark.slow


def test_eight_processes_complete_a_thousand_tasks_exactly_once(db, accounts: AccountManager, scheduler, env, processes):
    for number in range(1, 9):
        accounts.add(f"demo{number}", "pw")
    for _ in range(10):
        scheduler.create_crawl("游戏", 100, 1)  # 10 parents x 100 subtasks = 1,000 claimable tasks
    workers = [processes.python("tests.acceptance.workers.claim_loop", env=env) for _ in range(8)]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        outputs.append(out)

    completions = collections.Counter(line.split()[1] for out in outputs for line in out.splitlines())
    assert len(completions) == 1000
    assert set(completions.values()) == {1}, "a task was completed twice"
    assert sum(1 for out in outputs if out.strip()) >= 2, "the race needs several processes doing work"
    with db.cursor() as cursor:
        cursor.execute("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")
        assert {r["status"]: r["n"] for r in cursor.fetchall()} == {"completed": 1010}
        cursor.execute("SELECT task_id, COUNT(*) AS n FROM events WHERE entity = 'task' AND event = 'claimed'"
                       " GROUP BY task_id HAVING n > 1")
        assert cursor.fetchall() == ()
        # Each account alternates taken -> freed: never bound to two running tasks at once.
        cursor.execute("SELECT entity_id, event FROM events WHERE entity = 'account' AND event IN ('taken', 'freed')"
                       " ORDER BY id")
        held: dict[int, bool] = collections.defaultdict(bool)
        for row in cursor.fetchall():
            taking = row["event"] == "taken"
            assert held[row["entity_id"]] != taking, f"account {row['entity_id']} bound twice"
            held[row["entity_id"]] = taking
        cursor.execute("SELECT COUNT(*) AS n FROM accounts WHERE status <> 'idle'")
        assert cursor.fetchone()["n"] == 0


def test_sigkilled_worker_loses_its_claim_at_once(db, accounts, scheduler, env, processes):
    accounts.add("demo1", "pw")
    scheduler.create_crawl("游戏", 5, 5)
    holder = processes.python("tests.acceptance.workers.hold_claim", "600", env=env)
    assert holder.stdout.readline().strip() == "claimed 2"
    assert scheduler.claim("ingestion") is None  # alive: its claim holds (and its account is busy)
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    started = time.monotonic()
    claim = None
    while claim is None and time.monotonic() - started < 5:
        claim = scheduler.claim("ingestion")
        time.sleep(0.05)
    assert claim is not None and claim.task_id == 2, "the task waited for a 600 s lease"
    assert time.monotonic() - started < 5
    assert "worker gone" in claim.task.last_error
    assert claim.task.attempts == 1
    scheduler.complete(claim)


def test_paused_worker_cannot_complete_a_task_another_worker_holds(db, accounts, scheduler, env, processes):
    accounts.add("demo1", "pw")
    scheduler.create_crawl("游戏", 5, 5)
    holder = processes.python("tests.acceptance.workers.hold_claim", "1", "1.5", env=env)
    assert holder.stdout.readline().strip() == "claimed 2"
    os.kill(holder.pid, signal.SIGSTOP)  # alive (its lock stays held) but silent
    time.sleep(1.3)  # its 1 s lease runs out
    claim = scheduler.claim("ingestion")
    assert claim is not None and claim.task_id == 2 and "lease expired" in claim.task.last_error
    os.kill(holder.pid, signal.SIGCONT)
    out, _ = holder.communicate(timeout=30)
    assert out.strip().splitlines()[-1] == "lost"
    assert holder.returncode == 3
    assert scheduler.get(2).status == "in_progress"
    scheduler.complete(claim)
    assert scheduler.get(2).status == "completed"
    with pytest.raises(ClaimLost):
        scheduler.complete(claim)


def test_two_processes_never_push_a_quota_past_its_limit(db, accounts, env, processes):
    account_id = accounts.add("demo1", "pw", daily_export_limit=1500)
    hammers = [processes.python("tests.acceptance.workers.quota_hammer", str(account_id), "1200", "1", env=env)
               for _ in range(2)]
    hammers.append(processes.python("tests.acceptance.workers.quota_hammer", str(account_id), "100", "7", env=env))
    accepted = 0
    for hammer in hammers:
        out, err = hammer.communicate(timeout=120)
        assert hammer.returncode == 0, err
        accepted += int(out.split()[1])
    account = accounts.get(account_id)
    assert account.today_export_count == accepted
    assert 1500 - 7 < accepted <= 1500
    assert accounts.get_remaining_quota(account_id) == 1500 - accepted
