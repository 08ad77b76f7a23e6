"""The platform goes away mid-crawl and comes back: the crawl waits for it and ends exact.

Two outages for real, each longer than Scrapy's retries survive (a refused connection spends
RETRY_TIMES in milliseconds): the reference platform stopped and restarted on the same port (same
seed, so the same data), and the platform frozen with SIGSTOP so requests time out. Each time the
crawl must exit 0 with exactly the platform's rows, one line when the platform went and one when it
came back, no account cooled down or disabled, no page failed and no attempt spent.
"""

from __future__ import annotations

import os
import signal
import time
from urllib.parse import urlsplit

import pytest

from sandbox.data import expected_rows
from tests.fixtures.crawl import (
    add_accounts,
    assert_matches_truth,
    page_logs,
    query,
    tasks,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

DOMAIN = "美妆"
PAGES = 30
SETTINGS = {
    "ACCOUNTS_REQUEST_INTERVAL": 0.1,  # 30 pages take ~3 s: the outage lands mid-crawl
    "PLATFORM_OUTAGE_FIRST_DELAY": 0.25,
    "PLATFORM_OUTAGE_MAX_DELAY": 1,  # the crawl sees the platform back within a second
    "PLATFORM_PROBE_TIMEOUT": 1,
}
OUTAGE_SECONDS = 6


def wait_for_pages(mysql_settings, crawl, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and crawl.process.poll() is None:
        if query(mysql_settings, "SELECT COUNT(*) AS n FROM ingestion_logs")[0]["n"] >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} pages not committed in {timeout}s; log:\n{crawl.log[-3000:]}")


def assert_rode_it_out(crawl, site_url: str, mysql_settings) -> None:
    log = crawl.log
    assert crawl.process.returncode == 0, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    assert log.count(f"platform {site_url} unreachable (") == 1, log[-4000:]
    assert log.count(f"platform {site_url} reachable again after") == 1, log[-4000:]
    assert "ingest/pages_failed" not in log and "accounts/cooled_down" not in log

    assert_matches_truth(mysql_settings, DOMAIN, expected_rows(DOMAIN, 1, PAGES, pages=PAGES))
    (task,) = tasks(mysql_settings, DOMAIN)
    assert (task["status"], task["progress_marker"], task["attempts"]) == ("completed", f"page={PAGES}", 0), task
    assert [log["page_number"] for log in page_logs(mysql_settings, task["id"])] == list(range(1, PAGES + 1))
    task_events = [row["event"] for row in query(
        mysql_settings, "SELECT event FROM events WHERE entity = 'task' AND entity_id = %s ORDER BY id", task["id"])]
    assert "paused" not in task_events and "failed" not in task_events, task_events

    accounts = query(mysql_settings, "SELECT username, status, status_reason, cooldown_until FROM accounts")
    assert all((row["status"], row["status_reason"], row["cooldown_until"]) == ("idle", None, None)
               for row in accounts), accounts
    blamed = query(mysql_settings, "SELECT entity, event, reason FROM events"
                                   " WHERE event IN ('cooled_down', 'account_switched') OR to_status = 'disabled'")
    assert not blamed, blamed
    assert query(mysql_settings, "SELECT source FROM outages") == []  # the outage's record ended with it


@pytest.mark.parametrize("render", ["json", "js"])  # js: the browser's errors count as the platform's too
def test_platform_stopped_and_restarted_on_the_same_port(render, start_sandbox, crawls, env, mysql_settings,
                                                         db) -> None:
    site = start_sandbox(pages=PAGES)
    port = urlsplit(site.url).port
    add_accounts(env, "demo1", "demo2")
    crawl = crawls.start(site.url, f"domain={DOMAIN}", f"pages={PAGES}", f"render={render}", **SETTINGS)
    wait_for_pages(mysql_settings, crawl, 5)

    site.stop()  # connections refused from now on
    crawl.wait_for("unreachable (", timeout=10)
    time.sleep(OUTAGE_SECONDS)
    assert crawl.process.poll() is None, crawl.log[-3000:]  # still waiting for the platform
    reported = query(mysql_settings, "SELECT source, started_at < seen_at AS refreshed FROM outages")
    assert reported == [{"source": f"platform {site.url}", "refreshed": 1}], reported  # for the alerter
    start_sandbox(pages=PAGES, port=port)  # the same seed: the same data

    crawl.wait(60)
    assert_rode_it_out(crawl, site.url, mysql_settings)


def test_platform_frozen_until_requests_time_out(start_sandbox, crawls, env, mysql_settings, db) -> None:
    site = start_sandbox(pages=PAGES)
    add_accounts(env, "demo3")
    crawl = crawls.start(site.url, f"domain={DOMAIN}", f"pages={PAGES}", DOWNLOAD_TIMEOUT=1, **SETTINGS)
    wait_for_pages(mysql_settings, crawl, 5)

    os.kill(site.process.pid, signal.SIGSTOP)  # connections are accepted, nothing is answered
    try:
        crawl.wait_for("unreachable (", timeout=20)
        time.sleep(OUTAGE_SECONDS / 2)
        assert crawl.process.poll() is None, crawl.log[-3000:]
    finally:
        os.kill(site.process.pid, signal.SIGCONT)

    crawl.wait(60)
    assert_rode_it_out(crawl, site.url, mysql_settings)


def test_platform_down_when_the_crawl_logs_in(start_sandbox, crawls, env, mysql_settings, db) -> None:
    """The login meets the outage: it waits for the platform, and the account is not cooled down
    for logins that could not connect (ACCOUNTS_LOGIN_FAILURE_COOLDOWN)."""
    site = start_sandbox(pages=PAGES)
    port = urlsplit(site.url).port
    site.stop()
    add_accounts(env, "demo4")
    crawl = crawls.start(site.url, f"domain={DOMAIN}", f"pages={PAGES}", **SETTINGS)
    crawl.wait_for("unreachable (", timeout=20)
    time.sleep(OUTAGE_SECONDS / 2)
    assert crawl.process.poll() is None, crawl.log[-3000:]
    start_sandbox(pages=PAGES, port=port)

    crawl.wait(60)
    assert "accounts/login_waited_for_platform" in crawl.log, crawl.log[-3000:]
    assert_rode_it_out(crawl, site.url, mysql_settings)


def test_every_response_5xx_for_a_while(start_sandbox, crawls, env, mysql_settings, db) -> None:
    """The platform in maintenance: it answers, but 503 to everything, login included. As long as
    any page of it answers properly a 5xx is that page's problem; this is an outage."""
    site = start_sandbox(pages=PAGES)
    add_accounts(env, "demo5")
    crawl = crawls.start(site.url, f"domain={DOMAIN}", f"pages={PAGES}", **SETTINGS)
    wait_for_pages(mysql_settings, crawl, 5)

    site.configure(maintenance=1.0)
    try:
        crawl.wait_for("unreachable (HTTP 503", timeout=20)
        time.sleep(OUTAGE_SECONDS / 2)
        assert crawl.process.poll() is None, crawl.log[-3000:]
    finally:
        site.configure(maintenance=0.0)

    crawl.wait(60)
    assert_rode_it_out(crawl, site.url, mysql_settings)
