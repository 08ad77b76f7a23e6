"""Handing each run's pages to Scrapy's engine, at its account's pace.

Without paced accounts a run's whole window of pages goes at once. With them (the account
middleware's `Turns`) a run's pages go one at a time, each when its account's turn is due: a
request that waited for its turn inside the downloader would hold one of its slots, and with
many accounts those slots, not the platform, would set the pace. The downloader's room follows
the runs for the same reason: each run's pages in flight, and a login or retry each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from influencers.extensions.interface import Turns
from influencers.extensions.runs import META_TURN
from influencers.sites.base import AdapterError

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from influencers.ingest.run import TaskRun


#: Seconds before its account's turn a page is scheduled: its way through the engine to the
#: account middleware, which sends it at the turn, is not added to every interval.
LEAD = 0.1


class PageFeed:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.turns: Turns | None = None  # the accounts' turns, when the account middleware paces them
        self._calls: dict[int, Any] = {}  # task id -> the call that feeds it when its account is due

    def feed(self, run: TaskRun, build: Callable[[TaskRun, int], Request],
             failed: Callable[[TaskRun, int, AdapterError], None], due: Callable[[TaskRun], None]) -> bool:
        """Request ``run``'s next pages (``build`` makes each request; ``failed`` when the
        adapter cannot); ``due(run)`` is called when its account's next turn comes. False when
        the run is stopping or finishing (its end takes care of its pages)."""
        engine, turns = self.crawler.engine, self.turns
        while True:
            account_id = run.claim.account_id
            if turns is not None and (wait := turns.due_in(account_id) - LEAD) > 0:
                self._later(run, wait, due)
                return True
            pages = run.next_pages(1 if turns is not None else None)
            if pages is None:
                return False
            for page in pages:
                try:
                    request = build(run, page)
                except AdapterError as exc:
                    failed(run, page, exc)
                    return True
                if turns is not None:
                    request.meta[META_TURN] = (account_id, *turns.reserve(account_id))
                engine.crawl(request)
            if turns is None or not pages:
                return True

    def _later(self, run: TaskRun, wait: float, due: Callable[[TaskRun], None]) -> None:
        if run.task_id in self._calls:
            return
        from twisted.internet import reactor

        def call() -> None:
            del self._calls[run.task_id]
            due(run)

        self._calls[run.task_id] = reactor.callLater(wait, call)

    def fit(self, runs: int, pages_in_flight: int) -> None:
        """Room in the downloader for ``runs`` runs (at least CONCURRENT_REQUESTS)."""
        downloader = getattr(self.crawler.engine, "downloader", None)
        if downloader is not None:
            downloader.total_concurrency = max(self.crawler.settings.getint("CONCURRENT_REQUESTS"),
                                               runs * (pages_in_flight + 1))

    def stop(self) -> None:
        for call in self._calls.values():
            if call.active():
                call.cancel()
        self._calls.clear()
