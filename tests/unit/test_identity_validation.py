"""What an account's identity may be: the proxy URL, the user agent and the extra headers, as
the CLI, the API and the store all check them; and the proxy's back-off. Hostile input is refused
with a message that never repeats a proxy URL (it may hold a password) or a header value."""

from __future__ import annotations

import pytest

from influencers.core.account_model import Identity, IdentityView
from influencers.core.errors import InvalidArgument
from influencers.core.identities import (
    MAX_HEADERS,
    PROXY_BACKOFF_FIRST,
    PROXY_BACKOFF_MAX,
    check_headers,
    parse_headers,
    parse_proxy_url,
    parse_user_agent,
    proxy_backoff,
)

SECRET = "s3cr3t-Pw"


@pytest.mark.parametrize(("text", "url", "shown"), [
    ("http://proxy.example:3128", "http://proxy.example:3128", "http://proxy.example:3128"),
    ("HTTP://Proxy.Example.COM:8080/", "http://proxy.example.com:8080", "http://proxy.example.com:8080"),
    ("https://u:p@10.0.0.1:443", "https://u:p@10.0.0.1:443", "https://10.0.0.1:443"),
    ("http://u:p@h", "http://u:p@h:80", "http://h:80"),  # the default port, written out
    ("https://h", "https://h:443", "https://h:443"),
    ("http://user@h:1", "http://user@h:1", "http://h:1"),
    ("http://user:p%40ss%2Fw0rd@h:3128", "http://user:p%40ss%2Fw0rd@h:3128", "http://h:3128"),
    ("http://[::1]:8080", "http://[::1]:8080", "http://[::1]:8080"),
    ("http://[2001:DB8:0:0::1]", "http://[2001:db8::1]:80", "http://[2001:db8::1]:80"),
    ("http://u:p:colon@h:2", "http://u:p:colon@h:2", "http://h:2"),  # a ':' in the password is allowed
])
def test_a_proxy_url_and_what_is_shown_of_it(text, url, shown):
    assert parse_proxy_url(text) == (url, shown)
    assert parse_proxy_url(url) == (url, shown)  # what is stored parses to itself


@pytest.mark.parametrize(("text", "fragment"), [
    (f"socks5://u:{SECRET}@h:1080", "SOCKS proxies are not supported"),
    ("socks4://h:1080", "Scrapy's HTTP downloader"),
    (f"SOCKS5H://u:{SECRET}@h:1080", "SOCKS"),
    (f"ftp://u:{SECRET}@h:21", "http:// or https://"),
    ("h:3128", "not a URL"),
    (f"u:{SECRET}@h:3128", "not a URL"),
    ("", "empty"),
    ("http://", "no host"),
    (f"http://u:{SECRET}@:3128", "no host"),
    (f"http://u:{SECRET}@h:0", "port"),
    (f"http://u:{SECRET}@h:65536", "port"),
    (f"http://u:{SECRET}@h:80x", "port"),
    (f"http://u:{SECRET}@h:", "port"),
    (f"http://u:{SECRET}@h:1:2", "port"),
    (f"http://u:{SECRET}@h:١٢", "printable ASCII"),  # Arabic-Indic digits are digits to int()
    (f"http://u:{SECRET}@h:3128/path", "no path"),
    (f"http://u:{SECRET}@h:3128?x=1", "no path"),
    (f"http://u:{SECRET}@h:3128#frag", "no path"),
    (f"http://u:{SECRET}@h:3128\r\nX-Injected: 1", "printable ASCII"),
    (f"http://u:{SECRET}@h:3128\n", "printable ASCII"),
    (f"http://u:{SECRET}\x00@h:3128", "printable ASCII"),
    (f"http://u:{SECRET}@h:3128\t", "printable ASCII"),
    (f" http://u:{SECRET}@h:3128", "printable ASCII"),
    (f"http://u:{SECRET}@h\u202e:3128", "printable ASCII"),  # bidi override
    (f"http://u:{SECRET}@代理.example:3128", "printable ASCII"),
    (f"http://u:{SECRET}@h@i:3128", "percent-encode"),
    (f"http://:{SECRET}@h:3128", "user before '@' is empty"),
    ("http://@h:3128", "user before '@' is empty"),
    (f"http://u:{SECRET}@[::1:3128", "IPv6"),
    (f"http://u:{SECRET}@[fe80::1%25eth0]:80", "IPv6"),
    (f"http://u:{SECRET}@[::1]x:80", "other than ':port'"),
    (f"http://u:{SECRET}@999.1.1.1:80", "IPv4"),
    (f"http://u:{SECRET}@-h:80", "host name"),
    (f"http://u:{SECRET}@h..x:80", "host name"),
    (f"http://u:{SECRET}@h_x:80", "host name"),
    (f"http://u:{SECRET}@{'a' * 241}:80", "longer than 240"),
    (f"http://u:{SECRET}@h:3128" + "x" * 5000, "longer than 2048"),
])
def test_a_bad_proxy_url_is_refused_without_repeating_it(text, fragment):
    with pytest.raises(InvalidArgument) as error:
        parse_proxy_url(text)
    message = str(error.value)
    assert fragment in message
    assert message.startswith("proxy: ")
    assert SECRET not in message and "\n" not in message


@pytest.mark.parametrize("value", [None, 3128, b"http://h:1"])
def test_a_proxy_url_that_is_not_text_is_refused(value):
    with pytest.raises(InvalidArgument):
        parse_proxy_url(value)


def test_a_user_agent_is_printable_ascii_of_at_most_512():
    assert parse_user_agent("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0") == "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"
    assert parse_user_agent("  ua  ") == "ua"
    assert parse_user_agent("x" * 512) == "x" * 512


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "1 to 512"),
    ("   ", "1 to 512"),
    ("x" * 513, "1 to 512"),
    ("Mozilla\r\nX-Injected: 1", "printable ASCII"),
    ("Mozilla\n", "printable ASCII"),
    ("Mozilla\x00", "printable ASCII"),
    ("Mozilla\t5.0", "printable ASCII"),
    ("Mozilla\x1b]8;;http://evil\x07", "printable ASCII"),
    ("Mozilla\u202e", "printable ASCII"),
    ("浏览器", "printable ASCII"),
    ("Mozilla\udcff", "printable ASCII"),  # a lone surrogate: a byte that was not UTF-8
    (None, "printable ASCII"),
])
def test_a_bad_user_agent_is_refused(text, fragment):
    with pytest.raises(InvalidArgument) as error:
        parse_user_agent(text)
    assert fragment in str(error.value)
    assert str(error.value).startswith("user agent: ")


def test_headers_from_name_value_lines():
    assert parse_headers(["X-Foo: bar", " Accept-Language:  zh-CN,zh;q=0.9 ", "X-Empty-Ok:x"]) == {
        "X-Foo": "bar", "Accept-Language": "zh-CN,zh;q=0.9", "X-Empty-Ok": "x"}
    assert parse_headers([]) == {}
    assert check_headers([("DNT", "1"), ("x-a", "a: b")]) == {"DNT": "1", "x-a": "a: b"}
    assert len(parse_headers([f"X-H{n}: v" for n in range(MAX_HEADERS)])) == MAX_HEADERS


VALUE = "tok-3f9a"


@pytest.mark.parametrize(("lines", "fragment"), [
    ([f"X-Foo {VALUE}"], "'Name: value'"),
    ([f": {VALUE}"], "HTTP header name"),
    ([f"X Foo: {VALUE}"], "HTTP header name"),
    ([f"X-Foo : {VALUE}"], "HTTP header name"),
    ([f"X-Föo: {VALUE}"], "HTTP header name"),
    ([f"X-Foo\r\nX-Bar: {VALUE}"], "HTTP header name"),
    ([f"{'X' * 101}: {VALUE}"], "HTTP header name"),
    ([f"X-Foo: {VALUE}\r\nX-Injected: 1"], "printable ASCII"),
    ([f"X-Foo: {VALUE}\n"], "printable ASCII"),
    ([f"X-Foo: {VALUE}\x00"], "printable ASCII"),
    ([f"X-Foo: {VALUE}\u202e"], "printable ASCII"),
    ([f"X-Foo: 令牌{VALUE}"], "printable ASCII"),
    (["X-Foo:   "], "1 to 1024"),
    ([f"X-Foo: {VALUE}{'v' * 1024}"], "1 to 1024"),
    ([f"Host: {VALUE}"], "set by the session or the transport"),
    ([f"cookie: {VALUE}"], "set by the session or the transport"),
    ([f"Authorization: Bearer {VALUE}"], "set by the session or the transport"),
    ([f"PROXY-AUTHORIZATION: Basic {VALUE}"], "set by the session or the transport"),
    ([f"Content-Length: {VALUE}"], "set by the session or the transport"),
    ([f"User-Agent: {VALUE}"], "its own setting"),
    ([f"X-Foo: {VALUE}", f"x-foo: {VALUE}"], "given twice"),
    ([f"X-H{n}: {VALUE}" for n in range(MAX_HEADERS + 1)], "at most 20"),
])
def test_a_bad_header_is_refused_without_repeating_its_value(lines, fragment):
    with pytest.raises(InvalidArgument) as error:
        parse_headers(lines)
    message = str(error.value)
    assert fragment in message
    assert VALUE not in message and "\n" not in message and "\r" not in message


def test_a_header_that_is_not_text_is_refused():
    with pytest.raises(InvalidArgument):
        check_headers([("X-Foo", 1)])
    with pytest.raises(InvalidArgument):
        check_headers([(None, "v")])
    with pytest.raises(InvalidArgument):
        parse_headers([None])


def test_the_proxy_back_off_doubles_from_30_seconds_up_to_30_minutes():
    assert [proxy_backoff(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 960, 1800]
    assert proxy_backoff(1) == PROXY_BACKOFF_FIRST
    assert proxy_backoff(10_000_000) == PROXY_BACKOFF_MAX
    assert proxy_backoff(0) == 0


def test_an_identity_never_shows_its_proxy_url_and_a_view_says_the_proxy_health():
    identity = Identity(proxy_url=f"http://u:{SECRET}@h:1", user_agent="ua", proxy_host="http://h:1")
    assert SECRET not in repr(identity) and "http://h:1" in repr(identity)
    assert IdentityView().proxy_health is None
    assert IdentityView(proxy_host="http://h:1").proxy_health == "ok"
    assert IdentityView(proxy_host="http://h:1", proxy_failures=3, proxy_error="timeout").proxy_health == \
        "failed 3×: timeout"
