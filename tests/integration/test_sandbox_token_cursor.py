"""The token-cursor API (``python -m sandbox --api token-cursor``) over real HTTP: JSON login,
header tokens, signed expiring cursors, HTTP-200 error codes, the same rows as ``/api/v1``."""
from __future__ import annotations

import base64
import http.client
import json
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from sandbox.data import expected_rows
from tests.fixtures.sandbox import TOKEN_CURSOR_PAGES, Reply, SandboxClient, SandboxServer

pytestmark = pytest.mark.timeout(60)
PAGES = TOKEN_CURSOR_PAGES


@pytest.fixture
def site(token_cursor_site: SandboxServer) -> SandboxServer:
    return token_cursor_site


class Api:
    """A client of /api/v2 holding one token."""

    def __init__(self, server: SandboxServer) -> None:
        self.http = SandboxClient(server.url)
        self.token: str | None = None

    def login(self, username: str, password: str | None = None) -> Reply:
        reply = self.http.request("POST", "/api/v2/login", json_body={
            "username": username,
            "password": f"sandbox-{username}" if password is None else password})
        if reply.status == 200 and reply.json()["code"] == 0:
            self.token = reply.json()["data"]["token"]
        return reply

    def page(self, domain: str, cursor: str | None = None, size: int | None = None) -> Reply:
        params: dict[str, Any] = {"domain": domain}
        if cursor is not None:
            params["cursor"] = cursor
        if size is not None:
            params["size"] = size
        headers = {"X-Auth-Token": self.token} if self.token else {}
        return self.http.request("GET", f"/api/v2/influencers?{urlencode(params)}",
                                 headers=headers)

    def walk(self, domain: str, size: int | None = None) -> tuple[list[dict], int]:
        """Every row by following next_cursor; and the number of pages."""
        rows, cursor, pages = [], None, 0
        while True:
            body = self.page(domain, cursor, size).json()
            assert body["code"] == 0, body
            data = body["data"]
            rows += data["items"]
            pages += 1
            assert data["has_more"] is (data["next_cursor"] is not None)
            if not data["has_more"]:
                return rows, pages
            cursor = data["next_cursor"]


def logged_in(server: SandboxServer, username: str = "demo1") -> Api:
    api = Api(server)
    body = api.login(username).json()
    assert body["code"] == 0, body
    return api


def test_login_returns_a_token_for_the_header(site):
    api = Api(site)
    reply = api.login("demo1")
    assert reply.status == 200
    body = reply.json()
    assert body["code"] == 0
    assert isinstance(body["data"]["token"], str) and len(body["data"]["token"]) >= 20
    assert body["data"]["expires_in"] == 3600
    assert api.page("美妆").json()["code"] == 0
    assert "sid" not in api.http.cookies  # no cookie session: the header is the only channel
    assert site.admin_stats()["accounts"]["demo1"]["logins"] == 1


@pytest.mark.parametrize(("username", "password"), [("demo1", "wrong"), ("ghost", "x")])
def test_wrong_credentials_are_code_40100(site, username, password):
    reply = Api(site).login(username, password)
    assert reply.status == 200
    assert reply.json() == {"code": 40100, "msg": "用户名或密码错误"}
    assert site.admin_stats()["login_failures"] == 1


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"username": 1, "password": "x"}', b"\xff"])
def test_a_malformed_login_is_code_40000(site, body):
    reply = _raw_post(site, "/api/v2/login", body)
    assert reply.status == 200
    assert reply.json() == {"code": 40000, "msg": "参数错误"}


def test_a_banned_account_is_code_40300_at_listing_and_login(site):
    site.configure(ban_accounts=["demo3"])
    api = logged_in(site, "demo3")
    body = api.page("美妆").json()
    assert body["code"] == 40300 and body["msg"] == "账号已封禁"
    assert body["reason"] == "listed in ban_accounts"
    assert api.page("美妆").json()["code"] == 40101  # the ban dropped the token
    assert Api(site).login("demo3").json() == {
        "code": 40300, "msg": "账号已封禁", "reason": "listed in ban_accounts"}


@pytest.mark.parametrize("size", [None, 7, 100])
def test_walking_every_cursor_gives_exactly_the_truth(site, size):
    api = logged_in(site)
    rows, pages = api.walk("美妆", size)
    assert rows == expected_rows("美妆", pages=PAGES)
    assert rows == site.truth("美妆")
    assert pages == -(-len(rows) // (size or 20))


def test_rows_are_those_of_the_v1_api(site):
    api = logged_in(site)
    first = api.page("游戏").json()["data"]
    v1 = site.logged_in("demo2").listing("游戏", 1).json()
    assert first["items"] == v1["items"]
    second = api.page("游戏", first["next_cursor"]).json()["data"]
    assert second["items"] == site.logged_in("demo2").listing("游戏", 2).json()["items"]


def test_the_last_page_has_no_cursor(site):
    api = logged_in(site)
    body = api.page("科技", size=100).json()
    for _ in range(3):
        body = api.page("科技", body["data"]["next_cursor"], size=100).json()
    assert body["data"]["has_more"] is False
    assert body["data"]["next_cursor"] is None
    assert len(body["data"]["items"]) == 100


def _edited(cursor: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[8] ^= 0x01  # the low byte of the position: "skip ahead one row"
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_forged_edited_or_foreign_cursors_are_code_40011(site):
    api = logged_in(site)
    cursor = api.page("美妆").json()["data"]["next_cursor"]
    for bad in ("bm90LWEtY3Vyc29y", _edited(cursor), "x" * 500, "页码=2"):
        assert api.page("美妆", bad).json() == {"code": 40011, "msg": "bad cursor"}, bad
    assert api.page("游戏", cursor).json()["code"] == 40011  # bound to its domain
    assert api.page("美妆", cursor).json()["code"] == 0  # the genuine one still works
    stats = site.admin_stats()
    assert stats["bad_cursors"] == 5
    assert stats["accounts"]["demo1"]["requests"] == 2  # refused cursors are not served


def test_other_refusals_are_codes_too(site):
    api = logged_in(site)
    assert api.page("不存在").json()["code"] == 40400
    for size in (0, 101, "x"):
        assert api.page("美妆", size=size).json()["code"] == 40000


def test_missing_wrong_or_cookie_tokens_are_code_40101(site):
    api = Api(site)
    assert api.page("美妆").json() == {"code": 40101, "msg": "token expired"}
    api.token = "not-a-token"
    assert api.page("美妆").json()["code"] == 40101
    browser = site.logged_in("demo1")
    api.token = browser.cookies["sid"]  # a form login's session is not an API token
    assert api.page("美妆").json()["code"] == 40101
    assert site.admin_stats()["login_required"] == 3


def test_expired_cursors_and_tokens(start_sandbox):
    server = start_sandbox(api="token-cursor", cursor_ttl=1, session_ttl=2)
    api = logged_in(server)
    assert api.login("demo1").json()["data"]["expires_in"] == 2
    cursor = api.page("美妆").json()["data"]["next_cursor"]
    assert api.page("美妆", cursor).json()["code"] == 0
    time.sleep(1.1)
    assert api.page("美妆", cursor).json() == {"code": 40010, "msg": "cursor expired"}
    assert server.admin_stats()["cursor_expired"] == 1
    fresh = api.page("美妆").json()["data"]["next_cursor"]  # restart from the first page
    assert api.page("美妆", fresh).json()["code"] == 0
    time.sleep(1.0)
    assert api.page("美妆").json() == {"code": 40101, "msg": "token expired"}
    assert api.login("demo1").json()["code"] == 0  # a fresh login works again
    assert api.page("美妆").json()["code"] == 0


def test_rate_limit_is_code_42900_with_retry_after_in_the_body(site):
    site.configure(rate_limit=1, retry_after=3)
    api = logged_in(site)
    assert api.page("美妆").json()["code"] == 0
    reply = api.page("美妆")
    assert reply.status == 200
    assert reply.json() == {"code": 42900, "msg": "操作太频繁", "retry_after": 3}
    assert site.admin_stats()["accounts"]["demo1"]["rate_limited"] == 1


def test_daily_cap_captcha_server_errors_and_truncation(site):
    site.configure(daily_page_cap=1)
    api = logged_in(site)
    assert api.page("美妆").json()["code"] == 0
    assert api.page("美妆").json() == {"code": 42901, "msg": "今日访问次数已达上限"}

    site.reset()
    site.configure(captcha_rate=1.0)
    api = logged_in(site)
    body = api.page("美妆").json()
    assert body["code"] == 40302 and body["msg"] == "请完成安全验证"
    verify = body["verify_url"]
    assert verify.startswith(site.url + "/api/v2/verify?ticket=")
    assert 'data-code="E_CAPTCHA"' in site.client().get(verify[len(site.url):]).text

    site.reset()
    site.configure(error_rate=1.0)
    api = logged_in(site)
    reply = api.page("美妆")
    assert reply.status in (500, 502, 503)
    assert reply.json()["code"] == 50000

    site.reset()
    site.configure(malformed_rate=1.0)
    api = logged_in(site)
    reply = api.page("美妆")
    assert reply.status == 200
    prefix = b'{"code":0,"data":{"items":['
    assert reply.body[: len(prefix)] == prefix[: len(reply.body)]
    assert not _parses(reply.body)
    assert site.admin_stats()["accounts"]["demo1"]["malformed"] == 1


def test_a_shifting_listing_neither_hides_nor_repeats_rows(site):
    site.configure(shift_every=3)
    api = logged_in(site)
    for _ in range(6):  # requests 3 and 6 insert two rows at the top
        api.page("美妆")
    rows, pages = api.walk("美妆")  # requests 7..27 insert seven more while it walks
    assert [r["uid"] for r in rows[:2]] == ["new-mz-000002", "new-mz-000001"]
    assert rows[2:] == expected_rows("美妆", pages=PAGES)
    assert pages == 21
    assert len(site.admin_stats()["inserted"]["美妆"]) == 9


def test_the_form_page_style_stays_as_it_was(site, sandbox):
    assert site.admin_stats()["api"] == "token-cursor"
    assert sandbox.admin_stats()["api"] == "form-page"
    reply = sandbox.client().request("POST", "/api/v2/login",
                                     json_body={"username": "demo1", "password": "sandbox-demo1"})
    assert reply.status == 404
    assert site.logged_in("demo1").listing("美妆", 2).json()["items"] == site.truth("美妆", 2, 2)


def _parses(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:  # a cut inside a UTF-8 sequence is a UnicodeDecodeError
        return False
    return True


def _raw_post(server: SandboxServer, path: str, body: bytes) -> Reply:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()
