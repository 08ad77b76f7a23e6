"""One database connection on one thread of its own, for Scrapy components.

pymysql blocks, and nothing may block the reactor. A `DatabaseThread` owns one connection that
only its single worker thread touches; `await db.run(fn, *args)` runs ``fn(conn, *args)`` there
and resumes the caller on the reactor thread with the result. Calls run one at a time, in order.

The connection is pinged (and reconnected) only before a call that follows a quiet spell of
``PING_AFTER_IDLE`` seconds, or when pymysql has closed it after an error: a ping before every call
is a round trip that waits for the GIL behind a busy reactor, and a connection that broke in a
busy spell fails its call, which every caller retries.

The threads of one crawl share a `SharedOutage`: while the server is away a call fails at once
with `ConnectionLost` until the next try is due, so the log says "gone" and "back" once, however
many threads and callers keep trying, and nobody hammers a restarting server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from pymysql.connections import Connection
from scrapy.utils.asyncio import is_asyncio_available

from influencers.core.config import MySQLSettings
from influencers.core.db import connect, ensure_connected
from influencers.core.errors import ConnectionLost, DatabaseUnavailable
from influencers.core.outage import SharedOutage

logger = logging.getLogger(__name__)

T = TypeVar("T")

PING_AFTER_IDLE = 5.0  # seconds


class DatabaseThread:
    def __init__(self, mysql: MySQLSettings, name: str, *, outage: SharedOutage | None = None) -> None:
        self._mysql = mysql
        self.outage = outage
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: Connection | None = None
        self._used_at = 0.0
        self.closed = False

    @property
    def conn(self) -> Connection:
        """The connection, for code already running on this thread."""
        if self._conn is None:
            self._conn = connect(self._mysql)
        return self._conn

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        outage = self.outage
        if outage is None:
            return self._call_now(fn, args)
        wait = outage.wait_left()
        if wait > 0:
            raise ConnectionLost(f"MySQL is unreachable; the next try is in {wait:.1f}s")
        try:
            result = self._call_now(fn, args)
        except DatabaseUnavailable as exc:
            if exc.transient and not self._reconnected():
                outage.failed(exc)
            raise
        except Exception:
            outage.recovered()  # the server answered (with an error of another kind)
            raise
        outage.recovered()
        return result

    def _reconnected(self) -> bool:
        """After a lost connection: True if a new one could be made at once. The call failed on
        a connection that broke earlier (the server restarted since), not on an outage; the
        caller tries again as after any failure."""
        if self._conn is None:
            return False
        try:
            ensure_connected(self._conn)
        except DatabaseUnavailable:
            return False
        return True

    def _call_now(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._conn is not None and (not self._conn.open or time.monotonic() - self._used_at > PING_AFTER_IDLE):
            ensure_connected(self._conn)
        try:
            return fn(self.conn, *args)
        finally:
            self._used_at = time.monotonic()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._executor.submit(self._call, fn, args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the database thread and return its result."""
        future = self.submit(fn, *args)
        if is_asyncio_available():
            return await asyncio.wrap_future(future)
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred

        deferred: Deferred[T] = Deferred()

        def done(f: Future[T]) -> None:
            error = f.exception()
            if error is not None:
                reactor.callFromThread(deferred.errback, error)
            else:
                reactor.callFromThread(deferred.callback, f.result())

        future.add_done_callback(done)
        return await deferred

    def close(self) -> None:
        """Close the connection on its thread and stop the thread (waits for queued calls)."""
        if self.closed:
            return
        self.closed = True

        def close_conn() -> None:
            if self._conn is not None:
                try:
                    self._conn.close()
                except Exception as exc:  # noqa: BLE001 - closing a dead connection is fine
                    logger.debug("closing the database connection: %s", exc)
                self._conn = None

        self._executor.submit(close_conn)
        self._executor.shutdown(wait=True)
