"""Report figures equal counts computed directly from the tables (several domains, accounts, two days)."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from influencers.core import reports
from influencers.core.quotaday import QuotaDay
from tests.fixtures.processes import run_cli

DAYS = (date(2026, 11, 26), date(2026, 11, 27))
SHANGHAI = QuotaDay(ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def known_data(db, accounts, scheduler):
    """Pages and export files spread over two local days, three domains and three accounts."""
    ids = {name: accounts.add(name, "pw") for name in ("账号一", "账号二", "demo3")}
    rng = random.Random(7)
    with db.cursor() as cursor:
        task_ids = {d: scheduler.find_or_create_domain_task(d) for d in ("美妆", "游戏", "美食")}
        page = 0
        for _ in range(60):
            domain = rng.choice(list(task_ids))
            account = rng.choice(list(ids.values()))
            # UTC times from 2026-11-25 14:00 to 2026-11-27 18:00: spans both local days and the edges
            start = datetime(2026, 11, 25, 14) + timedelta(minutes=rng.randrange(0, 52 * 60))
            page += 1
            count = rng.randrange(1, 21)
            cursor.execute(
                "INSERT INTO ingestion_logs (task_id, account_id, domain, page_number, ingested_count, start_time, end_time)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (task_ids[domain], account, domain, page, count, start, start + timedelta(seconds=3)),
            )
            log_id = cursor.lastrowid
            for n in range(count):
                cursor.execute("INSERT INTO influencers (uid, nickname, domain, ingestion_log_id) VALUES (%s, %s, %s, %s)",
                               (f"u{page}-{n}", f"达人{page}-{n}😀", domain, log_id))
        export_task = scheduler.create_export("美妆")
        for n in range(12):
            account = rng.choice(list(ids.values()))
            start = datetime(2026, 11, 25, 15) + timedelta(minutes=rng.randrange(0, 50 * 60))
            state = "published" if n % 5 else "reserved"
            cursor.execute(
                "INSERT INTO export_logs (task_id, account_id, domain, exported_count, file_path, start_time, end_time,"
                " state, quota_date) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (export_task, account, rng.choice(["美妆", "游戏"]), rng.randrange(1, 4000), f"exports/f{n}.csv",
                 start, start + timedelta(seconds=9), state, start.date()),
            )
    db.commit()
    return ids


def direct_ingestion(db, day: date) -> dict[tuple[str, str], tuple[int, int]]:
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT l.domain, a.username, l.ingested_count FROM ingestion_logs l JOIN accounts a ON a.id = l.account_id"
            " WHERE DATE(CONVERT_TZ(l.start_time, '+00:00', '+08:00')) = %s", (day,))
        totals: dict[tuple[str, str], tuple[int, int]] = {}
        for row in cursor.fetchall():
            key = (row["domain"], row["username"])
            rows, pages = totals.get(key, (0, 0))
            totals[key] = (rows + row["ingested_count"], pages + 1)
    db.commit()
    return totals


def direct_export(db, day: date) -> dict[tuple[str, str], tuple[int, int]]:
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT a.username, e.domain, SUM(e.exported_count) AS n, COUNT(*) AS files FROM export_logs e"
            " JOIN accounts a ON a.id = e.account_id WHERE e.state = 'published'"
            " AND DATE(CONVERT_TZ(e.start_time, '+00:00', '+08:00')) = %s GROUP BY a.username, e.domain", (day,))
        rows = {(r["username"], r["domain"]): (int(r["n"]), r["files"]) for r in cursor.fetchall()}
    db.commit()
    return rows


@pytest.mark.parametrize("day", DAYS)
def test_ingestion_report_matches_tables(db, known_data, day):
    report = reports.ingestion_report(db, quota_day=SHANGHAI, day=day)
    assert {(r["domain"], r["account"]): (int(r["influencers"]), r["pages"]) for r in report} == direct_ingestion(db, day)
    assert report, "the data set should have pages on both days"
    for row in report:
        assert row["first_time"].date() == day and row["last_time"].date() in (day, day + timedelta(days=1))


@pytest.mark.parametrize("day", DAYS)
def test_export_report_matches_tables(db, known_data, day):
    report = reports.export_report(db, quota_day=SHANGHAI, day=day)
    assert {(r["account"], r["domain"]): (int(r["rows_exported"]), r["files"]) for r in report} == direct_export(db, day)
    for row in report:
        assert len(row["paths"].split("\n")) == row["files"]


def test_filters_and_details(db, known_data):
    day = DAYS[1]
    everything = direct_ingestion(db, day)
    only = reports.ingestion_report(db, quota_day=SHANGHAI, day=day, domain="游戏", account="账号二")
    expected = {k: v for k, v in everything.items() if k == ("游戏", "账号二")}
    assert {(r["domain"], r["account"]): (int(r["influencers"]), r["pages"]) for r in only} == expected
    details = reports.ingestion_report(db, quota_day=SHANGHAI, day=day, details=True)
    assert sum(r["influencers"] for r in details) == sum(v[0] for v in everything.values())
    for row in details:
        assert len(row["nicknames"].split(" | ")) == row["influencers"]
    by_id = reports.ingestion_report(db, quota_day=SHANGHAI, day=day, account=str(known_data["demo3"]))
    assert {r["account"] for r in by_id} <= {"demo3"}


def test_report_cli_formats(db, known_data, env):
    as_json = run_cli(env, "report", "ingestion", "--date", "2026-11-27", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert {(r["domain"], r["account"]): (r["influencers"], r["pages"]) for r in rows} == direct_ingestion(db, DAYS[1])
    as_csv = run_cli(env, "report", "export", "--date", "2026-11-26", "--format", "csv")
    assert as_csv.stdout.splitlines()[0] == "account,domain,rows_exported,files,first_time,last_time,paths"
    table = run_cli(env, "report", "ingestion", "--date", "2026-11-27", "--details")
    assert table.returncode == 0 and "😀" in table.stdout and "ingestion report for 2026-11-27" in table.stdout


def test_report_table_keeps_chinese_columns_aligned(db, known_data, env):
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    table = run_cli(env, "report", "ingestion", "--date", "2026-11-27")
    header, rule, *rows = table.stdout.splitlines()[1:]
    column = header.index("influencers")
    assert any("账号" in row for row in rows)
    for row in rows:  # every count starts at the header's display column, whatever the names before it
        cut = next(i for i in range(len(row) + 1) if width(row[:i]) >= column)
        assert width(row[:cut]) == column and row[cut].isdigit(), row


def test_times_are_shown_in_the_local_zone(db, known_data, env):
    with db.cursor() as cursor:
        cursor.execute("UPDATE accounts SET last_used_at = '2026-11-27 16:30:00' WHERE username = 'demo3'")
    db.commit()
    listing = run_cli(env, "accounts", "list", "--format", "json")
    demo3 = next(a for a in json.loads(listing.stdout) if a["username"] == "demo3")
    assert demo3["last_used_at"] == "2026-11-28 00:30:00"  # UTC+8


def test_a_summer_time_reads_in_summer_time_in_winter(db, accounts, scheduler):
    """Berlin in December is UTC+1; a page logged in July was at UTC+2 then, and the report of
    that July day says so (a fixed offset of today would show it an hour early)."""
    berlin = QuotaDay(ZoneInfo("Europe/Berlin"), clock=lambda: datetime(2026, 12, 1, 12, tzinfo=ZoneInfo("UTC")))
    account = accounts.add("夏令时", "pw")
    task_id = scheduler.find_or_create_domain_task("美妆")
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ingestion_logs (task_id, account_id, domain, page_number, ingested_count, start_time, end_time)"
            " VALUES (%s, %s, '美妆', 1, 20, '2026-07-01 22:30:00', '2026-07-01 22:30:02')", (task_id, account))
    db.commit()

    (row,) = reports.ingestion_report(db, quota_day=berlin, day=date(2026, 7, 2))  # 00:30 local, CEST
    assert (row["first_time"], row["last_time"]) == (datetime(2026, 7, 2, 0, 30), datetime(2026, 7, 2, 0, 30, 2))
    assert reports.ingestion_report(db, quota_day=berlin, day=date(2026, 7, 1)) == []
    (page,) = reports.ingestion_report(db, quota_day=berlin, day=date(2026, 7, 2), details=True)
    assert page["start_time"] == datetime(2026, 7, 2, 0, 30)
