"""The `influencers` spider: crawls claimed ingestion tasks page by page through a site adapter.

    scrapy crawl influencers -a domain=游戏 [-a pages=50] [-a render=json|html|js]
    scrapy crawl influencers -a task_id=12
    scrapy crawl influencers [-a once=1]          # service mode: claim pending tasks until stopped

Which pages, which account and when a task ends are decided by the ingestion service
(`influencers.extensions.ingestion`), which the spider reaches through its side of
`influencers.extensions.interface` (`PageDesk`); the spider hands it `page_request` at start.
This class turns a page into a request and a response into one `InfluencerPage` item: the
page's rows and what its ingestion log records. The account middleware has classified the
response already (``META_VERDICT``); a response that comes without a verdict is classified here.
A page that comes back malformed or with a server error is fetched again (Scrapy's retry budget,
``RETRY_TIMES``); when the budget is spent the page is recorded as failed on its task. While
the platform itself is down (`influencers.middlewares.platform`) its requests are parked, not
failed, and come back when it answers again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.http import Response
from scrapy.settings import BaseSettings
from twisted.python.failure import Failure

from influencers.core.errors import InfluencersError
from influencers.core.profile import profiles_of
from influencers.extensions.config import site_adapter_path
from influencers.extensions.ingestion import IngestionService
from influencers.extensions.interface import PageDesk
from influencers.extensions.runs import (
    EXIT_CONFIGURATION,
    EXIT_STATUS_STAT,
    EXIT_UNEXPECTED,
    META_ACCOUNT,
    META_PAGE,
    META_STARTED,
    META_TASK,
    META_VERDICT,
)
from influencers.ingest.reasons import CloseReason
from influencers.ingest.run import StopAction, TaskRun
from influencers.items import InfluencerPage
from influencers.middlewares.platform import RequestParked
from influencers.sites.base import AdapterError, MalformedPage, Outcome, Verdict, adapter_class, adapter_code

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class _NoTraceback(logging.Filter):
    """scrapy-playwright logs every page the browser could not load with its traceback; the
    message already says what happened (net::ERR_CONNECTION_REFUSED, a timeout), and retries and
    the platform middleware deal with it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = record.exc_text = None
        return True


def _one_line_browser_failures() -> None:
    browser_log = logging.getLogger("scrapy-playwright")
    if not any(isinstance(f, _NoTraceback) for f in browser_log.filters):
        browser_log.addFilter(_NoTraceback())


def _add_adapter_middlewares(settings: Any) -> None:
    """The site adapter's own downloader middlewares, added to DOWNLOADER_MIDDLEWARES (a bad
    SITE_ADAPTER is reported once, by the ingestion service)."""
    try:
        extra = adapter_class(site_adapter_path(settings)).downloader_middlewares
    except Exception:  # noqa: BLE001
        return
    if extra:
        settings.set("DOWNLOADER_MIDDLEWARES", {**settings.getdict("DOWNLOADER_MIDDLEWARES"), **extra},
                     priority=settings.getpriority("DOWNLOADER_MIDDLEWARES") or "spider")


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class InfluencersSpider(scrapy.Spider):
    name = "influencers"

    def __init__(self, domain: str | None = None, pages: str | None = None, task_id: str | None = None,
                 once: str | None = None, render: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.domain = domain.strip() if domain else None
        self.argument_error: str | None = None
        self.pages = self._positive("pages", pages)
        self.task_id = self._positive("task_id", task_id)
        self.once = _flag(once) if once is not None else False
        self.render = render.strip() if render else None
        self.service: PageDesk | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> InfluencersSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        _add_adapter_middlewares(crawler.settings)  # settings freeze after this returns
        if spider.effective_render(crawler.settings) == "js":
            crawler.settings.set("DOWNLOAD_HANDLERS", crawler.settings.getdict("SITE_JS_DOWNLOAD_HANDLERS"),
                                 priority="spider")
            _one_line_browser_failures()
        return spider

    def effective_render(self, settings: BaseSettings) -> str | None:
        """-a render=, else SITE_RENDER, else the adapter's default (None if it cannot be loaded:
        the ingestion service reports that)."""
        render = self.render or settings.get("SITE_RENDER")
        if render:
            return render
        try:
            return adapter_class(site_adapter_path(settings)).default_render
        except Exception:  # noqa: BLE001 - a bad SITE_ADAPTER is reported once, by the service
            return None

    def _positive(self, name: str, value: str | None) -> int | None:
        if value in (None, ""):
            return None
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            self.argument_error = f"-a {name}= must be a whole number of 1 or more, not {value!r}"
            return None
        return number

    async def start(self) -> AsyncIterator[Any]:
        self.service = IngestionService.of(self.crawler)
        try:
            if self.argument_error:
                raise ValueError(self.argument_error)
            if self.render and self.service.adapter is not None:
                self.service.adapter.check_render(self.render)
            await self.service.start(self.page_request, domain=self.domain, pages=self.pages, task_id=self.task_id,
                                     once=self.once, render=self.render)
        except (InfluencersError, ValueError) as exc:
            logger.error("cannot start the crawl: %s", exc)
            self.crawler.stats.set_value(EXIT_STATUS_STAT, EXIT_CONFIGURATION)
            raise CloseSpider(CloseReason.CANNOT_START.value) from None
        except Exception:
            # A bug, not an operator's mistake: the traceback is wanted, and the crawl must end
            # (the service keeps an idle spider open while it works).
            logger.exception("cannot start the crawl: unexpected error")
            self.crawler.stats.set_value(EXIT_STATUS_STAT, EXIT_UNEXPECTED)
            raise CloseSpider(CloseReason.CANNOT_START.value) from None
        return
        yield  # an async generator that yields nothing: requests come from the service

    # -- requests -----------------------------------------------------------------------------

    def page_request(self, run: TaskRun, page: int) -> scrapy.Request:
        """The adapter's request for ``page`` (with its cursor on a cursor platform); an
        exception of the adapter's comes out as an `AdapterError`."""
        adapter = self.service.adapter
        with adapter_code("listing_request"):
            if adapter.pagination == "cursor":
                request = adapter.listing_request(run.domain, page, run.render, cursor=run.plan.cursor_for(page))
            else:
                request = adapter.listing_request(run.domain, page, run.render)
        meta = {
            **request.meta,
            META_TASK: run.task_id,
            META_PAGE: page,
            META_STARTED: utcnow(),
            "handle_httpstatus_all": True,  # every status reaches parse_page, which decides
            "dont_redirect": True,  # a redirect to the login form must be seen, not followed
        }
        return request.replace(callback=self.parse_page, errback=self.page_error, meta=meta, dont_filter=True)

    # -- responses ----------------------------------------------------------------------------

    def parse_page(self, response: Response) -> Iterator[Any]:
        service = self.service
        meta = response.meta
        task_id, page = meta[META_TASK], meta[META_PAGE]
        verdict: Verdict | None = meta.pop(META_VERDICT, None)  # taken, so a retry does not carry it
        run = service.run_for(task_id)
        if run is None or run.stopping:
            if run is not None:
                service.page_dropped(task_id, page, "task stopping")
            return
        adapter = service.adapter
        try:
            if verdict is None:  # the response did not pass the account middleware
                with adapter_code("classify"):
                    verdict = adapter.classify(response)
            if verdict.outcome is Outcome.UNKNOWN_DOMAIN:
                service.page_dropped(task_id, page, verdict.reason)
                service.stop_task(task_id, StopAction.FAIL,
                                  f"the platform has no listing for domain {run.domain!r} ({verdict.reason})")
                return
            if verdict.outcome is Outcome.CURSOR_EXPIRED and adapter.pagination == "cursor":
                service.cursor_expired(task_id, page, verdict.reason)
                return
            if not verdict.ok:
                yield from self._retry_or_fail(response, verdict.outcome.value, verdict.reason)
                return
            with adapter_code("parse_listing"):
                listing = adapter.parse_listing(response, page)
            if adapter.pagination == "cursor" and listing.has_more and not listing.next_cursor:
                raise MalformedPage("the page says more follows but gives no next cursor")
        except MalformedPage as exc:
            yield from self._retry_or_fail(response, Outcome.MALFORMED.value, f"malformed: {exc}")
            return
        except AdapterError as exc:
            service.adapter_failed(task_id, page, exc)
            return
        profiles, failed = profiles_of(listing.rows, adapter.profile)
        if failed:
            self.crawler.stats.inc_value("ingest/profile_errors", failed)
            logger.warning("task %s page %s: the adapter's profile() raised on %d row(s); they are stored"
                           " without typed fields", task_id, page, failed, extra={"task_id": task_id})
        yield InfluencerPage(
            task_id=task_id,
            page_number=page,
            domain=run.domain,
            account_id=meta.get(META_ACCOUNT),
            source_url=response.url,
            started_at=meta.get(META_STARTED) or utcnow(),
            finished_at=utcnow(),
            rows=listing.rows,
            profiles=profiles,
        )
        self.crawler.stats.inc_value("ingest/pages_fetched")
        service.page_fetched(task_id, page, has_more=listing.has_more, total_pages=listing.total_pages,
                             next_cursor=listing.next_cursor)

    def _retry_or_fail(self, response: Response, short: str, reason: str) -> Iterator[scrapy.Request]:
        request = response.request
        retry = get_retry_request(request, spider=self, reason=short)
        if retry is not None:
            retry.meta.pop("download_latency", None)
            yield retry
            return
        meta = response.meta
        self.service.page_failed(meta[META_TASK], meta[META_PAGE], f"{reason} (after {meta.get('retry_times', 0) + 1} tries)")

    def page_error(self, failure: Failure) -> None:
        request = failure.request
        task_id, page = request.meta.get(META_TASK), request.meta.get(META_PAGE)
        if task_id is None:
            return
        if failure.check(RequestParked):
            return  # the platform is down: the platform middleware sends it again when it is back
        if failure.check(AdapterError):  # raised by the adapter while the middleware used it
            self.service.adapter_failed(task_id, page, failure.value)
            return
        if failure.check(IgnoreRequest):
            self.service.page_dropped(task_id, page, f"request dropped: {failure.value}")
            return
        self.service.page_failed(task_id, page, f"{failure.type.__name__}: {failure.value}"[:300])
