"""Task scheduler in one process with several workers (each its own connection and liveness lock)."""

from __future__ import annotations

import time

import pymysql
import pytest

from influencers.core.accounts import AccountManager
from influencers.core.credentials import CredentialCipher
from influencers.core.db import connect, transaction
from influencers.core.errors import ClaimLost, DatabaseUnavailable, InvalidArgument, InvalidTransition
from influencers.core.tasks import TaskScheduler
from influencers.core.tasks.recovery import LOCK_GRACE_SECONDS
from influencers.core.workers import Worker


def soon(probe, timeout: float = 5.0):
    """The first truthy result of `probe()`: a closed connection's locks are released by the
    server a moment after the client hangs up, not at the instant `close()` returns."""
    deadline = time.monotonic() + timeout
    while not (result := probe()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return result


def other_scheduler(mysql_settings, config, lease_seconds=30):
    conn = connect(mysql_settings)
    worker = Worker.start(mysql_settings, "other")
    return TaskScheduler(conn, worker, AccountManager(conn, quota_day=config.quota_day), lease_seconds=lease_seconds)


def test_start_crawl_splits_pages(scheduler: TaskScheduler, db):
    parent = scheduler.create_crawl("美妆", 25, 10)
    with db.cursor() as cursor:
        cursor.execute("SELECT page_from, page_to FROM tasks WHERE parent_id = %s ORDER BY id", (parent,))
        ranges = [(r["page_from"], r["page_to"]) for r in cursor.fetchall()]
    assert ranges == [(1, 10), (11, 20), (21, 25)]
    assert scheduler.get(parent).is_parent


@pytest.mark.parametrize("domain", ["", "../etc", "a/b", "x\x00y", "a" * 101, "tab\there"])
def test_bad_domains_refused(scheduler: TaskScheduler, domain):
    with pytest.raises(InvalidArgument):
        scheduler.create_crawl(domain, 5)


def test_claim_binds_idle_account_and_completes(scheduler: TaskScheduler, accounts: AccountManager):
    account_id = accounts.add("demo1", "pw")
    parent = scheduler.create_crawl("游戏", 10, 10)
    claim = scheduler.claim("ingestion")
    assert claim is not None and claim.account_id == account_id
    assert accounts.get(account_id).status == "ingesting"
    assert scheduler.claim("ingestion") is None  # nothing else claimable
    scheduler.complete(claim)
    assert accounts.get(account_id).status == "idle"
    assert scheduler.get(parent).status == "completed"
    events = [e["event"] for e in scheduler.events(claim.task_id)]
    assert events[:3] == ["created", "taken", "claimed"] and "completed" in events and events[-1] == "freed"


def test_an_account_handed_back_early_is_freed_only_by_the_task_holding_it(scheduler, accounts, mysql_settings, config):
    """A crawl hands its account back once all its pages are fetched; ending that task later, or an
    operator pausing it, must not free the account another task has taken meanwhile."""
    account_id = accounts.add("demo1", "pw")
    scheduler.create_crawl("游戏", 30, 10)
    first = scheduler.claim("ingestion")
    first = scheduler.hand_back_account(first)
    assert first.account_id is None and accounts.get(account_id).status == "idle"
    other = other_scheduler(mysql_settings, config)
    second = other.claim("ingestion")
    assert second is not None and second.account_id == account_id
    scheduler.complete(first)
    assert accounts.get(account_id).status == "ingesting"  # still the second task's
    completed = [e for e in scheduler.events(first.task_id) if e["event"] == "completed"]
    assert [e["account_id"] for e in completed] == [account_id]  # the account it crawled with
    third_worker = other_scheduler(mysql_settings, config)
    other.complete(second)
    third = third_worker.claim("ingestion")
    assert third is not None and third.account_id == account_id
    third = third_worker.hand_back_account(third)
    fourth = other.claim("ingestion")
    assert fourth is None  # all three subtasks are taken: the account waits for the next one
    scheduler.create_crawl("美食", 10, 10)
    fourth = other.claim("ingestion")
    assert fourth is not None and fourth.account_id == account_id
    scheduler.pause_task(third.task_id)  # names the task's last account, which the fourth holds now
    assert accounts.get(account_id).status == "ingesting"
    other.complete(fourth)
    assert accounts.get(account_id).status == "idle"
    other.worker.close()
    third_worker.worker.close()


def test_no_account_no_claim(scheduler: TaskScheduler):
    scheduler.create_crawl("游戏", 10, 10)
    assert scheduler.claim("ingestion") is None
    assert scheduler.get(2).status == "pending"


def test_lease_expiry_returns_task_and_account(scheduler, accounts, mysql_settings, config):
    """A worker that stops heartbeating loses its claim after the lease; attempts + 1; account idle."""
    accounts.add("demo1", "pw")
    scheduler.lease_seconds = 0.5
    scheduler.create_crawl("游戏", 5, 5)
    stale = scheduler.claim("ingestion")
    assert stale is not None
    other = other_scheduler(mysql_settings, config)
    assert other.claim("ingestion") is None  # lease still valid, the worker's lock still held
    time.sleep(0.7)
    fresh = other.claim("ingestion")
    assert fresh is not None and fresh.task_id == stale.task_id
    assert fresh.task.attempts == stale.task.attempts + 1
    assert "lease expired" in fresh.task.last_error
    # the stale worker wakes up: every fenced write is refused
    with pytest.raises(ClaimLost):
        scheduler.complete(stale)
    with pytest.raises(ClaimLost), transaction(scheduler.conn) as cursor:
        scheduler.set_progress(cursor, stale, "page=5")
    assert scheduler.heartbeat(stale) is False
    assert other.heartbeat(fresh) is True
    other.complete(fresh)
    assert scheduler.get(fresh.task_id).status == "completed"
    other.worker.close()


def test_recovery_between_claims_is_rate_limited_but_never_hides_the_last_task(accounts, mysql_settings, config):
    """With ``recover_every`` a worker claiming task after task skips the recovery scan between
    claims; a dead worker's task then waits behind the pending ones, and a claim that finds
    nothing else recovers first, so the dead worker's task is never reported as nothing to do."""
    accounts.add("demo1", "pw")
    accounts.add("demo2", "pw")
    conn = connect(mysql_settings)
    busy = TaskScheduler(conn, Worker.start(mysql_settings, "busy", check_every=3600),
                         AccountManager(conn, quota_day=config.quota_day), recover_every=3600)
    busy.create_crawl("游戏", 20, 10)  # tasks 2 and 3
    first = busy.claim("ingestion")  # recovers (the first time), then claims task 2
    doomed = other_scheduler(mysql_settings, config)
    lost = doomed.claim("ingestion")  # task 3
    assert (first.task_id, lost.task_id) == (2, 3)
    doomed.worker.close()  # its process dies: task 3 is recoverable at once
    busy.complete(first)
    busy.create_crawl("游戏", 10, 10)  # task 5, pending
    assert soon(lambda: _free_lock(busy.conn, lost.worker_id))
    second = busy.claim("ingestion")
    assert second.task_id == 5  # no recovery scan yet: the dead worker's task still looks busy
    assert busy.get(3).status == "in_progress"
    busy.complete(second)
    third = busy.claim("ingestion")  # nothing pending: it recovers before saying so
    assert third is not None and third.task_id == 3
    assert "worker gone" in third.task.last_error
    busy.complete(third)
    assert busy.claim("ingestion") is None
    busy.worker.close()


def test_a_worker_whose_lock_the_server_dropped_does_not_recover_its_own_live_claims(accounts, mysql_settings,
                                                                                      config):
    """A restarted server drops every worker's lock; until a worker takes its lock again, its own
    recovery must not take back the tasks it is running (that spent an attempt on each and stopped
    the runs). Another worker's recovery may: the fence then tells the first one."""
    accounts.add("demo1", "pw")
    conn = connect(mysql_settings)
    worker = Worker.start(mysql_settings, "restarted", check_every=3600)
    mine = TaskScheduler(conn, worker, AccountManager(conn, quota_day=config.quota_day))
    mine.create_crawl("游戏", 10, 10)
    claim = mine.claim("ingestion")
    worker.close()  # what a server restart does to the lock's connection
    assert soon(lambda: _free_lock(conn, claim.worker_id))
    assert mine.recover() == 0
    assert mine.heartbeat(claim) and mine.get(claim.task_id).attempts == 0
    other = other_scheduler(mysql_settings, config)
    assert other.recover() == 1
    assert not mine.heartbeat(claim)
    with pytest.raises(ClaimLost):
        mine.complete(claim)
    other.worker.close()


def test_a_server_that_just_started_recovers_by_leases_only(private_mysql, config):
    """Right after a restart no worker holds its lock yet: a free lock then proves nothing, and
    another worker's recovery must not take a live worker's task (the lease still can)."""
    settings = private_mysql.settings
    conn = connect(settings)
    AccountManager(conn, quota_day=config.quota_day, cipher=CredentialCipher.from_config(config)).add("demo1", "pw")
    live = TaskScheduler(conn, Worker.start(settings, "live", check_every=3600),
                         AccountManager(conn, quota_day=config.quota_day))
    live.create_crawl("游戏", 10, 10)
    claim = live.claim("ingestion")
    live.worker.close()  # as the restart left it: reconnecting, its lock not taken yet
    other = other_scheduler(settings, config)
    assert soon(lambda: _free_lock(other.conn, claim.worker_id))
    with other.conn.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Uptime'")
        assert int(cursor.fetchone()["Value"]) < LOCK_GRACE_SECONDS, "the private server is not new"
    other.conn.commit()
    assert other.recover() == 0
    assert live.heartbeat(claim)
    with other.conn.cursor() as cursor:
        cursor.execute("UPDATE tasks SET lease_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s",
                       (claim.task_id,))
    other.conn.commit()
    assert other.recover() == 1  # a lease that ran out is proof enough
    other.worker.close()
    conn.close()
    other.conn.close()


def _free_lock(conn, name: str) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("SELECT IS_FREE_LOCK(%s) AS free", (name,))
        free = cursor.fetchone()["free"] == 1
    conn.commit()
    return free


def test_too_many_attempts_fail_the_task(scheduler, accounts, mysql_settings, config):
    accounts.add("demo1", "pw")
    scheduler.create_crawl("游戏", 1, 1)
    with scheduler.conn.cursor() as cursor:
        cursor.execute("UPDATE tasks SET max_attempts = 2 WHERE parent_id IS NOT NULL")
    scheduler.conn.commit()
    for _ in range(2):
        worker = Worker.start(mysql_settings, "doomed")
        doomed = TaskScheduler(connect(mysql_settings), worker, AccountManager(scheduler.conn), lease_seconds=30)
        assert soon(lambda doomed=doomed: doomed.claim("ingestion")) is not None
        worker.close()  # the process "dies": its lock is released at once
    assert soon(scheduler.recover) == 1
    task = scheduler.get(2)
    assert task.status == "failed" and "failed after 2 attempts" in task.last_error
    assert scheduler.get(1).status == "failed"
    assert accounts.list()[0].status == "idle"


def test_operator_pause_and_resume(scheduler, accounts):
    accounts.add("demo1", "pw")
    scheduler.create_crawl("游戏", 5, 5)
    claim = scheduler.claim("ingestion")
    scheduler.pause_task(claim.task_id, "maintenance")
    with pytest.raises(ClaimLost):
        scheduler.complete(claim)
    assert accounts.list()[0].status == "idle"
    assert scheduler.claim("ingestion") is None  # an operator's pause does not resume by itself
    scheduler.resume_task(claim.task_id)
    with pytest.raises(InvalidTransition):
        scheduler.resume_task(claim.task_id)
    again = scheduler.claim("ingestion")
    assert again is not None and again.task_id == claim.task_id


def test_worker_pause_resumes_by_itself_and_switch_account(scheduler, accounts):
    first = accounts.add("demo1", "pw")
    second = accounts.add("demo2", "pw")
    task_id = scheduler.create_export("美妆", None, "csv")
    claim = scheduler.claim("export")
    assert claim.account_id == first
    switched = scheduler.switch_account(claim, "quota spent")
    assert switched is not None and switched.account_id == second
    assert accounts.get(first).status == "idle"
    assert scheduler.switch_account(switched, "quota spent", exclude=(first,)) is None
    scheduler.pause(switched, "last_id=42", "no account with quota left")
    task = scheduler.get(task_id)
    assert (task.status, task.progress_marker) == ("paused", "last_id=42")
    resumed = scheduler.claim("export")
    assert resumed is not None and resumed.task.progress_marker == "last_id=42"
    events = [e["event"] for e in scheduler.events(task_id) if e["entity"] == "task"]
    assert events == ["created", "claimed", "account_switched", "account_switched", "paused", "claimed"]


def test_progress_clears_attempts(scheduler, accounts, mysql_settings):
    """Attempts count workers lost without progress: a long task may survive many crashes."""
    accounts.add("demo1", "pw")
    scheduler.create_crawl("游戏", 1, 1)
    for page in range(1, 8):  # more crashes than max_attempts, each after some progress
        worker = Worker.start(mysql_settings, "crashy")
        crashy = TaskScheduler(connect(mysql_settings), worker, AccountManager(scheduler.conn), lease_seconds=30)
        claim = soon(lambda crashy=crashy: crashy.claim("ingestion"))
        assert claim is not None, f"round {page}: task no longer claimable"
        with transaction(crashy.conn) as cursor:
            crashy.set_progress(cursor, claim, f"page={page}")
        worker.close()
    assert soon(scheduler.recover) == 1
    task = scheduler.get(2)
    assert (task.status, task.attempts, task.progress_marker) == ("pending", 1, "page=7")


def test_pauses_without_progress_fail_the_task_at_max_attempts(scheduler, accounts):
    accounts.add("demo1", "pw")
    task_id = scheduler.find_or_create_domain_task("游戏", 5)
    with scheduler.conn.cursor() as cursor:
        cursor.execute("UPDATE tasks SET max_attempts = 3 WHERE id = %s", (task_id,))
    scheduler.conn.commit()
    for round_ in range(3):
        claim = scheduler.claim("ingestion")
        assert claim is not None, round_
        with transaction(scheduler.conn) as cursor:
            scheduler.set_progress(cursor, claim, "page=2")  # the same marker: no progress
        scheduler.pause(claim, "page=2", "page 3 failed", resume_after=0, count_attempt=True)
    task = scheduler.get(task_id)
    assert task.status == "failed" and "3 rounds without progress" in task.last_error
    # running the domain's crawl again resumes the failed task from its marker
    assert scheduler.find_or_create_domain_task("游戏", 5) == task_id
    again = scheduler.get(task_id)
    assert (again.status, again.attempts, again.progress_marker) == ("pending", 0, "page=2")


def test_a_claim_whose_commit_went_unanswered_is_still_this_workers(scheduler, accounts, monkeypatch):
    """The server committed the claim but the answer was lost (the connection dropped): the next
    claim returns that task, which would otherwise stay in progress under a live worker until its
    lease ran out (and a crawl with once=1 would end without it)."""
    account_id = accounts.add("demo1", "pw")
    scheduler.create_crawl("游戏", 20, 10)
    commit = scheduler.conn.commit

    def commit_and_lose_the_answer() -> None:
        commit()
        monkeypatch.setattr(scheduler.conn, "commit", commit)
        raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")

    monkeypatch.setattr(scheduler.conn, "commit", commit_and_lose_the_answer)
    with pytest.raises((pymysql.err.OperationalError, DatabaseUnavailable)):
        scheduler.claim("ingestion")
    claim = scheduler.claim("ingestion")
    assert claim is not None and claim.task_id == 2 and claim.account_id == account_id
    assert scheduler.heartbeat(claim)  # its lease token is the claim's
    scheduler.complete(claim)
    assert scheduler.get(2).status == "completed"
