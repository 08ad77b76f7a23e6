"""`scrapy crawl` that exits non-zero when the crawl could not do its job.

Scrapy's own command exits 1 only when the crawler fails to start; a spider that closes itself
because of a bad argument, setting or key (`IngestionService`: reason ``cannot_start``,
``secret_key``) still exits 0, and a script or supervisor sees success. The service records the
status it wants in the stats (``EXIT_STATUS_STAT``); this command returns it.
"""

from __future__ import annotations

import argparse
from typing import Any

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.crawler import Crawler

from influencers.extensions.runs import EXIT_STATUS_STAT


class Command(ScrapyCrawlCommand):
    _crawler: Crawler | None = None

    def _create_crawler(self, spidercls: Any) -> Crawler:
        self._crawler = super()._create_crawler(spidercls)
        return self._crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        super().run(args, opts)
        status = self._crawler.stats.get_value(EXIT_STATUS_STAT) if self._crawler is not None else None
        if status and not self.exitcode:
            self.exitcode = int(status)
