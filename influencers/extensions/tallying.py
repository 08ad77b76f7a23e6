"""Rate-limited and captcha responses per account, added to the database's tallies off the reactor.

``GET /metrics`` shows each account's 429s and captchas across every crawl process and restart
(`influencers.core.tallies`), so the crawl that meets them must put them in the database. They
change nothing else there, so there is no transaction to add them in: the account middleware
announces each such response (the `account_verdict` signal, as Scrapy's closespider extension
listens to signals instead of reaching into components), this extension counts them in memory
and adds them every ``TALLIES_FLUSH_INTERVAL`` seconds and when the spider closes, on a database
thread of its own (`DatabaseThread`: never on the reactor). The thread connects at the first
flush with something to add, so a crawl that meets no limit opens no connection.

A flush that fails keeps its counts for the next one, so nothing is lost while the process
lives: while MySQL is away the crawl's `SharedOutage` (shared with the ingestion service, which
logs the outage once) makes each try fail at once until the next one is due. At close the
flush is tried, as the service's own end-of-run writes are, for up to ``CLOSE_PATIENCE``
seconds; what still could not be added is named in one WARNING line. A commit whose answer was
lost with the connection is added again by the next flush: one 429 counted twice in such a rare
case is a better operating figure than a gap.

Settings (`config.TalliesSettings`; defaults in influencers/settings.py): TALLIES_FLUSH_INTERVAL.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import sleep

from influencers.core import tallies
from influencers.core.errors import ConfigError, DatabaseUnavailable
from influencers.extensions.config import TalliesSettings
from influencers.extensions.dbthread import DatabaseThread
from influencers.extensions.ingestion import IngestionService
from influencers.extensions.interface import account_verdict
from influencers.extensions.runs import Gate, every
from influencers.extensions.taskdb import CLOSE_PATIENCE, MIN_RETRY_PAUSE
from influencers.sites.base import Outcome

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

#: The verdicts counted, and the tally each goes to.
TALLIED = {Outcome.RATE_LIMITED: tallies.RATE_LIMITED, Outcome.CAPTCHA: tallies.CAPTCHAS}


class ResponseTallies:
    def __init__(self, connect: Any, interval: float) -> None:
        """``connect()`` gives the `DatabaseThread` to flush on (None: no database, count only)."""
        self.pending: Counter[tuple[str, str]] = Counter()
        self.interval = interval
        self._connect = connect
        self.db: DatabaseThread | None = None
        self._flushing: Gate | None = None
        self._loop: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResponseTallies:
        service = IngestionService.of(crawler)
        try:
            options = TalliesSettings.from_settings(crawler.settings)
        except ConfigError as exc:
            service.startup_failed(exc)  # one line when the spider starts, not a traceback now
            raise NotConfigured from None

        def connect() -> DatabaseThread | None:
            if service.config is None:  # the crawl does not start; the service says why
                return None
            return DatabaseThread(service.config.mysql, "tallies", outage=service.db_outage)

        extension = cls(connect, options.flush_interval)
        crawler.signals.connect(extension.counted, signal=account_verdict)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def counted(self, outcome: Outcome, account_id: int) -> None:
        """The account middleware's verdict on one of the account's responses."""
        tally = TALLIED.get(outcome)
        if tally is not None:
            self.pending[(tally, str(account_id))] += 1

    def spider_opened(self) -> None:
        self._loop = every(self.interval, self._tick)

    async def _tick(self) -> None:
        if self._flushing is None:  # the flush under way goes on to the rest
            await self.flush()

    async def flush(self) -> bool:
        """Add what was counted since the last flush; True when nothing is left to add."""
        while self._flushing is not None:
            await self._flushing.wait()
        if not self.pending:
            return True
        if self.db is None:
            self.db = self._connect()
            if self.db is None:
                return False
        batch, self.pending = self.pending, Counter()
        self._flushing = Gate()
        try:
            await self.db.run(tallies.record, dict(batch))
        except Exception as exc:  # noqa: BLE001 - kept for the next flush, whatever went wrong
            self.pending.update(batch)
            if not (isinstance(exc, DatabaseUnavailable) and exc.transient):  # an outage is logged once, by itself
                logger.warning("could not add %d rate-limited/captcha response(s) to the tallies (kept for the next"
                               " try): %s", sum(batch.values()), exc)
            return False
        finally:
            gate, self._flushing = self._flushing, None
            gate.open()
        return not self.pending

    async def spider_closed(self) -> None:
        if self._loop is not None and getattr(self._loop, "running", False):
            self._loop.stop()
        give_up_at = time.monotonic() + CLOSE_PATIENCE
        while not await self.flush():
            if self.db is None or time.monotonic() >= give_up_at:
                logger.warning("%d rate-limited/captcha response(s) could not be added to the tallies before the"
                               " crawl closed: %s", sum(self.pending.values()), dict(self.pending))
                break
            outage = self.db.outage
            await sleep(max(MIN_RETRY_PAUSE, outage.wait_left() if outage is not None else 0.0))
        if self.db is not None:
            self.db.close()
