"""A worker process's identity for claims, kept alive by a named lock on a connection of its own.

The server releases `GET_LOCK(<worker id>)` the moment that connection drops, so the claims of a
SIGKILLed worker are recoverable at once (`IS_FREE_LOCK` in `TaskScheduler.recover`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
import time

from pymysql.connections import Connection

from influencers.core.config import MySQLSettings
from influencers.core.db import connect
from influencers.core.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)


class Worker:
    """A process's identity for claims, kept alive by a named lock on its own connection."""

    def __init__(self, worker_id: str, mysql: MySQLSettings, conn: Connection, *, check_every: float = 0.0) -> None:
        self.worker_id = worker_id
        self.check_every = check_every
        self._mysql = mysql
        self._conn = conn
        self._checked_at: float | None = None

    @classmethod
    def start(cls, mysql: MySQLSettings, name: str = "worker", *, check_every: float = 0.0) -> Worker:
        """``check_every``: seconds `ensure_alive` trusts its last check (0: it pings every time)."""
        host = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:20]
        worker_id = f"{name[:16]}:{host}:{os.getpid()}:{secrets.token_hex(4)}"[:64]
        conn = connect(mysql, autocommit=True)
        worker = cls(worker_id, mysql, conn, check_every=check_every)
        worker._acquire()
        return worker

    def _acquire(self) -> None:
        with self._conn.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0) AS held", (self.worker_id,))
            if cursor.fetchone()["held"] != 1:
                raise DatabaseUnavailable(self._mysql.host, self._mysql.port, "could not take the worker lock")

    def ensure_alive(self) -> None:
        """Re-take the liveness lock if the server dropped our connection (restart, idle timeout).

        Claims made before the drop may already have been recovered by others; the fence in
        `check_claim` turns any late write into ClaimLost, and so it does for a claim made in the
        ``check_every`` seconds a dropped lock can go unnoticed.
        """
        now = time.monotonic()
        if self._checked_at is not None and now - self._checked_at < self.check_every:
            return
        try:
            self._conn.ping(reconnect=False)
        except Exception:  # noqa: BLE001 - any failure means the connection is gone
            self._conn = connect(self._mysql, autocommit=True)
            self._acquire()
            logger.warning("worker %s reconnected its liveness lock", self.worker_id)
        self._checked_at = now

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection is fine
            self._conn.close()
