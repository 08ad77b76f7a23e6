"""Sandbox login over real HTTP: CSRF, credentials, sessions, expiry, process lifecycle."""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from parsel import Selector

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def site(sandbox):
    sandbox.reset()
    yield sandbox
    sandbox.reset()


def error_code(reply) -> str | None:
    return Selector(text=reply.text).css(".error::attr(data-code)").get()


def test_login_form_sets_a_matching_csrf_cookie(site):
    client = site.client()
    reply = client.get("/login")
    assert reply.status == 200
    assert reply.header("Content-Type").startswith("text/html")
    form = Selector(text=reply.text).css("form#login")
    assert form.attrib["method"] == "post"
    assert form.attrib["action"] == "/login"
    assert form.css("input[name=csrf_token]::attr(value)").get() == client.cookies["csrftoken"]
    assert form.css("input[name=username]")
    assert form.css("input[name=password]")


def test_good_login_redirects_to_square_with_an_httponly_sid(site):
    client = site.client()
    reply = client.login("demo1")
    assert reply.status == 302
    assert reply.header("Location") == "/square"
    set_cookie = next(h for h in reply.headers.get_all("Set-Cookie") if h.startswith("sid="))
    assert "HttpOnly" in set_cookie
    assert "Path=/" in set_cookie
    assert client.listing("美妆").status == 200
    assert site.admin_stats()["accounts"]["demo1"]["logins"] == 1


def test_csrf_token_must_match_the_cookie(site):
    client = site.client()
    client.get("/login")
    for token in ("forged", ""):
        reply = client.request("POST", "/login", form={
            "username": "demo1", "password": "sandbox-demo1", "csrf_token": token})
        assert reply.status == 403
        assert error_code(reply) == "E_CSRF"
        assert "sid" not in client.cookies
    fresh = site.client()  # no csrftoken cookie at all
    reply = fresh.request("POST", "/login", form={
        "username": "demo1", "password": "sandbox-demo1", "csrf_token": "x"})
    assert reply.status == 403
    assert error_code(reply) == "E_CSRF"
    assert site.admin_stats()["csrf_failures"] == 3


@pytest.mark.parametrize(("username", "password"),
                         [("demo1", "wrong"), ("nobody", "sandbox-nobody")])
def test_wrong_password_and_unknown_user_get_401(site, username, password):
    client = site.client()
    reply = client.login(username, password)
    assert reply.status == 401
    assert Selector(text=reply.text).css("p.error::attr(data-code)").get() == "E_BAD_CREDENTIALS"
    assert "sid" not in client.cookies


def test_listings_need_a_session(site):
    client = site.client()
    html = client.listing("美妆", 2, "html")
    path = "/square?domain=" + quote("美妆") + "&page=2"
    assert html.status == 302
    assert html.header("Location") == "/login?next=" + quote(path, safe="")
    assert client.listing("美妆", 1, "app").status == 302
    api = client.listing("美妆")
    assert api.status == 401
    assert api.json() == {"error": {"code": "E_LOGIN_REQUIRED", "message": "请先登录"}}
    client.cookies["sid"] = "made-up"
    assert client.listing("美妆").status == 401


def test_login_honours_a_safe_next_and_logout_ends_the_session(site):
    client = site.client()
    form = Selector(text=client.get("/login", next="/square?domain=游戏").text)
    encoded = "/square?domain=" + quote("游戏")
    assert form.css("input[name=next]::attr(value)").get() == encoded
    reply = client.request("POST", "/login", form={
        "username": "demo2", "password": "sandbox-demo2", "next": "/square?domain=游戏",
        "csrf_token": client.cookies["csrftoken"]})
    assert reply.header("Location") == encoded
    assert client.listing("游戏").status == 200
    sid = client.cookies["sid"]
    assert client.get("/logout").status == 302
    client.cookies["sid"] = sid
    assert client.listing("游戏").status == 401
    evil = site.client()
    evil.get("/login")
    reply = evil.request("POST", "/login", form={
        "username": "demo2", "password": "sandbox-demo2", "next": "//evil.invalid/",
        "csrf_token": evil.cookies["csrftoken"]})
    assert reply.header("Location") == "/square"


def test_sessions_expire_after_the_ttl(start_sandbox):
    server = start_sandbox(session_ttl=1)
    client = server.logged_in("demo1")
    assert client.listing("美妆").status == 200
    time.sleep(1.1)
    assert client.listing("美妆").status == 401
    assert client.listing("美妆", 1, "html").header("Location").startswith("/login?next=")
    assert client.login("demo1").status == 302  # a fresh login works again
    assert client.listing("美妆").status == 200


def test_sigterm_stops_cleanly_with_status_0(start_sandbox):
    server = start_sandbox()
    assert server.client().get("/login").status == 200
    assert server.stop() == 0
    assert "Traceback" not in server.log()


def test_accounts_file_replaces_the_demo_accounts(start_sandbox, tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text('[{"username": "运营01", "password": "p@ss word"}]', encoding="utf-8")
    server = start_sandbox(accounts=accounts)
    assert server.client().login("运营01", "p@ss word").status == 302
    assert server.client().login("demo1").status == 401
    assert list(server.admin_stats()["accounts"]) == ["运营01"]
