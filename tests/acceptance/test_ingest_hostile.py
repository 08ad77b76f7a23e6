"""A hostile platform and four accounts: the crawl still ends with exactly the platform's rows.

The sandbox's `hostile` profile (per-account rate limit 5/s with 429 + Retry-After, 5% captcha,
5% 5xx, 5% cut bodies, 5% slow pages, a ban for clients that ignore limits) plus: demo1 banned
at its first listing, captchas on 15% of pages, a daily cap of 15 pages per account, sessions that expire every 3 s and a
listing that gains a row at the top every 10 requests. The crawl reads until the listing ends.

On both API styles (`api`): the token-cursor API serves the same misbehaviour as HTTP 200 codes
(40300 banned, 40302 captcha, 42901 daily cap, 42900 rate limited with ``retry_after``, 40101
token expired) and pages by keyset cursors, so a shift neither hides nor repeats a row there.
"""

from __future__ import annotations

import re

import pytest

from tests.fixtures.crawl import (
    add_accounts,
    assert_matches_truth,
    page_logs,
    query,
    tasks,
)

pytestmark = pytest.mark.timeout(240)

DOMAIN = "美妆"
PAGES = 25


def test_hostile_platform_four_accounts_exact_truth(api, start_sandbox, crawls, env, mysql_settings, db) -> None:
    site = start_sandbox(**api.sandbox_flags, profile="hostile", pages=PAGES, ban_accounts="demo1", daily_page_cap=15,
                         captcha_rate=0.15, shift_every=10, session_ttl=3)
    ids = add_accounts(env, "demo1", "demo2", "demo3", "demo4")
    crawl = crawls.run(
        site.url, f"domain={DOMAIN}", timeout=200,
        ACCOUNTS_REQUEST_INTERVAL=0,  # faster than the platform allows (5/s): 429s will come
        ACCOUNTS_CAPTCHA_COOLDOWN=1,
        INGEST_CLAIM_WAIT=30,
        RETRY_TIMES=10,
    )
    log = crawl.log
    assert crawl.process.returncode == 0, log[-4000:]
    (task,) = tasks(mysql_settings, DOMAIN)
    assert task["status"] == "completed", (task, log[-4000:])

    stats = site.admin_stats()
    inserted = frozenset(stats["inserted"][DOMAIN])
    assert inserted, "the listing should have shifted during the crawl"
    assert stats["cursor_expired"] == stats["bad_cursors"] == 0  # token-cursor: every cursor sent was good
    assert_matches_truth(mysql_settings, DOMAIN, site.truth(DOMAIN, 1, PAGES), extra_uids=inserted)
    pages = [row["page_number"] for row in page_logs(mysql_settings, task["id"])]
    assert pages == list(range(1, len(pages) + 1)) and len(pages) >= PAGES

    accounts = {row["username"]: row for row in query(mysql_settings, "SELECT * FROM accounts")}
    assert accounts["demo1"]["status"] == "disabled"
    assert api.codes["banned"] in accounts["demo1"]["status_reason"]
    for name in ("demo2", "demo3", "demo4"):
        assert accounts[name]["status"] != "disabled", accounts[name]
        assert not stats["accounts"][name]["banned"], f"{name} was banned: we must have ignored a limit"
    # Several accounts did the work, each page under one of them.
    used = {row["account_id"] for row in query(mysql_settings, "SELECT account_id FROM ingestion_logs")}
    assert used <= {ids["demo2"], ids["demo3"], ids["demo4"]} and len(used) >= 2
    # Every limit the platform served was seen and handled: 429s by backing off (and nobody was
    # banned for ignoring them, see above), captchas and daily caps by retiring the account.
    served = {key: sum(counters[key] for counters in stats["accounts"].values())
              for key in ("rate_limited", "captchas", "daily_cap")}
    assert served["rate_limited"] > 0
    assert log.count("rate limited: waiting") == served["rate_limited"]
    assert len(re.findall(rf"account \d+: captcha: {api.codes['captcha']}", log)) == served["captchas"]
    assert len(re.findall(rf"account \d+: daily_cap: {api.codes['daily_cap']}", log)) == served["daily_cap"]
    # and counted per account in the database for GET /metrics, flushed by the crawl before it exited
    tallied = {(row["name"], int(row["label"])): int(row["n"]) for row in query(
        mysql_settings, "SELECT name, label, SUM(value) AS n FROM tallies WHERE name IN ('rate_limited', 'captchas')"
                        " GROUP BY name, label")}
    for name in ("rate_limited", "captchas"):
        assert {account: n for (kind, account), n in tallied.items() if kind == name} == {
            ids[username]: counters[name] for username, counters in stats["accounts"].items()
            if username in ids and counters[name]}, (name, stats["accounts"])
    assert log.count("session expired, logging in again") >= 1  # sessions last 3 s
    switched = query(mysql_settings, "SELECT reason FROM events WHERE event = 'account_switched'")
    assert any(api.codes["banned"] in row["reason"] for row in switched)
    assert sum(api.codes["captcha"] in row["reason"] for row in switched) <= served["captchas"]
