"""The reserve → publish → finalize protocol against real MariaDB, in process."""
from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from exporter.batches import NO_ROWS_LEFT, QUOTA_SPENT, BatchExporter
from exporter.writers import iter_temp_files, neutralise, safe_domain
from influencers.core.db import connect
from influencers.core.tasks import TaskScheduler
from influencers.core.workers import Worker

HOSTILE = ["=1+1", "+SUM(A1)", "-3", "@cmd", "\tTAB", "\rCR", "a\nb", 'q"u,o"te', "美妆😀", "z\u200bw\u200d", "ok"]


def insert_rows(db, domain: str, count: int, *, prefix: str = "u", nicknames=None) -> list[int]:
    rows = []
    for i in range(count):
        nickname = nicknames[i % len(nicknames)] if nicknames else f"达人{i}😀"
        raw = json.dumps({"fans": i, "bio": nickname, "region": "上海"}, ensure_ascii=False)
        rows.append((nickname, f"{prefix}{i:06d}", domain, f"page={i // 20 + 1}", raw))
    with db.cursor() as cursor:
        for start in range(0, len(rows), 5000):
            cursor.executemany(
                "INSERT INTO influencers (nickname, uid, domain, source_page, raw_data) VALUES (%s, %s, %s, %s, %s)",
                rows[start:start + 5000],
            )
        cursor.execute("SELECT id FROM influencers WHERE domain = %s AND uid LIKE %s ORDER BY id",
                       (domain, f"{prefix}%"))
        ids = [row["id"] for row in cursor.fetchall()]
    db.commit()
    return ids


def query(db, sql: str, params=()) -> list[dict]:
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = list(cursor.fetchall())
    db.commit()
    return rows


def csv_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def xlsx_rows(path: Path) -> list[dict]:
    sheet = load_workbook(path, read_only=True).worksheets[0]
    header, *body = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, row, strict=True)) for row in body]


@pytest.fixture
def make_exporter(db, scheduler, accounts, config):
    def make(batch_size: int = 5000) -> BatchExporter:
        return BatchExporter(db, scheduler, accounts, config.export_dir, batch_size=batch_size)

    return make


def test_one_batch_reserves_publishes_and_finalizes(db, accounts, scheduler, make_exporter, config):
    ids = insert_rows(db, "美妆", 10)
    insert_rows(db, "游戏", 5, prefix="g")
    account = accounts.add("acc1", "pw", daily_export_limit=4000)
    task_id = scheduler.create_export("美妆")
    claim = scheduler.claim("export")
    exporter = make_exporter()

    reservation = exporter.reserve(claim)
    batch = reservation.batch
    assert batch.count == 10 and (batch.first_id, batch.last_id) == (ids[0], ids[-1])
    # reserved: quota counted, marker moved, rows pointed at the batch, nothing exported, no file yet
    assert accounts.get(account).today_export_count == 10
    assert scheduler.get(task_id).progress_marker == f"last_id={ids[-1]}"
    assert query(db, "SELECT state FROM export_logs")[0]["state"] == "reserved"
    assert query(db, "SELECT COUNT(*) AS n FROM influencers WHERE status = 'exported'")[0]["n"] == 0
    assert not batch.file_path.exists()

    exporter.publish(batch)
    assert batch.file_path.exists()
    assert query(db, "SELECT COUNT(*) AS n FROM influencers WHERE status = 'exported'")[0]["n"] == 0
    exporter.finalize(batch)

    log = query(db, "SELECT * FROM export_logs")[0]
    assert log["state"] == "published" and log["exported_count"] == 10 and log["end_time"] is not None
    assert log["account_id"] == account and log["task_id"] == task_id and log["domain"] == "美妆"
    assert Path(log["file_path"]) == batch.file_path
    assert batch.file_path.parent == Path(config.export_dir).absolute() / "美妆" / log["quota_date"].isoformat()
    assert batch.file_path.name == f"task{task_id}_part0001_acct{account}_id{ids[0]}-{ids[-1]}.csv"
    rows = csv_rows(batch.file_path)
    assert [r["uid"] for r in rows] == [f"u{i:06d}" for i in range(10)]
    states = query(db, "SELECT domain, status, COUNT(*) AS n FROM influencers GROUP BY domain, status ORDER BY domain")
    assert {(r["domain"], r["status"], r["n"]) for r in states} == {
        ("美妆", "exported", 10), ("游戏", "pending_export", 5)}
    assert exporter.reserve(claim).stop == NO_ROWS_LEFT


def test_batches_never_exceed_quota_or_task_limit(db, accounts, scheduler, make_exporter):
    insert_rows(db, "美妆", 50)
    account = accounts.add("acc1", "pw", daily_export_limit=7)
    scheduler.create_export("美妆")
    claim = scheduler.claim("export")
    exporter = make_exporter(batch_size=5)
    sizes = []
    while (reservation := exporter.export_next(claim)).batch:
        sizes.append(reservation.batch.count)
    assert sizes == [5, 2] and reservation.stop == QUOTA_SPENT
    assert accounts.get(account).today_export_count == 7

    account2 = accounts.add("acc2", "pw", daily_export_limit=100)
    scheduler.create_export("美妆", limit=6)
    scheduler.pause(claim, f"last_id={reservation.last_id}", "quota", resume_after=None)
    limited = scheduler.claim("export")
    assert limited.account_id == account2
    sizes = []
    while (reservation := exporter.export_next(limited)).batch:
        sizes.append(reservation.batch.count)
    assert sizes == [5, 1] and reservation.stop == "limit_reached"


def test_batch_reserved_by_a_killed_worker_is_republished_by_the_next(
    db, mysql_settings, accounts, make_exporter, config
):
    insert_rows(db, "美妆", 30)
    accounts.add("acc1", "pw", daily_export_limit=100)
    dead = Worker.start(mysql_settings, "dead")
    dead_scheduler = TaskScheduler(connect(mysql_settings), dead, accounts, lease_seconds=600)
    task_id = dead_scheduler.create_export("美妆")
    claim = dead_scheduler.claim("export")
    dead_exporter = BatchExporter(dead_scheduler.conn, dead_scheduler, accounts, config.export_dir, batch_size=20)
    batch = dead_exporter.reserve(claim).batch
    batch.file_path.parent.mkdir(parents=True)
    partial = batch.file_path.with_name(f".{batch.file_path.name}.0badf00d.tmp")
    partial.write_bytes(b"\xef\xbb\xbfid,uid\r\n1,half-writ")  # the killed writer's half file
    dead.close()  # what SIGKILL does: the liveness lock goes away with the connection
    dead_scheduler.conn.close()

    live = Worker.start(mysql_settings, "live")
    try:
        scheduler = TaskScheduler(db, live, accounts, lease_seconds=600)
        exporter = BatchExporter(db, scheduler, accounts, config.export_dir, batch_size=20)
        assert scheduler.recover() == 1  # the dead worker's claim is free at once, no lease wait
        assert exporter.recover() == 1
        assert not partial.exists() and list(iter_temp_files(config.export_dir)) == []
        assert [r["uid"] for r in csv_rows(batch.file_path)] == [f"u{i:06d}" for i in range(20)]
        assert query(db, "SELECT state FROM export_logs")[0]["state"] == "published"
        assert query(db, "SELECT COUNT(*) AS n FROM influencers WHERE status = 'exported'")[0]["n"] == 20
        # the task goes on after the recovered batch, never re-exporting it
        claim = scheduler.claim("export", task_id=task_id)
        second = exporter.export_next(claim).batch
        assert (second.first_id, second.count) == (batch.last_id + 1, 10)
        assert accounts.get(claim.account_id).today_export_count == 30
    finally:
        live.close()


def test_kill_between_publish_and_finalize_keeps_the_same_file(db, accounts, scheduler, make_exporter):
    insert_rows(db, "美妆", 12, nicknames=HOSTILE)
    accounts.add("acc1", "pw", daily_export_limit=100)
    scheduler.create_export("美妆")
    claim = scheduler.claim("export")
    exporter = make_exporter()
    batch = exporter.reserve(claim).batch
    exporter.publish(batch)
    first = batch.file_path.read_bytes()
    scheduler.release(claim, "simulated crash before finalize")  # task no longer in progress
    assert exporter.recover() == 1
    assert batch.file_path.read_bytes() == first  # same rows, same bytes
    assert query(db, "SELECT COUNT(*) AS n FROM influencers WHERE status = 'exported'")[0]["n"] == 12


def test_recovery_leaves_a_live_workers_batch_alone(db, accounts, scheduler, make_exporter):
    insert_rows(db, "美妆", 5)
    accounts.add("acc1", "pw", daily_export_limit=100)
    scheduler.create_export("美妆")
    claim = scheduler.claim("export")
    exporter = make_exporter()
    batch = exporter.reserve(claim).batch
    assert exporter.recover() == 0  # its task is in progress under a live worker
    assert not batch.file_path.exists()
    exporter.publish(batch)
    exporter.finalize(batch)
    assert query(db, "SELECT state FROM export_logs")[0]["state"] == "published"


def test_orphaned_temp_files_are_removed_at_start(db, accounts, scheduler, make_exporter, config):
    exporter = make_exporter()
    stray = Path(config.export_dir) / "美妆" / "2024-05-01" / ".task1_part0001_acct1_id1-2.csv.deadbeef.tmp"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"partial")
    keep = stray.with_name("notes.txt")
    keep.write_text("operator's file")
    assert exporter.clean_temp_files() == 1
    assert not stray.exists() and keep.exists()


@pytest.mark.parametrize(("utc_second", "quota_full"), [("15:59:59", True), ("16:00:00", False)])
def test_quota_day_turns_at_local_midnight(db, accounts, scheduler, make_exporter, utc_second, quota_full):
    """Asia/Shanghai midnight is 16:00 UTC: at 23:59:59 local the quota of 2024-05-01 is spent,
    at 00:00:00 it is a new day and the batch is counted on (and filed under) 2024-05-02."""
    insert_rows(db, "美妆", 5)
    account = accounts.add("acc1", "pw", daily_export_limit=3)
    with db.cursor() as cursor:
        cursor.execute("UPDATE accounts SET today_export_count = 3, quota_date = '2024-05-01' WHERE id = %s",
                       (account,))
    db.commit()
    scheduler.create_export("美妆")
    claim = scheduler.claim("export")  # real clock: 2024-05-01 is long gone, so quota is available
    with db.cursor() as cursor:
        cursor.execute(f"SET @@timestamp = UNIX_TIMESTAMP(TIMESTAMP('2024-05-01 {utc_second}'))")
    exporter = make_exporter()
    try:
        reservation = exporter.reserve(claim)
    finally:
        with db.cursor() as cursor:
            cursor.execute("SET @@timestamp = DEFAULT")
    if quota_full:
        assert reservation.batch is None and reservation.stop == QUOTA_SPENT
    else:
        batch = reservation.batch
        assert batch.count == 3 and batch.quota_date == dt.date(2024, 5, 2)
        assert batch.file_path.parent.name == "2024-05-02"
        row = query(db, "SELECT today_export_count, quota_date FROM accounts WHERE id = %s", (account,))[0]
        assert (row["today_export_count"], row["quota_date"]) == (3, dt.date(2024, 5, 2))


@pytest.mark.parametrize("domain", ["..", ".", "~root", "a:b", "美妆 ..", "😀"])
def test_domain_cannot_steer_the_file_out_of_the_export_dir(db, accounts, scheduler, make_exporter, config, domain):
    insert_rows(db, domain, 3)
    accounts.add("acc1", "pw", daily_export_limit=100)
    scheduler.create_export(domain)
    batch = make_exporter().export_next(scheduler.claim("export")).batch
    root = Path(config.export_dir).absolute()
    assert batch.file_path.resolve().parent.parent == root / safe_domain(domain)
    assert [p for p in root.parent.rglob("*") if p.is_file()] == [batch.file_path]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "jsonl"])
def test_hostile_strings_round_trip_through_the_database_and_files(db, accounts, scheduler, make_exporter, fmt):
    insert_rows(db, "美妆", len(HOSTILE), nicknames=HOSTILE)
    accounts.add("acc1", "pw", daily_export_limit=100)
    scheduler.create_export("美妆", fmt=fmt)
    batch = make_exporter().export_next(scheduler.claim("export")).batch
    assert batch.file_path.suffix == f".{fmt}"
    if fmt == "jsonl":
        got = [json.loads(line) for line in batch.file_path.read_text(encoding="utf-8").splitlines()]
        assert [r["nickname"] for r in got] == HOSTILE
        assert [r["raw_data"]["bio"] for r in got] == HOSTILE
        return
    got = csv_rows(batch.file_path) if fmt == "csv" else xlsx_rows(batch.file_path)
    # CSV has no types: the text is neutralised; XLSX keeps it exactly, as typed strings (issue 18)
    assert [r["nickname"] for r in got] == [neutralise(text) if fmt == "csv" else text for text in HOSTILE]
    assert [json.loads(r["raw_data"])["bio"] for r in got] == HOSTILE
    if fmt == "xlsx":
        sheet = load_workbook(batch.file_path, read_only=True).worksheets[0]
        assert all(cell.data_type == "s" for row in sheet.iter_rows() for cell in row if isinstance(cell.value, str))
        return
    for row in got:
        for value in row.values():
            assert not (isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")))


def test_a_disabled_account_stops_exporting_at_the_next_batch(db, accounts, scheduler, make_exporter):
    insert_rows(db, "美妆", 10)
    account = accounts.add("acc1", "pw", daily_export_limit=100)
    scheduler.create_export("美妆")
    claim = scheduler.claim("export")
    exporter = make_exporter(batch_size=4)
    assert exporter.export_next(claim).batch.count == 4
    accounts.disable(account, "banned by the platform")
    reservation = exporter.export_next(claim)
    assert reservation.batch is None and reservation.stop == "account_disabled"
    assert accounts.get(account).today_export_count == 4
