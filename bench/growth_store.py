"""The databases of `bench.growth`: the large one loaded once (or reused with ``--keep``), the small
ones, what a timed step added taken away again, the counts recomputed, a private server."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pymysql

from bench.common import REPO_ROOT, connect_infile, drop_database, local_infile_on
from bench.growth_data import Clock, Sizes, load_history, plan
from influencers.core.accounts import AccountManager
from influencers.core.config import Config, MySQLSettings
from influencers.core.credentials import CredentialCipher
from influencers.core.db import connect
from influencers.core.schema import apply_schema

META = "growth_bench_meta"  # in the large database only: what it was loaded with, and when
DAILY_EXPORT_LIMIT = 4000
_warned: list[bool] = []


@dataclass(frozen=True)
class Marks:
    """The last ids of the loaded history: anything above them a timed step added."""

    tasks: int = 0
    logs: int = 0
    export_logs: int = 0


def config_for(settings: MySQLSettings, key: str) -> Config:
    return Config.from_env({"INFLUENCERS_MYSQL_URL": settings.connection_url, "INFLUENCERS_SECRET_KEY": key})


def add_sandbox_accounts(settings: MySQLSettings, key: str, count: int) -> list[int]:
    """demo1 … demoN with the reference platform's passwords, encrypted as `accounts add` does."""
    config = config_for(settings, key)
    conn = connect(settings)
    try:
        manager = AccountManager(conn, quota_day=config.quota_day, cipher=CredentialCipher.from_config(config))
        return [manager.add(f"demo{n}", f"sandbox-demo{n}", DAILY_EXPORT_LIMIT) for n in range(1, count + 1)]
    finally:
        conn.close()


def make_small(settings: MySQLSettings, key: str, accounts: int, workdir: Path) -> Marks:
    """A database with the schema and ``accounts`` accounts, nothing else."""
    drop_database(settings)
    apply_schema(settings)
    add_sandbox_accounts(settings, key, accounts)
    recount(settings)
    return Marks()


def recount(settings: MySQLSettings) -> float | None:
    """``influencers.core.counts.recount``: every kept count recomputed from the tables; seconds."""
    try:
        from influencers.core.counts import recount as recount_counts
    except ImportError as exc:
        if not _warned:
            print(f"  note: influencers.core.counts.recount is not importable ({exc}); counts not recomputed", flush=True)
            _warned.append(True)
        return None
    conn = connect(settings)
    try:
        started = time.monotonic()
        recount_counts(conn)
        conn.commit()
        return time.monotonic() - started
    finally:
        conn.close()


def read_meta(settings: MySQLSettings) -> dict[str, str]:
    conn = connect(settings, database=False)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                           (settings.database, META))
            if not cursor.fetchone()["n"]:
                return {}
            cursor.execute(f"SELECT name, value FROM `{settings.database}`.{META}")
            return {row["name"]: row["value"] for row in cursor.fetchall()}
    finally:
        conn.close()


def write_meta(settings: MySQLSettings, values: dict[str, Any]) -> None:
    conn = connect(settings, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {META} (name VARCHAR(64) PRIMARY KEY, value TEXT)")
            for name, value in values.items():
                cursor.execute(f"REPLACE INTO {META} (name, value) VALUES (%s, %s)", (name, str(value)))
    finally:
        conn.close()


def load_large(settings: MySQLSettings, key: str, sizes: Sizes, workdir: Path) -> tuple[Marks, bool]:
    """The large database: reused when it was loaded completely with ``sizes``, else loaded."""
    quota_day = config_for(settings, key).quota_day
    meta = read_meta(settings)
    if meta.get("sizes") == sizes.key() and meta.get("state") == "complete":
        applied = apply_schema(settings)  # the migrations added since it was loaded
        if applied:
            print(f"  applied {', '.join(applied)} to the kept database", flush=True)
        marks = Marks(int(meta["tasks"]), int(meta["logs"]), int(meta["export_logs"]))
        cleanup(settings, marks)
        shift_days(settings, date.fromisoformat(meta["loaded_on"]), quota_day.today())
        recount(settings)
        return marks, False
    drop_database(settings)
    apply_schema(settings)
    ids = add_sandbox_accounts(settings, key, sizes.accounts)
    layout, clock = plan(sizes), Clock.of(quota_day)
    in_progress = [t.id for t in layout.tasks if t.status == "in_progress" and not t.is_parent]
    held = {task: ids[-1 - n] for n, task in enumerate(in_progress)}
    conn = connect_infile(settings)
    try:
        with local_infile_on(conn):
            load_history(conn, layout, clock, workdir, held)
        with conn.cursor() as cursor:
            for task, account in held.items():
                cursor.execute("UPDATE accounts SET status = 'ingesting', held_by_task_id = %s, last_used_at = %s"
                               " WHERE id = %s", (task, clock.now, account))
            settle_accounts(cursor, quota_day.today())
            cursor.execute("SELECT (SELECT MAX(id) FROM tasks), (SELECT MAX(id) FROM ingestion_logs),"
                           " (SELECT COALESCE(MAX(id), 0) FROM export_logs)")
            marks = Marks(*(int(v) for v in cursor.fetchone()))
            cursor.execute("ANALYZE TABLE influencers, ingestion_logs, export_logs, tasks, accounts")
            cursor.fetchall()
        conn.commit()
    finally:
        conn.close()
    started = time.monotonic()
    seconds = recount(settings)
    if seconds is not None:
        print(f"  recount after the load: {time.monotonic() - started:.1f} s", flush=True)
    write_meta(settings, {"sizes": sizes.key(), "state": "complete", "loaded_on": quota_day.today().isoformat(),
                          "tasks": marks.tasks, "logs": marks.logs, "export_logs": marks.export_logs})
    return marks, True


def settle_accounts(cursor: Any, today: date) -> None:
    """Each account's export count today as its published batches of today say."""
    cursor.execute("UPDATE accounts a SET daily_export_limit = %s, quota_date = %s, today_export_count ="
                   " (SELECT COALESCE(SUM(e.exported_count), 0) FROM export_logs e WHERE e.account_id = a.id"
                   "  AND e.quota_date = %s AND e.state = 'published')", (DAILY_EXPORT_LIMIT, today, today))


def shift_days(settings: MySQLSettings, loaded_on: date, today: date) -> None:
    """A kept database reused on a later day: its history moved so that 'today' has its share."""
    days = (today - loaded_on).days
    if days <= 0:
        return
    print(f"  moving the kept history {days} day(s) forward (loaded on {loaded_on})", flush=True)
    conn = connect(settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute("UPDATE ingestion_logs SET start_time = start_time + INTERVAL %s DAY,"
                           " end_time = end_time + INTERVAL %s DAY", (days, days))
            cursor.execute("UPDATE export_logs SET start_time = start_time + INTERVAL %s DAY,"
                           " end_time = end_time + INTERVAL %s DAY, quota_date = quota_date + INTERVAL %s DAY",
                           (days, days, days))
            settle_accounts(cursor, today)
        conn.commit()
    finally:
        conn.close()
    write_meta(settings, {"loaded_on": today.isoformat()})


def cleanup(settings: MySQLSettings, marks: Marks) -> None:
    """Take away what the timed steps added: crawled rows, their logs and tasks, export batches
    (their rows pending again), events, budgets; accounts back to their loaded state."""
    conn = connect(settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT id, domain, first_id, last_id FROM export_logs WHERE id > %s AND first_id IS NOT NULL",
                           (marks.export_logs,))
            for batch in cursor.fetchall():
                cursor.execute("UPDATE influencers SET status = 'pending_export', export_log_id = 0 WHERE domain = %s"
                               " AND status = 'exported' AND id BETWEEN %s AND %s AND export_log_id = %s",
                               (batch["domain"], batch["first_id"], batch["last_id"], batch["id"]))
            statements = (
                "DELETE FROM export_logs WHERE id > %(export_logs)s",
                "DELETE FROM influencers WHERE ingestion_log_id > %(logs)s",
                "DELETE FROM ingestion_logs WHERE id > %(logs)s",
                "DELETE FROM events",
                "DELETE FROM tasks WHERE id > %(tasks)s AND parent_id IS NOT NULL",
                "DELETE FROM tasks WHERE id > %(tasks)s",
                "DELETE FROM account_budgets",
                "UPDATE accounts SET status = 'idle', held_by_task_id = NULL, cooldown_until = NULL, status_reason = NULL"
                " WHERE held_by_task_id IS NULL OR held_by_task_id > %(tasks)s",
            )
            for statement in statements:
                cursor.execute(statement, vars(marks))
            settle_accounts(cursor, Config.from_env({}).quota_day.today())
        conn.commit()
    finally:
        conn.close()


def prepare_export_accounts(settings: MySQLSettings, rows: int) -> None:
    """Every usable account with a third of the export's rows as its quota, none used: the
    exporter relays over three accounts on either database."""
    conn = connect(settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute("UPDATE accounts SET daily_export_limit = %s, today_export_count = 0, quota_date = NULL"
                           " WHERE status <> 'disabled'", (math.ceil(rows / 3),))
        conn.commit()
    finally:
        conn.close()
# -- a private server ----------------------------------------------------------------------


class PrivateServer:
    """``mariadbd`` on a free port in a temporary data directory, with the buffer pool asked for;
    stopped and removed by ``stop``."""

    def __init__(self, base: Path, buffer_pool: str) -> None:
        if shutil.which("mariadbd") is None or shutil.which("mariadb-install-db") is None:
            raise SystemExit("bench.growth: --server private needs MariaDB's server (mariadbd, mariadb-install-db)")
        self.base, self.buffer_pool = base, buffer_pool
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mysql://root:@127.0.0.1:{self.port}/influencers_growth"

    def start(self) -> None:
        data = self.base / "data"
        subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={data}",
                        "--auth-root-authentication-method=normal"], check=True, capture_output=True, timeout=180)
        log = self.base / "err.log"
        self.process = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--user=root", f"--datadir={data}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.base / 's.sock'}", f"--pid-file={self.base / 'p.pid'}",
             f"--log-error={log}", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
             f"--innodb-buffer-pool-size={self.buffer_pool}", "--local-infile=1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=REPO_ROOT)
        deadline = time.monotonic() + 60
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", connect_timeout=1).close()
                return
            except pymysql.err.MySQLError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mariadbd did not start: {log.read_text(errors='replace')[-2000:]}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None
        shutil.rmtree(self.base / "data", ignore_errors=True)
