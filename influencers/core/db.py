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
    StatementTimeout,
    TransactionConflict,
    ValueRefused,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE_ERRORS = frozenset({1213, 1205})
#: Client errors of a lost or refused connection, and the server's own words for closing one:
#: shutdown in progress (1053), connection killed (1927, MariaDB), idle client dropped (4031, MySQL).
CONNECTION_LOST_ERRORS = frozenset({2002, 2003, 2006, 2013, 2014, 2055, 1053, 1927, 4031})
SCHEMA_ERRORS = frozenset({1049, 1146})
#: The server answered and refused us (access denied; no TLS connection as required): waiting
#: does not help, unlike a server that is down or restarting.
REFUSED_ERRORS = frozenset({1044, 1045, 2026})
DUPLICATE_KEY = 1062
#: The server refused a row's JSON: MariaDB's JSON check constraint fails (4025) or a JSON
#: function reaches the depth limit (4040); MySQL finds the JSON text invalid (3140) or too deep (3157).
JSON_REFUSED_ERRORS = frozenset({4025, 4040, 3140, 3157})
#: A statement stopped at its time limit: MariaDB's max_statement_time (1969; 188 from the
#: fulltext search), MySQL's MAX_EXECUTION_TIME (3024).
STATEMENT_TIMEOUT_ERRORS = frozenset({1969, 188, 3024})


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
        raise DatabaseUnavailable(mysql.host, mysql.port, detail, transient=code not in REFUSED_ERRORS) from None


def _tls_arguments(mode: str) -> dict[str, Any]:
    """pymysql's arguments for a `MySQLSettings.tls_mode`; preferred is pymysql's own default."""
    if mode == "disabled":
        return {"ssl_disabled": True}
    if mode == "required":
        return {"ssl_verify_cert": True, "ssl_verify_identity": True}
    return {}


def capped(conn: Connection, select: str, seconds: float) -> str:
    """``select`` stopped by the server after ``seconds`` (`StatementTimeout`), in the dialect of
    the connection's server: MariaDB's ``SET STATEMENT max_statement_time``, MySQL's
    ``MAX_EXECUTION_TIME`` hint (SELECT only)."""
    if "MariaDB" in (conn.server_version or ""):
        return f"SET STATEMENT max_statement_time = {seconds:g} FOR {select}"
    return select.replace("SELECT ", f"SELECT /*+ MAX_EXECUTION_TIME({max(1, round(seconds * 1000))}) */ ", 1)


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
    if code in STATEMENT_TIMEOUT_ERRORS:
        return StatementTimeout(line, code)
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
