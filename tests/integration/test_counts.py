"""The kept rows-per-domain counts equal COUNT(*) after every kind of change, also under racing writers.

`status`, the API and the dashboard read the backlog from ``domain_counts`` instead of counting
millions of rows, so the counts must be exact: kept in the transactions that change the rows.
SIGKILLs are covered where the real services are killed (test_ingest_resume, test_export_service).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

from influencers.core import counts, reports
from influencers.core.db import connect, run_transaction, transaction
from influencers.core.profile import EMPTY
from influencers.core.store import PageBatch, TaskBatch, assign_batch, lock_pending, mark_exported, write_batch


def actual(db) -> Counter:
    with db.cursor() as cursor:
        cursor.execute("SELECT domain, status, COUNT(*) AS n FROM influencers GROUP BY domain, status")
        rows = cursor.fetchall()
    db.commit()
    return Counter({(row["domain"], row["status"]): row["n"] for row in rows})


def page(claim, number: int, domain: str, uids: list[str]) -> PageBatch:
    now = datetime(2026, 1, 1, 8, 0, 0)
    rows = [(uid, f"达人{uid}", domain, None, {"uid": uid}, EMPTY) for uid in uids]
    return PageBatch(claim.task_id, number, domain, claim.account_id, f"http://x/{domain}?page={number}", now, now, rows)


def claim_for(scheduler, accounts, domain: str, username: str):
    accounts.add(username, "pw")
    claim = scheduler.claim("ingestion", task_id=scheduler.find_or_create_domain_task(domain, 1000))
    assert claim is not None
    return claim


def export_all(conn, domain: str, batch_id: int) -> int:
    """Reserve and mark a domain's pending rows as the exporter does, retried on deadlock as it is."""
    def reserve(cursor) -> list[int]:
        ids = lock_pending(cursor, domain, 0, 10_000)
        if ids:
            assign_batch(cursor, batch_id, domain, ids[0], ids[-1])
        return ids

    ids = run_transaction(conn, reserve)
    if ids:
        run_transaction(conn, lambda cursor: mark_exported(cursor, batch_id, domain, ids[0], ids[-1]))
    return len(ids)


def test_counts_follow_inserts_recrawls_moves_and_exports(db, scheduler, accounts, mysql_settings) -> None:
    writer = connect(mysql_settings)
    try:
        games = claim_for(scheduler, accounts, "游戏", "a1")
        beauty = claim_for(scheduler, accounts, "美妆", "a2")
        write_batch(writer, [TaskBatch(games, [page(games, 1, "游戏", ["a", "b", "c"]),
                                               page(games, 2, "游戏", ["c", "d"])], 2, 0)])
        assert counts.counted(writer) == actual(db) == Counter({("游戏", "pending_export"): 4})

        write_batch(writer, [TaskBatch(games, [page(games, 3, "游戏", ["a", "b", "e"])], 3, 2)])  # two re-crawled
        assert counts.counted(writer) == actual(db) == Counter({("游戏", "pending_export"): 5})

        assert export_all(writer, "游戏", 7) == 5
        assert counts.counted(writer) == actual(db) == Counter({("游戏", "exported"): 5})

        # "a" (exported) and "f" (new) listed under 美妆: the exported row moves with its status
        write_batch(writer, [TaskBatch(beauty, [page(beauty, 1, "美妆", ["a", "f"])], 1, 0)])
        assert counts.counted(writer) == actual(db) == Counter(
            {("游戏", "exported"): 4, ("美妆", "exported"): 1, ("美妆", "pending_export"): 1})
        assert reports.task_progress(writer) and counts.pending_by_domain(writer) == {"美妆": 1}
    finally:
        writer.close()


def test_a_row_reserved_by_an_export_batch_stays_until_it_is_exported(db, scheduler, accounts, mysql_settings) -> None:
    writer = connect(mysql_settings)
    try:
        games = claim_for(scheduler, accounts, "游戏", "a1")
        beauty = claim_for(scheduler, accounts, "美妆", "a2")
        write_batch(writer, [TaskBatch(games, [page(games, 1, "游戏", ["a", "b"])], 1, 0)])
        with transaction(writer) as cursor:
            ids = lock_pending(cursor, "游戏", 0, 10)
            assign_batch(cursor, 9, "游戏", ids[0], ids[-1])
        # listed under 美妆 while its batch is being written: it must stay where the batch finds it
        write_batch(writer, [TaskBatch(beauty, [page(beauty, 1, "美妆", ["a"])], 1, 0)])
        assert counts.counted(writer) == actual(db) == Counter({("游戏", "pending_export"): 2})
        with transaction(writer) as cursor:
            mark_exported(cursor, 9, "游戏", ids[0], ids[-1])
        assert counts.counted(writer) == actual(db) == Counter({("游戏", "exported"): 2})  # none left behind
        write_batch(writer, [TaskBatch(beauty, [page(beauty, 2, "美妆", ["a"])], 2, 1)])  # its next crawl moves it
        assert counts.counted(writer) == actual(db) == Counter({("游戏", "exported"): 1, ("美妆", "exported"): 1})
    finally:
        writer.close()


def test_racing_writers_and_an_exporter_keep_the_counts_exact(db, scheduler, accounts, mysql_settings) -> None:
    domains = ["游戏", "美妆", "旅行"]
    claims = [(claim_for(scheduler, accounts, domain, f"w{n}"), domain) for n, domain in enumerate(domains)]
    errors: list[BaseException] = []

    def crawl(claim, domain: str) -> None:
        conn = connect(mysql_settings)
        try:
            for number in range(1, 31):  # overlapping uids: rows move between the three domains all the time
                uids = [f"u{(number * 7 + k) % 120}" for k in range(15)] + [f"{claim.task_id}-{number}"]
                write_batch(conn, [TaskBatch(claim, [page(claim, number, domain, uids)], number, number - 1)])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            conn.close()

    def export() -> None:
        conn = connect(mysql_settings)
        try:
            for batch in range(1, 31):
                export_all(conn, domains[batch % 3], 100 + batch)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=crawl, args=claim) for claim in claims] + [threading.Thread(target=export)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    rows = actual(db)
    assert sum(rows.values()) == 120 + 3 * 30
    assert counts.counted(db) == rows
    with db.cursor() as cursor:
        cursor.execute("SELECT COUNT(DISTINCT shard) AS shards FROM domain_counts")
        assert cursor.fetchone()["shards"] > 1  # the writers did spread over shards
    db.commit()


def test_recount_rebuilds_counts_for_rows_written_around_the_application(db, mysql_settings) -> None:
    with transaction(db) as cursor:
        cursor.executemany("INSERT INTO influencers (uid, domain, status) VALUES (%s, %s, %s)",
                           [(f"x{n}", "游戏" if n % 3 else "美妆", "exported" if n % 4 == 0 else "pending_export")
                            for n in range(50)])
    assert counts.counted(db) == Counter()
    counts.recount(db)
    assert counts.counted(db) == actual(db) and sum(actual(db).values()) == 50
