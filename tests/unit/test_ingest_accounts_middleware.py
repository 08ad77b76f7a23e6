"""The account middleware's pacing and request bookkeeping (no network, no database)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from scrapy import Request
from scrapy.http import TextResponse
from w3lib.url import add_or_replace_parameter

from influencers.core.account_model import Identity
from influencers.core.budgets import Budget
from influencers.core.quotaday import QuotaDay
from influencers.extensions.runs import META_ACCOUNT, META_PAGE, META_TASK
from influencers.middlewares.accounts import META_SESSION, AccountsMiddleware
from influencers.sites.base import Session
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


def test_login_requests_get_the_account_session_and_identity(middleware: AccountsMiddleware) -> None:
    state = middleware.state(3)
    state.identity = Identity(proxy_url="http://u:p@127.0.0.1:3128", user_agent="UA-3", headers={"X-Device": "d3"},
                              proxy_host="http://127.0.0.1:3128")
    login = middleware.logins.login_request(Request("http://127.0.0.1:8800/login"), state)
    assert login.meta["cookiejar"] == "account-3" and login.meta["dont_redirect"]
    assert login.meta["influencers_login"] == 3
    assert login.meta["proxy"] == "http://u:p@127.0.0.1:3128"
    assert (login.headers["User-Agent"], login.headers["X-Device"]) == (b"UA-3", b"d3")


def test_a_request_moving_to_another_account_keeps_nothing_of_the_first_ones_identity(
        middleware: AccountsMiddleware) -> None:
    first, second = middleware.state(1), middleware.state(2)
    first.identity = Identity(proxy_url="http://a:secret@127.0.0.1:3128", user_agent="UA-1",
                              headers={"X-Device": "d1"}, proxy_host="http://127.0.0.1:3128")
    first.session = Session(headers={"X-Auth-Token": "token-of-1"})
    request = Request("http://127.0.0.1:8800/api/v1/influencers?page=3", meta={META_TASK: 5, META_PAGE: 3})
    middleware._stamp(request, first)
    request.headers["Proxy-Authorization"] = b"Basic YTpzZWNyZXQ="  # what Scrapy's proxy middleware adds
    assert request.meta["proxy"] and request.headers["X-Device"] == b"d1"
    again = middleware._again(request)
    assert not {"proxy", "_auth_proxy"} & set(again.meta)
    assert not {b"User-Agent", b"X-Device", b"Proxy-Authorization", b"X-Auth-Token"} & set(again.headers)
    middleware._stamp(again, second)  # an account without an identity: the crawl's defaults
    assert "proxy" not in again.meta and b"X-Device" not in again.headers
    assert request.meta["proxy"] and request.headers["X-Device"] == b"d1"  # the original is untouched


def test_browser_pages_get_the_accounts_proxy_and_user_agent_in_their_context(middleware: AccountsMiddleware) -> None:
    state = middleware.state(4)
    state.identity = Identity(proxy_url="http://us%40r:p%3Ass@127.0.0.2:8080", user_agent="UA-4",
                              proxy_host="http://127.0.0.2:8080")
    request = Request("http://127.0.0.1:8800/app/square", meta={META_TASK: 5, META_PAGE: 1, "playwright": True})
    middleware._stamp(request, state)
    assert request.meta["playwright_context"] == "account-4"
    assert request.meta["playwright_context_kwargs"] == {
        "proxy": {"server": "http://127.0.0.2:8080", "username": "us@r", "password": "p:ss"}, "user_agent": "UA-4"}


class TokenAdapter(SandboxAdapter):
    """A platform whose login answers a JSON token, sent back in a header (or in the query)."""

    in_query = False

    def open_session(self, response: Any) -> Session:
        return Session(values={"token": json.loads(response.text)["data"]["token"]})

    def authorize(self, request: Request, session: Session) -> Request:
        if self.in_query:
            return request.replace(url=add_or_replace_parameter(request.url, "token", session.values["token"]))
        request.headers["X-Auth-Token"] = session.values["token"]
        return request


def logged_in(middleware: AccountsMiddleware, account_id: int, body: str) -> Any:
    state = middleware.state(account_id)
    response = TextResponse("http://127.0.0.1:8800/api/v2/login", body=body.encode(), encoding="utf-8")
    state.session = middleware.service.adapter.open_session(response)
    state.logged_in, state.generation = True, 1
    return state


def listing(page: int = 1) -> Request:
    return Request(f"http://127.0.0.1:8800/api/v2/influencers?domain=x&page={page}", meta={META_TASK: 5, META_PAGE: page})


def test_each_request_carries_its_accounts_session_from_the_adapter(middleware: AccountsMiddleware) -> None:
    middleware.service.adapter = TokenAdapter("http://127.0.0.1:8800")
    first = logged_in(middleware, 1, '{"code": 0, "data": {"token": "tok-one"}}')
    second = logged_in(middleware, 2, '{"code": 0, "data": {"token": "tok-two"}}')
    requests = [listing(1), listing(2)]
    for request, state in zip(requests, (first, second), strict=True):
        middleware._stamp(request, state)
        assert middleware._authorize(request, state) is None  # set in place: the request goes on
    assert [r.headers[b"X-Auth-Token"] for r in requests] == [b"tok-one", b"tok-two"]
    assert "tok-one" not in repr(first.session)  # a session is never logged


def test_a_new_request_from_authorize_goes_out_instead_and_passes_once(middleware: AccountsMiddleware) -> None:
    adapter = middleware.service.adapter = TokenAdapter("http://127.0.0.1:8800")
    adapter.in_query = True
    state = logged_in(middleware, 3, '{"code": 0, "data": {"token": "q-token"}}')
    request = listing()
    middleware._stamp(request, state)
    signed = middleware._authorize(request, state)
    assert signed is not None and "token=q-token" in signed.url and signed.meta[META_ACCOUNT] == 3
    coro = middleware.process_request(signed)
    with pytest.raises(StopIteration) as done:  # no account lookup, no pacing: it was stamped already
        coro.send(None)
    assert done.value.value is None
    retried = signed.replace(dont_filter=True)  # a retry's copy is stamped and paced afresh
    assert retried not in middleware._authorized


def test_the_default_session_is_the_logins_cookies(middleware: AccountsMiddleware) -> None:
    response = TextResponse("http://127.0.0.1:8800/login", body=b"", headers={"Set-Cookie": "sid=abc; Path=/"})
    session = middleware.service.adapter.open_session(response)
    assert session.cookies == {"sid": "abc"} and session.headers == {}
    request = listing()
    assert middleware.service.adapter.authorize(request, session) is request


def test_a_budget_paces_the_account_and_says_when_its_pages_are_spent(middleware: AccountsMiddleware) -> None:
    state = middleware.state(6)
    state.keep_to(Budget(pages_per_day=3, requests_per_minute=20, pages_today=2))
    middleware.pacing.keep_to(6, 20)
    assert middleware.pacing.interval(6) == 3.0  # 20 a minute: one every 3 s, never faster
    middleware.pacing.on_rate_limited(6, 1.0)
    for _ in range(1000):
        middleware.pacing.on_success(6)
    assert middleware.pacing.interval(6) == 3.0  # pacing up after a 429 stops at the budget's pace
    assert not state.budget_spent
    state.pages_used += 1
    assert state.budget_spent
    state.keep_to(Budget())  # no budget: the crawl's pace, no page limit
    middleware.pacing.keep_to(6, None)
    middleware.pacing.on_success(6)
    assert middleware.pacing.interval(6) < 3.0 and not state.budget_spent


def test_a_first_captcha_rests_the_account_briefly_and_repeats_rest_it_longer(middleware: AccountsMiddleware) -> None:
    middleware.captcha_first_cooldown, middleware.captcha_cooldown = 30.0, 300.0
    state = middleware.state(7)
    rests = []
    for _ in range(6):
        state.captchas += 1  # what each captcha of the account does
        rests.append(middleware.captcha_rest(state))
    assert rests == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0]
    state.captchas = 1  # a good page set it to 0; this is the next captcha
    assert middleware.captcha_rest(state) == 30.0
