"""Platform outages: a platform that is down is waited for, not blamed on pages or accounts.

A refused connection, a timeout or a 5xx on one page is that page's problem: Scrapy's retries
(``RETRY_TIMES``) fetch it again, and a page that keeps failing ends as a failed page. When the
platform itself is gone (restarted, unreachable, answering 5xx to everything for minutes) the same
rule would spend every page's retries in a second, fail the pages, pause the task and count an
attempt against it; the account middleware would cool down accounts whose logins could not
connect. This middleware tells the two apart and waits out the second:

* every response counts as the platform answering (``succeeded``), except statuses in
  ``PLATFORM_OUTAGE_HTTP_CODES``; those and the transport errors Scrapy retries
  (``RETRY_EXCEPTIONS``) count as failures;
* after ``PLATFORM_OUTAGE_FAILURES`` failures in a row with no answer between, or a failure that
  spends a request's last retry, the platform is *checked*: one probe (the adapter's login form,
  a page every platform serves without an account) asks whether it answers at all. Failing
  requests wait for that verdict (a probe's time at most). If the probe is answered, the platform
  is up and the failure is the page's: it goes on to Scrapy's retries as before;
* if the probe fails too, an outage begins (`influencers.core.outage.Outage`: one WARNING), and
  until a probe or a request is answered (one INFO, with its length) no request goes out. Page
  requests are parked here, out of the downloader (their errback sees `RequestParked` and lets
  them be), and sent again, retries unspent, when the platform is back; a login that meets the
  outage gets `PlatformUnavailable` and waits for it without counting a failed attempt. Probes
  go out with a capped, doubling back-off (``PLATFORM_OUTAGE_FIRST_DELAY`` up to
  ``PLATFORM_OUTAGE_MAX_DELAY``), each within ``PLATFORM_PROBE_TIMEOUT``.

Claims, leases and heartbeats are database work and go on meanwhile, so the task stays held by
this crawl and its ``max_attempts`` are not touched. The outage is also written for the alerter
(`influencers.extensions.outagereports`), refreshed by each failed probe, gone when it ends.

Stats: ``platform/failures``, ``platform/checks``, ``platform/probes``, ``platform/outages``,
``platform/requests_parked``. Settings (`config.PlatformSettings`; defaults in
influencers/settings.py): PLATFORM_OUTAGE_ENABLED, PLATFORM_OUTAGE_FAILURES,
PLATFORM_OUTAGE_HTTP_CODES, PLATFORM_OUTAGE_FIRST_DELAY, PLATFORM_OUTAGE_MAX_DELAY,
PLATFORM_PROBE_TIMEOUT; Scrapy's RETRY_TIMES and RETRY_EXCEPTIONS.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.utils.asyncio import CallLaterResult, call_later
from scrapy.utils.defer import _schedule_coro

from influencers.core.errors import ConfigError
from influencers.core.outage import Outage
from influencers.core.redact import redact_url
from influencers.extensions.config import PlatformSettings, transport_errors
from influencers.extensions.ingestion import IngestionService
from influencers.extensions.outagereports import OutageReports
from influencers.extensions.runs import META_LOGIN, Gate

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from influencers.sites.base import SiteAdapter

logger = logging.getLogger(__name__)

#: Request.meta key of a probe: the platform middleware judges it itself, nobody else touches it.
META_PROBE = "influencers_probe"

#: A probe's answer: None when the platform answered, else what went wrong.
Probe = Callable[[], Awaitable[str | None]]


class PlatformUnavailable(IgnoreRequest):
    """The platform is unreachable (an outage is on): the request was not sent."""

    def __init__(self, back: Gate) -> None:
        super().__init__(self.__doc__)
        self.back = back

    async def wait(self) -> None:
        """Until the platform answers again."""
        await self.back.wait()


class RequestParked(PlatformUnavailable):
    """The platform is unreachable: the request waits, and is sent again when the platform answers."""


class PlatformWatch:
    """Whether the platform answers: up, being checked (one probe under way), or down.

    No Scrapy here but `Request` as an opaque value: ``probe`` asks the platform, ``resend``
    puts a parked request back into the crawl, ``sleep`` waits (all given by the middleware;
    fakes in the unit tests)."""

    def __init__(self, outage: Outage, probe: Probe, resend: Callable[[Request], None],
                 sleep: Callable[[float], Awaitable[None]], *, failures: int, stats: Any = None,
                 reports: OutageReports | None = None) -> None:
        self.outage = outage
        self.reports = reports  # the outage, written for the alerter
        self.threshold = failures
        self.stats = stats
        self._probe = probe
        self._resend = resend
        self._sleep = sleep
        self.streak = 0  # failures in a row, with no answer between
        self._verdict: Gate | None = None  # a check under way: opens when its first probe is answered or not
        self._back: Gate | None = None  # an outage under way: opens when it ends
        self._parked: list[Request] = []
        self.closed = False

    @property
    def down(self) -> bool:
        return self._back is not None

    def unavailable(self, request: Request, *, park: bool) -> PlatformUnavailable:
        """The exception for a request that meets the outage: parked (to be sent again when the
        platform is back), or handed back to its sender, who waits itself."""
        assert self._back is not None
        if not park:
            return PlatformUnavailable(self._back)
        self._parked.append(request)
        self._inc("platform/requests_parked")
        return RequestParked(self._back)

    def succeeded(self) -> None:
        """The platform answered: the failure streak ends, and an outage with it."""
        self.streak = 0
        if self._back is None:
            return
        self.outage.recovered()
        if self.reports is not None:
            self.reports.up()
        back, self._back = self._back, None
        parked, self._parked = self._parked, []
        back.open()
        if not self.closed:
            for request in parked:
                self._resend(request)

    async def failed(self, error: str, *, last_try: bool) -> bool:
        """A request found no platform (``error``). True: the platform is down, the request must
        wait for it; False: it answers, the failure is the request's own (retry as usual).
        Waits for the check's verdict when one is under way or this failure starts one."""
        self.streak += 1
        self._inc("platform/failures")
        logger.debug("platform request failed (%d in a row): %s", self.streak, error)
        if self._back is not None:
            return True
        if self._verdict is None:
            if self.streak < self.threshold and not last_try:
                return False
            self._verdict = Gate()
            self._inc("platform/checks")
            _schedule_coro(self._check(self._verdict))
        await self._verdict.wait()
        return self._back is not None

    async def _check(self, verdict: Gate) -> None:
        """Probe until the platform answers; the first failed probe starts the outage."""
        try:
            while not self.closed:
                self._inc("platform/probes")
                problem = await self._probe()
                if problem is None:
                    self.succeeded()
                    return
                if self._back is None:
                    self._back = Gate()
                    self._inc("platform/outages")
                delay = self.outage.failed(problem)
                if self.reports is not None:
                    self.reports.down(problem)
                verdict.open()
                await self._sleep(delay)
                if self._back is None:
                    return  # a request was answered meanwhile: the outage is over
        finally:
            if self._verdict is verdict:
                self._verdict = None
            verdict.open()

    def close(self) -> None:
        """The crawl is closing: parked requests stay where they are, probing stops."""
        self.closed = True
        self._parked.clear()

    def _inc(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)


class PlatformMiddleware:
    def __init__(self, crawler: Crawler, options: PlatformSettings, adapter: SiteAdapter | None, *,
                 retry_times: int, transport_errors: tuple[type[BaseException], ...],
                 reports: OutageReports | None = None) -> None:
        self.crawler = crawler
        self.options = options
        self.adapter = adapter
        self.retry_times = retry_times
        self.transport_errors = transport_errors
        self._sleeping: tuple[CallLaterResult, Gate] | None = None
        what = f"platform {redact_url(adapter.base_url)}" if adapter is not None else "the platform"
        self.watch = PlatformWatch(Outage(what, logger, first=options.first_delay, cap=options.max_delay),
                                   self._probe, self._resend, self._sleep, failures=options.failures,
                                   stats=crawler.stats, reports=reports)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PlatformMiddleware:
        service = IngestionService.of(crawler)
        try:
            options = PlatformSettings.from_settings(crawler.settings)
        except ConfigError as exc:
            service.startup_failed(exc)  # one line when the spider starts, not a traceback now
            raise NotConfigured from None
        if not options.enabled:
            raise NotConfigured("PLATFORM_OUTAGE_ENABLED is off")
        reports = None
        if service.config is not None and service.adapter is not None:
            reports = OutageReports(service.config.mysql, f"platform {redact_url(service.adapter.base_url)}",
                                    outage=service.db_outage)
        middleware = cls(crawler, options, service.adapter, retry_times=crawler.settings.getint("RETRY_TIMES"),
                         transport_errors=transport_errors(crawler.settings), reports=reports)
        crawler.signals.connect(middleware._closed, signal=signals.spider_closed)
        return middleware

    # -- the downloader's hooks ---------------------------------------------------------------

    def process_request(self, request: Request) -> None:
        if self.watch.down and not request.meta.get(META_PROBE):
            raise self.watch.unavailable(self._again(request), park=self._parkable(request))

    async def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get(META_PROBE):
            return response
        if response.status not in self.options.http_codes:
            self.watch.succeeded()
            return response
        if await self.watch.failed(f"HTTP {response.status}", last_try=self._last_try(request)):
            raise self.watch.unavailable(self._again(request), park=self._parkable(request))
        return response

    async def process_exception(self, request: Request, exception: Exception) -> None:
        if request.meta.get(META_PROBE) or not isinstance(exception, self.transport_errors) \
                or isinstance(exception, IgnoreRequest):
            return None
        if await self.watch.failed(_describe(exception), last_try=self._last_try(request)):
            raise self.watch.unavailable(self._again(request), park=self._parkable(request))
        return None

    def _last_try(self, request: Request) -> bool:
        """This failure spends the request's last retry (or it has none)."""
        meta = request.meta
        if meta.get("dont_retry"):
            return True
        return meta.get("retry_times", 0) >= meta.get("max_retry_times", self.retry_times)

    @staticmethod
    def _parkable(request: Request) -> bool:
        """Crawl requests are parked here; a login is downloaded by the account middleware,
        which waits for the platform itself."""
        return request.meta.get(META_LOGIN) is None

    @staticmethod
    def _again(request: Request) -> Request:
        """The request to send when the platform is back: the same, its retries unspent."""
        return request.replace(dont_filter=True)

    # -- the watch's tools --------------------------------------------------------------------

    async def _probe(self) -> str | None:
        engine = self.crawler.engine
        if engine is None or not self.crawler.crawling:
            return "the crawl is closing"
        request = self.adapter.login_form_request() if self.adapter is not None else None
        if request is None:
            request = Request(self.adapter.url("/") if self.adapter is not None else "/")
        request = request.replace(dont_filter=True, meta={
            **request.meta, META_PROBE: True, "dont_retry": True, "dont_redirect": True,
            "handle_httpstatus_all": True, "dont_merge_cookies": True,
            "download_timeout": self.options.probe_timeout, "download_slot": "platform-probe",
        })
        try:
            response = await engine.download_async(request)
        except Exception as exc:  # noqa: BLE001 - whatever kept the probe from an answer
            return _describe(exc)
        if response.status in self.options.http_codes:
            return f"HTTP {response.status}"
        return None

    def _resend(self, request: Request) -> None:
        engine = self.crawler.engine
        if engine is not None and self.crawler.crawling:
            engine.crawl(request)

    async def _sleep(self, seconds: float) -> None:
        """A back-off wait that the crawl's close cuts short."""
        wake = Gate()
        self._sleeping = (call_later(seconds, wake.open), wake)
        try:
            await wake.wait()
        finally:
            self._sleeping = None

    def _closed(self) -> None:
        self.watch.close()
        if self.watch.reports is not None:
            self.watch.reports.close()
        if self._sleeping is not None:
            call, wake = self._sleeping
            call.cancel()
            wake.open()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
