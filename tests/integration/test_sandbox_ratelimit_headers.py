"""``--rate-limit-headers`` over real HTTP: every listing answer of an account, 200 and 429, JSON,
HTML and the token-cursor API, carries the IETF draft's RateLimit-* headers; off, none does."""
from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from tests.fixtures.sandbox import Reply, SandboxClient, SandboxServer

pytestmark = pytest.mark.timeout(60)
NAMES = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


def limits(reply: Reply) -> tuple[str | None, ...]:
    return tuple(reply.header(name) for name in NAMES)


@pytest.fixture
def site(sandbox: SandboxServer):
    sandbox.reset()
    yield sandbox
    sandbox.reset()


def test_off_by_default_nothing_changes(site):
    site.configure(rate_limit=1, retry_after=1)
    client = site.logged_in("demo1")
    replies = [client.listing("美妆", 1, form) for form in ("json", "html", "json")]
    assert [r.status for r in replies] == [200, 429, 429]
    assert replies[1].header("Retry-After") == "1"
    for reply in replies:
        assert not [name for name in reply.headers if name.lower().startswith("ratelimit")]
    assert site.admin_stats()["knobs"]["rate_limit_headers"] is False


def test_form_page_answers_carry_the_bucket(start_sandbox):
    server = start_sandbox(rate_limit=2, retry_after=1, rate_limit_headers=True)
    client = server.logged_in("demo1")
    first, second = client.listing("美妆", 1), client.listing("美妆", 2, "html")
    limited = client.listing("美妆", 3)
    limited_html = client.listing("美妆", 3, "html")
    assert [r.status for r in (first, second, limited, limited_html)] == [200, 200, 429, 429]
    assert limits(first) == ("2", "1", "0", "2;w=1")
    assert limits(second) == ("2", "0", "1", "2;w=1")
    assert limits(limited) == ("2", "0", "1", "2;w=1")
    assert limited.header("Retry-After") == "1"
    assert limits(limited_html) == ("2", "0", "1", "2;w=1")
    # another account has its own bucket; pages that never reach the limiter carry nothing
    assert limits(server.logged_in("demo2").listing("美妆")) == ("2", "1", "0", "2;w=1")
    unknown = client.get("/api/v1/influencers", domain="no-such-domain")
    assert unknown.status == 404 and unknown.header("RateLimit-Limit") is None
    time.sleep(1.1)  # the window is over and both tokens are back
    assert limits(client.listing("美妆", 3)) == ("2", "1", "0", "2;w=1")
    assert server.admin_stats()["accounts"]["demo1"]["rate_limited"] == 2


def test_a_slow_bucket_says_how_long_until_the_next_token(site):
    knobs = site.configure(rate_limit=0.5, retry_after=1, rate_limit_headers=True)  # at runtime
    assert knobs["rate_limit_headers"] is True
    client = site.logged_in("demo3")
    served, limited = client.listing("美妆"), client.listing("美妆")
    assert (served.status, limited.status) == (200, 429)
    assert limits(served) == ("1", "0", "2", "1;w=2")
    # Retry-After closes the window after 1 s, but the token is only back after 2
    assert limited.header("Retry-After") == "1"
    assert limits(limited) == ("1", "0", "2", "1;w=2")


def test_token_cursor_answers_carry_them_too(token_cursor_site):
    token_cursor_site.configure(rate_limit=1, retry_after=3, rate_limit_headers=True)
    http = SandboxClient(token_cursor_site.url)
    login = http.request("POST", "/api/v2/login",
                         json_body={"username": "demo1", "password": "sandbox-demo1"})
    assert login.header("RateLimit-Limit") is None  # logins are not limited
    headers = {"X-Auth-Token": login.json()["data"]["token"]}
    path = "/api/v2/influencers?" + urlencode({"domain": "美妆"})
    served = http.request("GET", path, headers=headers)
    limited = http.request("GET", path, headers=headers)
    assert (served.status, served.json()["code"]) == (200, 0)
    assert limits(served) == ("1", "0", "1", "1;w=1")
    assert (limited.status, limited.json()["code"], limited.json()["retry_after"]) == (200, 42900, 3)
    assert limits(limited) == ("1", "0", "3", "1;w=1")
