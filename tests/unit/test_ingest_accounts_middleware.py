"""The account middleware's pacing and request bookkeeping (no network, no database)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from scrapy import Request

from influencers.core.quotaday import QuotaDay
from influencers.extensions.runs import META_ACCOUNT, META_PAGE, META_TASK
from influencers.middlewares.accounts import META_SESSION, AccountsMiddleware
from influencers.sites.sandbox import SandboxAdapter


@pytest.fixture
def middleware() -> AccountsMiddleware:
    service = SimpleNamespace(adapter=SandboxAdapter("http://127.0.0.1:8800"),
                              config=SimpleNamespace(tz_name="Asia/Shanghai",
                                                     quota_day=QuotaDay(ZoneInfo("Asia/Shanghai"))))
    crawler = SimpleNamespace(stats=None)
    return AccountsMiddleware(crawler, service, interval=0.25, max_interval=30, relogin_attempts=1,
                              login_attempts=3, captcha_cooldown=300, daily_cap_cooldown=None,
                              login_failure_cooldown=600, margin=0.2)


def test_a_429_blocks_the_account_for_retry_after_and_slows_it(middleware: AccountsMiddleware) -> None:
    state = middleware.state(7)
    before = time.monotonic()
    middleware.back_off(state, 2.0)
    assert state.blocked_until >= before + 2.2
    assert state.interval == 0.5
    middleware.back_off(state, 2.0)
    assert state.interval == 1.0  # keeps growing while 429s keep coming
    for _ in range(100):
        middleware.relax(state)
    assert state.interval == 0.25  # back to the configured pace, never below
    assert middleware.state(8).blocked_until == 0.0  # other accounts are not affected


def test_the_interval_is_capped(middleware: AccountsMiddleware) -> None:
    state = middleware.state(1)
    for _ in range(20):
        middleware.back_off(state, 1.0)
    assert state.interval == 30


def test_a_retried_request_is_stamped_afresh_and_not_counted(middleware: AccountsMiddleware) -> None:
    request = Request("http://127.0.0.1:8800/api/v1/influencers?domain=x&page=3", meta={
        META_TASK: 5, META_PAGE: 3, META_ACCOUNT: 2, META_SESSION: 1, "cookiejar": "account-2",
        "download_slot": "account-2", "retry_times": 2,
    })
    again = middleware._again(request, influencers_relogins=1)
    assert again.dont_filter and again.priority == request.priority + 1
    assert again.meta[META_TASK] == 5 and again.meta[META_PAGE] == 3
    assert again.meta["retry_times"] == 2  # an account problem spends no page retry
    assert again.meta["influencers_relogins"] == 1
    for key in (META_ACCOUNT, META_SESSION, "cookiejar", "download_slot"):
        assert key not in again.meta


def test_daily_cap_cools_down_until_after_local_midnight(middleware: AccountsMiddleware) -> None:
    seconds = middleware._daily_cap_seconds()
    assert 60 <= seconds <= 24 * 3600 + 60
    middleware.daily_cap_cooldown = 5.0
    assert middleware._daily_cap_seconds() == 5.0


def test_login_requests_get_the_account_session(middleware: AccountsMiddleware) -> None:
    state = middleware.state(3)
    login = middleware._login_request(Request("http://127.0.0.1:8800/login"), state)
    assert login.meta["cookiejar"] == "account-3" and login.meta["dont_redirect"]
    assert login.meta["influencers_login"] == 3
