"""A one-line progress display for a crawl in a terminal: pages committed, influencers, rate.

Reads the stats the pipeline and the ingestion service keep (`pipeline/pages`,
`pipeline/items`, `ingest/pages_fetched`, `ingest/tasks_completed`) once a second and rewrites one
line on stderr. Quiet when stderr is not a terminal (Scrapyd, cron, logs), so log files stay clean.

Settings (defaults in influencers/settings.py): ``PROGRESS_ENABLED`` (None: on when stderr is a
TTY), ``PROGRESS_INTERVAL`` (seconds).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from influencers.extensions.config import with_project_defaults


class CrawlProgress:
    def __init__(self, stats: Any, interval: float, stream: TextIO) -> None:
        self.stats = stats
        self.interval = interval
        self.stream = stream
        self.started = time.monotonic()
        self._loop: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        enabled = crawler.settings.get("PROGRESS_ENABLED")
        stream = sys.stderr
        if not (stream.isatty() if enabled is None else crawler.settings.getbool("PROGRESS_ENABLED")):
            raise NotConfigured  # no message: Scrapy would log it as a warning on every quiet run
        extension = cls(crawler.stats, with_project_defaults(crawler.settings).getfloat("PROGRESS_INTERVAL"), stream)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self, spider: Any) -> None:
        from twisted.internet import task  # not at import time: the project installs the asyncio reactor

        self.started = time.monotonic()
        self._loop = task.LoopingCall(self.show)
        self._loop.start(self.interval, now=False)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.show()
        self.stream.write("\n")
        self.stream.flush()

    def line(self) -> str:
        get = self.stats.get_value
        pages, items = get("pipeline/pages", 0), get("pipeline/items", 0)
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (f"crawl: {pages} pages committed ({get('ingest/pages_fetched', 0)} fetched), {items} influencers,"
                f" {pages / elapsed:.1f} pages/s, {get('ingest/tasks_completed', 0)} tasks done")

    def show(self) -> None:
        self.stream.write("\r\x1b[2K" + self.line())
        self.stream.flush()
