"""`SandboxTokenAdapter` against a real ``python -m sandbox --api token-cursor`` over HTTP.

Every request is one the adapter built (its login, its listing requests carrying the session
through `authorize`), sent with http.client; every answer goes back to the adapter as a Scrapy
`TextResponse` with its request attached, as the crawl would hand it over.
"""

from __future__ import annotations

import base64
import http.client
import time
from urllib.parse import urlsplit

import pytest
from scrapy.http import Request, TextResponse
from scrapy.utils.test import get_crawler

from influencers.sites.base import ListingPage, MalformedPage, Outcome, Session
from influencers.sites.sandbox import SandboxAdapter
from influencers.sites.sandbox_token import SandboxTokenAdapter
from tests.fixtures.sandbox import TOKEN_CURSOR_PAGES, SandboxServer

pytestmark = pytest.mark.timeout(120)
PAGES = TOKEN_CURSOR_PAGES
PAGE_SIZE = 20  # the sandbox's default, which /api/v1 pages by too
DOMAIN = "美妆"


@pytest.fixture
def site(token_cursor_site: SandboxServer) -> SandboxServer:
    return token_cursor_site


def fetch(request: Request, cookies: dict[str, str] | None = None) -> TextResponse:
    """Send ``request`` as it is (method, headers, body) and wrap the answer for the adapter."""
    parts = urlsplit(request.url)
    headers = {name.decode("latin-1"): b", ".join(values).decode("latin-1")
               for name, values in request.headers.items()}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(request.method, f"{parts.path}?{parts.query}" if parts.query else parts.path,
                     body=request.body or None, headers=headers)
        reply = conn.getresponse()
        status, reply_headers, body = reply.status, reply.getheaders(), reply.read()
    finally:
        conn.close()
    return TextResponse(request.url, status=status, headers=reply_headers, body=body, request=request)


def login(adapter: SandboxTokenAdapter, username: str = "demo1", password: str | None = None) -> TextResponse:
    assert adapter.login_form_request() is None
    password = f"sandbox-{username}" if password is None else password
    return fetch(adapter.login_submit_request(username, password, None))


def session_of(adapter: SandboxTokenAdapter, username: str = "demo1") -> Session:
    response = login(adapter, username)
    verdict = adapter.check_login(response)
    assert verdict.ok, verdict.reason
    return adapter.open_session(response)


def page_response(adapter: SandboxTokenAdapter, session: Session | None, page: int = 1,
                  cursor: str | None = None, domain: str = DOMAIN) -> TextResponse:
    request = adapter.listing_request(domain, page, "json", cursor)
    if session is not None:
        request = adapter.authorize(request, session)
    return fetch(request)


def walk(adapter: SandboxTokenAdapter, session: Session, domain: str = DOMAIN) -> list[ListingPage]:
    """Every page of ``domain``, each fetched with the cursor the page before gave."""
    pages: list[ListingPage] = []
    cursor = None
    while True:
        response = page_response(adapter, session, len(pages) + 1, cursor, domain)
        verdict = adapter.classify(response)
        assert verdict.ok, verdict.reason
        pages.append(adapter.parse_listing(response, len(pages) + 1))
        if not pages[-1].has_more:
            return pages
        cursor = pages[-1].next_cursor
        assert len(pages) <= PAGES * PAGE_SIZE, "the listing does not end"


def v1_rows(server: SandboxServer, domain: str, page: int) -> list[dict]:
    """Page ``page`` of ``domain`` as the /api/v1 adapter parses it (rows the pipeline gets)."""
    v1 = SandboxAdapter(server.url)
    browser = server.logged_in("demo2")
    response = fetch(v1.listing_request(domain, page, "json"), cookies=browser.cookies)
    assert v1.classify(response).ok
    return v1.parse_listing(response, page).rows


# -- login -------------------------------------------------------------------------------------


def test_login_opens_a_token_session_that_authorizes_listings(site):
    adapter = SandboxTokenAdapter(site.url)
    response = login(adapter)
    assert response.request.method == "POST" and response.request.url == site.url + "/api/v2/login"
    assert adapter.check_login(response).ok
    session = adapter.open_session(response)
    token = response.json()["data"]["token"]
    assert session.headers == {"X-Auth-Token": token} and token not in repr(session)
    assert adapter.classify(page_response(adapter, session)).ok
    assert site.admin_stats()["accounts"]["demo1"]["logins"] == 1


@pytest.mark.parametrize(("username", "password"), [("demo1", "wrong"), ("ghost", "sandbox-ghost")])
def test_bad_credentials(site, username, password):
    verdict = SandboxTokenAdapter(site.url).check_login(login(SandboxTokenAdapter(site.url), username, password))
    assert (verdict.outcome, verdict.code) == (Outcome.BAD_CREDENTIALS, "40100")
    assert "用户名或密码错误" in verdict.reason


def test_a_banned_account_is_banned_at_listing_then_at_login(site):
    site.configure(ban_accounts=["demo3"])
    adapter = SandboxTokenAdapter(site.url)
    session = session_of(adapter, "demo3")  # the ban falls at its first listing request
    verdict = adapter.classify(page_response(adapter, session))
    assert (verdict.outcome, verdict.code) == (Outcome.BANNED, "40300")
    assert "账号已封禁" in verdict.message and "listed in ban_accounts" in verdict.message
    assert adapter.classify(page_response(adapter, session)).outcome is Outcome.LOGIN_REQUIRED  # token dropped
    verdict = adapter.check_login(login(adapter, "demo3"))
    assert (verdict.outcome, verdict.code) == (Outcome.BANNED, "40300")
    assert "listed in ban_accounts" in verdict.message


# -- listings ----------------------------------------------------------------------------------


def test_walking_the_cursors_gives_the_truth_page_by_page_as_v1(site):
    adapter = SandboxTokenAdapter(site.url)
    pages = walk(adapter, session_of(adapter))
    rows = [row for page in pages for row in page.rows]
    assert rows == site.truth(DOMAIN)
    assert len(rows) == PAGES * PAGE_SIZE and len({row["uid"] for row in rows}) == len(rows)
    assert [page.page for page in pages] == list(range(1, PAGES + 1))
    assert all(page.has_more and page.next_cursor for page in pages[:-1])
    assert (pages[-1].has_more, pages[-1].next_cursor) == (False, None)
    for number in (1, 2, PAGES // 2, PAGES):  # page N here is page N of /api/v1, row for row
        assert pages[number - 1].rows == v1_rows(site, DOMAIN, number), number


def test_a_page_size_setting_pages_by_it(site):
    crawler = get_crawler(settings_dict={"SANDBOX_TOKEN_PAGE_SIZE": "7"})
    adapter = SandboxTokenAdapter.from_crawler(crawler, site.url)
    assert "size=7" in adapter.listing_request("游戏", 1, "json").url
    pages = walk(adapter, session_of(adapter), "游戏")
    assert [row for page in pages for row in page.rows] == site.truth("游戏")
    assert len(pages) == -(-PAGES * PAGE_SIZE // 7) and len(pages[-1].rows) == PAGES * PAGE_SIZE % 7


def test_unknown_domain_and_unauthorized_requests(site):
    adapter = SandboxTokenAdapter(site.url)
    verdict = adapter.classify(page_response(adapter, session_of(adapter), domain="不存在"))
    assert (verdict.outcome, verdict.code) == (Outcome.UNKNOWN_DOMAIN, "40400")
    verdict = adapter.classify(page_response(adapter, None))  # no token at all
    assert (verdict.outcome, verdict.code) == (Outcome.LOGIN_REQUIRED, "40101")
    forged = Session(headers={"X-Auth-Token": "not-a-token"})
    assert adapter.classify(page_response(adapter, forged)).outcome is Outcome.LOGIN_REQUIRED


def _edited(cursor: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[8] ^= 0x01  # the low byte of the position: "skip ahead one row"
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_tampered_and_foreign_cursors_mean_start_over(site):
    adapter = SandboxTokenAdapter(site.url)
    session = session_of(adapter)
    first = adapter.parse_listing(page_response(adapter, session), 1)
    for bad, domain in ((_edited(first.next_cursor), DOMAIN), ("bm90LWEtY3Vyc29y", DOMAIN),
                        (first.next_cursor, "游戏")):
        verdict = adapter.classify(page_response(adapter, session, 2, bad, domain))
        assert (verdict.outcome, verdict.code) == (Outcome.CURSOR_EXPIRED, "40011"), (bad, domain)
    assert adapter.classify(page_response(adapter, session, 2, first.next_cursor)).ok
    assert site.admin_stats()["bad_cursors"] == 3


def test_an_expired_cursor_means_start_over(start_sandbox):
    server = start_sandbox(api="token-cursor", pages=PAGES, cursor_ttl=1)
    adapter = SandboxTokenAdapter(server.url)
    session = session_of(adapter)
    first = adapter.parse_listing(page_response(adapter, session), 1)
    time.sleep(1.1)
    verdict = adapter.classify(page_response(adapter, session, 2, first.next_cursor))
    assert (verdict.outcome, verdict.code) == (Outcome.CURSOR_EXPIRED, "40010")
    assert server.admin_stats()["cursor_expired"] == 1
    again = page_response(adapter, session)  # from the start: a fresh first page and cursor
    assert adapter.parse_listing(again, 1).rows == first.rows


def test_an_expired_token_means_log_in_again(start_sandbox):
    server = start_sandbox(api="token-cursor", pages=PAGES, session_ttl=1)
    adapter = SandboxTokenAdapter(server.url)
    session = session_of(adapter)
    assert adapter.classify(page_response(adapter, session)).ok
    time.sleep(1.1)
    verdict = adapter.classify(page_response(adapter, session))
    assert (verdict.outcome, verdict.code) == (Outcome.LOGIN_REQUIRED, "40101")
    assert adapter.classify(page_response(adapter, session_of(adapter))).ok


# -- misbehaviour ------------------------------------------------------------------------------


def test_rate_limit_reads_retry_after_from_the_body(site):
    site.configure(rate_limit=1, retry_after=3)
    adapter = SandboxTokenAdapter(site.url)
    session = session_of(adapter)
    assert adapter.classify(page_response(adapter, session)).ok
    verdict = adapter.classify(page_response(adapter, session))
    assert (verdict.outcome, verdict.code, verdict.retry_after) == (Outcome.RATE_LIMITED, "42900", 3.0)


def test_daily_cap_and_captcha(site):
    site.configure(daily_page_cap=1)
    adapter = SandboxTokenAdapter(site.url)
    session = session_of(adapter)
    assert adapter.classify(page_response(adapter, session)).ok
    verdict = adapter.classify(page_response(adapter, session))
    assert (verdict.outcome, verdict.code) == (Outcome.DAILY_CAP, "42901")
    site.reset()
    site.configure(captcha_rate=1.0)
    verdict = adapter.classify(page_response(adapter, session_of(adapter)))
    assert (verdict.outcome, verdict.code) == (Outcome.CAPTCHA, "40302")


def test_server_errors_and_maintenance(site):
    site.configure(error_rate=1.0)
    adapter = SandboxTokenAdapter(site.url)
    response = page_response(adapter, session_of(adapter))
    verdict = adapter.classify(response)
    assert response.status in (500, 502, 503)
    assert (verdict.outcome, verdict.code) == (Outcome.SERVER_ERROR, "50000")
    site.reset()
    site.configure(maintenance=1.0)
    response = login(adapter)
    assert response.status == 503
    assert adapter.check_login(response).outcome is Outcome.SERVER_ERROR
    assert adapter.classify(page_response(adapter, None)).outcome is Outcome.SERVER_ERROR


def test_a_truncated_body_is_malformed(site):
    site.configure(malformed_rate=1.0)
    adapter = SandboxTokenAdapter(site.url)
    response = page_response(adapter, session_of(adapter))
    assert response.status == 200
    assert adapter.classify(response).outcome is Outcome.MALFORMED
    with pytest.raises(MalformedPage):
        adapter.parse_listing(response, 1)
    assert site.admin_stats()["accounts"]["demo1"]["malformed"] == 1


def test_more_rows_without_a_cursor_is_malformed(site):
    adapter = SandboxTokenAdapter(site.url)
    response = page_response(adapter, session_of(adapter))
    cursor = response.json()["data"]["next_cursor"]
    for edit in (b'"next_cursor":null', b'"next_cursor":""'):
        edited = response.replace(body=response.body.replace(f'"next_cursor":"{cursor}"'.encode(), edit))
        assert edited.body != response.body
        assert adapter.classify(edited).ok  # the answer is whole; the listing in it is not
        with pytest.raises(MalformedPage, match="next_cursor"):
            adapter.parse_listing(edited, 1)
