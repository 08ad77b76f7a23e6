"""Account linking (``python -m sandbox --link-accounts``) over real HTTP, in both API styles:
accounts seen on one client address or User-Agent within the window are linked and the later
one is banned with "账号关联"; accounts behind their own proxy and User-Agent are not."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from parsel import Selector

from tests.fixtures.sandbox import Reply, SandboxServer, launch_sandbox

pytestmark = pytest.mark.timeout(60)
STYLES = ("v1", "v2")
LINKED = "账号关联"
V1_BANNED = {"error": {"code": "E_BANNED", "message": "账号已被封禁"}}
V2_BANNED = {"code": 40300, "msg": "账号已封禁", "reason": LINKED}


@pytest.fixture(scope="module")
def linking_server() -> Iterator[SandboxServer]:
    server = launch_sandbox(api="token-cursor", link_accounts=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def site(linking_server: SandboxServer) -> Iterator[SandboxServer]:
    linking_server.reset()
    yield linking_server
    linking_server.reset()


def html_code(reply: Reply) -> str | None:
    return Selector(text=reply.text).css(".error::attr(data-code)").get()


class Agent:
    """One account in one API style (v1: form login and /api/v1; v2: /api/v2 and a token),
    with ``SandboxClient`` options (user_agent, proxy). ``login()`` and ``listing()`` check the
    exact shape of a ban and return "ok", "banned" or (listing only) "logged_out"."""

    def __init__(self, server: SandboxServer, style: str, username: str, **options: Any) -> None:
        self.http = server.client(**options)
        self.style = style
        self.username = username
        self.token: str | None = None

    def login(self) -> str:
        if self.style == "v1":
            reply = self.http.login(self.username)
            if reply.status == 302:
                return "ok"
            assert (reply.status, html_code(reply)) == (403, "E_BANNED"), reply.text[:300]
            return "banned"
        reply = self.http.request("POST", "/api/v2/login", json_body={
            "username": self.username, "password": f"sandbox-{self.username}"})
        body = reply.json()
        assert reply.status == 200
        if body["code"] == 0:
            self.token = body["data"]["token"]
            return "ok"
        assert body == V2_BANNED
        return "banned"

    def listing(self, domain: str = "美妆") -> str:
        if self.style == "v1":
            reply = self.http.listing(domain)
            if reply.status == 200:
                return "ok"
            if reply.status == 401:
                return "logged_out"
            assert (reply.status, reply.json()) == (403, V1_BANNED)
            return "banned"
        reply = self.http.request("GET", f"/api/v2/influencers?{urlencode({'domain': domain})}",
                                  headers={"X-Auth-Token": self.token or ""})
        body = reply.json()
        assert reply.status == 200
        if body["code"] == 0:
            return "ok"
        if body["code"] == 40101:
            return "logged_out"
        assert body == V2_BANNED
        return "banned"


def accounts(site: SandboxServer) -> dict[str, dict[str, Any]]:
    return site.admin_stats()["accounts"]


@pytest.mark.parametrize("style", STYLES)
def test_accounts_on_one_address_are_linked_and_the_later_one_banned(site, style):
    first = Agent(site, style, "demo1")
    assert first.login() == "ok"
    assert first.listing() == "ok"
    second = Agent(site, style, "demo2")
    assert second.login() == "banned"
    assert second.login() == "banned"  # the ban stays
    assert first.listing() == "ok"  # the established account is only flagged
    stats = accounts(site)
    assert stats["demo2"]["banned"]
    assert stats["demo2"]["ban_reason"] == LINKED
    assert stats["demo2"]["linked_to"] == ["demo1"]
    assert stats["demo2"]["linked_on"] == ["address"]
    assert stats["demo2"]["addresses"] == []  # the linking request is not recorded
    assert not stats["demo1"]["banned"]
    assert stats["demo1"]["linked_from"] == ["demo2"]
    assert stats["demo1"]["addresses"] == ["127.0.0.1"]
    assert stats["demo1"]["user_agents"] == []  # the plain client sends none


@pytest.mark.parametrize("style", STYLES)
def test_one_proxy_and_user_agent_each_links_no_one(site, start_proxy, style):
    agents = [Agent(site, style, f"demo{i}", proxy=start_proxy(source=f"127.0.0.{i + 1}").url,
                    user_agent=f"Mozilla/5.0 identity-{i}") for i in (1, 2, 3)]
    assert [agent.login() for agent in agents] == ["ok"] * 3
    domains = ("美妆", "游戏", "科技")
    for _ in range(3):
        assert [agent.listing(d) for agent, d in zip(agents, domains, strict=True)] == ["ok"] * 3
    stats = accounts(site)
    for i in (1, 2, 3):
        counters = stats[f"demo{i}"]
        assert counters["addresses"] == [f"127.0.0.{i + 1}"]
        assert counters["user_agents"] == [f"Mozilla/5.0 identity-{i}"]
        assert not counters["banned"]
        assert counters["linked_to"] == counters["linked_from"] == []


@pytest.mark.parametrize("style", STYLES)
def test_a_shared_user_agent_links_accounts_on_different_addresses(site, start_proxy, style):
    shared = "Mozilla/5.0 (Windows NT 10.0) same-browser"
    first = Agent(site, style, "demo1", proxy=start_proxy(source="127.0.0.2").url,
                  user_agent=shared)
    second = Agent(site, style, "demo2", proxy=start_proxy(source="127.0.0.3").url,
                   user_agent="Mozilla/5.0 (Macintosh) other-browser")
    assert first.login() == second.login() == "ok"
    assert first.listing() == second.listing() == "ok"
    second.http.user_agent = shared  # the same browser profile behind another proxy
    assert second.listing() == "banned"
    assert second.listing() == "logged_out"  # its session went with the ban
    assert second.login() == "banned"
    assert first.listing() == "ok"
    stats = accounts(site)
    assert stats["demo2"]["ban_reason"] == LINKED
    assert stats["demo2"]["linked_to"] == ["demo1"]
    assert stats["demo2"]["linked_on"] == ["user_agent"]
    assert stats["demo2"]["addresses"] == ["127.0.0.3"]  # seen before the link
    assert stats["demo1"]["linked_from"] == ["demo2"]
    assert not stats["demo1"]["banned"]


@pytest.mark.parametrize("style", STYLES)
def test_identities_are_forgotten_after_the_window(site, style):
    site.configure(link_window=1)
    first = Agent(site, style, "demo1", user_agent="same")
    assert first.login() == "ok"
    assert first.listing() == "ok"
    time.sleep(1.1)
    second = Agent(site, style, "demo2", user_agent="same")
    assert second.login() == "ok"
    assert second.listing() == "ok"
    stats = accounts(site)
    assert stats["demo1"]["addresses"] == stats["demo1"]["user_agents"] == []
    assert (stats["demo2"]["addresses"], stats["demo2"]["user_agents"]) == (["127.0.0.1"], ["same"])
    assert not stats["demo2"]["banned"]
    assert first.listing() == "banned"  # now demo1 is the later one on that address


def test_browser_rendered_pages_count_the_same(site, start_proxy):
    """The /app/square shell and /square pages link like the API calls the page script makes."""
    browser = "Mozilla/5.0 Chrome/126"
    first = site.logged_in("demo1", proxy=start_proxy(source="127.0.0.2").url, user_agent=browser)
    assert first.listing("美妆", 1, "app").status == 200  # the shell …
    assert first.listing("美妆", 1, "json").status == 200  # … and the fetch its script makes
    second_proxy = start_proxy(source="127.0.0.3")
    second = site.logged_in("demo2", proxy=second_proxy.url, user_agent="Mozilla/5.0 Firefox/128")
    assert second.get("/square").status == 200
    second.user_agent = browser
    shell = second.listing("美妆", 1, "app")
    assert (shell.status, html_code(shell)) == (403, "E_BANNED")
    third = site.logged_in("demo3", proxy=start_proxy(source="127.0.0.4").url, user_agent="agent-3")
    moved = site.client(proxy=second_proxy.url, user_agent="agent-3")  # demo3 on demo2's address
    moved.cookies = dict(third.cookies)
    page = moved.listing("游戏", 1, "html")
    assert (page.status, html_code(page)) == (403, "E_BANNED")
    stats = accounts(site)
    assert (stats["demo2"]["linked_to"], stats["demo2"]["linked_on"]) == (["demo1"], ["user_agent"])
    assert (stats["demo3"]["linked_to"], stats["demo3"]["linked_on"]) == (["demo2"], ["address"])
    assert stats["demo1"]["linked_from"] == ["demo2"]
    assert stats["demo2"]["linked_from"] == ["demo3"]  # a banned account's address stays tainted
    assert stats["demo1"]["addresses"] == ["127.0.0.2"]
    assert stats["demo1"]["user_agents"] == [browser]


def test_forwarded_headers_are_never_trusted(site, start_proxy):
    first = site.logged_in("demo1", user_agent="agent-1")
    assert first.listing("美妆").status == 200
    second = site.logged_in("demo2", proxy=start_proxy(source="127.0.0.2").url,
                            user_agent="agent-2")
    spoofed = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1",
               "Forwarded": "for=127.0.0.1"}
    path = "/api/v1/influencers?" + urlencode({"domain": "美妆"})
    assert second.request("GET", path, headers=spoofed).status == 200
    stats = accounts(site)
    assert stats["demo2"]["addresses"] == ["127.0.0.2"]
    assert not stats["demo2"]["banned"]


def test_reset_forgets_identities_and_links(site):
    assert Agent(site, "v1", "demo1").login() == "ok"
    assert Agent(site, "v1", "demo2").login() == "banned"
    site.reset()
    stats = accounts(site)
    assert not stats["demo2"]["banned"]
    assert stats["demo1"]["addresses"] == stats["demo2"]["linked_to"] == []
    assert Agent(site, "v1", "demo2").login() == "ok"


def test_linking_is_off_unless_switched_on(sandbox):
    sandbox.reset()
    try:
        for username in ("demo1", "demo2"):
            assert sandbox.logged_in(username, user_agent="same").listing("美妆").status == 200
        stats = accounts(sandbox)
        assert stats["demo2"]["addresses"] == stats["demo2"]["user_agents"] == []
        assert not stats["demo2"]["banned"]
        sandbox.configure(link_accounts=True)  # a knob: switched on at runtime
        assert sandbox.logged_in("demo3").listing("美妆").status == 200
        assert sandbox.client().login("demo4").status == 403
        assert accounts(sandbox)["demo4"]["linked_to"] == ["demo3"]
    finally:
        sandbox.reset()
    assert sandbox.admin_stats()["knobs"]["link_accounts"] is False
