"""The schema applies to an empty database and again on itself, with the seed's columns and types."""

from __future__ import annotations

from dataclasses import replace

import pytest

from influencers.core.db import connect
from influencers.core.schema import apply_schema

# The seed's tables and columns (system-design.zh.md §3) with the seed's types.
SEED_COLUMNS = {
    "influencers": {
        "id": "bigint", "nickname": "varchar(255)", "uid": "varchar(255)", "domain": "varchar(100)",
        "source_page": "varchar(255)", "raw_data": "json", "status": "enum('pending_export','exported')",
        "ingested_at": "datetime", "ingestion_log_id": "bigint",
    },
    "accounts": {
        "id": "int", "username": "varchar(255)", "password": "varchar(255)",
        "status": "enum('idle','ingesting','exporting','disabled')", "daily_export_limit": "int",
        "today_export_count": "int", "last_used_at": "datetime",
    },
    "tasks": {
        "id": "bigint", "task_type": "enum('ingestion','export')", "domain": "varchar(100)",
        "status": "enum('pending','in_progress','paused','completed','failed')", "progress_marker": "varchar(255)",
        "assigned_account_id": "int", "created_at": "datetime", "updated_at": "datetime",
    },
    "ingestion_logs": {
        "id": "bigint", "task_id": "bigint", "account_id": "int", "domain": "varchar(100)", "page_number": "int",
        "ingested_count": "int", "start_time": "datetime", "end_time": "datetime",
    },
    "export_logs": {
        "id": "bigint", "task_id": "bigint", "account_id": "int", "domain": "varchar(100)", "exported_count": "int",
        "file_path": "varchar(255)", "start_time": "datetime", "end_time": "datetime",
    },
}


def _normalise(column_type: str) -> str:
    # MariaDB stores JSON as LONGTEXT with a json_valid CHECK; MySQL 5.7 displays int(11).
    column_type = column_type.replace("int(11)", "int").replace("bigint(20)", "bigint").replace(" unsigned", "")
    return "json" if column_type == "longtext" else column_type


@pytest.fixture
def scratch_settings(mysql_settings):
    settings = replace(mysql_settings, database=mysql_settings.database + "_s")
    yield settings
    server = connect(settings, database=False, autocommit=True)
    with server.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{settings.database}`")
    server.close()


def test_schema_applies_twice_with_seed_columns(scratch_settings):
    apply_schema(scratch_settings)  # creates the database too
    apply_schema(scratch_settings)  # and is safe on top of itself
    conn = connect(scratch_settings)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT table_name AS t, column_name AS c, column_type AS ty, character_set_name AS cs, data_type AS dt"
            " FROM information_schema.columns WHERE table_schema = %s",
            (scratch_settings.database,),
        )
        columns = {(row["t"], row["c"]): row for row in cursor.fetchall()}
        cursor.execute("SELECT table_name AS t, engine AS e, table_collation AS co FROM information_schema.tables"
                       " WHERE table_schema = %s", (scratch_settings.database,))
        tables = {row["t"]: row for row in cursor.fetchall()}
    conn.close()
    for table, expected in SEED_COLUMNS.items():
        assert tables[table]["e"] == "InnoDB"
        assert tables[table]["co"].startswith("utf8mb4")
        for column, column_type in expected.items():
            assert (table, column) in columns, f"{table}.{column} missing"
            assert _normalise(columns[(table, column)]["ty"]) == column_type, f"{table}.{column}"
            if columns[(table, column)]["cs"]:
                assert columns[(table, column)]["cs"] == "utf8mb4"
    assert "events" in tables
    for column in ("quota_date", "cooldown_until", "status_reason"):
        assert ("accounts", column) in columns
    for column in ("parent_id", "page_from", "page_to", "lease_expires_at", "heartbeat_at", "attempts", "last_error"):
        assert ("tasks", column) in columns
    assert ("influencers", "export_log_id") in columns


def test_exporter_scan_index_and_unique_uid(db, mysql_settings):
    with db.cursor() as cursor:
        cursor.execute("SHOW INDEX FROM influencers")
        indexes = {}
        for row in cursor.fetchall():
            indexes.setdefault(row["Key_name"], []).append((row["Seq_in_index"], row["Column_name"], row["Non_unique"]))
    scan = [name for name, cols in indexes.items() if [c for _, c, _ in sorted(cols)] == ["domain", "status", "id"]]
    assert scan, indexes
    assert any(cols == [(1, "uid", 0)] for cols in indexes.values())


def test_emoji_and_chinese_round_trip(db):
    nickname = "小美😀\u200b=SUM(A1)"
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO influencers (uid, nickname, domain, raw_data) VALUES ('u1', %s, '美妆', %s)",
                       (nickname, '{"n": "小美😀"}'))
        cursor.execute("SELECT nickname, raw_data FROM influencers WHERE uid = 'u1'")
        row = cursor.fetchone()
    db.rollback()
    assert row["nickname"] == nickname
    assert "😀" in row["raw_data"]


def test_db_init_upgrades_an_earlier_schema_and_keeps_the_rows(scratch_settings):
    apply_schema(scratch_settings)
    conn = connect(scratch_settings, autocommit=True)
    with conn.cursor() as cursor:  # the earlier schema: nullable, indexed, with a foreign key to export_logs
        cursor.execute("ALTER TABLE influencers MODIFY export_log_id BIGINT NULL")
        cursor.execute("ALTER TABLE influencers ADD INDEX ix_influencers_export_log (export_log_id)")
        cursor.execute("ALTER TABLE accounts DROP COLUMN held_by_task_id")
        cursor.execute("ALTER TABLE influencers ADD CONSTRAINT fk_influencers_export_log"
                       " FOREIGN KEY (export_log_id) REFERENCES export_logs (id)")
        cursor.execute("INSERT INTO influencers (uid, domain, export_log_id) VALUES ('old', '美妆', NULL)")
        cursor.execute("ALTER TABLE ingestion_logs ADD CONSTRAINT fk_ingestion_logs_task"
                       " FOREIGN KEY (task_id) REFERENCES tasks (id)")
        cursor.execute("ALTER TABLE ingestion_logs ADD CONSTRAINT fk_ingestion_logs_account"
                       " FOREIGN KEY (account_id) REFERENCES accounts (id)")  # MySQL adds an index for it
    apply_schema(scratch_settings)
    with conn.cursor() as cursor:
        cursor.execute("SELECT is_nullable AS n, column_default AS d FROM information_schema.columns"
                       " WHERE table_schema = %s AND table_name = 'influencers' AND column_name = 'export_log_id'",
                       (scratch_settings.database,))
        column = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) AS n FROM information_schema.referential_constraints"
                       " WHERE constraint_schema = %s AND referenced_table_name = 'export_logs'"
                       " AND table_name = 'influencers'", (scratch_settings.database,))
        foreign_keys = cursor.fetchone()["n"]
        cursor.execute("SELECT COUNT(*) AS n FROM information_schema.statistics WHERE table_schema = %s"
                       " AND table_name = 'influencers' AND column_name = 'export_log_id'", (scratch_settings.database,))
        indexes = cursor.fetchone()["n"]
        cursor.execute("SELECT COUNT(*) AS n FROM information_schema.columns WHERE table_schema = %s"
                       " AND table_name = 'accounts' AND column_name = 'held_by_task_id'", (scratch_settings.database,))
        holder_columns = cursor.fetchone()["n"]
        cursor.execute("SELECT uid, export_log_id FROM influencers")
        rows = cursor.fetchall()
        cursor.execute("SELECT COUNT(*) AS n FROM information_schema.referential_constraints"
                       " WHERE constraint_schema = %s AND table_name = 'ingestion_logs'", (scratch_settings.database,))
        log_foreign_keys = cursor.fetchone()["n"]
        cursor.execute("SELECT DISTINCT index_name AS name FROM information_schema.statistics WHERE table_schema = %s"
                       " AND table_name = 'ingestion_logs' ORDER BY index_name", (scratch_settings.database,))
        log_indexes = [row["name"] for row in cursor.fetchall()]
    conn.close()
    assert log_foreign_keys == 0
    assert log_indexes == ["ix_ingestion_logs_day", "PRIMARY", "uq_ingestion_logs_task_page"]
    assert column["n"] == "NO" and str(column["d"]) == "0"
    assert foreign_keys == 0
    assert indexes == 0  # a batch's rows are found by its id range (sql/schema.sql)
    assert holder_columns == 1
    assert rows == [{"uid": "old", "export_log_id": 0}]
