"""Bring tables made before 0001 to 0001's shape; run by `db init` every time, after the migrations.

Releases before versioned migrations created their tables with `CREATE TABLE IF NOT EXISTS`, and
0001 is that same statement, so 0001 leaves an existing table as it is, rows and all. Tables made
by still earlier releases differ from 0001 in four known ways, each undone here only when it is
found (information_schema says which), so running this on a database that has none of them
changes nothing:

- ``influencers.export_log_id`` nullable, with a foreign key to ``export_logs``: it is
  ``NOT NULL DEFAULT 0`` now (a NULL BIGINT set later grows the row and InnoDB re-inserts it);
- an index on ``influencers.export_log_id``: a batch's rows are found by their id range now;
- no ``accounts.held_by_task_id``: only the task that took an account frees it;
- foreign keys on ``ingestion_logs``: their checks locked task and account rows through a
  pipeline batch.

yoyo runs a ``post-apply`` file after it applies migrations; `influencers.core.schema` runs it
on every `db init`, so a database whose tables were restored from an old dump into a migrated
database is repaired too. A migration that brings one of these shapes back on purpose must
change this file. The statements run with autocommit (DDL commits by itself anyway).
"""

from __future__ import annotations

import logging

from yoyo import step

__transactional__ = False

logger = logging.getLogger("influencers.migrations")


def _database(cursor) -> str:
    cursor.execute("SELECT DATABASE()")
    return cursor.fetchone()[0]


def _nullable(cursor, database: str, table: str, column: str) -> str | None:
    """'YES' or 'NO' for an existing column, None when the table lacks it."""
    cursor.execute(
        "SELECT is_nullable FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s AND column_name = %s",
        (database, table, column),
    )
    row = cursor.fetchone()
    return None if row is None else row[0]


def _foreign_keys(cursor, database: str, table: str, referenced: str | None = None) -> list[str]:
    """Names of the table's foreign keys (those to ``referenced`` only, when given)."""
    cursor.execute(
        "SELECT constraint_name FROM information_schema.referential_constraints"
        " WHERE constraint_schema = %s AND table_name = %s"
        " AND referenced_table_name = COALESCE(%s, referenced_table_name)",
        (database, table, referenced),
    )
    return [row[0] for row in cursor.fetchall()]


def _export_log_id_not_null(conn, cursor, database: str) -> None:
    if _nullable(cursor, database, "influencers", "export_log_id") != "YES":
        return
    logger.info("upgrading influencers.export_log_id to NOT NULL DEFAULT 0 (sql/schema.sql)")
    for name in _foreign_keys(cursor, database, "influencers", referenced="export_logs"):
        cursor.execute(f"ALTER TABLE influencers DROP FOREIGN KEY `{name}`")
    cursor.execute("UPDATE influencers SET export_log_id = 0 WHERE export_log_id IS NULL")
    conn.commit()  # under any backend, not only one that runs this with autocommit
    cursor.execute(
        "ALTER TABLE influencers MODIFY export_log_id BIGINT NOT NULL DEFAULT 0"
        " COMMENT 'the export batch (file) this row went to; 0: none yet'"
    )


def _drop_export_log_index(cursor, database: str) -> None:
    cursor.execute(
        "SELECT DISTINCT index_name FROM information_schema.statistics"
        " WHERE table_schema = %s AND table_name = 'influencers' AND column_name = 'export_log_id'",
        (database,),
    )
    for (name,) in cursor.fetchall():
        logger.info("dropping index influencers.%s (sql/schema.sql)", name)
        cursor.execute(f"ALTER TABLE influencers DROP INDEX `{name}`")


def _add_account_holder(cursor, database: str) -> None:
    if _nullable(cursor, database, "accounts", "held_by_task_id") is not None:
        return
    logger.info("adding accounts.held_by_task_id (sql/schema.sql)")
    cursor.execute(
        "ALTER TABLE accounts ADD COLUMN held_by_task_id BIGINT NULL"
        " COMMENT 'the task that took it; only that task frees it' AFTER cooldown_until"
    )


def _drop_ingestion_log_foreign_keys(cursor, database: str) -> None:
    """The index the server made for a key goes with it (the table's own indexes stay)."""
    for name in _foreign_keys(cursor, database, "ingestion_logs"):
        logger.info("dropping foreign key ingestion_logs.%s (sql/schema.sql)", name)
        cursor.execute(f"ALTER TABLE ingestion_logs DROP FOREIGN KEY `{name}`")
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.statistics"
            " WHERE table_schema = %s AND table_name = 'ingestion_logs' AND index_name = %s",
            (database, name),
        )
        if cursor.fetchone()[0]:
            cursor.execute(f"ALTER TABLE ingestion_logs DROP INDEX `{name}`")


def upgrade_earlier_shapes(conn) -> None:
    """Undo each earlier shape that is present; a no-op on tables in 0001's shape."""
    with conn.cursor() as cursor:
        database = _database(cursor)
        _export_log_id_not_null(conn, cursor, database)
        _drop_export_log_index(cursor, database)
        _add_account_holder(cursor, database)
        _drop_ingestion_log_foreign_keys(cursor, database)


step(upgrade_earlier_shapes)
