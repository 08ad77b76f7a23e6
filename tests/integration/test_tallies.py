"""The tallies behind GET /metrics: sharded sums, racing writers, and each count committed with its work.

Pages and rows ingested commit in the pipeline's batch transaction, rows exported in the
exporter's finalize, lease recoveries in the recovery; the crawl's 429s and captchas are flushed
by `ResponseTallies` off the reactor and kept while MySQL is away. SIGKILLs are covered where the
real crawl is killed (tests/acceptance/test_ingest_resume.py), real 429s and captchas by the
hostile crawl (tests/acceptance/test_ingest_hostile.py).
"""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import datetime

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from exporter.batches import BatchExporter
from influencers.core import tallies
from influencers.core.db import connect, transaction
from influencers.core.profile import EMPTY
from influencers.core.store import PageBatch, TaskBatch, write_batch
from influencers.extensions.dbthread import DatabaseThread
from influencers.extensions.tallying import ResponseTallies
from influencers.sites.base import Outcome


def rows_of(db, sql: str, params=()) -> list[dict]:
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = list(cursor.fetchall())
    db.commit()
    return rows


def connection_id(conn) -> int:
    return rows_of(conn, "SELECT CONNECTION_ID() AS id")[0]["id"]


def page(claim, number: int, domain: str, uids: list[str]) -> PageBatch:
    now = datetime(2026, 1, 1, 8, 0, 0)
    rows = [(uid, f"达人{uid}", domain, None, {"uid": uid}, EMPTY) for uid in uids]
    return PageBatch(claim.task_id, number, domain, claim.account_id, f"http://x/{domain}?page={number}", now, now, rows)


def crawl_claim(scheduler, accounts, domain: str, username: str):
    accounts.add(username, "pw")
    claim = scheduler.claim("ingestion", task_id=scheduler.find_or_create_domain_task(domain, 100))
    assert claim is not None
    return claim


def test_additions_go_to_the_writers_shard_and_totals_add_the_shards_up(db, mysql_settings) -> None:
    first, second = connect(mysql_settings), connect(mysql_settings)
    try:
        tallies.record(first, {(tallies.PAGES_INGESTED, "游戏"): 2, (tallies.ROWS_INGESTED, "游戏"): 40,
                               (tallies.CAPTCHAS, "7"): 0})
        tallies.record(first, {(tallies.PAGES_INGESTED, "游戏"): 1})
        tallies.record(second, {(tallies.PAGES_INGESTED, "游戏"): 4, (tallies.LEASE_RECOVERIES, ""): 1})
        shards = {(row["name"], row["shard"]): int(row["value"])
                  for row in rows_of(db, "SELECT name, shard, value FROM tallies")}
        one, two = connection_id(first) % tallies.SHARDS, connection_id(second) % tallies.SHARDS
        assert shards[(tallies.ROWS_INGESTED, one)] == 40 and shards[(tallies.LEASE_RECOVERIES, two)] == 1
        assert sum(value for (name, _), value in shards.items() if name == tallies.PAGES_INGESTED) == 7
        assert (tallies.CAPTCHAS, one) not in shards  # nothing to add, no row
        assert tallies.totals(db) == {(tallies.LEASE_RECOVERIES, ""): 1, (tallies.PAGES_INGESTED, "游戏"): 7,
                                      (tallies.ROWS_INGESTED, "游戏"): 40}
        with pytest.raises(ValueError, match="only grow"), transaction(first) as cursor:
            tallies.add(cursor, {(tallies.CAPTCHAS, "7"): -1})
    finally:
        first.close()
        second.close()


def test_racing_writers_on_one_shard_and_on_two_never_deadlock(db, mysql_settings) -> None:
    """Plain transactions, not retried: a deadlock (or lock wait timeout) would fail a writer."""
    conns = [connect(mysql_settings) for _ in range(tallies.SHARDS + 1)]  # two of them share a shard
    try:
        by_shard: dict[int, list] = {}
        for conn in conns:
            by_shard.setdefault(connection_id(conn) % tallies.SHARDS, []).append(conn)
        same = next(group for group in by_shard.values() if len(group) > 1)[:2]
        other = next(group[0] for shard, group in by_shard.items() if group[0] not in same)
        writers = [*same, other]
        keys = [(name, label) for name in (tallies.PAGES_INGESTED, tallies.ROWS_INGESTED) for label in "abcdef"]
        errors: list[BaseException] = []

        def write(conn, seed: int) -> None:
            rng = random.Random(seed)
            try:
                for _ in range(150):
                    chosen = rng.sample(keys, 6)  # new and existing rows, in a different order each time
                    with transaction(conn) as cursor:
                        tallies.add(cursor, {key: 1 for key in chosen})
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(conn, n)) for n, conn in enumerate(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert sum(tallies.totals(db).values()) == len(writers) * 150 * 6
    finally:
        for conn in conns:
            conn.close()


def test_a_batch_counts_its_pages_and_rows_in_its_own_transaction(db, scheduler, accounts, mysql_settings,
                                                                   monkeypatch) -> None:
    writer = connect(mysql_settings)
    try:
        games = crawl_claim(scheduler, accounts, "游戏", "a1")
        beauty = crawl_claim(scheduler, accounts, "美妆", "a2")
        work = [TaskBatch(games, [page(games, 1, "游戏", ["a", "b", "c"]), page(games, 2, "游戏", ["c"])], 2, 0),
                TaskBatch(beauty, [page(beauty, 1, "美妆", [])], 1, 0)]
        add = tallies.add

        def add_then_fail(cursor, delta) -> None:
            add(cursor, delta)
            raise RuntimeError("the server went away before the commit")

        monkeypatch.setattr(tallies, "add", add_then_fail)
        with pytest.raises(RuntimeError):
            write_batch(writer, work)
        assert tallies.totals(db) == {} and rows_of(db, "SELECT id FROM ingestion_logs") == []  # all or nothing

        monkeypatch.setattr(tallies, "add", add)
        write_batch(writer, work)
        assert tallies.totals(db) == {(tallies.PAGES_INGESTED, "游戏"): 2, (tallies.ROWS_INGESTED, "游戏"): 4,
                                      (tallies.PAGES_INGESTED, "美妆"): 1}  # an empty page is a page
        # a task whose claim was lost commits nothing, so counts nothing; the others count
        with db.cursor() as cursor:
            cursor.execute("UPDATE tasks SET lease_token = 'someone-else' WHERE id = %s", (beauty.task_id,))
        db.commit()
        committed, lost = write_batch(writer, [TaskBatch(games, [page(games, 3, "游戏", ["d"])], 3, 2),
                                               TaskBatch(beauty, [page(beauty, 2, "美妆", ["e", "f"])], 2, 1)])
        assert [batch.claim.task_id for batch in committed] == [games.task_id] and beauty.task_id in lost
        truth = rows_of(db, "SELECT domain, COUNT(*) AS pages, SUM(ingested_count) AS n FROM ingestion_logs"
                            " GROUP BY domain")
        assert tallies.totals(db) == {
            **{(tallies.PAGES_INGESTED, row["domain"]): row["pages"] for row in truth},
            **{(tallies.ROWS_INGESTED, row["domain"]): int(row["n"]) for row in truth if row["n"]}}
    finally:
        writer.close()


def test_a_finalized_export_batch_counts_its_rows_once_for_its_account(db, scheduler, accounts, config) -> None:
    claim = crawl_claim(scheduler, accounts, "美妆", "crawler")
    write_batch(db, [TaskBatch(claim, [page(claim, 1, "美妆", [f"u{n}" for n in range(12)])], 1, 0)])
    scheduler.complete(claim)
    scheduler.create_export("美妆")
    export = scheduler.claim("export")
    account = export.account_id
    exporter = BatchExporter(db, scheduler, accounts, config.export_dir, batch_size=5)
    batch = exporter.reserve(export).batch
    exporter.publish(batch)
    assert (tallies.ROWS_EXPORTED, str(account)) not in tallies.totals(db)  # reserved is not exported
    exporter.finalize(batch)
    exporter.finalize(batch)  # as when a recovering process published it first: counted once
    while exporter.export_next(export).batch:
        pass
    assert tallies.totals(db)[(tallies.ROWS_EXPORTED, str(account))] == 12


def test_a_recovered_lease_counts_and_a_task_failed_by_recovery_does_not(db, scheduler, accounts) -> None:
    crawl_claim(scheduler, accounts, "游戏", "a1")
    last = crawl_claim(scheduler, accounts, "美妆", "a2")
    with db.cursor() as cursor:
        cursor.execute("UPDATE tasks SET max_attempts = 1 WHERE id = %s", (last.task_id,))  # recovery fails it
        cursor.execute("UPDATE tasks SET lease_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND"
                       " WHERE status = 'in_progress'")
    db.commit()
    assert scheduler.recover() == 2
    events = rows_of(db, "SELECT event FROM events WHERE entity = 'task' AND event IN ('recovered', 'failed')")
    assert sorted(row["event"] for row in events) == ["failed", "recovered"]
    assert tallies.totals(db) == {(tallies.LEASE_RECOVERIES, ""): 1}


def done(coro) -> Deferred:
    return Deferred.fromFuture(asyncio.ensure_future(coro))


def kill(db, thread_id: int) -> None:
    with db.cursor() as cursor:
        cursor.execute("KILL CONNECTION %s", (thread_id,))
    db.commit()


@pytest_twisted.ensureDeferred
async def test_response_tallies_flush_periodically_keep_counts_through_a_lost_connection_and_flush_at_close(
        db, mysql_settings) -> None:
    thread = DatabaseThread(mysql_settings, "test-tallies")
    extension = ResponseTallies(lambda: thread, interval=0.05)
    extension.counted(Outcome.RATE_LIMITED, 3)
    extension.counted(Outcome.RATE_LIMITED, 3)
    extension.counted(Outcome.CAPTCHA, 4)
    extension.counted(Outcome.BANNED, 4)  # not tallied
    extension.spider_opened()
    await deferLater(reactor, 0.3, lambda: None)  # the interval's flush
    assert tallies.totals(db) == {(tallies.CAPTCHAS, "4"): 1, (tallies.RATE_LIMITED, "3"): 2}
    assert not extension.pending

    kill(db, await done(thread.run(connection_id)))  # MySQL drops the crawl's connection
    extension._loop.stop()  # flushed by hand from here
    extension.counted(Outcome.CAPTCHA, 4)
    assert await done(extension.flush()) is False  # the call finds the connection gone: counts kept
    assert extension.pending == {(tallies.CAPTCHAS, "4"): 1}
    extension.counted(Outcome.RATE_LIMITED, 5)
    assert await done(extension.flush()) is True  # reconnected
    extension.counted(Outcome.RATE_LIMITED, 5)
    await done(extension.spider_closed())
    assert thread.closed
    assert tallies.totals(db) == {(tallies.CAPTCHAS, "4"): 2, (tallies.RATE_LIMITED, "3"): 2,
                                  (tallies.RATE_LIMITED, "5"): 2}
