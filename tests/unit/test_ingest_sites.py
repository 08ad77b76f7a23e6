"""The reference platform's adapter on pages saved from the real sandbox (tests/unit/pages/).

The pages were fetched with curl and Chromium from `python -m sandbox` (seed 42): listings in
all three forms, the hostile nicknames (quotes, newlines, zero-width characters, 300+
characters, markup), and every misbehaviour (captcha, 429, daily cap, ban, 5xx, cut bodies).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from scrapy.http import HtmlResponse, Request, TextResponse

from influencers.core.errors import ConfigError
from influencers.sites.base import (
    AdapterError,
    MalformedPage,
    Outcome,
    SiteAdapter,
    adapter_code,
    load_adapter,
    pages_with_cursors,
    parse_retry_after,
)
from influencers.sites.sandbox import SandboxAdapter

PAGES = Path(__file__).with_name("pages")
BASE = "http://127.0.0.1:8800"
GAME = quote("游戏")


@pytest.fixture
def adapter() -> SandboxAdapter:
    return SandboxAdapter(BASE)


def saved(name: str, path: str, status: int = 200, headers: dict[str, str] | None = None) -> TextResponse:
    body = (PAGES / name).read_bytes()
    url = BASE + path
    all_headers = dict(headers or {})
    if name.endswith(".json"):
        all_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return TextResponse(url, status=status, body=body, headers=all_headers, encoding="utf-8")
    all_headers.setdefault("Content-Type", "text/html; charset=utf-8")
    return HtmlResponse(url, status=status, body=body, headers=all_headers, encoding="utf-8")


def api(name: str, page: int = 1, status: int = 200, **kw) -> TextResponse:
    return saved(name, f"/api/v1/influencers?domain={GAME}&page={page}", status, **kw)


def square(name: str, page: int = 1, status: int = 200, **kw) -> TextResponse:
    return saved(name, f"/square?domain={GAME}&page={page}", status, **kw)


def app(name: str, page: int = 1) -> TextResponse:
    return saved(name, f"/app/square?domain={GAME}&page={page}")


def json_rows(name: str) -> list[dict]:
    return json.loads((PAGES / name).read_text(encoding="utf-8"))["items"]


# -- the three listing forms carry the same rows -----------------------------------------------


def test_json_page_parses_to_the_api_rows(adapter: SandboxAdapter) -> None:
    response = api("listing_page1.json")
    assert adapter.classify(response).ok
    page = adapter.parse_listing(response, 1)
    assert page.rows == json_rows("listing_page1.json")
    assert (page.page, page.has_more, page.total_pages) == (1, True, 3)


@pytest.mark.parametrize(
    ("html", "js", "page_no"),
    [
        ("listing_page1.html", "app_rendered_page1.html", 1),
        ("hostile_page6.html", None, 6),  # zero-width characters and a BOM inside a nickname
        ("hostile_page8.html", None, 8),  # a nickname of 300+ characters
        ("listing_page3_last.html", None, 3),  # a nickname with newlines; the last page
    ],
)
def test_html_and_js_pages_give_exactly_the_json_rows(
    adapter: SandboxAdapter, html: str, js: str | None, page_no: int
) -> None:
    expected = json_rows(html.replace(".html", ".json"))
    response = square(html, page_no)
    assert adapter.classify(response).ok
    assert adapter.parse_listing(response, page_no).rows == expected
    if js:
        rendered = app(js, page_no)
        assert adapter.classify(rendered).ok
        assert adapter.parse_listing(rendered, page_no).rows == expected


def test_markup_in_a_nickname_stays_text(adapter: SandboxAdapter) -> None:
    response = saved("markup_page1.html", f"/square?domain={quote('穿搭')}&page=1")
    rows = adapter.parse_listing(response, 1).rows
    assert rows == json_rows("markup_page1.json")
    assert any("<script>" in row["nickname"] for row in rows)


def test_hostile_nicknames_survive_html(adapter: SandboxAdapter) -> None:
    nicknames = [r["nickname"] for r in adapter.parse_listing(square("hostile_page6.html", 6), 6).rows]
    assert any("\u200b" in n and "\ufeff" in n for n in nicknames)
    long_names = [r["nickname"] for r in adapter.parse_listing(square("hostile_page8.html", 8), 8).rows]
    assert max(len(n) for n in long_names) > 300
    last = [r["nickname"] for r in adapter.parse_listing(square("listing_page3_last.html", 3), 3).rows]
    assert any("\n" in n for n in last)


def test_end_of_listing(adapter: SandboxAdapter) -> None:
    for response in (api("listing_page3_last.json", 3), square("listing_page3_last.html", 3)):
        page = adapter.parse_listing(response, 3)
        assert (page.has_more, page.total_pages, len(page.rows)) == (False, 3, 20)
    beyond = adapter.parse_listing(api("listing_page4_beyond.json", 4), 4)
    assert (beyond.rows, beyond.has_more) == ([], False)


# -- classification of misbehaviour ------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "outcome", "code"),
    [
        (lambda: api("captcha.json"), Outcome.CAPTCHA, "E_CAPTCHA"),
        (lambda: square("captcha.html"), Outcome.CAPTCHA, "E_CAPTCHA"),
        (lambda: api("daily_cap.json", status=403), Outcome.DAILY_CAP, "E_DAILY_CAP"),
        (lambda: square("daily_cap.html", status=403), Outcome.DAILY_CAP, "E_DAILY_CAP"),
        (lambda: api("banned.json", status=403), Outcome.BANNED, "E_BANNED"),
        (lambda: api("server_error.json", status=500), Outcome.SERVER_ERROR, "E_SERVER"),
        (lambda: square("server_error.html", status=502), Outcome.SERVER_ERROR, "E_SERVER"),
        (lambda: api("malformed.json"), Outcome.MALFORMED, None),
        (lambda: square("malformed.html"), Outcome.MALFORMED, None),
        (lambda: square("malformed2.html", 2), Outcome.MALFORMED, None),
        (lambda: api("unknown_domain.json", status=404), Outcome.UNKNOWN_DOMAIN, "E_UNKNOWN_DOMAIN"),
        (lambda: api("login_required.json", status=401), Outcome.LOGIN_REQUIRED, "E_LOGIN_REQUIRED"),
        (lambda: app("app_rendered_error.html"), Outcome.UNKNOWN_DOMAIN, "E_UNKNOWN_DOMAIN"),
        (lambda: app("app_shell.html"), Outcome.MALFORMED, None),  # the script never ran
    ],
)
def test_classify(adapter: SandboxAdapter, response, outcome: Outcome, code: str | None) -> None:
    verdict = adapter.classify(response())
    assert verdict.outcome is outcome
    assert verdict.code == code


def test_daily_cap_keeps_the_platform_message(adapter: SandboxAdapter) -> None:
    verdict = adapter.classify(square("daily_cap.html", status=403))
    assert "今日访问次数已达上限" in verdict.reason


def test_rate_limit_reads_retry_after(adapter: SandboxAdapter) -> None:
    for response in (api("rate_limited.json", status=429, headers={"Retry-After": "3"}),
                     square("rate_limited.html", status=429, headers={"Retry-After": "3"})):
        verdict = adapter.classify(response)
        assert (verdict.outcome, verdict.retry_after) == (Outcome.RATE_LIMITED, 3.0)


def test_expired_session_redirect_and_browser_landing(adapter: SandboxAdapter) -> None:
    redirect = HtmlResponse(BASE + f"/square?domain={GAME}&page=1", status=302, body=b"",
                            headers={"Location": "/login?next=%2Fsquare"})
    assert adapter.classify(redirect).outcome is Outcome.LOGIN_REQUIRED
    landed = saved("login_form.html", "/login?next=%2Fapp%2Fsquare")
    assert adapter.classify(landed).outcome is Outcome.LOGIN_REQUIRED


def test_malformed_pages_do_not_parse(adapter: SandboxAdapter) -> None:
    for response in (api("malformed.json"), square("malformed.html"), square("malformed2.html", 2),
                     app("app_shell.html")):
        with pytest.raises(MalformedPage):
            adapter.parse_listing(response, 1)


# -- login -------------------------------------------------------------------------------------


def test_login_posts_the_csrf_token(adapter: SandboxAdapter) -> None:
    form_request = adapter.login_form_request()
    assert form_request.url == BASE + "/login"
    form = saved("login_form.html", "/login")
    token = form.css("input[name=csrf_token]::attr(value)").get()
    submit = adapter.login_submit_request("demo1", "sandbox-demo1", form)
    assert submit.method == "POST" and submit.url == BASE + "/login"
    body = submit.body.decode()
    assert f"csrf_token={token}" in body and "username=demo1" in body
    assert "sandbox-demo1" not in repr(submit)  # the request's repr (what logs show) has no password


def test_login_without_a_form_is_malformed(adapter: SandboxAdapter) -> None:
    with pytest.raises(MalformedPage):
        adapter.login_submit_request("demo1", "x", saved("captcha.html", "/login"))


def test_check_login(adapter: SandboxAdapter) -> None:
    ok = TextResponse(BASE + "/login", status=302, body=b"",
                      headers={"Location": "/square", "Set-Cookie": "sid=abc; HttpOnly; Path=/"})
    assert adapter.check_login(ok).ok
    assert adapter.session_cookies(ok) == {"sid": "abc"}
    bad = saved("login_bad_credentials.html", "/login", status=401)
    assert adapter.check_login(bad).outcome is Outcome.BAD_CREDENTIALS
    banned = saved("login_banned.html", "/login", status=403)
    assert adapter.check_login(banned).outcome is Outcome.BANNED
    csrf = saved("login_csrf.html", "/login", status=403)
    assert adapter.check_login(csrf).outcome is Outcome.LOGIN_REQUIRED  # start the login over


# -- requests and loading ----------------------------------------------------------------------


def test_listing_requests_per_render_mode(adapter: SandboxAdapter) -> None:
    json_request = adapter.listing_request("游戏", 2, "json")
    assert json_request.url == f"{BASE}/api/v1/influencers?domain={GAME}&page=2"
    html_request = adapter.listing_request("游戏", 2, "html")
    assert html_request.url == f"{BASE}/square?domain={GAME}&page=2"
    js_request = adapter.listing_request("游戏", 2, "js")
    assert js_request.url == f"{BASE}/app/square?domain={GAME}&page=2"
    assert js_request.meta["playwright"] is True
    assert not json_request.meta.get("playwright") and not html_request.meta.get("playwright")
    with pytest.raises(ValueError, match="json, html, js"):
        adapter.listing_request("游戏", 1, "pdf")


def test_load_adapter() -> None:
    adapter = load_adapter("influencers.sites.sandbox.SandboxAdapter", BASE + "/")
    assert isinstance(adapter, SiteAdapter) and adapter.base_url == BASE
    with pytest.raises(TypeError):
        load_adapter("scrapy.Request", BASE)
    assert isinstance(Request, type)


def test_parse_retry_after() -> None:
    assert parse_retry_after(b"7") == 7.0
    assert parse_retry_after(None, default=2.0) == 2.0
    assert parse_retry_after("garbage", default=1.5) == 1.5
    assert parse_retry_after("Fri, 27 Nov 2026 20:00:10 GMT", now=1_795_809_600.0) == pytest.approx(10.0)


class SignedAdapter(SandboxAdapter):
    """An adapter built like a Scrapy component: a setting of its own, a middleware of its own."""

    downloader_middlewares = {"tests.unit.test_ingest_sites.SignatureMiddleware": 640}

    def __init__(self, base_url: str, app_key: str) -> None:
        super().__init__(base_url)
        self.app_key = app_key

    @classmethod
    def from_crawler(cls, crawler: Any, base_url: str) -> SignedAdapter:
        return cls(base_url, crawler.settings.get("SIGNED_APP_KEY"))


class SignatureMiddleware:
    pass


def test_an_adapter_is_built_from_the_crawler_and_adds_its_middlewares() -> None:
    from scrapy.utils.test import get_crawler

    from influencers.spiders.influencers import InfluencersSpider

    crawler = get_crawler(InfluencersSpider, settings_dict={
        "SITE_ADAPTER": "tests.unit.test_ingest_sites.SignedAdapter", "SIGNED_APP_KEY": "app-1",
        "DOWNLOADER_MIDDLEWARES": {"some.Other": 100}})
    adapter = load_adapter("tests.unit.test_ingest_sites.SignedAdapter", BASE, crawler)
    assert isinstance(adapter, SignedAdapter) and adapter.app_key == "app-1" and adapter.base_url == BASE
    crawler.settings.frozen = False  # as when Scrapy builds the spider: settings freeze after that
    InfluencersSpider.from_crawler(crawler)
    assert crawler.settings.getdict("DOWNLOADER_MIDDLEWARES") == {
        "some.Other": 100, "tests.unit.test_ingest_sites.SignatureMiddleware": 640}


def test_adapter_code_names_the_method_and_the_adapters_line() -> None:
    def parse() -> None:
        {}["data"]  # noqa: B018 - the adapter's bug

    with pytest.raises(AdapterError) as caught, adapter_code("parse_listing"):
        parse()
    assert caught.value.method == "parse_listing"
    assert str(caught.value).startswith("parse_listing: KeyError: 'data' at test_ingest_sites.py:")
    with pytest.raises(MalformedPage), adapter_code("parse_listing"):  # the page's problem: it stays so
        raise MalformedPage("cut short")


def test_pagination_is_declared_and_checked() -> None:
    assert pages_with_cursors("influencers.sites.sandbox_token.SandboxTokenAdapter")
    assert not pages_with_cursors("influencers.sites.sandbox.SandboxAdapter")
    with pytest.raises(ConfigError, match="INFLUENCERS_SITE_ADAPTER.*no.such"):
        pages_with_cursors("no.such.Adapter")
    with pytest.raises(ConfigError, match="pagination must be one of page, cursor"):
        pages_with_cursors(f"{__name__}.Scrolling")


class Scrolling(SandboxAdapter):
    pagination = "infinite-scroll"
