"""Sandbox listings over real HTTP: JSON, HTML and the JS-only page carry the same rows."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from parsel import Selector

from sandbox.data import DEFAULT_DOMAINS, expected_rows
from tests.fixtures.sandbox import nickname_texts, rows_from_html

pytestmark = pytest.mark.timeout(60)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture
def site(sandbox):
    sandbox.reset()
    yield sandbox
    sandbox.reset()


def test_json_page_is_the_truth(site):
    client = site.logged_in("demo1")
    reply = client.listing("美妆", 2)
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json; charset=utf-8"
    payload = reply.json()
    assert list(payload) == ["domain", "page", "page_size", "total_pages", "total", "has_more",
                             "items"]
    assert payload["domain"] == "美妆"
    assert payload["page"] == 2
    assert payload["page_size"] == 20
    assert payload["total_pages"] == 20
    assert payload["total"] == 400
    assert payload["has_more"]
    assert payload["items"] == site.truth("美妆", 2, 2) == expected_rows("美妆", 2, 2, pages=20)
    last = client.listing("美妆", 20).json()
    assert not last["has_more"]
    assert len(last["items"]) == 20
    past = client.listing("美妆", 21).json()
    assert past["items"] == []
    assert past["has_more"] is False


def test_a_full_json_crawl_of_every_domain_equals_the_truth(site):
    client = site.logged_in("demo2")
    for domain in DEFAULT_DOMAINS:
        rows, page = [], 1
        while True:
            payload = client.listing(domain, page).json()
            rows += payload["items"]
            if not payload["has_more"]:
                break
            page += 1
        assert rows == site.truth(domain)
    assert site.admin_stats()["accounts"]["demo2"]["pages"] == 6 * 20


def test_html_page_carries_the_same_rows_and_exact_nicknames(site):
    client = site.logged_in("demo1")
    for domain in ("美妆", "科技"):
        reply = client.listing(domain, 1, "html")
        assert reply.status == 200
        assert reply.header("Content-Type").startswith("text/html")
        truth = site.truth(domain, 1, 1)
        assert rows_from_html(reply.text) == truth
        assert nickname_texts(reply.text) == [r["nickname"] for r in truth]
        assert reply.body.rstrip().endswith(b'<footer id="end-of-page"></footer>\n</body></html>')
        nav = Selector(text=reply.text).css("#pagination")
        assert nav.attrib["data-page"] == "1"
        assert nav.attrib["data-total-pages"] == "20"
        assert nav.css("a.next::attr(href)").get() == f"/square?domain={quote(domain)}&page=2"
    last = Selector(text=client.listing("美妆", 20, "html").text)
    assert last.css("a.next").get() is None
    assert len(last.css("tr.influencer")) == 20


def test_bad_domain_and_page(site):
    client = site.logged_in("demo1")
    for form in ("json", "html"):
        unknown = client.get({"json": "/api/v1/influencers", "html": "/square"}[form],
                             domain="宠物", page=1)
        assert unknown.status == 404
        assert b"E_UNKNOWN_DOMAIN" in unknown.body
        for page in ("0", "-1", "abc", "1.5", "２"):
            bad = client.get({"json": "/api/v1/influencers", "html": "/square"}[form],
                             domain="美妆", page=page)
            assert bad.status == 400, page
            assert b"E_BAD_PAGE" in bad.body
    assert client.get("/api/v1/influencers", page=1).json()["error"]["code"] == "E_UNKNOWN_DOMAIN"
    index = Selector(text=client.get("/square").text)
    assert index.css("a.domain::attr(data-domain)").getall() == list(DEFAULT_DOMAINS)
    domains = client.get("/api/v1/domains").json()["domains"]
    assert [d["domain"] for d in domains] == list(DEFAULT_DOMAINS)


def test_same_seed_same_bytes_across_restarts(start_sandbox):
    bodies = []
    for _ in range(2):
        server = start_sandbox(seed=7, pages=3)
        client = server.logged_in("demo1")
        bodies.append([client.listing(d, p).body for d in DEFAULT_DOMAINS for p in (1, 3)])
        server.stop()
    assert bodies[0] == bodies[1]
    other = start_sandbox(seed=8, pages=3).logged_in("demo1")
    assert other.listing("美妆", 1).body != bodies[0][0]
    assert bodies[0][0] == start_sandbox(seed=7, pages=3).logged_in().listing("美妆", 1).body
    assert json.loads(bodies[0][0])["items"] == expected_rows("美妆", 1, 1, seed=7, pages=3)


def test_app_shell_has_no_rows_until_javascript_runs(site):
    client = site.logged_in("demo1")
    shell = client.listing("美妆", 1, "app")
    assert shell.status == 200
    page = Selector(text=shell.text)
    assert not page.css("tr.influencer")
    assert page.css("#app")
    assert page.css("script")
    assert not page.css("script[src]")


def render_in_chromium(url: str, sid: str, paths: list[str]) -> list[str]:
    """Load each path in headless Chromium and return the DOM once #rendered is attached.

    Runs in a worker thread: the test process's main thread has an asyncio loop running
    (pytest-twisted's asyncio reactor) and Playwright's sync API refuses to run inside one.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sid", "value": sid, "url": url}])
            tab = context.new_page()
            pages = []
            for path in paths:
                tab.goto(url + path)
                tab.wait_for_selector("#rendered", state="attached", timeout=15_000)
                pages.append(tab.content())
            return pages
        finally:
            browser.close()


@pytest.mark.timeout(90)
def test_js_page_renders_the_same_rows_as_html_and_json(site):
    client = site.logged_in("demo3")
    wanted = [("美妆", 1), ("母婴", 20), ("游戏", 21)]
    paths = [f"/app/square?domain={quote(d)}&page={p}" for d, p in wanted]
    with ThreadPoolExecutor(1) as pool:
        markups = pool.submit(render_in_chromium, site.url, client.cookies["sid"], paths).result()
        site.configure(captcha_rate=1.0)
        [captcha] = pool.submit(render_in_chromium, site.url, client.cookies["sid"],
                                paths[:1]).result()
    site.configure(captcha_rate=0.0)
    for (domain, page_no), markup in zip(wanted, markups, strict=True):
        truth = site.truth(domain, page_no, page_no)
        html_rows = rows_from_html(client.listing(domain, page_no, "html").text)
        assert rows_from_html(markup) == truth == html_rows
        assert nickname_texts(markup) == [r["nickname"] for r in truth]
        done = Selector(text=markup).css("#rendered")
        assert done.attrib["data-count"] == str(len(truth))
        assert "data-error" not in done.attrib
        nav = Selector(text=markup).css("#pagination")
        assert nav.attrib["data-page"] == str(page_no)
        assert nav.attrib["data-total-pages"] == "20"
    first = Selector(text=markups[0])
    assert first.css("a.next::attr(href)").get() == f"/app/square?domain={quote('美妆')}&page=2"
    shown = Selector(text=captcha)
    assert shown.css("#captcha::attr(data-code)").get() == "E_CAPTCHA"
    assert shown.css("#rendered::attr(data-error)").get() == "E_CAPTCHA"
    assert not shown.css("tr.influencer")
