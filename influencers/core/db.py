"""Connections, transactions, and the boundary where driver errors become the project's.

Every connection made here uses the cursor and connection classes below, which turn each pymysql
exception into a `DatabaseError` subclass (`influencers.core.errors`): callers catch
`ConnectionLost`, `TransactionConflict`, `DuplicateKey`, `ValueRefused` … and no module but this
one compares MySQL error codes.

Short explicit transactions, retried as a whole on deadlock (1213) and lock wait timeout
(1205): InnoDB picks a victim under contention and the right answer is to run the same
transaction again. Times that matter (leases, quota days) come from the database clock, so all
workers agree whatever their own clocks say. Every session runs in UTC (`time_zone = '+00:00'`):
stored DATETIMEs are UTC and reports convert them to the configured local zone.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pymysql
import pymysql.cursors
from pymysql.connections import Connection
from pymysql.constants import CLIENT

from influencers.core.config import MySQLSettings
from influencers.core.errors import (
    ConnectionLost,
    DatabaseError,
    DatabaseUnavailable,
    DuplicateKey,
    SchemaMissing,
    TransactionConflict,
    ValueRefused,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE_ERRORS = frozenset({1213, 1205})
CONNECTION_LOST_ERRORS = frozenset({2002, 2003, 2006, 2013, 2014, 2055})
SCHEMA_ERRORS = frozenset({1049, 1146})
DUPLICATE_KEY = 1062
#: The server refused a row's JSON: MariaDB's JSON check constraint fails (4025) or a JSON
#: function reaches the depth limit (4040); MySQL finds the JSON text invalid (3140) or too deep (3157).
JSON_REFUSED_ERRORS = frozenset({4025, 4040, 3140, 3157})
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "sql" / "schema.sql"

#: The local calendar date by the database clock; takes the UTC offset ('+08:00') as parameter.
LOCAL_TODAY_SQL = "DATE(CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', %s))"


def connect(
    mysql: MySQLSettings,
    *,
    database: bool = True,
    autocommit: bool = False,
    cursorclass: type | None = None,
    connect_timeout: float = 5,
) -> Connection:
    """A utf8mb4 connection; an unreachable server becomes one `DatabaseUnavailable` line."""
    try:
        return WrappedConnection(
            host=mysql.host,
            port=mysql.port,
            user=mysql.user,
            password=mysql.password,
            database=mysql.database if database else None,
            charset="utf8mb4",
            autocommit=autocommit,
            cursorclass=cursorclass or Cursor,
            connect_timeout=connect_timeout,
            local_infile=False,
            init_command="SET time_zone = '+00:00', group_concat_max_len = 1048576",
            client_flag=CLIENT.FOUND_ROWS,  # rowcount = rows matched, so fences read plainly
            **_tls_arguments(mysql.tls_mode),
        )
    except pymysql.err.MySQLError as exc:
        code = error_code(exc)
        if code == 1049:
            raise SchemaMissing(
                f"database {mysql.database!r} does not exist on {mysql.host}:{mysql.port}: "
                "run `python -m influencers db init`"
            ) from None
        detail = _describe(exc)
        raise DatabaseUnavailable(mysql.host, mysql.port, detail) from None


def _tls_arguments(mode: str) -> dict[str, Any]:
    """pymysql's arguments for a `MySQLSettings.tls_mode`; preferred is pymysql's own default."""
    if mode == "disabled":
        return {"ssl_disabled": True}
    if mode == "required":
        return {"ssl_verify_cert": True, "ssl_verify_identity": True}
    return {}


def error_code(exc: BaseException) -> int:
    """The MySQL error number of a driver exception (0 when it carries none)."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def driver_error(exc: pymysql.err.MySQLError) -> DatabaseError:
    """The project's exception for a driver exception: one safe line, the code kept."""
    code = error_code(exc)
    if isinstance(exc, pymysql.err.InterfaceError) or code in CONNECTION_LOST_ERRORS:
        return ConnectionLost("lost the connection to MySQL (is the server running?)", code)
    if code in SCHEMA_ERRORS:
        return SchemaMissing("the schema is missing or incomplete: run `python -m influencers db init`", code)
    message = str(exc.args[1]) if len(exc.args) > 1 and exc.args[1] else type(exc).__name__
    line = f"MySQL error {code}: {message.splitlines()[0][:200] if message.strip() else type(exc).__name__}"
    if code in RETRYABLE_ERRORS:
        return TransactionConflict(line, code)
    if code == DUPLICATE_KEY:
        return DuplicateKey(line, code)
    if code in JSON_REFUSED_ERRORS:
        return ValueRefused(line, code)
    return DatabaseError(line, code)


class Cursor(pymysql.cursors.DictCursor):
    """Rows as dicts; driver errors raised as `DatabaseError`s."""

    def execute(self, query: str, args: Any = None) -> int:
        try:
            return super().execute(query, args)
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc

    def executemany(self, query: str, args: Any) -> int | None:
        try:
            return super().executemany(query, args)
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc


class StreamingCursor(pymysql.cursors.SSCursor):
    """Tuples read from the server as they are fetched (memory flat in the rows); driver errors
    raised as `DatabaseError`s, fetching included: an unbuffered read is network I/O."""

    def execute(self, query: str, args: Any = None) -> int:
        try:
            return super().execute(query, args)
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc

    def fetchmany(self, size: int | None = None) -> Any:
        try:
            return super().fetchmany(size)
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc

    def close(self) -> None:
        try:
            super().close()
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc


class WrappedConnection(Connection):
    """A pymysql connection whose own round trips (begin, commit, rollback, ping, reconnect)
    raise `DatabaseError`s too."""

    def begin(self) -> None:
        try:
            super().begin()
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc

    def commit(self) -> None:
        try:
            super().commit()
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc

    def rollback(self) -> None:
        try:
            super().rollback()
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc

    def ping(self, reconnect: bool = False) -> bool | None:
        try:
            return super().ping(reconnect)
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc


def _describe(exc: pymysql.err.MySQLError) -> str:
    code = error_code(exc)
    if code == 1045:
        return "access denied (check the user and password in INFLUENCERS_MYSQL_URL)"
    if code in (2003, 2002):
        return "connection refused or timed out (is MySQL/MariaDB running?)"
    if code == 2026:
        return "no TLS connection: the server offers none or its certificate failed the check (?tls= in INFLUENCERS_MYSQL_URL)"
    return f"error {code}"


#: Isolation levels a transaction may ask for (they are put into SQL, so only these).
ISOLATION_LEVELS = frozenset({"READ COMMITTED", "REPEATABLE READ"})


@contextmanager
def transaction(conn: Connection, isolation: str | None = None) -> Iterator[pymysql.cursors.Cursor]:
    """One transaction: commit when the block ends, roll back if it raises. ``isolation`` sets
    the level of this transaction only (the session's default, REPEATABLE READ, otherwise)."""
    if isolation is not None:
        if isolation not in ISOLATION_LEVELS:
            raise ValueError(f"unknown isolation level {isolation!r}")
        with conn.cursor() as cursor:
            cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
    conn.begin()
    cursor = conn.cursor()
    try:
        yield cursor
    except BaseException:
        try:
            conn.rollback()
        except (DatabaseError, pymysql.err.MySQLError):
            logger.debug("rollback failed after an error; the connection is probably gone")
        raise
    else:
        conn.commit()
    finally:
        cursor.close()


def run_transaction(conn: Connection, work: Callable[[pymysql.cursors.Cursor], T], attempts: int = 6,
                    isolation: str | None = None) -> T:
    """Run `work(cursor)` in a transaction, again from the start on deadlock or lock wait timeout."""
    for attempt in range(1, attempts + 1):
        try:
            with transaction(conn, isolation) as cursor:
                return work(cursor)
        except TransactionConflict as exc:
            if attempt == attempts:
                raise
            pause = min(0.5, 0.01 * 2**attempt) * (0.5 + random.random())
            logger.debug("transaction retry %d after MySQL error %s", attempt, exc.code)
            time.sleep(pause)
    raise AssertionError("unreachable")


def ensure_connected(conn: Connection) -> None:
    """Reconnect a connection that the server closed (idle timeout, restart), in place: the
    callers hold it. (What ``ping(reconnect=True)`` did, which pymysql 1.2 deprecates.)"""
    try:
        conn.ping(reconnect=False)
    except DatabaseError:
        try:
            conn.connect()
        except pymysql.err.MySQLError as exc:
            raise driver_error(exc) from exc


def apply_schema(mysql: MySQLSettings, schema_path: Path = SCHEMA_PATH) -> None:
    """Create the database if missing and apply `sql/schema.sql` (idempotent)."""
    server = connect(mysql, database=False, autocommit=True)
    try:
        with server.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE IF NOT EXISTS `{mysql.database}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cursor.execute(f"USE `{mysql.database}`")
            for statement in split_sql(schema_path.read_text(encoding="utf-8")):
                cursor.execute(statement)
            _upgrade(cursor, mysql.database)
    finally:
        server.close()


def _upgrade(cursor: pymysql.cursors.DictCursor, database: str) -> None:
    """Bring a database made by an earlier schema up to date. `CREATE TABLE IF NOT EXISTS`
    leaves an existing table alone, and operators keep their data across upgrades."""
    _upgrade_nullable_export_log_id(cursor, database)
    _drop_export_log_index(cursor, database)
    _add_account_holder(cursor, database)
    _drop_ingestion_log_foreign_keys(cursor, database)


def _column(cursor: pymysql.cursors.DictCursor, database: str, table: str, column: str) -> dict | None:
    """The column's information_schema row (``nullable``), or None if the table lacks it."""
    cursor.execute(
        "SELECT is_nullable AS nullable FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s AND column_name = %s",
        (database, table, column),
    )
    return cursor.fetchone()


def _foreign_keys(cursor: pymysql.cursors.DictCursor, database: str, table: str,
                  referenced: str | None = None) -> list[str]:
    """Names of the table's foreign keys (those to ``referenced`` only, when given)."""
    cursor.execute(
        "SELECT constraint_name AS name FROM information_schema.referential_constraints"
        " WHERE constraint_schema = %s AND table_name = %s AND referenced_table_name = COALESCE(%s, referenced_table_name)",
        (database, table, referenced),
    )
    return [row["name"] for row in cursor.fetchall()]


def _upgrade_nullable_export_log_id(cursor: pymysql.cursors.DictCursor, database: str) -> None:
    row = _column(cursor, database, "influencers", "export_log_id")
    if row is None or row["nullable"] != "YES":
        return
    logger.info("upgrading influencers.export_log_id to NOT NULL DEFAULT 0 (see sql/schema.sql)")
    for name in _foreign_keys(cursor, database, "influencers", referenced="export_logs"):
        cursor.execute(f"ALTER TABLE influencers DROP FOREIGN KEY `{name}`")
    cursor.execute("UPDATE influencers SET export_log_id = 0 WHERE export_log_id IS NULL")
    cursor.execute(
        "ALTER TABLE influencers MODIFY export_log_id BIGINT NOT NULL DEFAULT 0"
        " COMMENT 'the export batch (file) this row went to; 0: none yet'"
    )


def _drop_ingestion_log_foreign_keys(cursor: pymysql.cursors.DictCursor, database: str) -> None:
    """A page's log row held shared locks on its task and account rows through the pipeline's
    whole batch (the foreign keys' checks), so a task handing its account back or ending waited
    for the batch (sql/schema.sql). The index MySQL made for a key goes with it."""
    for name in _foreign_keys(cursor, database, "ingestion_logs"):
        logger.info("dropping foreign key ingestion_logs.%s (see sql/schema.sql)", name)
        cursor.execute(f"ALTER TABLE ingestion_logs DROP FOREIGN KEY `{name}`")
        cursor.execute(
            "SELECT COUNT(*) AS n FROM information_schema.statistics"
            " WHERE table_schema = %s AND table_name = 'ingestion_logs' AND index_name = %s",
            (database, name),
        )
        if cursor.fetchone()["n"]:
            cursor.execute(f"ALTER TABLE ingestion_logs DROP INDEX `{name}`")


def _drop_export_log_index(cursor: pymysql.cursors.DictCursor, database: str) -> None:
    """The exporter finds a batch's rows by its id range now; an index on ``export_log_id`` only
    made every reserve and every new row pay for a secondary-index entry (sql/schema.sql)."""
    cursor.execute(
        "SELECT DISTINCT index_name AS name FROM information_schema.statistics"
        " WHERE table_schema = %s AND table_name = 'influencers' AND column_name = 'export_log_id'",
        (database,),
    )
    for found in cursor.fetchall():
        logger.info("dropping index influencers.%s (see sql/schema.sql)", found["name"])
        cursor.execute(f"ALTER TABLE influencers DROP INDEX `{found['name']}`")


def _add_account_holder(cursor: pymysql.cursors.DictCursor, database: str) -> None:
    if _column(cursor, database, "accounts", "held_by_task_id") is not None:
        return
    logger.info("adding accounts.held_by_task_id (see sql/schema.sql)")
    cursor.execute(
        "ALTER TABLE accounts ADD COLUMN held_by_task_id BIGINT NULL"
        " COMMENT 'the task that took it; only that task frees it' AFTER cooldown_until"
    )


def split_sql(script: str) -> list[str]:
    """Statements of a schema file: `--` comments dropped, split on `;` at line ends."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    text = "\n".join(lines)
    statements = (part.strip().rstrip(";").strip() for part in text.split(";\n"))
    return [statement for statement in statements if statement]
