"""`SandboxTokenAdapter` on hand-made answers of the token-cursor API (its wire format is in the
adapter's docstring and ``sandbox/api_v2.py``); tests/integration/test_site_sandbox_token.py
runs it against the real sandbox."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler

from influencers.core.errors import ConfigError
from influencers.sites.base import MalformedPage, Outcome, Session, adapter_class, load_adapter
from influencers.sites.sandbox_token import SandboxTokenAdapter

BASE = "http://127.0.0.1:8800"
LISTING = BASE + f"/api/v2/influencers?domain={quote('游戏')}"
ROW = {"uid": "yx-000001", "nickname": "小鹿酱", "domain": "游戏", "fans": 1200, "avg_likes": 40,
       "region": "北京", "gender": "male", "tags": ["手游"], "contact": {"wechat": None, "email": None},
       "profile_url": "https://sandbox.invalid/u/yx-000001", "price": 199.5}


@pytest.fixture
def adapter() -> SandboxTokenAdapter:
    return SandboxTokenAdapter(BASE)


def answer(payload: Any, status: int = 200, url: str = LISTING, headers: dict[str, str] | None = None) -> TextResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    return TextResponse(url, status=status, body=body, encoding="utf-8",
                        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def listing(items: list[Any], has_more: bool = True, next_cursor: str | None = "Y3Vyc29y") -> TextResponse:
    return answer({"code": 0, "data": {"items": items, "next_cursor": next_cursor, "has_more": has_more}})


# -- classify ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "outcome"),
    [
        ({"code": 40010, "msg": "cursor expired"}, Outcome.CURSOR_EXPIRED),
        ({"code": 40011, "msg": "bad cursor"}, Outcome.CURSOR_EXPIRED),
        ({"code": 40100, "msg": "用户名或密码错误"}, Outcome.BAD_CREDENTIALS),
        ({"code": 40101, "msg": "token expired"}, Outcome.LOGIN_REQUIRED),
        ({"code": 40300, "msg": "账号已封禁", "reason": "listed in ban_accounts"}, Outcome.BANNED),
        ({"code": 40302, "msg": "请完成安全验证", "verify_url": BASE + "/api/v2/verify?ticket=x"}, Outcome.CAPTCHA),
        ({"code": 40400, "msg": "未知的领域"}, Outcome.UNKNOWN_DOMAIN),
        ({"code": 42900, "msg": "操作太频繁", "retry_after": 3}, Outcome.RATE_LIMITED),
        ({"code": 42901, "msg": "今日访问次数已达上限"}, Outcome.DAILY_CAP),
        ({"code": 40000, "msg": "参数错误", "detail": "size must be 1..100"}, Outcome.SERVER_ERROR),
        ({"code": 49999, "msg": "新的错误"}, Outcome.SERVER_ERROR),
    ],
)
def test_every_code_has_its_outcome(adapter: SandboxTokenAdapter, payload: dict, outcome: Outcome) -> None:
    verdict = adapter.classify(answer(payload))
    assert (verdict.outcome, verdict.code) == (outcome, str(payload["code"]))
    assert payload["msg"] in verdict.message


def test_a_good_page_is_ok(adapter: SandboxTokenAdapter) -> None:
    assert adapter.classify(listing([ROW])).ok
    assert adapter.classify(listing([], has_more=False, next_cursor=None)).ok


def test_messages_carry_the_ban_reason_and_the_bad_request_detail(adapter: SandboxTokenAdapter) -> None:
    banned = adapter.classify(answer({"code": 40300, "msg": "账号已封禁", "reason": "ignored 30 limit responses"}))
    assert banned.reason == "banned: 40300: 账号已封禁 (ignored 30 limit responses)"
    bad = adapter.classify(answer({"code": 40000, "msg": "参数错误", "detail": "size must be 1..100"}))
    assert bad.reason == "server_error: 40000: 参数错误 (size must be 1..100)"
    unknown = adapter.classify(answer({"code": 40999}))
    assert unknown.reason == "server_error: 40999: unknown code 40999"


@pytest.mark.parametrize(
    ("body_retry_after", "header", "expected"),
    [(3, None, 3.0), (2.5, "9", 2.5), ("4", None, 4.0), (None, "7", 7.0), ("soon", "7", 7.0),
     (True, None, 1.0), (None, None, 1.0), (-5, None, 0.0), ("inf", None, 1.0)],
)
def test_rate_limit_wait_from_the_body_else_the_header(adapter: SandboxTokenAdapter, body_retry_after: Any,
                                                       header: str | None, expected: float) -> None:
    payload: dict[str, Any] = {"code": 42900, "msg": "操作太频繁"}
    if body_retry_after is not None:
        payload["retry_after"] = body_retry_after
    verdict = adapter.classify(answer(payload, headers={"Retry-After": header} if header else None))
    assert (verdict.outcome, verdict.retry_after) == (Outcome.RATE_LIMITED, expected)


def test_http_statuses(adapter: SandboxTokenAdapter) -> None:
    for status in (500, 502, 503):
        verdict = adapter.classify(answer({"code": 50000, "msg": "服务器繁忙，请稍后再试"}, status=status))
        assert (verdict.outcome, verdict.code) == (Outcome.SERVER_ERROR, "50000")
    maintenance = answer("系统维护中 / under maintenance".encode(), status=503, headers={"Retry-After": "30"})
    verdict = adapter.classify(maintenance)
    assert (verdict.outcome, verdict.code, verdict.message) == (Outcome.SERVER_ERROR, None, "HTTP 503")
    # a 5xx is the server's trouble whatever its body says
    assert adapter.classify(answer({"code": 42900, "retry_after": 3}, status=502)).outcome is Outcome.SERVER_ERROR
    gateway = adapter.classify(answer(b"slow down", status=429, headers={"Retry-After": "4"}))
    assert (gateway.outcome, gateway.retry_after) == (Outcome.RATE_LIMITED, 4.0)
    for status in (302, 404):
        assert adapter.classify(answer(b"", status=status)).outcome is Outcome.SERVER_ERROR


@pytest.mark.parametrize(
    "body",
    [b'{"code":0,"data":{"items":[{"uid":"yx-0', b"", b"<html>", b"[]", b'{"msg":"no code"}',
     b'{"code":"0"}', b'{"code":true}', b'{"code":0}', b'{"code":0,"data":[]}',
     '{"code":0,"data":{"items":[{"nickname":"小'.encode()[:-1]],  # cut inside a UTF-8 sequence
)
def test_bodies_that_are_not_whole_answers_are_malformed(adapter: SandboxTokenAdapter, body: bytes) -> None:
    assert adapter.classify(answer(body)).outcome is Outcome.MALFORMED


def test_a_lone_surrogate_escape_still_parses(adapter: SandboxTokenAdapter) -> None:
    response = answer(b'{"code":0,"data":{"items":[{"uid":"yx-1","nickname":"\\ud800"}],'
                      b'"next_cursor":null,"has_more":false}}')
    assert adapter.classify(response).ok
    assert adapter.parse_listing(response, 1).rows == [{"uid": "yx-1", "nickname": "\ud800"}]


# -- parse_listing -----------------------------------------------------------------------------


def test_rows_are_the_items_as_they_came(adapter: SandboxTokenAdapter) -> None:
    page = adapter.parse_listing(listing([ROW, {**ROW, "uid": "yx-000002"}]), 3)
    assert page.rows == [ROW, {**ROW, "uid": "yx-000002"}]
    assert (page.page, page.has_more, page.next_cursor, page.total_pages) == (3, True, "Y3Vyc29y", None)
    last = adapter.parse_listing(listing([ROW], has_more=False, next_cursor=None), 4)
    assert (last.has_more, last.next_cursor) == (False, None)
    stray = adapter.parse_listing(listing([ROW], has_more=False, next_cursor="c3RyYXk"), 4)
    assert stray.next_cursor is None  # a cursor past the end fetches nothing


@pytest.mark.parametrize(
    ("response", "problem"),
    [
        (lambda: answer({"code": 0, "data": {"items": {"uid": "x"}, "has_more": False}}), "items"),
        (lambda: answer({"code": 0, "data": {"has_more": False}}), "items"),
        (lambda: listing([ROW, {"nickname": "无名"}]), "item 1 has no uid"),
        (lambda: listing([{**ROW, "uid": None}]), "item 0 has no uid"),
        (lambda: listing([{**ROW, "uid": "  "}]), "item 0 has no uid"),
        (lambda: listing([ROW, "yx-000002"]), "item 1 has no uid"),
        (lambda: listing([ROW], next_cursor=None), "has_more without a next_cursor"),
        (lambda: listing([ROW], next_cursor=""), "has_more without a next_cursor"),
        (lambda: answer({"code": 0, "data": {"items": [ROW], "has_more": True}}), "has_more without"),
        (lambda: answer({"code": 0, "data": {"items": [ROW], "has_more": "yes", "next_cursor": "x"}}), "has_more"),
        (lambda: answer({"code": 40010, "msg": "cursor expired"}), "not a listing"),
        (lambda: answer(b'{"code":0,"data":{"items":['), "not JSON"),
    ],
)
def test_pages_that_do_not_parse(adapter: SandboxTokenAdapter, response, problem: str) -> None:
    with pytest.raises(MalformedPage, match=problem):
        adapter.parse_listing(response(), 1)


# -- login and session -------------------------------------------------------------------------


def test_login_is_one_json_post(adapter: SandboxTokenAdapter) -> None:
    assert adapter.login_form_request() is None
    request = adapter.login_submit_request("demo1", "sandbox-demo1", None)
    assert (request.method, request.url) == ("POST", BASE + "/api/v2/login")
    assert request.headers[b"Content-Type"] == b"application/json"
    assert json.loads(request.body) == {"username": "demo1", "password": "sandbox-demo1"}
    assert "sandbox-demo1" not in repr(request)
    assert request.dont_filter


def test_check_login(adapter: SandboxTokenAdapter) -> None:
    login = BASE + "/api/v2/login"
    assert adapter.check_login(answer({"code": 0, "data": {"token": "t0k3n", "expires_in": 3600}}, url=login)).ok
    for payload, outcome in [
        ({"code": 0, "data": {"expires_in": 3600}}, Outcome.MALFORMED),
        ({"code": 0, "data": {"token": "", "expires_in": 3600}}, Outcome.MALFORMED),
        ({"code": 40100, "msg": "用户名或密码错误"}, Outcome.BAD_CREDENTIALS),
        ({"code": 40300, "msg": "账号已封禁", "reason": "listed in ban_accounts"}, Outcome.BANNED),
        ({"code": 42900, "msg": "操作太频繁", "retry_after": 2}, Outcome.RATE_LIMITED),
        ({"code": 40000, "msg": "参数错误"}, Outcome.SERVER_ERROR),
    ]:
        assert adapter.check_login(answer(payload, url=login)).outcome is outcome, payload
    assert adapter.check_login(answer({"code": 42900, "retry_after": 2}, url=login)).retry_after == 2.0
    assert adapter.check_login(answer(b"under maintenance", status=503, url=login)).outcome is Outcome.SERVER_ERROR
    assert adapter.check_login(answer(b'{"code":0,"da', url=login)).outcome is Outcome.MALFORMED


def test_the_session_is_the_token_header(adapter: SandboxTokenAdapter) -> None:
    response = answer({"code": 0, "data": {"token": "t0k3n", "expires_in": 3600}}, url=BASE + "/api/v2/login")
    session = adapter.open_session(response)
    assert session == Session(headers={"X-Auth-Token": "t0k3n"})
    assert "t0k3n" not in repr(session)
    request = adapter.authorize(adapter.listing_request("游戏", 1, "json"), session)
    assert request.headers[b"X-Auth-Token"] == b"t0k3n"
    again = adapter.authorize(request, Session(headers={"X-Auth-Token": "n3w"}))  # set, not appended
    assert again.headers.getlist(b"X-Auth-Token") == [b"n3w"]
    with pytest.raises(MalformedPage):
        adapter.open_session(answer({"code": 40100, "msg": "用户名或密码错误"}))


# -- requests and settings ---------------------------------------------------------------------


def query(request: Request) -> dict[str, list[str]]:
    parts = urlsplit(request.url)
    assert parts.path == "/api/v2/influencers"
    return parse_qs(parts.query)


def test_listing_requests(adapter: SandboxTokenAdapter) -> None:
    first = adapter.listing_request("游戏", 1, "json")
    assert first.url == LISTING  # no size: the platform's page size, /api/v1's
    assert first.method == "GET" and first.headers[b"Accept"] == b"application/json"
    assert query(adapter.listing_request("游戏", 2, "json", "a+b/c=")) == {"domain": ["游戏"], "cursor": ["a+b/c="]}
    sized = SandboxTokenAdapter(BASE + "/", page_size=50)
    assert query(sized.listing_request("游戏", 3, "json", "Y3Vy")) == {
        "domain": ["游戏"], "size": ["50"], "cursor": ["Y3Vy"]}
    assert query(adapter.listing_request("a&b=c", 1, "json")) == {"domain": ["a&b=c"]}


def test_listing_requests_that_cannot_be_right(adapter: SandboxTokenAdapter) -> None:
    with pytest.raises(ValueError, match="json"):
        adapter.listing_request("游戏", 1, "html")
    with pytest.raises(ValueError, match="needs the cursor page 2 gave"):
        adapter.listing_request("游戏", 3, "json")
    with pytest.raises(ValueError, match="without a cursor"):
        adapter.listing_request("游戏", 1, "json", "Y3Vy")


def test_the_page_size_setting() -> None:
    def built(**settings: Any) -> SandboxTokenAdapter:
        return SandboxTokenAdapter.from_crawler(get_crawler(settings_dict=settings), BASE)

    assert built().page_size is None
    assert built(SANDBOX_TOKEN_PAGE_SIZE="").page_size is None
    assert built(SANDBOX_TOKEN_PAGE_SIZE="7").page_size == 7
    assert built(SANDBOX_TOKEN_PAGE_SIZE=100).page_size == 100
    for bad in ("0", "-1", "seven", "7.5", 7.5, True):
        with pytest.raises(ConfigError, match="SANDBOX_TOKEN_PAGE_SIZE"):
            built(SANDBOX_TOKEN_PAGE_SIZE=bad)


def test_it_loads_as_a_cursor_adapter() -> None:
    path = "influencers.sites.sandbox_token.SandboxTokenAdapter"
    assert adapter_class(path).pagination == "cursor"
    adapter = load_adapter(path, BASE + "/")
    assert isinstance(adapter, SandboxTokenAdapter) and adapter.base_url == BASE
    assert (adapter.name, adapter.render_modes, adapter.default_render) == ("sandbox-token", ("json",), "json")
