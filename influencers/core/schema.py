"""The schema's owner: numbered migrations in `sql/migrations/`, applied in order by `db init`.

yoyo-migrations reads the migrations (plain SQL files, one Python hook) and records each one
applied in its table ``_yoyo_migration``, so `db status` can say what a database is at and
`db init` applies only what it lacks. A database made before migrations existed has no such
table: it gets every migration, and 0001 (`CREATE TABLE IF NOT EXISTS`, the schema of that
release) leaves its tables and rows as they are; ``post-apply.py`` then undoes the shapes of
still earlier releases. That hook runs on every `db init` (yoyo itself runs it only after it
applied something), so tables restored from an old dump into a migrated database are brought
to date as well.

What this module adds to yoyo, and why:

- the project's connections (utf8mb4, UTC, the TLS policy of ``INFLUENCERS_MYSQL_URL``), with
  autocommit on: yoyo opens its transactions with ``BEGIN`` itself, and MySQL commits every DDL
  statement on its own anyway, so a migration marked ``-- transactional: false`` runs statement
  by statement instead of leaving DML uncommitted on a connection yoyo then closes;
- a server lock (``GET_LOCK``) around the whole run. yoyo's own lock (a row in ``yoyo_lock``,
  taken around reading what is pending and applying it) keeps two runs apart too, but a killed
  `db init` leaves its row behind and every later one then gives up after 10 s; it also gives up
  on a run that takes longer than that (an ALTER of a big table). The server drops ``GET_LOCK``
  with its connection, so a second `db init` waits for the first (``lock_wait``), then finds
  nothing pending, and a ``yoyo_lock`` row found while holding it is such a leftover (or a
  `yoyo` command run by hand at the same moment, which `db init` does not try to share with);
- `migration_status` reads ``_yoyo_migration`` without writing: yoyo would create its tables
  (and need the privileges to) just to answer.

MySQL cannot roll DDL back: a migration that fails halfway leaves what it did and is not marked
applied, so each one is written to be atomic (one ALTER per table) or safe to run again.
"""

from __future__ import annotations

import glob
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors
from yoyo import exceptions as yoyo_exceptions
from yoyo import read_migrations
from yoyo.backends.core.mysql import MySQLBackend
from yoyo.connections import DatabaseURI
from yoyo.migrations import Migration, MigrationList, default_migration_table

from influencers.core.config import MySQLSettings
from influencers.core.db import connect, driver_error
from influencers.core.errors import DatabaseError, InfluencersError, SchemaMissing

logger = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
#: The readable, complete current schema; a test keeps it equal to what the migrations build.
SCHEMA_PATH = SQL_DIR / "schema.sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
MIGRATION_TABLE = default_migration_table
#: How long a `db init` waits for another one to finish (an ALTER of a big table takes a while).
LOCK_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class MigrationState:
    """One migration as `db status` shows it."""

    id: str
    applied_at: datetime | None = None  # UTC; None: pending
    in_release: bool = True  # False: applied, but this release has no such file (a newer one made it)

    @property
    def applied(self) -> bool:
        return self.applied_at is not None

    def line(self) -> str:
        if self.applied_at is None:
            return f"pending  {self.id}"
        note = "" if self.in_release else "  (not in this release's sql/migrations: made by a newer release)"
        return f"applied  {self.id}  {self.applied_at:%Y-%m-%d %H:%M:%S} UTC{note}"


def apply_schema(mysql: MySQLSettings, migrations_dir: Path = MIGRATIONS_DIR, *,
                 lock_wait: float = LOCK_WAIT_SECONDS) -> list[str]:
    """Create the database if missing, apply its pending migrations in order, then the
    post-apply hook; return the ids applied. Safe to repeat, and from several processes at once."""
    migrations = load_migrations(migrations_dir)
    try:
        _create_database(mysql)
        with _schema_lock(mysql, lock_wait), _Backend(mysql) as backend:
            backend.init_database()
            _clear_leftover_lock(backend)
            with backend.lock():
                pending = backend.to_apply(migrations)
                for migration in pending:
                    _apply(backend, migration)
                for hook in migrations.post_apply:
                    _run_hook(backend, hook)
    except pymysql.err.MySQLError as exc:
        raise driver_error(exc) from None
    except yoyo_exceptions.LockTimeout as exc:
        raise InfluencersError(f"cannot lock the schema of {mysql.display}: {exc}") from None
    except yoyo_exceptions.BadMigration as exc:
        raise InfluencersError(f"a migration in {migrations_dir} cannot be loaded: {exc.args[0]}") from None
    applied = [migration.id for migration in pending]
    if applied:
        logger.info("applied %s to %s", ", ".join(applied), mysql.display)
    return applied


def migration_status(mysql: MySQLSettings, migrations_dir: Path = MIGRATIONS_DIR) -> list[MigrationState]:
    """Every migration of this release, applied or pending, then any applied one this release
    lacks. Reads only: a database that does not exist yet has everything pending."""
    ids = [migration.id for migration in load_migrations(migrations_dir)]
    applied = _applied(mysql)
    states = [MigrationState(migration_id, applied.get(migration_id)) for migration_id in ids]
    states += [MigrationState(migration_id, at, in_release=False)
               for migration_id, at in applied.items() if migration_id not in ids]
    return states


def load_migrations(migrations_dir: Path = MIGRATIONS_DIR) -> MigrationList:
    """The migrations in file-name order (their numbers), loaded, so a broken file fails here."""
    try:
        migrations = read_migrations(glob.escape(str(migrations_dir)))
        for migration in [*migrations, *migrations.post_apply]:
            migration.load()
    except (yoyo_exceptions.BadMigration, yoyo_exceptions.MigrationConflict) as exc:
        raise InfluencersError(f"the migrations in {migrations_dir} cannot be read: {exc.args[0]}") from None
    if not migrations:
        raise InfluencersError(f"no migrations in {migrations_dir}")
    return migrations


def split_sql(script: str) -> list[str]:
    """Statements of a schema file: `--` comments dropped, split on `;` at line ends."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    text = "\n".join(lines)
    statements = (part.strip().rstrip(";").strip() for part in text.split(";\n"))
    return [statement for statement in statements if statement]


# -- yoyo on the project's connections ---------------------------------------------------------


class _Backend(MySQLBackend):
    """yoyo's MySQL backend on `influencers.core.db.connect` (tuple rows, as yoyo reads them)."""

    def __init__(self, mysql: MySQLSettings, migration_table: str = MIGRATION_TABLE) -> None:
        self.mysql = mysql
        # yoyo keys a cache by this and reads the database name from it; it never connects by it.
        uri = DatabaseURI("mysql", mysql.user, None, mysql.host, mysql.port, mysql.database, {})
        super().__init__(uri, migration_table)
        self.has_transactional_ddl = False

    def connect(self, dburi: DatabaseURI) -> Any:
        return connect(self.mysql, autocommit=True, cursorclass=pymysql.cursors.Cursor)

    def copy(self) -> _Backend:
        return _Backend(self.mysql, self.migration_table)

    def _check_transactional_ddl(self) -> bool:
        # MySQL and MariaDB commit every DDL statement implicitly; yoyo would find that out by
        # creating and dropping a scratch table on every run.
        return False


def _apply(backend: _Backend, migration: Migration) -> None:
    logger.info("applying migration %s", migration.id)
    try:
        backend.apply_one(migration)
    except (pymysql.err.MySQLError, DatabaseError) as exc:
        error = driver_error(exc) if isinstance(exc, pymysql.err.MySQLError) else exc
        raise DatabaseError(f"migration {migration.id} failed: {error}", error.code) from None


def _run_hook(backend: _Backend, hook: Migration) -> None:
    """yoyo's `run_post_apply` would also write a `_yoyo_log` row on every `db init`."""
    try:
        with backend.copy() as hook_backend:
            hook.process_steps(hook_backend, "apply")
    except (pymysql.err.MySQLError, DatabaseError) as exc:
        error = driver_error(exc) if isinstance(exc, pymysql.err.MySQLError) else exc
        raise DatabaseError(f"{hook.id} failed: {error}", error.code) from None


def _create_database(mysql: MySQLSettings) -> None:
    server = connect(mysql, database=False, autocommit=True)
    try:
        with server.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS {_quoted(mysql.database)}"
                           " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        server.close()


@contextmanager
def _schema_lock(mysql: MySQLSettings, wait: float) -> Iterator[None]:
    """Hold the database's schema lock on a connection of its own (closing it releases it)."""
    conn = connect(mysql, autocommit=True)
    try:
        name = _lock_name(mysql.database)
        with conn.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0) AS held", (name,))
            if cursor.fetchone()["held"] != 1:
                logger.warning("another `db init` is migrating %s: waiting for it", mysql.display)
                cursor.execute("SELECT GET_LOCK(%s, %s) AS held", (name, wait))
                if cursor.fetchone()["held"] != 1:
                    raise InfluencersError(
                        f"another `db init` has been migrating {mysql.display} for over {wait:g} s: "
                        "run it again when that one has finished"
                    )
        yield
    finally:
        conn.close()


def _lock_name(database: str) -> str:
    """Lock names are at most 64 characters; a database name may be 64 on its own."""
    name = f"influencers.schema.{database}"
    if len(name) <= 64:
        return name
    return "influencers.schema." + hashlib.sha256(database.encode("utf-8")).hexdigest()[:40]


def _clear_leftover_lock(backend: _Backend) -> None:
    """Under the schema lock no other `db init` runs: a row in yoyo's lock table is one that a
    killed `db init` left (its unmarked migration runs again, which each is written to allow)."""
    rows = backend.execute(f"SELECT pid, ctime FROM {backend.lock_table_quoted}").fetchall()
    if rows:
        logger.warning("removing the schema lock left by process %s at %s UTC (a `db init` that stopped)",
                       rows[0][0], rows[0][1])
        backend.break_lock()


def _applied(mysql: MySQLSettings) -> dict[str, datetime]:
    """{migration id: applied at (UTC)} from yoyo's table; empty when there is no such table."""
    try:
        conn = connect(mysql, autocommit=True)
    except SchemaMissing:
        return {}
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT migration_id, applied_at_utc FROM {_quoted(MIGRATION_TABLE)}"
                           " ORDER BY applied_at_utc, migration_id")
            return {row["migration_id"]: row["applied_at_utc"] for row in cursor.fetchall()}
    except SchemaMissing:
        return {}
    finally:
        conn.close()


def _quoted(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"
