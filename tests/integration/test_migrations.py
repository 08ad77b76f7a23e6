"""Versioned migrations: `db init` brings a database of any earlier release to the current schema
with its rows, records what it applied (`db status`), is a no-op when repeated, and runs safely
from two processes at once; what the migrations build is what sql/schema.sql describes."""

from __future__ import annotations

import json
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from influencers.core.config import MySQLSettings
from influencers.core.db import connect, run_transaction
from influencers.core.schema import SCHEMA_PATH, apply_schema, load_migrations, migration_status, split_sql
from influencers.core.tasks import outstanding_dispatches
from tests.fixtures.processes import Processes, run_cli

FC1C509_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "schema_fc1c509.sql"
MIGRATIONS = [migration.id for migration in load_migrations()]
APP_TABLES = ("accounts", "tasks", "ingestion_logs", "export_logs", "influencers", "events")
#: Tables whose shape is compared: those above and the ones later migrations add (0006: identities).
SHAPE_TABLES = (*APP_TABLES, "account_identities", "domain_counts", "influencer_history", "saved_searches",
                "profile_fill", "schedules", "schedule_runs")
#: Task columns later migrations add (0002: dispatch; 0005: a cursor platform's position), NULL on old rows.
ADDED_TASK_COLUMNS = ("dispatch_job", "dispatch_node", "dispatched_at", "progress_cursor", "export_filter")
#: Influencer columns later migrations add (0008: times crawled, 1 on old rows).
ADDED_INFLUENCER_COLUMNS = ("crawl_count", "fans", "region", "tags", "has_contact", "profile_url", "search_terms",
                            "fans_log_id", "growth_7d", "growth_30d", "fans_first")

#: A `db init` that starts the moment a file appears, so two of them really run at once.
DB_INIT_ON_SIGNAL = """
import os, sys, time
from influencers.cli import main
ready, go = sys.argv[1:3]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
sys.exit(main(["db", "init"]))
"""


@pytest.fixture
def new_database(mysql_settings: MySQLSettings) -> Iterator[Callable[[], MySQLSettings]]:
    """Settings for fresh database names on the test server; each is dropped afterwards."""
    made: list[MySQLSettings] = []

    def make() -> MySQLSettings:
        made.append(replace(mysql_settings, database=f"{mysql_settings.database}_m{secrets.token_hex(3)}"))
        return made[-1]

    yield make
    server = connect(mysql_settings, database=False, autocommit=True)
    with server.cursor() as cursor:
        for settings in made:
            cursor.execute(f"DROP DATABASE IF EXISTS `{settings.database}`")
    server.close()


def build_from_sql(settings: MySQLSettings, path: Path) -> None:
    """A database made the way a release before migrations made it: its schema file, statement by statement."""
    server = connect(settings, database=False, autocommit=True)
    with server.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{settings.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cursor.execute(f"USE `{settings.database}`")
        for statement in split_sql(path.read_text(encoding="utf-8")):
            cursor.execute(statement)
    server.close()


def execute(settings: MySQLSettings, *statements: str | tuple[str, tuple]) -> None:
    conn = connect(settings, autocommit=True)
    with conn.cursor() as cursor:
        for statement in statements:
            sql, params = statement if isinstance(statement, tuple) else (statement, None)
            cursor.execute(sql, params)
    conn.close()


def query(settings: MySQLSettings, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    conn = connect(settings, autocommit=True)
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    conn.close()
    return list(rows)


def shape(settings: MySQLSettings) -> dict[str, list[tuple]]:
    """Tables, columns, indexes, foreign keys and checks of the application's tables (not yoyo's)."""
    queries = {
        "tables": "SELECT table_name, engine, table_collation, table_comment FROM information_schema.tables"
                  " WHERE table_schema = %s",
        "columns": "SELECT table_name, ordinal_position, column_name, column_type, is_nullable, column_default,"
                   " extra, character_set_name, collation_name, column_comment FROM information_schema.columns"
                   " WHERE table_schema = %s",
        "indexes": "SELECT table_name, index_name, seq_in_index, column_name, non_unique, sub_part, index_type"
                   " FROM information_schema.statistics WHERE table_schema = %s",
        "foreign_keys": "SELECT table_name, constraint_name, column_name, referenced_table_name,"
                        " referenced_column_name FROM information_schema.key_column_usage"
                        " WHERE table_schema = %s AND referenced_table_name IS NOT NULL",
        # MariaDB stores JSON as LONGTEXT with a json_valid() CHECK: part of the shape there.
        "checks": "SELECT tc.table_name, cc.constraint_name, cc.check_clause"
                  " FROM information_schema.check_constraints cc JOIN information_schema.table_constraints tc"
                  " ON tc.constraint_schema = cc.constraint_schema AND tc.constraint_name = cc.constraint_name"
                  " AND tc.constraint_type = 'CHECK' WHERE cc.constraint_schema = %s",
    }
    result = {}
    for name, sql in queries.items():
        rows = [tuple(row.values()) for row in query(settings, sql, (settings.database,))]
        result[name] = sorted((row for row in rows if row[0] in SHAPE_TABLES), key=repr)
    return result


def rows(settings: MySQLSettings) -> dict[str, list[dict[str, Any]]]:
    return {table: query(settings, f"SELECT * FROM {table} ORDER BY id") for table in APP_TABLES}


def yoyo_records(settings: MySQLSettings) -> dict[str, list[dict[str, Any]]]:
    return {table: query(settings, f"SELECT * FROM {table} ORDER BY 1")
            for table in ("_yoyo_migration", "_yoyo_log", "yoyo_lock")}


def fill_every_table(settings: MySQLSettings) -> None:
    """Rows in every table of the fc1c509 schema, with Chinese and emoji wherever there is text."""
    execute(
        settings,
        ("INSERT INTO accounts (id, username, password, status, daily_export_limit, today_export_count,"
         " quota_date, held_by_task_id, status_reason) VALUES (1, %s, 'gAAAA-token', 'disabled', 4000, 17,"
         " '2026-11-28', NULL, %s), (2, 'demo2', 'gAAAA-token2', 'idle', 150, 0, NULL, NULL, NULL)",
         ("账号一😀", "平台封禁🚫")),
        ("INSERT INTO tasks (id, task_type, domain, status, progress_marker, assigned_account_id, is_parent,"
         " page_from, page_to, last_error) VALUES (1, 'ingestion', %s, 'completed', NULL, NULL, TRUE, 1, 20, NULL),"
         " (2, 'ingestion', %s, 'paused', 'page=3', 1, FALSE, 1, 10, %s),"
         " (3, 'export', %s, 'in_progress', 'last_id=1', 2, FALSE, NULL, NULL, NULL)",
         ("美妆", "美妆", "验证码页面🤖", "游戏")),
        "UPDATE tasks SET parent_id = 1 WHERE id = 2",
        ("INSERT INTO ingestion_logs (id, task_id, account_id, domain, page_number, ingested_count, start_time,"
         " end_time, source_url) VALUES (1, 2, 1, %s, 1, 2, '2026-11-28 01:00:00', '2026-11-28 01:00:01', %s)",
         ("美妆", "http://127.0.0.1:8800/api/v1/influencers?domain=美妆&page=1")),
        ("INSERT INTO export_logs (id, task_id, account_id, domain, exported_count, file_path, start_time, end_time,"
         " state, quota_date, first_id, last_id, export_format) VALUES (1, 3, 2, %s, 1, %s,"
         " '2026-11-28 02:00:00', '2026-11-28 02:00:05', 'published', '2026-11-28', 1, 1, 'csv')",
         ("游戏", "exports/游戏/2026-11-28/task3_part0001_acct2_id1-1.csv")),
        ("INSERT INTO influencers (id, nickname, uid, domain, source_page, raw_data, status, ingestion_log_id,"
         " export_log_id) VALUES (1, %s, 'u1', %s, 'page=1', %s, 'exported', 1, 1),"
         " (2, %s, 'u2', %s, 'page=1', %s, 'pending_export', 1, 0)",
         ("小美😀🎉", "美妆", '{"nickname": "小美😀🎉", "tags": ["口红💄", "护肤"]}',
          "=SUM(A1)游戏王👾", "美妆", '{"nickname": "=SUM(A1)游戏王👾", "region": "上海"}')),
        ("INSERT INTO events (entity, entity_id, event, from_status, to_status, task_id, account_id, worker, reason)"
         " VALUES ('task', 2, 'paused', 'in_progress', 'paused', 2, 1, 'worker-1', %s),"
         " ('account', 1, 'disabled', 'idle', 'disabled', NULL, 1, NULL, %s)",
         ("验证码页面🤖", "平台封禁🚫")),
    )


def cli_env(env: dict[str, str], settings: MySQLSettings) -> dict[str, str]:
    return {**env, "INFLUENCERS_MYSQL_URL": settings.connection_url}


def status_lines(env: dict[str, str]) -> list[str]:
    result = run_cli(env, "db", "status")
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if not line.startswith("buffer pool")]


def test_fc1c509_database_is_upgraded_with_every_row(new_database, env):
    old, fresh = new_database(), new_database()
    build_from_sql(old, FC1C509_SCHEMA)
    fill_every_table(old)
    before = rows(old)
    assert all(before.values())
    old_env = cli_env(env, old)
    assert status_lines(old_env) == [f"pending  {migration}" for migration in MIGRATIONS]

    result = run_cli(old_env, "db", "init")

    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("applied")] == [
        f"applied  {migration}" for migration in MIGRATIONS
    ]
    after = rows(old)
    for table in APP_TABLES:
        added = ADDED_TASK_COLUMNS + ADDED_INFLUENCER_COLUMNS
        assert [{k: v for k, v in row.items() if k not in added} for row in after[table]] == before[table]
    assert all(row[column] is None for row in after["tasks"] for column in ADDED_TASK_COLUMNS)
    assert all(row["crawl_count"] == 1 for row in after["influencers"])
    pending = sum(row["status"] == "pending_export" for row in after["influencers"])
    assert int(query(old, "SELECT COALESCE(SUM(pending), 0) AS n FROM domain_counts")[0]["n"]) == pending  # 0008 filled it
    assert after["influencers"][0]["nickname"] == "小美😀🎉" and "💄" in after["influencers"][0]["raw_data"]
    # db init filled the typed fields of the stored rows (0009) and then forgot the fill
    assert json.loads(after["influencers"][0]["tags"]) == ["口红💄", "护肤"]
    assert (after["influencers"][1]["region"], after["influencers"][1]["tags"]) == ("上海", None)
    assert all(row["search_terms"] for row in after["influencers"])
    assert query(old, "SELECT COUNT(*) AS n FROM profile_fill")[0]["n"] == 0
    assert "typed fields filled for 2 stored row(s)" in result.stdout
    lines = status_lines(old_env)
    assert [line.split()[:2] for line in lines] == [["applied", migration] for migration in MIGRATIONS]
    apply_schema(fresh)
    assert shape(old) == shape(fresh)


def test_older_database_is_upgraded_to_the_fresh_shape(new_database):
    old, fresh = new_database(), new_database()
    build_from_sql(old, FC1C509_SCHEMA)
    execute(  # what releases before fc1c509 made: undo each later change
        old,
        "ALTER TABLE influencers MODIFY export_log_id BIGINT NULL",
        "ALTER TABLE influencers ADD INDEX ix_influencers_export_log (export_log_id)",
        "ALTER TABLE influencers ADD CONSTRAINT fk_influencers_export_log"
        " FOREIGN KEY (export_log_id) REFERENCES export_logs (id)",
        "ALTER TABLE accounts DROP COLUMN held_by_task_id",
        "ALTER TABLE ingestion_logs ADD CONSTRAINT fk_ingestion_logs_task FOREIGN KEY (task_id) REFERENCES tasks (id)",
        "ALTER TABLE ingestion_logs ADD CONSTRAINT fk_ingestion_logs_account"
        " FOREIGN KEY (account_id) REFERENCES accounts (id)",  # the server adds an index for this one
        ("INSERT INTO accounts (id, username, password) VALUES (1, %s, 'token')", ("账号一😀",)),
        ("INSERT INTO influencers (uid, nickname, domain, export_log_id) VALUES ('old', %s, '美妆', NULL)",
         ("老达人🎈",)),
    )
    apply_schema(fresh)
    assert shape(old) != shape(fresh)

    assert apply_schema(old) == MIGRATIONS

    assert shape(old) == shape(fresh)
    assert query(old, "SELECT uid, nickname, export_log_id FROM influencers") == [
        {"uid": "old", "nickname": "老达人🎈", "export_log_id": 0}
    ]
    assert query(old, "SELECT username, held_by_task_id FROM accounts") == [
        {"username": "账号一😀", "held_by_task_id": None}
    ]


def test_migrations_build_what_schema_sql_describes(new_database):
    migrated, described = new_database(), new_database()
    apply_schema(migrated)
    build_from_sql(described, SCHEMA_PATH)
    assert shape(migrated) == shape(described)
    assert any(column[2] == "dispatch_job" for column in shape(migrated)["columns"])


def test_db_init_twice_changes_nothing_the_second_time(new_database, env):
    settings = new_database()
    assert apply_schema(settings) == MIGRATIONS
    tables = {table: query(settings, f"SHOW CREATE TABLE {table}") for table in APP_TABLES}
    records = yoyo_records(settings)

    result = run_cli(cli_env(env, settings), "db", "init")

    assert result.returncode == 0, result.stderr
    assert "nothing to apply" in result.stdout and "applied  " not in result.stdout
    assert {table: query(settings, f"SHOW CREATE TABLE {table}") for table in APP_TABLES} == tables
    assert yoyo_records(settings) == records
    assert [state.applied for state in migration_status(settings)] == [True] * len(MIGRATIONS)


def test_two_db_init_at_once_both_succeed_and_apply_each_migration_once(new_database, env, processes: Processes,
                                                                          tmp_path):
    settings = new_database()
    go = tmp_path / "go"
    started = [
        processes.start([sys.executable, "-c", DB_INIT_ON_SIGNAL, str(tmp_path / f"ready{n}"), str(go)],
                        cli_env(env, settings))
        for n in range(2)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{n}").exists() for n in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in started), "db init did not start"
        time.sleep(0.01)
    go.touch()
    outputs = [process.communicate(timeout=120) for process in started]

    assert [process.returncode for process in started] == [0, 0], [err for _, err in outputs]
    applied = sorted(re.findall(r"^applied  (\S+)$", out, re.M) for out, _ in outputs)
    assert applied == [[], MIGRATIONS]  # one applied both; the other waited, then found nothing to apply
    records = yoyo_records(settings)
    assert sorted(row["migration_id"] for row in records["_yoyo_migration"]) == MIGRATIONS
    assert sorted(row["migration_id"] for row in records["_yoyo_log"] if row["operation"] == "apply") == MIGRATIONS
    assert records["yoyo_lock"] == []


def test_a_lock_left_by_a_killed_db_init_does_not_block_the_next(new_database):
    settings = new_database()
    apply_schema(settings)
    execute(settings, "INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, UTC_TIMESTAMP(), 999999)")
    started = time.monotonic()

    assert apply_schema(settings) == []

    assert time.monotonic() - started < 5  # yoyo alone waits 10 s, then refuses
    assert query(settings, "SELECT * FROM yoyo_lock") == []


def test_status_of_a_missing_database_is_all_pending_and_creates_nothing(new_database):
    settings = new_database()
    assert [state.line() for state in migration_status(settings)] == [f"pending  {m}" for m in MIGRATIONS]
    assert query(replace(settings, database="information_schema"),
                 "SELECT schema_name FROM schemata WHERE schema_name = %s", (settings.database,)) == []


def test_migration_files_are_numbered_in_order_and_ddl_ones_are_not_transactional():
    migrations = load_migrations()
    assert [m.id for m in migrations][:2] == ["0001_baseline", "0002_tasks_dispatch"]
    assert all(re.fullmatch(rf"{n:04d}_[a-z0-9_]+", m.id) for n, m in enumerate(migrations, start=1))
    for migration in [*migrations, *migrations.post_apply]:
        # MySQL commits DDL by itself; yoyo's savepoints around it would then hide the real error.
        assert migration.use_transactions is False, migration.id


def test_a_dispatch_recorded_as_events_before_0002_is_still_outstanding_after_it(new_database, env):
    old = new_database()
    build_from_sql(old, FC1C509_SCHEMA)
    execute(
        old,
        "INSERT INTO tasks (id, task_type, domain, status, is_parent, page_from, page_to)"
        " VALUES (1, 'ingestion', 'x', 'in_progress', TRUE, 1, 4)",
        "INSERT INTO tasks (id, task_type, domain, status, parent_id, page_from, page_to) VALUES"
        " (2, 'ingestion', 'x', 'pending', 1, 1, 2), (3, 'ingestion', 'x', 'pending', 1, 3, 4)",
        # task 2 is out on dispatch; task 3 was dispatched, then its job claimed and released it
        "INSERT INTO events (entity, entity_id, event, task_id, reason) VALUES"
        " ('task', 2, 'created', 2, NULL), ('task', 2, 'dispatched', 2, 'scrapyd job task2-ab12 on http://n1:6800'),"
        " ('task', 3, 'dispatched', 3, 'scrapyd job task3-cd34 on http://n2:6800'), ('task', 3, 'claimed', 3, NULL),"
        " ('task', 3, 'released', 3, 'worker stopped')",
    )

    assert run_cli(cli_env(env, old), "db", "init").returncode == 0

    found = {row["id"]: (row["dispatch_job"], row["dispatch_node"]) for row in
             query(old, "SELECT id, dispatch_job, dispatch_node FROM tasks WHERE id IN (2, 3)")}
    assert found == {2: ("task2-ab12", "http://n1:6800"), 3: (None, None)}
    conn = connect(old)
    try:
        out = run_transaction(conn, outstanding_dispatches)
    finally:
        conn.close()
    assert [(d.task_id, d.job_id, d.node_url) for d in out] == [(2, "task2-ab12", "http://n1:6800")]
