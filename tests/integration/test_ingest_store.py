"""The pipeline's transaction on real MariaDB: pages, upserts, the fence and the marker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from influencers.core.db import connect
from influencers.core.profile import default_profile
from influencers.core.store import PageBatch, TaskBatch, write_batch


@pytest.fixture
def writer(mysql_settings) -> Iterator:
    conn = connect(mysql_settings)
    try:
        yield conn
    finally:
        conn.close()


def row(uid: str, nickname: str = "小鹿", domain: str = "游戏") -> tuple:
    return (uid, nickname, domain, f"http://x/p?uid={uid}", {"uid": uid, "nickname": nickname, "fans": 1})


def page(task_id: int, number: int, rows: list[tuple], account_id: int | None = 1) -> PageBatch:
    """A page of (uid, nickname, domain, source_page, raw) rows, typed as the default adapter maps them."""
    now = datetime(2026, 1, 1, 8, 0, 0)
    typed = [(*row, default_profile(row[4])) for row in rows]
    return PageBatch(task_id, number, "游戏", account_id, f"http://x/api?page={number}", now, now, typed)


def claim_task(scheduler, accounts, username: str = "demo1", pages: int = 10, domain: str = "游戏"):
    accounts.add(username, "pw")
    task_id = scheduler.find_or_create_domain_task(domain, pages)
    claim = scheduler.claim("ingestion", task_id=task_id)
    assert claim is not None
    return claim


def query(db, sql: str, *args) -> list[dict]:
    with db.cursor() as cursor:
        cursor.execute(sql, args)
        rows = cursor.fetchall()
    db.commit()
    return rows


def test_pages_rows_logs_and_marker_commit_together(db, scheduler, accounts, writer) -> None:
    claim = claim_task(scheduler, accounts)
    batch = TaskBatch(claim, [page(claim.task_id, 1, [row("a"), row("b")]), page(claim.task_id, 2, [row("c")])],
                      marker=2, current_marker=0)
    committed, lost = write_batch(writer, [batch])
    assert (len(committed), lost) == (1, {})
    logs = query(db, "SELECT id, page_number, ingested_count, account_id FROM ingestion_logs ORDER BY page_number")
    assert [(r["page_number"], r["ingested_count"], r["account_id"]) for r in logs] == [(1, 2, 1), (2, 1, 1)]
    rows = query(db, "SELECT uid, ingestion_log_id, status, raw_data FROM influencers ORDER BY uid")
    assert [r["uid"] for r in rows] == ["a", "b", "c"]
    assert rows[2]["ingestion_log_id"] == logs[1]["id"]
    assert json.loads(rows[0]["raw_data"])["nickname"] == "小鹿"
    assert all(r["status"] == "pending_export" for r in rows)
    assert scheduler.get(claim.task_id).progress_marker == "page=2"


def test_recrawl_refreshes_data_but_keeps_export_status(db, scheduler, accounts, writer) -> None:
    claim = claim_task(scheduler, accounts)
    write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 1, [row("a", "旧名")])], 1, 0)])
    with db.cursor() as cursor:
        cursor.execute("UPDATE influencers SET status = 'exported' WHERE uid = 'a'")
    db.commit()
    write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 2, [row("a", "新名🎉")])], 2, 1)])
    (only,) = query(db, "SELECT nickname, status, ingestion_log_id FROM influencers")
    assert (only["nickname"], only["status"]) == ("新名🎉", "exported")
    (second_log,) = query(db, "SELECT id FROM ingestion_logs WHERE page_number = 2")
    assert only["ingestion_log_id"] == second_log["id"]


def test_a_uid_on_two_pages_of_one_batch_is_one_row(db, scheduler, accounts, writer) -> None:
    claim = claim_task(scheduler, accounts)
    write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 1, [row("a", "one")]),
                                           page(claim.task_id, 2, [row("a", "two")])], 2, 0)])
    assert query(db, "SELECT nickname FROM influencers") == [{"nickname": "two"}]


def test_rewriting_a_page_reuses_its_log_row(db, scheduler, accounts, writer) -> None:
    claim = claim_task(scheduler, accounts)
    write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 1, [row("a")])], 1, 0)])
    write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 1, [row("a"), row("b")])], 1, 1)])
    logs = query(db, "SELECT id, ingested_count FROM ingestion_logs")
    assert [r["ingested_count"] for r in logs] == [2]
    assert {r["ingestion_log_id"] for r in query(db, "SELECT ingestion_log_id FROM influencers")} == {logs[0]["id"]}


def test_a_lost_claim_is_fenced_out_and_the_rest_commits(db, scheduler, accounts, writer) -> None:
    mine = claim_task(scheduler, accounts, "demo1", domain="游戏")
    other = claim_task(scheduler, accounts, "demo2", domain="美妆")
    scheduler.pause_task(other.task_id, "operator pause")  # the claim of `other` is lost now
    committed, lost = write_batch(writer, [
        TaskBatch(mine, [page(mine.task_id, 1, [row("a")])], 1, 0),
        TaskBatch(other, [page(other.task_id, 1, [row("z", domain="美妆")])], 1, 0),
    ])
    assert [b.claim.task_id for b in committed] == [mine.task_id]
    assert list(lost) == [other.task_id]
    assert [r["uid"] for r in query(db, "SELECT uid FROM influencers")] == ["a"]
    assert query(db, "SELECT task_id FROM ingestion_logs") == [{"task_id": mine.task_id}]
    assert scheduler.get(other.task_id).progress_marker is None


def test_marker_does_not_move_past_a_gap(db, scheduler, accounts, writer) -> None:
    claim = claim_task(scheduler, accounts)
    write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 2, [row("b")])], marker=0, current_marker=0)])
    assert scheduler.get(claim.task_id).progress_marker is None


def test_large_batches_of_many_pages(db, scheduler, accounts, writer, capsys) -> None:
    """40,000 rows in batches of 100 pages, as a busy crawl writes them. Not timed: the rate it
    prints is for the record; bench/ingest_pipeline.py measures it against baselines."""
    claim = claim_task(scheduler, accounts, pages=1000)
    raw = json.loads('{"uid":"u","nickname":"小鹿酱🍑","domain":"游戏","fans":34879,"avg_likes":1392,'
                     '"region":"安徽·合肥","gender":"male","tags":["手游","电竞"],'
                     '"contact":{"wechat":"rzmz_12988","email":null},'
                     '"profile_url":"https://sandbox.invalid/u/yx-000001","price":792.44}')
    total, per_page, pages_per_batch = 40_000, 20, 100
    batches = []
    number = 0
    for first in range(0, total, per_page * pages_per_batch):
        pages = []
        for start in range(first, first + per_page * pages_per_batch, per_page):
            number += 1
            rows = [(f"yx-{i:07d}", "小鹿酱🍑", "游戏", "http://127.0.0.1/api/v1/influencers?page=1",
                     {**raw, "uid": f"yx-{i:07d}"}) for i in range(start, start + per_page)]
            pages.append(page(claim.task_id, number, rows))
        batches.append(pages)
    started = time.perf_counter()
    marker = 0
    for pages in batches:
        write_batch(writer, [TaskBatch(claim, pages, marker + len(pages), marker)])
        marker += len(pages)
    elapsed = time.perf_counter() - started
    rate = total / elapsed
    with capsys.disabled():
        print(f"\nwrite_batch: {total} rows in {elapsed:.2f}s = {rate:,.0f} rows/s (batches of 2000)")
    assert query(db, "SELECT COUNT(*) AS n FROM influencers") == [{"n": total}]
    assert query(db, "SELECT COUNT(*) AS n FROM ingestion_logs") == [{"n": number}]


def test_hostile_values_round_trip(db, scheduler, accounts, writer) -> None:
    nickname = "他说\"买\", '走了' \\ 反斜杠\n第二行 小\u200b美\ufeff🎉 <script>alert(1)</script> =SUM(A1)"
    raw = {"uid": "h1", "nickname": nickname, "tags": ["a'b", "c\\d"], "contact": {"wechat": None}}
    claim = claim_task(scheduler, accounts)
    write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 1, [("h1", nickname, "游戏", None, raw)])], 1, 0)])
    (stored,) = query(db, "SELECT nickname, raw_data FROM influencers")
    assert stored["nickname"] == nickname
    assert json.loads(stored["raw_data"]) == raw


@pytest.mark.parametrize("sql_mode", ["", "NO_BACKSLASH_ESCAPES,ANSI_QUOTES"])
def test_hostile_values_round_trip_exactly_through_the_upsert(db, scheduler, accounts, writer, sql_mode) -> None:
    """Every value reaches its column as it was (the rows travel as hex literals, so no escaping
    and no sql_mode can change them), and the values JSON cannot hold are stored as null or '?'
    instead of failing the batch for good."""
    if sql_mode:
        query(writer, "SET SESSION sql_mode = CONCAT(@@sql_mode, %s)", f",{sql_mode}")
    hostile = ["'; DROP TABLE influencers; --", 'say "hi"\\n', "=HYPERLINK(\"x\")", "\x00nul\ttab\r\n", "😀🇨🇳 小美",
               "\\u0000 literally", "a" * 255, None]
    rows = [(f"h{i}", nickname, "游戏", f"http://x/?q={i}&'\"", {"uid": f"h{i}", "nickname": nickname, "n": 1e-7})
            for i, nickname in enumerate(hostile)]
    rows.append(("nan", "\ud800lone", "游戏", None, {"score": float("nan"), "big": 2**70, "inf": [float("-inf")]}))
    claim = claim_task(scheduler, accounts)
    committed, lost = write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 1, rows)], 1, 0)])
    assert (len(committed), lost) == (1, {})
    stored = {r["uid"]: r for r in query(db, "SELECT uid, nickname, domain, source_page, raw_data FROM influencers")}
    for uid, nickname, domain, source_page, raw in rows[:-1]:
        assert (stored[uid]["nickname"], stored[uid]["domain"], stored[uid]["source_page"]) == (nickname, domain,
                                                                                                 source_page)
        assert json.loads(stored[uid]["raw_data"]) == raw
    assert stored["nan"]["nickname"] == "?lone" and stored["nan"]["source_page"] is None
    assert json.loads(stored["nan"]["raw_data"]) == {"score": None, "big": 2**70, "inf": [None]}
    assert query(db, "SELECT COUNT(*) AS n FROM influencers")[0]["n"] == len(rows)


def test_a_row_nested_deeper_than_mysqls_json_limit_does_not_stall_its_batch(db, scheduler, accounts, writer,
                                                                               caplog) -> None:
    deep: object = "bottom"
    for level in range(40):  # MariaDB refuses JSON nested more than 32 levels
        deep = {"level": level, "next": deep}
    rows = [row("plain"), ("deep", "深", "游戏", None, {"uid": "deep", "tree": deep})]
    claim = claim_task(scheduler, accounts)
    committed, lost = write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 1, rows)], 1, 0)])
    assert (len(committed), lost) == (1, {})
    stored = {r["uid"]: json.loads(r["raw_data"]) for r in query(db, "SELECT uid, raw_data FROM influencers")}
    assert stored["plain"] == rows[0][4]
    original, kept, depth = rows[1][4], stored["deep"], 0
    while isinstance(kept, dict):  # the top levels stay JSON objects ...
        key = "tree" if depth == 0 else "next"
        original, kept, depth = original[key], kept[key], depth + 1
    assert isinstance(kept, str) and json.loads(kept) == original  # ... the rest is kept whole, as JSON text
    assert 20 <= depth <= 25
    assert "nest deeper than MySQL's JSON limit" in caplog.text and "deep" in caplog.text


def test_rows_too_large_for_one_statement_are_split_and_a_row_too_large_for_any_is_noted(
        db, scheduler, accounts, writer, caplog) -> None:
    """The server refuses a packet over max_allowed_packet (16 MB on MariaDB; a row's raw data goes
    as hex, twice its size). Rows that are large together go in smaller statements; a row that
    alone is too large keeps its columns with a note in place of its raw data, and its page
    commits, instead of failing the batch on every retry."""
    bio = "很长的简介" * 200_000  # 3 MB of UTF-8 a row: four of them exceed one statement
    big = [(f"big{i}", f"大{i}", "游戏", None, {"uid": f"big{i}", "bio": bio}) for i in range(4)]
    huge = ("huge", "巨", "游戏", None, {"uid": "huge", "bio": "长" * 3_000_000})  # 9 MB as JSON
    claim = claim_task(scheduler, accounts)
    committed, lost = write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 1, [*big, huge, row("small")])], 1, 0)])
    assert (len(committed), lost) == (1, {})
    stored = {r["uid"]: r for r in query(db, "SELECT uid, nickname, LENGTH(raw_data) AS size,"
                                             " JSON_EXTRACT(raw_data, '$.raw_data_omitted_bytes') AS omitted"
                                             " FROM influencers")}
    assert sorted(stored) == ["big0", "big1", "big2", "big3", "huge", "small"]
    assert all(stored[f"big{i}"]["size"] > 3_000_000 for i in range(4))  # whole, in smaller statements
    assert stored["huge"]["nickname"] == "巨" and int(stored["huge"]["omitted"]) > 9_000_000
    assert "uid huge: its raw data" in caplog.text and "max_allowed_packet" in caplog.text
    assert query(db, "SELECT ingested_count FROM ingestion_logs") == [{"ingested_count": 6}]
