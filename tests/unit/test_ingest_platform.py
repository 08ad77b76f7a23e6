"""Platform outages told from bad pages, waited out, and blamed on nobody (no network, no database)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from types import SimpleNamespace
from typing import Any

import pytest
from scrapy import Request
from scrapy.exceptions import DownloadConnectionRefusedError, IgnoreRequest
from scrapy.http import HtmlResponse, Response
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from influencers.core.account_model import Identity
from influencers.core.budgets import Budget
from influencers.core.errors import ConfigError
from influencers.core.outage import Outage
from influencers.extensions.config import PlatformSettings
from influencers.extensions.runs import META_LOGIN, META_PAGE, META_TASK, Gate
from influencers.middlewares.accounts import AccountsMiddleware
from influencers.middlewares.platform import (
    META_PROBE,
    PlatformMiddleware,
    PlatformUnavailable,
    PlatformWatch,
    RequestParked,
)
from influencers.sites.sandbox import SandboxAdapter

SITE = "http://127.0.0.1:8800"
LOGGER = "test.platform"


class Stats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + count


class Platform:
    """Scripted probe answers (None: answered) and back-off waits released by the test."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.probes = 0
        self.delays: list[float] = []
        self.waking: list[Deferred[None]] = []
        self.resent: list[Request] = []

    async def probe(self) -> str | None:
        self.probes += 1
        return self.answers.pop(0)

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        deferred: Deferred[None] = Deferred()
        self.waking.append(deferred)
        await maybe_deferred_to_future(deferred)

    async def wake(self) -> None:
        self.waking.pop(0).callback(None)
        await settle()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def on_the_reactor(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., Deferred[None]]:
    """Run the test as an asyncio task on the (asyncio) reactor, as a crawl runs the middleware."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Deferred[None]:
        return deferred_from_coro(test(*args, **kwargs))

    return run


def watch(platform: Platform, stats: Stats | None = None, failures: int = 3) -> PlatformWatch:
    outage = Outage(f"platform {SITE}", logging.getLogger(LOGGER), first=0.5, cap=2.0)
    return PlatformWatch(outage, platform.probe, platform.resent.append, platform.sleep, failures=failures,
                         stats=stats)


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER and r.levelno >= logging.INFO]


def page_request(page: int = 3, **meta: Any) -> Request:
    return Request(f"{SITE}/api/v1/influencers?domain=x&page={page}", meta={META_TASK: 1, META_PAGE: page, **meta})


@on_the_reactor
async def test_a_few_failures_are_the_pages_own_and_an_answer_resets_the_count(caplog) -> None:
    platform = Platform()
    subject = watch(platform)
    assert await subject.failed("HTTP 503", last_try=False) is False
    assert await subject.failed("HTTP 503", last_try=False) is False
    subject.succeeded()
    assert await subject.failed("HTTP 503", last_try=False) is False
    assert platform.probes == 0 and subject.streak == 1 and not lines(caplog)


@on_the_reactor
async def test_failures_in_a_row_with_a_platform_that_answers_are_a_bad_page_not_an_outage(caplog) -> None:
    """The sandbox's --error-rate on listings: /login still answers, so pages keep their retries
    and a page that keeps failing still fails."""
    platform, stats = Platform(None), Stats()
    subject = watch(platform, stats)
    results = [await subject.failed("HTTP 500", last_try=False) for _ in range(3)]
    await settle()
    assert results == [False, False, False]
    assert platform.probes == 1 and subject.streak == 0 and not subject.down
    assert stats.values == {"platform/failures": 3, "platform/checks": 1, "platform/probes": 1}
    assert not lines(caplog)


@on_the_reactor
async def test_a_spent_retry_budget_checks_the_platform_at_the_first_failure() -> None:
    platform = Platform(None)
    subject = watch(platform)
    assert await subject.failed("DownloadTimeoutError", last_try=True) is False
    assert platform.probes == 1


@on_the_reactor
async def test_an_outage_is_one_line_each_way_parks_requests_and_sends_them_again(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    platform, stats = Platform("ConnectionRefusedError", "HTTP 502", "HTTP 503", None), Stats()
    subject = watch(platform, stats)
    await subject.failed("ConnectionRefusedError", last_try=False)
    await subject.failed("ConnectionRefusedError", last_try=False)
    assert await subject.failed("ConnectionRefusedError", last_try=False) is True  # the probe failed too
    assert subject.down
    assert await subject.failed("ConnectionRefusedError", last_try=False) is True  # no new check meanwhile
    parked = [page_request(3), page_request(4)]
    errors = [subject.unavailable(request, park=True) for request in parked]
    login = subject.unavailable(Request(f"{SITE}/login"), park=False)
    assert all(isinstance(error, RequestParked) for error in errors)
    assert type(login) is PlatformUnavailable and isinstance(login, IgnoreRequest)

    await platform.wake()
    await platform.wake()
    assert subject.down and platform.resent == []
    await platform.wake()  # the fourth probe is answered
    assert not subject.down and login.back.is_open
    assert platform.resent == parked  # sent again once, in order
    assert platform.delays == [0.5, 1.0, 2.0]
    assert stats.values["platform/outages"] == 1 and stats.values["platform/probes"] == 4
    assert stats.values["platform/requests_parked"] == 2
    assert lines(caplog) == [
        ("WARNING", f"platform {SITE} unreachable (ConnectionRefusedError); retrying with back-off up to 2s"),
        ("INFO", lines(caplog)[1][1]),
    ]
    assert lines(caplog)[1][1].startswith(f"platform {SITE} reachable again after ")


@on_the_reactor
async def test_a_request_answered_during_an_outage_ends_it_and_probing_stops(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    platform = Platform("HTTP 503")
    subject = watch(platform, failures=1)
    assert await subject.failed("HTTP 503", last_try=False) is True
    subject.unavailable(page_request(), park=True)
    subject.succeeded()  # another account's page came back
    assert not subject.down and len(platform.resent) == 1
    await platform.wake()
    assert platform.probes == 1  # the probe loop saw it was over
    assert [level for level, _ in lines(caplog)] == ["WARNING", "INFO"]


@on_the_reactor
async def test_a_closing_crawl_stops_probing_and_sends_nothing_again() -> None:
    platform = Platform("HTTP 503", None)
    subject = watch(platform, failures=1)
    await subject.failed("HTTP 503", last_try=False)
    subject.unavailable(page_request(), park=True)
    subject.close()
    await platform.wake()
    assert platform.probes == 1 and platform.resent == []


# -- the middleware's hooks -------------------------------------------------------------------


def middleware(platform: Platform) -> PlatformMiddleware:
    crawler = SimpleNamespace(stats=Stats(), engine=None, crawling=True)
    options = PlatformSettings.from_settings(Settings())
    built = PlatformMiddleware(crawler, options, SandboxAdapter(SITE), retry_times=5,
                               transport_errors=(DownloadConnectionRefusedError, OSError))
    built.watch = watch(platform, Stats(), failures=1)
    return built


@on_the_reactor
async def test_statuses_and_errors_that_mean_no_platform_and_those_that_do_not() -> None:
    subject = middleware(Platform(None, None))
    request = page_request()
    for status in (200, 302, 401, 403, 404, 429):  # the platform answered, whatever it said
        response = Response(request.url, status=status, request=request)
        assert await subject.process_response(request, response) is response
        assert subject.watch.streak == 0
    assert await subject.process_exception(request, IgnoreRequest("task stopping")) is None
    assert subject.watch.streak == 0  # not the platform's doing
    await subject.process_response(request, Response(request.url, status=503, request=request))
    await subject.process_exception(request, DownloadConnectionRefusedError())
    assert subject.watch.streak == 0  # each one checked (threshold 1) and the probe was answered
    assert subject.watch.stats.values["platform/checks"] == 2


@on_the_reactor
async def test_during_an_outage_page_requests_are_parked_with_their_retries_and_logins_told() -> None:
    subject = middleware(Platform("DownloadConnectionRefusedError"))
    request = page_request(retry_times=2)
    with pytest.raises(RequestParked):
        await subject.process_exception(request, DownloadConnectionRefusedError())
    (parked,) = subject.watch._parked
    assert parked.meta["retry_times"] == 2 and parked.dont_filter  # no retry spent on the outage
    with pytest.raises(RequestParked):
        subject.process_request(page_request(4))  # not sent at all while the platform is down
    with pytest.raises(PlatformUnavailable) as told:
        subject.process_request(Request(f"{SITE}/login", meta={META_LOGIN: 7}))
    assert not isinstance(told.value, RequestParked)
    assert subject.process_request(Request(f"{SITE}/login", meta={META_PROBE: True})) is None
    subject.watch.close()


def test_the_last_try_is_the_one_that_spends_the_budget() -> None:
    subject = middleware(Platform())
    assert not subject._last_try(page_request())
    assert not subject._last_try(page_request(retry_times=4))
    assert subject._last_try(page_request(retry_times=5))
    assert subject._last_try(page_request(max_retry_times=1, retry_times=1))
    assert subject._last_try(page_request(dont_retry=True))


# -- settings ---------------------------------------------------------------------------------


def test_settings_defaults_and_bad_values() -> None:
    options = PlatformSettings.from_settings(Settings())
    assert options.enabled and options.failures == 3 and 503 in options.http_codes and 429 not in options.http_codes
    assert options.first_delay <= options.max_delay
    for name, value in (("PLATFORM_OUTAGE_FAILURES", 0), ("PLATFORM_OUTAGE_HTTP_CODES", "5xx"),
                        ("PLATFORM_OUTAGE_HTTP_CODES", []), ("PLATFORM_OUTAGE_FIRST_DELAY", 0),
                        ("PLATFORM_OUTAGE_MAX_DELAY", 0.1), ("PLATFORM_PROBE_TIMEOUT", "soon"),
                        ("PLATFORM_OUTAGE_ENABLED", "maybe")):
        with pytest.raises(ConfigError) as error:
            PlatformSettings.from_settings(Settings({name: value}))
        assert name in str(error.value)


# -- logins -----------------------------------------------------------------------------------


@on_the_reactor
async def test_a_login_that_meets_an_outage_waits_and_counts_no_failed_attempt() -> None:
    """With one attempt allowed, the outage would have made the account unusable (and cooled it
    down for ACCOUNTS_LOGIN_FAILURE_COOLDOWN)."""
    adapter = SandboxAdapter(SITE)
    back = Gate()
    calls: list[str] = []

    async def download_async(request: Request) -> Response:
        calls.append(request.url)
        if len(calls) == 1:
            raise PlatformUnavailable(back)
        if request.method == "GET":
            return HtmlResponse(request.url, body=b'<form id="login"><input name="csrf_token" value="t"></form>',
                                request=request)
        return Response(request.url, status=302, request=request,
                        headers={"Location": "/square", "Set-Cookie": "sid=abc; Path=/"})

    async def login_details(account_id: int) -> tuple[str, str, Identity, Budget]:
        return "demo1", "sandbox-demo1", Identity(), Budget()

    service = SimpleNamespace(adapter=adapter, login_details=login_details)
    crawler = SimpleNamespace(stats=Stats(), engine=SimpleNamespace(download_async=download_async))
    accounts = AccountsMiddleware(crawler, service, interval=0, max_interval=30, relogin_attempts=1,
                                  login_attempts=1, captcha_cooldown=300, daily_cap_cooldown=None,
                                  login_failure_cooldown=600, margin=0.2)
    state = accounts.state(1)
    done = deferred_from_coro(accounts.logins.ensure_session(state))
    await settle()
    assert not done.called and calls == [f"{SITE}/login"]  # waiting for the platform
    back.open()
    await maybe_deferred_to_future(done)
    assert state.logged_in and state.session.cookies == {"sid": "abc"}
    assert crawler.stats.values == {"accounts/login_waited_for_platform": 1, "accounts/login": 1}
