"""The forward-proxy fixture (tests.fixtures.proxies) over real HTTP: the sandbox sees each
proxy's source address as the client, credentials are demanded, a stopped proxy refuses."""
from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.fixtures.sandbox import SandboxClient, SandboxServer, launch_sandbox

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def recording_server() -> Iterator[SandboxServer]:
    """A sandbox that records its clients' addresses (account linking on)."""
    server = launch_sandbox(link_accounts=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def site(recording_server: SandboxServer) -> Iterator[SandboxServer]:
    recording_server.reset()
    yield recording_server
    recording_server.reset()


def seen(site: SandboxServer, username: str) -> tuple[list[str], list[str]]:
    counters = site.admin_stats()["accounts"][username]
    return counters["addresses"], counters["user_agents"]


def test_the_sandbox_sees_the_proxy_source_as_the_client(site, start_proxy):
    proxy = start_proxy(source="127.0.0.2")
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"
    client = site.logged_in("demo1", proxy=proxy.url, user_agent="identity/1")
    assert client.listing("美妆").status == 200
    assert client.listing("美妆", 2, "html").status == 200
    assert seen(site, "demo1") == (["127.0.0.2"], ["identity/1"])
    assert proxy.forwarded == 4  # GET and POST /login, two listings
    assert proxy.counts() == {"requests": 4, "tunnels": 0, "refused": 0, "failed": 0}
    direct = site.logged_in("demo2", user_agent="identity/2")
    assert direct.listing("美妆").status == 200
    assert seen(site, "demo2") == (["127.0.0.1"], ["identity/2"])


def test_connect_tunnels_leave_from_the_source_address_too(site, start_proxy):
    proxy = start_proxy(source="127.0.0.2")
    client = site.logged_in("demo1", proxy=proxy.url, tunnel=True)
    assert client.listing("美妆").status == 200
    assert seen(site, "demo1") == (["127.0.0.2"], [])
    assert proxy.counts() == {"requests": 0, "tunnels": 3, "refused": 0, "failed": 0}
    assert proxy.forwarded == 3


def test_two_proxies_with_two_sources_are_two_clients(site, start_proxy):
    first, second = start_proxy(source="127.0.0.2"), start_proxy(source="127.0.0.3")
    one = site.logged_in("demo1", proxy=first.url, user_agent="identity/1")
    two = site.logged_in("demo2", proxy=second.url, user_agent="identity/2")
    assert one.listing("美妆").status == two.listing("游戏").status == 200
    assert seen(site, "demo1") == (["127.0.0.2"], ["identity/1"])
    assert seen(site, "demo2") == (["127.0.0.3"], ["identity/2"])
    assert first.forwarded == second.forwarded == 3


def test_missing_or_wrong_credentials_get_407_and_right_ones_pass(site, start_proxy):
    proxy = start_proxy(auth=("crawler", "s3cret:/@ x"))
    assert proxy.url == f"http://crawler:s3cret%3A%2F%40%20x@127.0.0.1:{proxy.port}"
    bare = proxy.url.replace("crawler:s3cret%3A%2F%40%20x@", "")
    wrong = proxy.url.replace("s3cret", "guess")
    for url in (bare, wrong):
        refused = site.client(proxy=url).get("/login")
        assert refused.status == 407
        assert refused.header("Proxy-Authenticate") == 'Basic realm="test proxy"'
        with pytest.raises(OSError, match="407"):
            site.client(proxy=url, tunnel=True).get("/login")
    assert site.client(proxy=proxy.url).get("/login").status == 200
    assert site.client(proxy=proxy.url, tunnel=True).get("/login").status == 200
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
    with opener.open(f"{site.url}/login", timeout=10) as reply:  # credentials from the URL
        assert reply.status == 200
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": wrong}))
    with pytest.raises(urllib.error.HTTPError) as refused_by_urllib:
        opener.open(f"{site.url}/login", timeout=10)
    assert refused_by_urllib.value.code == 407
    refused_by_urllib.value.close()
    assert proxy.counts() == {"requests": 2, "tunnels": 1, "refused": 5, "failed": 0}


def test_a_stopped_proxy_refuses_connections_until_started_again(site, start_proxy):
    proxy = start_proxy()
    url = proxy.url
    client = site.logged_in("demo1", proxy=url)
    proxy.stop()
    assert not proxy.running
    with pytest.raises(ConnectionRefusedError):
        client.listing("美妆")
    with pytest.raises(ConnectionRefusedError):
        site.client(proxy=url, tunnel=True).get("/login")
    proxy.start()
    assert proxy.running
    assert proxy.url == url  # the same port
    assert client.listing("美妆").status == 200  # the session survived, only the proxy was down
    assert proxy.forwarded == 3  # counted across the restart
    proxy.stop()
    proxy.stop()  # idempotent


def test_an_unreachable_target_is_a_502(start_proxy):
    proxy = start_proxy()
    closed = SandboxClient("http://127.0.0.1:9", proxy=proxy.url)  # discard port: nobody there
    reply = closed.get("/")
    assert reply.status == 502
    assert b"cannot reach 127.0.0.1:9" in reply.body
    with pytest.raises(OSError, match="502"):
        SandboxClient("http://127.0.0.1:9", proxy=proxy.url, tunnel=True).get("/")
    assert proxy.counts() == {"requests": 0, "tunnels": 0, "refused": 0, "failed": 2}
