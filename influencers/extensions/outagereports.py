"""An outage a crawl sees, written where the alerter reads it (`influencers.core.outages`).

The platform middleware knows in memory when the platform stops answering; the alerter is
another process. `OutageReports` writes the outage (and each failed probe's refresh, and its end)
on a database thread of its own, fire and forget: the reactor never waits for it, and a write
that fails (MySQL away too) is logged at DEBUG and made good by the next probe's.
"""

from __future__ import annotations

import logging
import os
import socket
from concurrent.futures import Future

from influencers.core import outages
from influencers.core.config import MySQLSettings
from influencers.core.outage import SharedOutage
from influencers.extensions.dbthread import DatabaseThread

logger = logging.getLogger(__name__)


class OutageReports:
    """``down(problem)`` on every failed try while ``source`` is unreachable, ``up()`` when it
    answers, `close` when the crawl ends (its report ends with it: nobody refreshes it any more)."""

    def __init__(self, mysql: MySQLSettings, source: str, *, outage: SharedOutage | None = None) -> None:
        self.source = source
        self.reporter = f"crawl:{socket.gethostname()[:60]}:{os.getpid()}"
        self._mysql = mysql
        self._outage = outage
        self._db: DatabaseThread | None = None  # started by the first outage: most crawls never need it
        self._reported = False

    def down(self, problem: str) -> None:
        self._reported = True
        self._submit(outages.report, self.source, self.reporter, problem)

    def up(self) -> None:
        if self._reported:
            self._reported = False
            self._submit(outages.clear, self.source, self.reporter)

    def close(self) -> None:
        self.up()
        if self._db is not None:
            self._db.close()

    def _submit(self, fn: object, *args: str) -> None:
        if self._db is None:
            self._db = DatabaseThread(self._mysql, "outage-reports", outage=self._outage)
        self._db.submit(fn, *args).add_done_callback(_log_failure)  # type: ignore[arg-type]


def _log_failure(future: Future[None]) -> None:
    error = future.exception()
    if error is not None:
        logger.debug("outage record not written: %s", error)
