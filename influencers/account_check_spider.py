"""`account_check`: the preflight behind ``python -m influencers accounts check``.

For each account it logs in through the site adapter and fetches page 1 of one domain's listing,
every request dressed in the account's identity (`influencers.middlewares.identity`: its proxy,
user agent and headers, its own cookie jar and download slot), exactly as a crawl would; and it
says what it found: ``ok``, ``login failed``, ``proxy failed``, ``banned``, or another verdict.
It reads and writes nothing in the database (the accounts come in as an argument), so an operator
can run it at any time, also while crawls run. It lives outside ``influencers.spiders`` on
purpose: it is no crawl, so `scrapy list` and Scrapyd do not offer it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from influencers.core.account_model import Identity
from influencers.extensions.config import site_adapter_path, transport_errors
from influencers.middlewares.identity import dress, proxy_fault
from influencers.sites.base import AdapterError, MalformedPage, Outcome, SiteAdapter, adapter_code, load_adapter

OK = "ok"
LOGIN_FAILED = "login failed"
PROXY_FAILED = "proxy failed"
BANNED = "banned"
ADAPTER_ERROR = "adapter error"


@dataclass(frozen=True)
class CheckAccount:
    """What the check needs of an account; the password is never shown."""

    id: int
    username: str
    password: str = field(repr=False)
    identity: Identity = field(default_factory=Identity)


@dataclass
class CheckResult:
    id: int
    username: str
    result: str = "not checked"
    detail: str = ""
    proxy: str | None = None


class AccountCheckSpider(scrapy.Spider):
    name = "account_check"
    #: Nothing of the ingestion service: no task to claim, no row to write, no platform outage to
    #: wait out (a check answers at once).
    custom_settings = {
        "ITEM_PIPELINES": {},
        "EXTENSIONS": {"influencers.extensions.ingestion.IngestionService": None,
                       "influencers.extensions.progress.CrawlProgress": None,
                       "influencers.extensions.tallying.ResponseTallies": None,
                       "scrapy.extensions.telnet.TelnetConsole": None},
        "DOWNLOADER_MIDDLEWARES": {"influencers.middlewares.accounts.AccountsMiddleware": None,
                                   "influencers.middlewares.platform.PlatformMiddleware": None},
        "RETRY_TIMES": 1,
    }

    def __init__(self, accounts: list[CheckAccount], domain: str, site_url: str, results: dict[int, CheckResult],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.accounts = accounts
        self.domain = domain
        self.site_url = site_url
        self.results = results
        self.adapter: SiteAdapter | None = None
        self.render = "json"
        self.errors: tuple[type[BaseException], ...] = ()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> AccountCheckSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.adapter = load_adapter(site_adapter_path(crawler.settings), spider.site_url, crawler)
        spider.errors = transport_errors(crawler.settings)
        spider.render = next((mode for mode in ("json", "html") if mode in spider.adapter.render_modes),
                             spider.adapter.default_render)
        if spider.render == "js":
            crawler.settings.set("DOWNLOAD_HANDLERS", crawler.settings.getdict("SITE_JS_DOWNLOAD_HANDLERS"),
                                 priority="spider")
        return spider

    async def start(self) -> AsyncIterator[Any]:
        for account in self.accounts:
            self.results[account.id] = CheckResult(account.id, account.username, proxy=account.identity.proxy_host)
            try:
                with adapter_code("login_form_request"):
                    form = self.adapter.login_form_request()
                request = form if form is not None else self._submit(account, None)
            except (AdapterError, MalformedPage) as exc:
                self._found(account, ADAPTER_ERROR, str(exc))
                continue
            yield self._as(account, request, self._after_form if form is not None else self._after_login)

    # -- steps ----------------------------------------------------------------------------------

    def _after_form(self, response: Response) -> Iterator[scrapy.Request]:
        account = response.meta["check_account"]
        if self._proxy_refused(account, response):
            return
        try:
            yield self._as(account, self._submit(account, response), self._after_login)
        except (AdapterError, MalformedPage) as exc:
            self._found(account, LOGIN_FAILED, f"login form: {exc}")

    def _after_login(self, response: Response) -> Iterator[scrapy.Request]:
        account = response.meta["check_account"]
        if self._proxy_refused(account, response):
            return
        try:
            with adapter_code("check_login"):
                verdict = self.adapter.check_login(response)
            if not verdict.ok:
                self._found(account, BANNED if verdict.outcome is Outcome.BANNED else LOGIN_FAILED, verdict.reason)
                return
            with adapter_code("open_session"):
                session = self.adapter.open_session(response)
            with adapter_code("listing_request"):
                if self.adapter.pagination == "cursor":
                    listing = self.adapter.listing_request(self.domain, 1, self.render, cursor=None)
                else:
                    listing = self.adapter.listing_request(self.domain, 1, self.render)
            listing = self._as(account, listing, self._after_listing)
            with adapter_code("authorize"):
                listing = self.adapter.authorize(listing, session)
        except AdapterError as exc:
            self._found(account, ADAPTER_ERROR, str(exc))
            return
        yield listing

    def _after_listing(self, response: Response) -> None:
        account = response.meta["check_account"]
        if self._proxy_refused(account, response):
            return
        try:
            with adapter_code("classify"):
                verdict = self.adapter.classify(response)
            if verdict.ok:
                with adapter_code("parse_listing"):
                    rows = len(self.adapter.parse_listing(response, 1).rows)
                self._found(account, OK, f"logged in, page 1 of {self.domain} has {rows} rows")
            elif verdict.outcome is Outcome.BANNED:
                self._found(account, BANNED, verdict.reason)
            else:
                self._found(account, verdict.outcome.value.replace("_", " "), verdict.reason)
        except (AdapterError, MalformedPage) as exc:
            self._found(account, ADAPTER_ERROR if isinstance(exc, AdapterError) else "malformed", str(exc))

    def _failed(self, failure: Failure) -> None:
        request = failure.request
        account = request.meta["check_account"]
        fault = proxy_fault(request, exception=failure.value, transport_errors=self.errors)
        if fault is not None:
            self._found(account, PROXY_FAILED, f"proxy {account.identity.proxy_host}: {fault}")
        else:
            self._found(account, LOGIN_FAILED if request.meta.get("check_step") == "login" else "request failed",
                        f"{failure.type.__name__}: {failure.value}"[:200])

    # -- helpers --------------------------------------------------------------------------------

    def _submit(self, account: CheckAccount, form: Response | None) -> scrapy.Request:
        with adapter_code("login_submit_request"):
            return self.adapter.login_submit_request(account.username, account.password, form)

    def _as(self, account: CheckAccount, request: scrapy.Request, callback: Any) -> scrapy.Request:
        jar = f"check-{account.id}"
        meta = {**request.meta, "check_account": account, "cookiejar": jar, "download_slot": jar,
                "playwright_context": jar, "handle_httpstatus_all": True, "dont_redirect": True,
                "check_step": "listing" if callback == self._after_listing else "login"}
        checked = request.replace(callback=callback, errback=self._failed, meta=meta, dont_filter=True)
        dress(checked, account.identity)
        return checked

    def _proxy_refused(self, account: CheckAccount, response: Response) -> bool:
        fault = proxy_fault(response.request, response=response)
        if fault is not None:
            self._found(account, PROXY_FAILED, f"proxy {account.identity.proxy_host}: {fault}")
        return fault is not None

    def _found(self, account: CheckAccount, result: str, detail: str) -> None:
        found = self.results[account.id]
        found.result, found.detail = result, detail[:300]
