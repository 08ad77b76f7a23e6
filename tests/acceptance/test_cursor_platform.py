"""A platform that pages with opaque, expiring cursors (``python -m sandbox --api token-cursor``),
crawled for real: cursors that expire, a crawl that cannot be split, and adapters that break.

Every test names `SandboxTokenAdapter` in INFLUENCERS_SITE_ADAPTER (the autouse fixture below);
the broken adapters of `tests.fixtures.site_adapters` come in through ``-s SITE_ADAPTER=``.
A page platform's ``start_crawl --split`` is covered by test_cli.py (the subtask count),
tests/integration/test_scheduler.py (the page ranges) and test_ingest_service.py[v1] (a crawl
of them).
"""

from __future__ import annotations

import re
import signal
import time
from typing import Any

import pytest

from tests.fixtures.api_styles import TOKEN_CURSOR
from tests.fixtures.crawl import add_accounts, assert_matches_truth, page_logs, query, tasks
from tests.fixtures.processes import run_cli

pytestmark = pytest.mark.timeout(120)

DOMAIN = "美妆"
ADAPTERS = "tests.fixtures.site_adapters"
ADAPTER_LINE = "site_adapters.py:"  # where an adapter error names the adapter's line that raised


@pytest.fixture(autouse=True)
def cursor_platform(env: dict[str, str]) -> None:
    """Every crawl and CLI run of these tests reads the platform with `SandboxTokenAdapter`."""
    env.update(TOKEN_CURSOR.env)


def start_site(start_sandbox, **flags: Any):
    return start_sandbox(**TOKEN_CURSOR.sandbox_flags, **flags)


def events(mysql_settings, task_id: int, event: str) -> list[dict[str, Any]]:
    return query(mysql_settings, "SELECT reason FROM events WHERE entity = 'task' AND entity_id = %s AND event = %s"
                                 " ORDER BY id", task_id, event)


def wait_for_marker(mysql_settings, page: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in tasks(mysql_settings, DOMAIN):
            if task["progress_marker"] and int(task["progress_marker"].split("=")[1]) >= page:
                return
        time.sleep(0.02)
    raise AssertionError(f"the marker did not reach page={page} in {timeout}s")


def assert_accounts_untouched(mysql_settings) -> None:
    """Every account idle and usable: never cooled down, disabled or given a reason."""
    for account in query(mysql_settings, "SELECT * FROM accounts"):
        assert (account["status"], account["cooldown_until"], account["status_reason"]) == ("idle", None, None), account
    happened = {row["event"] for row in query(mysql_settings, "SELECT event FROM events WHERE entity = 'account'")}
    assert happened <= {"created", "taken", "freed"}, happened


# -- cursors that expire ------------------------------------------------------------------------


def test_a_cursor_that_expired_while_the_crawl_was_down_restarts_the_listing(start_sandbox, crawls, env,
                                                                            mysql_settings, db) -> None:
    """Killed mid-listing, rerun once the cursor stored with the marker has expired: the rerun's
    first request is refused (40010), the listing is read again from page 1, nothing doubles."""
    pages, ttl = 8, 2
    site = start_site(start_sandbox, pages=pages, cursor_ttl=ttl)
    add_accounts(env, "demo1")
    first = crawls.start(site.url, f"domain={DOMAIN}", f"pages={pages}", ACCOUNTS_REQUEST_INTERVAL=0.3)
    wait_for_marker(mysql_settings, 2)
    first.kill()
    (task,) = tasks(mysql_settings, DOMAIN)
    marker = int(task["progress_marker"].split("=")[1])
    assert marker < pages and task["progress_cursor"], task  # stopped mid-listing, its next cursor stored

    time.sleep(ttl + 0.5)  # the stored cursor expires while no crawl runs
    rerun = crawls.run(site.url, f"domain={DOMAIN}", f"pages={pages}")
    assert rerun.process.returncode == 0, rerun.log[-3000:]
    assert f"the cursor of page {marker + 1} is no good" in rerun.log
    assert "Traceback" not in rerun.log
    (task,) = tasks(mysql_settings, DOMAIN)
    assert (task["status"], task["progress_marker"]) == ("completed", f"page={pages}")
    expired = [row["reason"] for row in events(mysql_settings, task["id"], "cursor_expired")]
    assert any(reason.startswith(f"page {marker + 1}: cursor_expired") for reason in expired), expired
    assert all(reason.endswith("listing restarted from page 1") for reason in expired), expired
    assert site.admin_stats()["cursor_expired"] == len(expired)  # each refusal the platform served restarted it
    assert [log["page_number"] for log in page_logs(mysql_settings, task["id"])] == list(range(1, pages + 1))
    assert_matches_truth(mysql_settings, DOMAIN, site.truth(DOMAIN, 1, pages))


def test_cursors_that_always_expire_restart_the_listing_three_times_then_the_page_fails(start_sandbox, crawls, env,
                                                                                       mysql_settings, db) -> None:
    """Each cursor dies before the account may send the next request: three restarts
    (INGEST_CURSOR_RESTARTS), then page 2 fails like any page whose retries are spent."""
    site = start_site(start_sandbox, pages=3, cursor_ttl=0.2)
    add_accounts(env, "demo1")
    crawl = crawls.run(site.url, f"domain={DOMAIN}", "pages=3", ACCOUNTS_REQUEST_INTERVAL=0.6)
    assert crawl.process.returncode == 0, crawl.log[-3000:]
    (task,) = tasks(mysql_settings, DOMAIN)
    assert task["status"] == "paused", task
    assert "page 2: cursor_expired" in task["last_error"]
    assert "the listing was restarted 3 time(s) in this run already" in task["last_error"]
    assert len(events(mysql_settings, task["id"], "cursor_expired")) == 3
    assert site.admin_stats()["cursor_expired"] == 4
    assert [log["page_number"] for log in page_logs(mysql_settings, task["id"])] == [1]
    assert_matches_truth(mysql_settings, DOMAIN, site.truth(DOMAIN, 1, 1))
    assert_accounts_untouched(mysql_settings)


# -- a crawl is one subtask ---------------------------------------------------------------------


def test_start_crawl_refuses_a_split_and_one_subtask_reads_the_whole_listing(start_sandbox, crawls, env,
                                                                            mysql_settings, db) -> None:
    refused = run_cli(env, "start_crawl", "--domain", DOMAIN, "--pages", "30", "--split", "10")
    assert refused.returncode == 2
    assert len(refused.stderr.splitlines()) == 1 and "cursors" in refused.stderr, refused.stderr
    assert refused.stdout == ""
    assert tasks(mysql_settings) == []

    created = run_cli(env, "start_crawl", "--domain", DOMAIN, "--pages", "30")
    assert created.returncode == 0, created.stderr
    assert "pages 1-30 in 1 subtask(s)" in created.stdout
    parent, subtask = tasks(mysql_settings)
    assert parent["is_parent"] and subtask["parent_id"] == parent["id"]
    assert (subtask["page_from"], subtask["page_to"]) == (1, 30)

    site = start_site(start_sandbox, pages=30)
    add_accounts(env, "demo1")
    crawl = crawls.run(site.url, "once=1")
    assert crawl.process.returncode == 0, crawl.log[-3000:]
    parent, subtask = tasks(mysql_settings)
    assert (parent["status"], subtask["status"], subtask["progress_marker"]) == ("completed", "completed", "page=30")
    assert [log["page_number"] for log in page_logs(mysql_settings, subtask["id"])] == list(range(1, 31))
    assert_matches_truth(mysql_settings, DOMAIN, site.truth(DOMAIN, 1, 30))


# -- adapter errors -----------------------------------------------------------------------------


def test_an_adapter_error_pauses_the_task_with_an_attempt_and_blames_no_account(start_sandbox, crawls, env,
                                                                               mysql_settings, db) -> None:
    site = start_site(start_sandbox, pages=5)
    add_accounts(env, "demo1", "demo2")
    crawl = crawls.run(site.url, f"domain={DOMAIN}", "pages=5", SITE_ADAPTER=f"{ADAPTERS}.KeyErrorOnPage3")
    assert crawl.process.returncode == 0, crawl.log[-3000:]
    (task,) = tasks(mysql_settings, DOMAIN)
    assert task["status"] == "paused", task
    assert "adapter error in parse_listing: KeyError: 'follower_count'" in task["last_error"]
    assert ADAPTER_LINE in task["last_error"]
    assert task["attempts"] == 1  # the error counted one attempt
    (later,) = query(mysql_settings, "SELECT not_before > UTC_TIMESTAMP(6) + INTERVAL 250 SECOND AS later"
                                     " FROM tasks WHERE id = %s", task["id"])
    assert later["later"]  # paused for INGEST_FAILED_PAGES_RETRY_AFTER (300 s), not retried at once
    assert len(events(mysql_settings, task["id"], "claimed")) == 1
    assert (task["progress_marker"], bool(task["progress_cursor"])) == ("page=2", True)
    assert [log["page_number"] for log in page_logs(mysql_settings, task["id"])] == [1, 2]
    assert_matches_truth(mysql_settings, DOMAIN, site.truth(DOMAIN, 1, 2))
    assert_accounts_untouched(mysql_settings)
    # Said once, on one line, with where the adapter raised: no traceback for a failure it names.
    assert crawl.log.count("stopping (pause): adapter error in parse_listing: KeyError") == 1
    assert "Traceback" not in crawl.log


def test_an_adapter_error_at_every_claim_fails_the_task_after_max_attempts(start_sandbox, crawls, env,
                                                                          mysql_settings, db) -> None:
    """The error comes before any page commits, so no round makes progress: with no pause
    between rounds, service runs claim the task exactly ``max_attempts`` times, then it fails."""
    site = start_site(start_sandbox, pages=5)
    add_accounts(env, "demo1", "demo2")
    assert run_cli(env, "start_crawl", "--domain", DOMAIN, "--pages", "3").returncode == 0
    (subtask,) = [task for task in tasks(mysql_settings) if task["parent_id"]]
    max_attempts = subtask["max_attempts"]
    assert max_attempts == 5  # the schema's default

    for _ in range(max_attempts):
        crawl = crawls.run(site.url, "once=1", SITE_ADAPTER=f"{ADAPTERS}.KeyErrorOnPage1",
                           INGEST_FAILED_PAGES_RETRY_AFTER=0)
        assert crawl.process.returncode == 0, crawl.log[-3000:]
        assert "Traceback" not in crawl.log
        (subtask,) = [task for task in tasks(mysql_settings) if task["parent_id"]]
        if subtask["status"] == "failed":
            break
    assert subtask["status"] == "failed", subtask
    assert subtask["attempts"] == max_attempts
    assert "adapter error in parse_listing: KeyError" in subtask["last_error"]
    assert f"failed after {max_attempts} rounds without progress" in subtask["last_error"]
    assert len(events(mysql_settings, subtask["id"], "claimed")) == max_attempts
    assert page_logs(mysql_settings, subtask["id"]) == []
    assert_accounts_untouched(mysql_settings)


def test_a_session_the_adapter_does_not_keep_pauses_the_task_and_cools_no_account(start_sandbox, crawls, env,
                                                                                 mysql_settings, db) -> None:
    site = start_site(start_sandbox, pages=5)
    add_accounts(env, "demo1", "demo2", "demo3")
    crawl = crawls.run(site.url, f"domain={DOMAIN}", "pages=5", SITE_ADAPTER=f"{ADAPTERS}.SessionNotKept")
    assert crawl.process.returncode == 0, crawl.log[-3000:]
    (task,) = tasks(mysql_settings, DOMAIN)
    assert task["status"] == "paused", task
    assert "adapter error in open_session/authorize" in task["last_error"]
    assert "no session has worked in this crawl" in task["last_error"]
    assert task["attempts"] == 1
    assert len(events(mysql_settings, task["id"], "claimed")) == 1
    assert_accounts_untouched(mysql_settings)
    stats = site.admin_stats()
    assert sum(counters["logins"] for counters in stats["accounts"].values()) >= 1  # the logins did succeed
    assert sum(counters["pages"] for counters in stats["accounts"].values()) == 0
    # One warning line says what to look at; no traceback, no account blamed.
    (said,) = [line for line in crawl.log.splitlines() if "stopping (pause): adapter error in open_session" in line]
    assert "does open_session() keep what the login gave, and authorize() send it?" in said
    assert "Traceback" not in crawl.log
    assert not re.search(r"account \d+ (cooling down|disabled)", crawl.log)


# -- shutdown -----------------------------------------------------------------------------------


def test_sigterm_with_a_page_queued_releases_the_task(start_sandbox, crawls, env, mysql_settings, db) -> None:
    """Two tasks share one download slot (CONCURRENT_REQUESTS=1), so one task's next page waits
    in Scrapy's queue when SIGTERM comes and never comes back: its task must be released at its
    marker, as the other is, not completed."""
    site = start_site(start_sandbox, pages=5)
    add_accounts(env, "demo1", "demo2")
    for domain in (DOMAIN, "游戏"):
        assert run_cli(env, "start_crawl", "--domain", domain, "--pages", "5").returncode == 0
    crawl = crawls.start(site.url, INGEST_MAX_TASKS=2, CONCURRENT_REQUESTS=1, ACCOUNTS_REQUEST_INTERVAL=1)
    deadline = time.monotonic() + 30
    while len(query(mysql_settings, "SELECT DISTINCT task_id FROM ingestion_logs")) < 2:
        assert time.monotonic() < deadline, crawl.log[-3000:]
        time.sleep(0.02)
    time.sleep(0.5)
    crawl.signal(signal.SIGTERM)
    assert crawl.wait(30) == 0, crawl.log[-3000:]
    for task in tasks(mysql_settings):
        if task["parent_id"]:
            assert task["status"] == "pending" or task["progress_marker"] == "page=5", task


# -- captchas -------------------------------------------------------------------------------------


def test_an_adapter_that_solves_captchas_keeps_the_account_reading(start_sandbox, crawls, env, mysql_settings,
                                                                   db) -> None:
    """Every account is challenged again and again (a captcha on a fifth of the requests, sticky
    until answered): the adapter's `captcha_solution` answers each, the same account goes on, no
    account rests, and the rows equal the truth."""
    site = start_site(start_sandbox, pages=8, captcha_rate=0.2, captcha_solvable=True)
    add_accounts(env, "demo1")

    crawl = crawls.run(site.url, f"domain={DOMAIN}", "pages=8", SITE_ADAPTER=f"{ADAPTERS}.SolvesCaptchas")

    assert crawl.process.returncode == 0, crawl.log[-3000:]
    assert_matches_truth(mysql_settings, DOMAIN, site.truth(DOMAIN, 1, 8))
    seen = site.admin_stats()["accounts"]["demo1"]
    assert seen["captchas"] >= 1 and seen["captchas_solved"] >= 1 and seen["captchas_failed"] == 0, seen
    assert crawl.log.count("captcha solved") == seen["captchas_solved"]
    assert_accounts_untouched(mysql_settings)


def test_without_a_solver_a_first_captcha_rests_the_account_briefly(start_sandbox, crawls, env, mysql_settings,
                                                                    db) -> None:
    site = start_site(start_sandbox, pages=4, captcha_rate=1, captcha_solvable=True)
    add_accounts(env, "demo1")

    crawl = crawls.run(site.url, f"domain={DOMAIN}", "pages=4", INGEST_CLAIM_WAIT=1)

    assert "account 1 cooling down for 30s" in crawl.log, crawl.log[-3000:]  # the first captcha's rest
    (account,) = query(mysql_settings, "SELECT status_reason, cooldown_until FROM accounts")
    assert account["status_reason"].startswith("captcha") and account["cooldown_until"] is not None
