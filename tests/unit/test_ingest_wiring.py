"""How the ingestion components are built and talk: settings with the project's defaults, one
clear error for a bad value, the flush signal, the backlog report, one verdict per response."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import TextResponse
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from influencers.core.errors import ConfigError
from influencers.extensions.config import (
    AccountsSettings,
    IngestSettings,
    TalliesSettings,
    WriterSettings,
    with_project_defaults,
)
from influencers.extensions.ingestion import IngestionService
from influencers.extensions.interface import account_verdict, flush_requested
from influencers.extensions.runs import META_ACCOUNT, META_PAGE, META_TASK, META_VERDICT
from influencers.extensions.tallying import ResponseTallies
from influencers.items import InfluencerPage
from influencers.middlewares.accounts import AccountsMiddleware
from influencers.pipelines.mysql import MySQLPipeline
from influencers.sites.base import Outcome, Verdict
from influencers.sites.sandbox import SandboxAdapter
from influencers.spiders.influencers import InfluencersSpider

PAGES = Path(__file__).with_name("pages")
BASE = "http://127.0.0.1:8800"


def run_now(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that ends without waiting for anything (the reactor runs these tests)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the coroutine waited")


# -- settings ---------------------------------------------------------------------------------


def test_a_crawler_without_the_project_settings_still_gets_its_defaults() -> None:
    settings = get_crawler().settings
    assert "INGEST_LEASE_SECONDS" not in settings
    ingest = IngestSettings.from_settings(settings)
    assert (ingest.lease_seconds, ingest.heartbeat_interval, ingest.max_tasks, ingest.pages_in_flight) == (60, 20, 0, 1)
    assert ingest.adapter_path is None and ingest.site_url is None  # INFLUENCERS_SITE_ADAPTER, INFLUENCERS_SITE_URL
    accounts = AccountsSettings.from_settings(settings)
    assert (accounts.enabled, accounts.request_interval, accounts.login_attempts, accounts.daily_cap_cooldown) == \
        (True, 0.25, 3, None)
    assert WriterSettings.from_settings(settings) == WriterSettings(2000, 1.0, 20000, 2)


def test_the_crawlers_own_values_win_whatever_their_priority() -> None:
    settings = Settings()
    settings.set("INGEST_LEASE_SECONDS", "30", priority="cmdline")  # -s values arrive as text
    settings.set("MYSQL_WRITERS", 1, priority="default")
    settings.set("ACCOUNTS_DAILY_CAP_COOLDOWN", "5", priority="cmdline")
    assert IngestSettings.from_settings(settings).heartbeat_interval == 10
    assert WriterSettings.from_settings(settings).writers == 1
    assert AccountsSettings.from_settings(settings).daily_cap_cooldown == 5.0
    assert with_project_defaults(settings).getpriority("INGEST_LEASE_SECONDS") == settings.getpriority(
        "INGEST_LEASE_SECONDS")


@pytest.mark.parametrize(("cls", "name", "value", "message"), [
    (IngestSettings, "INGEST_MAX_TASKS", "two", "INGEST_MAX_TASKS: must be a whole number of 0 or more, not 'two'"),
    (IngestSettings, "INGEST_PAGES_IN_FLIGHT", 0, "INGEST_PAGES_IN_FLIGHT: must be a whole number of 1 or more, not 0"),
    (IngestSettings, "INGEST_LEASE_SECONDS", 0, "INGEST_LEASE_SECONDS: must be a number above 0, not 0"),
    (IngestSettings, "INGEST_CLAIM_WAIT", "-1", "INGEST_CLAIM_WAIT: must be a number of 0 or more, not '-1'"),
    (AccountsSettings, "ACCOUNTS_REQUEST_INTERVAL", "fast", "ACCOUNTS_REQUEST_INTERVAL: must be a number of 0 or more"),
    (AccountsSettings, "ACCOUNTS_ENABLED", "maybe", "ACCOUNTS_ENABLED: must be True or False, not 'maybe'"),
    (WriterSettings, "MYSQL_BATCH_ITEMS", 2.5, "MYSQL_BATCH_ITEMS: must be a whole number of 1 or more, not 2.5"),
    (WriterSettings, "MYSQL_FLUSH_INTERVAL", "nan", "MYSQL_FLUSH_INTERVAL: must be a number above 0, not 'nan'"),
    (TalliesSettings, "TALLIES_FLUSH_INTERVAL", 0, "TALLIES_FLUSH_INTERVAL: must be a number above 0, not 0"),
])
def test_a_bad_value_is_one_error_naming_the_setting(cls: Any, name: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        cls.from_settings(Settings({name: value}))
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_a_bad_setting_of_any_component_stops_the_crawl_at_start_with_one_line() -> None:
    crawler = get_crawler(settings_dict={"ACCOUNTS_CAPTCHA_COOLDOWN": "soon", "MYSQL_WRITERS": 0})
    with pytest.raises(NotConfigured):
        AccountsMiddleware.from_crawler(crawler)
    with pytest.raises(NotConfigured):
        MySQLPipeline.from_crawler(crawler)
    service = IngestionService.of(crawler)
    assert str(service.startup_error).startswith("ACCOUNTS_CAPTCHA_COOLDOWN: ")  # the first one
    with pytest.raises(ConfigError):
        run_now(service.start(lambda run, page: None, domain="x", pages=None, task_id=None, once=False,
                              render=None))
    assert isinstance(IngestionService.of(get_crawler(settings_dict={"INGEST_MAX_TASKS": -1})).startup_error,
                      ConfigError)


# -- the pipeline's side ----------------------------------------------------------------------


class Ledger:
    """The service's `PageLedger` side, recording what the pipeline reports."""

    config = None

    def __init__(self) -> None:
        self.reports: list[bool] = []

    def draining(self, task_id: int) -> bool:
        return False

    def writes_keeping_up(self, keeping_up: bool) -> None:
        self.reports.append(keeping_up)


def page(number: int, rows: int, task_id: int = 7) -> InfluencerPage:
    return InfluencerPage(task_id=task_id, page_number=number, domain="游戏", account_id=1, source_url="http://x/p",
                          started_at=None, finished_at=None, rows=[{"uid": f"u{number}-{n}"} for n in range(rows)])


def test_the_pipeline_listens_for_flush_requests() -> None:
    crawler = get_crawler()
    pipeline = MySQLPipeline.from_crawler(crawler)
    pipeline.service = Ledger()
    pipeline.process_item(page(1, 3))
    assert not pipeline._requested
    crawler.signals.send_catch_log(signal=flush_requested)
    assert pipeline._requested  # no writer threads here: the request waits for one


def test_the_pipeline_reports_when_the_writes_fall_behind_and_catch_up() -> None:
    ledger = Ledger()
    pipeline = MySQLPipeline(ledger, SimpleNamespace(inc_value=lambda *a: None), batch_items=4, flush_interval=1.0,
                             max_pending=100, writers=1)
    pipeline.process_item(page(1, 3))
    pipeline.process_item(page(2, 1))  # four rows: one batch, still keeping up
    assert ledger.reports == []
    pipeline.process_item(page(3, 1))
    assert ledger.reports == [False]
    pipeline.process_item(page(4, 1))
    assert ledger.reports == [False]  # only changes are reported
    pipeline._take()
    assert ledger.reports == [False, True]


# -- one verdict per response -----------------------------------------------------------------


class CountingAdapter(SandboxAdapter):
    def __init__(self) -> None:
        super().__init__(BASE)
        self.classified = 0

    def classify(self, response: Any) -> Verdict:
        self.classified += 1
        return super().classify(response)


class Desk:
    """The service's `PageDesk` side: one reading run, and what the spider reports."""

    def __init__(self, adapter: SandboxAdapter) -> None:
        self.adapter = adapter
        self.fetched: list[int] = []
        self.failed: list[tuple[int, str]] = []
        self.run = SimpleNamespace(stopping=False, domain="游戏")

    def run_for(self, task_id: int) -> Any:
        return self.run

    def page_fetched(self, task_id: int, page: int, *, has_more: bool, total_pages: int | None,
                     next_cursor: str | None = None) -> None:
        self.fetched.append(page)

    def page_failed(self, task_id: int, page: int, reason: str) -> None:
        self.failed.append((page, reason))


def listing_response(meta: dict[str, Any], name: str = "listing_page1.json") -> TextResponse:
    url = f"{BASE}/api/v1/influencers?domain={quote('游戏')}&page=1"
    request = Request(url, meta={META_TASK: 7, META_PAGE: 1, META_ACCOUNT: 2, **meta})
    return TextResponse(url, body=(PAGES / name).read_bytes(), encoding="utf-8", request=request,
                        headers={"Content-Type": "application/json; charset=utf-8"})


@pytest.fixture
def spider() -> InfluencersSpider:
    spider = InfluencersSpider.from_crawler(get_crawler(InfluencersSpider))
    spider.crawler.stats.open_spider()
    spider.service = Desk(CountingAdapter())
    return spider


def test_the_spider_uses_the_middlewares_verdict(spider: InfluencersSpider) -> None:
    response = listing_response({META_VERDICT: Verdict(Outcome.OK)})
    (item,) = list(spider.parse_page(response))
    assert isinstance(item, InfluencerPage) and item.rows and spider.service.fetched == [1]
    assert spider.service.adapter.classified == 0
    assert META_VERDICT not in response.meta  # taken: a retry of this request does not carry it


def test_a_response_without_a_verdict_is_classified_by_the_spider(spider: InfluencersSpider) -> None:
    (item,) = list(spider.parse_page(listing_response({})))
    assert isinstance(item, InfluencerPage) and spider.service.adapter.classified == 1
    retried = list(spider.parse_page(listing_response({}, "server_error.json")))
    assert spider.service.adapter.classified == 2
    assert [r.meta.get("retry_times") for r in retried] == [1]  # the page's problem: fetched again


def test_the_middleware_classifies_once_and_passes_the_verdict_on() -> None:
    adapter = CountingAdapter()
    middleware = AccountsMiddleware(SimpleNamespace(stats=None), SimpleNamespace(adapter=adapter, config=None),
                                    interval=0, max_interval=30, relogin_attempts=1, login_attempts=3,
                                    captcha_cooldown=300, daily_cap_cooldown=None, login_failure_cooldown=600,
                                    margin=0.2)
    response = listing_response({})
    assert run_now(middleware.process_response(response.request, response)) is response
    assert response.meta[META_VERDICT] == Verdict(Outcome.OK) and adapter.classified == 1
    again = middleware._again(response.request)
    assert META_VERDICT not in again.meta  # a request sent again gets a verdict of its own


def test_the_middleware_announces_an_accounts_429_and_the_tallies_count_it_per_account() -> None:
    crawler = get_crawler()
    crawler.stats.open_spider()
    tallies = ResponseTallies.from_crawler(crawler)
    middleware = AccountsMiddleware(crawler, SimpleNamespace(adapter=SandboxAdapter(BASE), config=None),
                                    interval=0.25, max_interval=30, relogin_attempts=1, login_attempts=3,
                                    captcha_cooldown=300, daily_cap_cooldown=None, login_failure_cooldown=600,
                                    margin=0.2)
    url = f"{BASE}/api/v1/influencers?domain={quote('游戏')}&page=1"
    request = Request(url, meta={META_TASK: 7, META_PAGE: 1, META_ACCOUNT: 2})
    limited = TextResponse(url, status=429, body=b"{}", encoding="utf-8", request=request,
                           headers={"Retry-After": "1", "Content-Type": "application/json"})
    assert isinstance(run_now(middleware.process_response(request, limited)), Request)  # sent again later
    crawler.signals.send_catch_log(account_verdict, outcome=Outcome.CAPTCHA, account_id=5)
    crawler.signals.send_catch_log(account_verdict, outcome=Outcome.DAILY_CAP, account_id=5)  # not tallied
    assert tallies.pending == {("rate_limited", "2"): 1, ("captchas", "5"): 1}


def test_any_error_while_the_service_starts_lets_the_crawl_close() -> None:
    """An error that is not an operator's (a bug) used to leave the spider open for ever: the idle
    spider is kept open while the service works, and the service had opened its database side."""
    service = IngestionService.of(get_crawler(InfluencersSpider))

    async def broken(*_: Any, **__: Any) -> None:
        service.tasks = object()  # as far as the start got before the bug
        raise RuntimeError("a bug")

    service._start = broken
    with pytest.raises(RuntimeError):  # the coroutine runs to its end on the first step
        service.start(lambda run, page: None, domain="游戏", pages=None, task_id=None, once=False,
                      render=None).send(None)
    service._spider_idle()  # no DontCloseSpider: the crawl closes
