"""Sandbox markup: hostile nicknames survive HTML escaping and parsing exactly."""
from __future__ import annotations

from parsel import Selector

from sandbox import render
from sandbox.data import DEFAULT_DOMAINS, expected_rows
from sandbox.listing import Listing
from tests.fixtures.sandbox import nickname_texts, rows_from_html


def hostile_rows() -> list[dict]:
    rows = [r for d in DEFAULT_DOMAINS for r in expected_rows(d)]
    return [r for r in rows if r["nickname"][0] in "=+-@" or len(r["nickname"]) >= 300
            or any(c in r["nickname"] for c in "\"'\n\u200b<")]


def test_listing_markup_round_trips_every_hostile_row():
    rows = hostile_rows()
    assert len(rows) > 100
    markup = render.page("t", render.listing_main(rows[0]["domain"], 1, 1, 1, rows)).decode()
    parsed = rows_from_html(markup)
    for row in parsed:
        row["domain"] = next(r["domain"] for r in rows if r["uid"] == row["uid"])
    assert parsed == rows
    assert nickname_texts(markup) == [r["nickname"] for r in rows]


def test_pagination_and_footer():
    listing = Listing(42, ("美妆",), pages=3, page_size=5, shift_every=0)
    renderer = render.Renderer(listing)
    body, footer_at = renderer.html_listing("美妆", 3, 0).body(renderer.user_header("demo1"))
    page = Selector(text=body.decode())
    assert body[footer_at:].startswith(b'<footer id="end-of-page"></footer>')
    assert page.css("#pagination").attrib["data-total-pages"] == "3"
    assert page.css("a.next").get() is None
    assert page.css("a.prev::attr(href)").get() == "/square?domain=%E7%BE%8E%E5%A6%86&page=2"
    assert page.css("#whoami::attr(data-username)").get() == "demo1"
    first = Selector(text=renderer.html_listing("美妆", 1, 0).body(b"")[0].decode())
    assert first.css("a.next::attr(href)").get() == "/square?domain=%E7%BE%8E%E5%A6%86&page=2"
    assert body.rstrip().endswith(b"</footer>\n</body></html>")


def test_error_and_captcha_pages_carry_their_codes():
    error = Selector(text=render.error_page("E_DAILY_CAP", "demo1").decode())
    assert error.css("div.error::attr(data-code)").get() == "E_DAILY_CAP"
    assert error.css("div.error::text").get() == "今日访问次数已达上限"
    captcha = Selector(text=render.captcha_page("demo1").decode())
    assert captcha.css("#captcha::attr(data-code)").get() == "E_CAPTCHA"
    assert not captcha.css("table")
    expected = '{"error":{"code":"E_BANNED","message":"账号已被封禁"}}'
    assert render.json_error("E_BANNED") == expected.encode()
