"""Every sandbox misbehaviour fires when switched on, and none fires when off (real HTTP)."""
from __future__ import annotations

import json
import time

import pytest
from parsel import Selector

from tests.fixtures.sandbox import Reply, rows_from_html

pytestmark = pytest.mark.timeout(60)
COUNTERS = ("rate_limited", "daily_cap", "captchas", "errors", "malformed", "slow")


@pytest.fixture
def site(sandbox):
    sandbox.reset()
    yield sandbox
    sandbox.reset()


def code(reply: Reply) -> str | None:
    if reply.header("Content-Type").startswith("application/json"):
        return reply.json().get("error", {}).get("code")
    page = Selector(text=reply.text)
    return page.css(".error::attr(data-code)").get() or page.css("#captcha::attr(data-code)").get()


def test_clean_profile_never_misbehaves(site):
    clients = [site.logged_in("demo1"), site.logged_in("demo2")]
    for i in range(240):
        client, form = clients[i % 2], ("json", "html")[i // 2 % 2]
        reply = client.listing(("美妆", "游戏", "科技")[i % 3], i % 20 + 1, form)
        assert reply.status == 200, reply.text[:200]
        if form == "json":
            assert len(reply.json()["items"]) == 20
        else:
            assert reply.body.rstrip().endswith(b"</footer>\n</body></html>")
            assert len(rows_from_html(reply.text)) == 20
    stats = site.admin_stats()
    for name in ("demo1", "demo2"):
        counters = stats["accounts"][name]
        assert counters["requests"] == counters["pages"] == 120
        assert all(counters[c] == 0 for c in COUNTERS)
        assert not counters["banned"]
    assert all(not uids for uids in stats["inserted"].values())


def test_captcha_is_a_200_without_rows(site):
    site.configure(captcha_rate=1.0)
    client = site.logged_in("demo1")
    api = client.listing("美妆")
    assert api.status == 200
    assert api.json() == {"error": {"code": "E_CAPTCHA", "message": "请完成安全验证"},
                          "captcha": True}
    html = client.listing("美妆", 1, "html")
    page = Selector(text=html.text)
    assert html.status == 200
    assert page.css("#captcha::text").get() == "请完成安全验证"
    assert page.css("#captcha").attrib["data-code"] == "E_CAPTCHA"
    assert not page.css("table")
    assert site.admin_stats()["accounts"]["demo1"]["captchas"] == 2


def test_server_errors(site):
    site.configure(error_rate=1.0)
    client = site.logged_in("demo1")
    statuses = {client.listing("美妆", 1, form).status for form in ("json", "html") * 15}
    assert statuses == {500, 502, 503}
    assert code(client.listing("美妆")) == "E_SERVER"
    assert site.admin_stats()["accounts"]["demo1"]["errors"] == 31


def test_malformed_bodies_are_cut_short(site):
    site.configure(malformed_rate=1.0)
    client = site.logged_in("demo1")
    for _ in range(20):
        api = client.listing("美妆", 2)
        assert api.status == 200
        with pytest.raises(ValueError, match=r"Expecting|Unterminated|Invalid|Extra|codec"):
            json.loads(api.body)
        html = client.listing("美妆", 2, "html")
        assert html.status == 200
        assert b'<footer id="end-of-page">' not in html.body
    assert site.admin_stats()["accounts"]["demo1"]["malformed"] == 40


def test_slow_responses(site):
    site.configure(slow_rate=1.0, slow_ms=300)
    client = site.logged_in("demo1")
    started = time.monotonic()
    assert client.listing("美妆").status == 200
    assert time.monotonic() - started >= 0.3
    assert site.admin_stats()["accounts"]["demo1"]["slow"] == 1


def test_rate_limit_429_with_retry_after_per_account(site):
    site.configure(rate_limit=1, retry_after=1)  # a bucket of one token, refilled every second
    client, other = site.logged_in("demo1"), site.logged_in("demo2")
    replies = [client.listing("美妆", 1, form) for form in ("json", "json", "html")]
    assert [r.status for r in replies] == [200, 429, 429]
    assert replies[1].header("Retry-After") == "1"
    assert replies[1].json()["error"] == {"code": "E_RATE_LIMITED",
                                          "message": "访问过于频繁，请稍后再试"}
    assert code(replies[2]) == "E_RATE_LIMITED"
    assert replies[2].header("Retry-After") == "1"
    assert other.listing("美妆").status == 200
    time.sleep(1.05)
    assert client.listing("美妆").status == 200
    assert site.admin_stats()["accounts"]["demo1"]["rate_limited"] == 2


def test_daily_page_cap(site):
    site.configure(daily_page_cap=3)
    client = site.logged_in("demo1")
    assert [client.listing("美妆", p).status for p in (1, 2, 3)] == [200] * 3
    capped = client.listing("美妆", 4)
    assert capped.status == 403
    assert capped.json()["error"] == {"code": "E_DAILY_CAP", "message": "今日访问次数已达上限"}
    html = client.listing("美妆", 4, "html")
    assert html.status == 403
    assert Selector(text=html.text).css("div.error").attrib["data-code"] == "E_DAILY_CAP"
    assert site.logged_in("demo2").listing("美妆", 4).status == 200
    counters = site.admin_stats()["accounts"]["demo1"]
    assert counters["daily_cap"] == 2
    assert counters["pages_today"] == 3
    assert not counters["banned"]


def test_ban_accounts_flag_bans_at_first_listing(start_sandbox):
    server = start_sandbox(ban_accounts=["demo3", "demo4"])
    client = server.logged_in("demo3")  # logging in still works before the ban
    banned = client.listing("美妆")
    assert banned.status == 403
    assert banned.json()["error"] == {"code": "E_BANNED", "message": "账号已被封禁"}
    assert client.listing("美妆").status == 401  # its sessions are gone
    refused = client.login("demo3")
    assert refused.status == 403
    assert Selector(text=refused.text).css("p.error::attr(data-code)").get() == "E_BANNED"
    html = server.logged_in("demo4").listing("美妆", 1, "html")
    assert html.status == 403
    assert code(html) == "E_BANNED"
    assert server.logged_in("demo1").listing("美妆").status == 200
    stats = server.admin_stats()["accounts"]
    assert stats["demo3"]["banned"]
    assert stats["demo4"]["banned"]
    assert not stats["demo1"]["banned"]


def test_ignoring_limit_responses_gets_an_account_banned(site):
    site.configure(rate_limit=1, retry_after=5, ban_after=3)
    client = site.logged_in("demo5")
    statuses = [client.listing("美妆").status for _ in range(5)]
    assert statuses == [200, 429, 429, 429, 403]
    assert client.login("demo5").status == 403
    counters = site.admin_stats()["accounts"]["demo5"]
    assert counters["banned"]
    assert counters["rate_limited"] == 3
    assert "3" in counters["ban_reason"]


def test_a_polite_client_is_never_banned(site):
    site.configure(rate_limit=5, retry_after=1, ban_after=1)
    client = site.logged_in("demo6")
    served = 0
    while served < 8:
        reply = client.listing("美妆", served + 1)
        if reply.status == 429:
            time.sleep(int(reply.header("Retry-After")))
            continue
        assert reply.status == 200
        served += 1
    counters = site.admin_stats()["accounts"]["demo6"]
    assert counters["rate_limited"] >= 1
    assert not counters["banned"]


def test_shifting_listing_only_moves_original_rows_down(site):
    site.configure(shift_every=3)
    client = site.logged_in("demo1")
    truth = [r["uid"] for r in site.truth("美食")]
    seen, page, total_pages = [], 1, None
    while True:
        payload = client.listing("美食", page).json()
        for offset, item in enumerate(payload["items"]):
            position = (page - 1) * 20 + offset
            if not item["uid"].startswith("new-"):
                assert position >= truth.index(item["uid"])  # never moved up
        seen += [item["uid"] for item in payload["items"]]
        total_pages = payload["total_pages"]
        if not payload["has_more"]:
            break
        page += 1
    inserted = site.admin_stats()["inserted"]["美食"]
    assert len(inserted) >= 6
    assert all(uid.startswith("new-ms-") for uid in inserted)
    assert set(truth) <= set(seen)  # a forward crawl misses nothing, it may see duplicates
    assert {u for u in seen if u.startswith("new-")} <= set(inserted)
    assert total_pages > 20
    top = client.listing("美食", 1).json()["items"]
    latest = site.admin_stats()["inserted"]["美食"]
    assert [r["uid"] for r in top[:3]] == latest[::-1][:3]
    assert site.admin_stats()["inserted"]["美妆"] == []


def test_same_seed_same_misbehaviour_for_the_same_requests(start_sandbox):
    flags = {"seed": 5, "captcha_rate": 0.3, "error_rate": 0.3, "malformed_rate": 0.3}

    def outcomes(server) -> list:
        client = server.logged_in("demo1")
        result = []
        for page in range(1, 31):
            reply = client.listing("美妆", page)
            result.append((reply.status, reply.body if reply.status == 200 else None))
        return result

    def kinds(result: list) -> list:
        return [(status, body is not None and body.endswith(b"}")) for status, body in result]

    first = outcomes(start_sandbox(**flags))
    assert first == outcomes(start_sandbox(**flags))
    assert {(200, True), (200, False)} < set(kinds(first))  # intact, cut short and 5xx
    assert kinds(first) != kinds(outcomes(start_sandbox(**{**flags, "seed": 6})))


def test_reset_clears_state_and_restores_start_knobs(site):
    site.configure(ban_accounts=["demo7"], shift_every=1)
    client = site.logged_in("demo7")
    assert client.listing("美妆").status == 403
    assert site.admin_stats()["inserted"]["美妆"]
    site.reset()
    stats = site.admin_stats()
    assert not stats["accounts"]["demo7"]["banned"]
    assert stats["accounts"]["demo7"]["logins"] == 0
    assert stats["knobs"]["ban_accounts"] == []
    assert stats["knobs"]["shift_every"] == 0
    assert all(not uids for uids in stats["inserted"].values())
    assert site.logged_in("demo7").listing("美妆").status == 200
    bad = site.client().request("POST", "/__admin/config", json_body={"captcha_rate": 7})
    assert bad.status == 400
    assert "captcha_rate" in bad.json()["error"]["message"]
