"""`scrapy crawl influencers` as a real process against the sandbox and MariaDB."""

from __future__ import annotations

import pytest

from tests.fixtures.crawl import (
    add_accounts,
    assert_matches_truth,
    page_logs,
    query,
    tasks,
)

pytestmark = pytest.mark.timeout(180)

DOMAINS = ("美妆", "游戏", "美食")


def test_clean_three_domains_equal_the_truth(api, start_sandbox, crawls, env, mysql_settings, db) -> None:
    sandbox = start_sandbox(**api.sandbox_flags, pages=20)
    accounts = add_accounts(env, "demo1", "demo2", "demo3")
    running = [crawls.start(sandbox.url, f"domain={domain}", "pages=20") for domain in DOMAINS]
    for crawl in running:
        assert crawl.wait(90) == 0, crawl.log[-3000:]
        assert "Traceback" not in crawl.log, crawl.log[-3000:]
        assert "Starting download handler" not in crawl.log  # no Playwright driver for JSON pages
        assert f"adapter {api.adapter})" in crawl.log
    used = set()
    platform = sandbox.admin_stats()["accounts"]
    for domain in DOMAINS:
        assert_matches_truth(mysql_settings, domain, sandbox.truth(domain, 1, 20))
        (task,) = tasks(mysql_settings, domain)
        assert (task["status"], task["progress_marker"]) == ("completed", "page=20")
        (claimed,) = query(mysql_settings, "SELECT account_id FROM events WHERE entity = 'task' AND entity_id = %s"
                                           " AND event = 'claimed'", task["id"])
        logs = page_logs(mysql_settings, task["id"])
        assert [log["page_number"] for log in logs] == list(range(1, 21))
        assert {log["account_id"] for log in logs} == {claimed["account_id"]}
        assert all(log["ingested_count"] == 20 and log["domain"] == domain for log in logs)
        assert all(log["start_time"] <= log["end_time"] for log in logs)
        used.add(claimed["account_id"])
        username = next(name for name, account_id in accounts.items() if account_id == claimed["account_id"])
        assert platform[username]["pages"] == 20  # the platform saw that account read those pages
    assert len(used) == 3  # three crawls at once, each with its own account
    idle = query(mysql_settings, "SELECT status FROM accounts")
    assert {row["status"] for row in idle} == {"idle"}


def test_javascript_pages_through_chromium_equal_the_json_rows(sandbox, crawls, env, mysql_settings, db) -> None:
    add_accounts(env, "demo4")
    crawl = crawls.run(sandbox.url, "domain=科技", "pages=2", "render=js", timeout=120)
    assert crawl.process.returncode == 0
    assert "as js with account" in crawl.log, crawl.log[-3000:]
    assert "Starting download handler. Versions: scrapy-playwright" in crawl.log  # installed for js only
    json_rows = [row for page in (1, 2) for row in sandbox.logged_in("demo5").listing("科技", page).json()["items"]]
    assert_matches_truth(mysql_settings, "科技", json_rows)
    (task,) = tasks(mysql_settings, "科技")
    assert task["status"] == "completed"


def test_an_unknown_domain_fails_its_task_with_the_reason(sandbox, crawls, env, mysql_settings, db) -> None:
    add_accounts(env, "demo6")
    crawl = crawls.run(sandbox.url, "domain=不存在的领域", "pages=3")
    assert crawl.process.returncode == 0
    (task,) = tasks(mysql_settings, "不存在的领域")
    assert task["status"] == "failed"
    assert "E_UNKNOWN_DOMAIN" in task["last_error"]
    assert query(mysql_settings, "SELECT status FROM accounts") == [{"status": "idle"}]


def test_a_bad_setting_is_one_clear_line(sandbox, crawls, env, db) -> None:
    crawls.env = {**env, "INFLUENCERS_MYSQL_URL": "postgres://nowhere/db"}
    crawl = crawls.run(sandbox.url, "domain=游戏")
    assert "cannot start the crawl: INFLUENCERS_MYSQL_URL: must look like mysql://" in crawl.log
    assert "Traceback" not in crawl.log
    assert "'finish_reason': 'cannot_start'" in crawl.log
    assert crawl.process.returncode == 2  # scripts and supervisors see that it did not run


def test_a_wrong_secret_key_stops_the_crawl_at_once(sandbox, crawls, env, mysql_settings, db) -> None:
    from cryptography.fernet import Fernet

    add_accounts(env, "demo5")  # records the deployment's key (its check value)
    crawls.env = {**env, "INFLUENCERS_SECRET_KEY": Fernet.generate_key().decode()}
    crawl = crawls.run(sandbox.url, "domain=母婴", "pages=3", timeout=60)
    # refused at start, before it creates or claims anything
    assert "cannot start the crawl: INFLUENCERS_SECRET_KEY: the key is not this deployment's key" in crawl.log
    assert "'finish_reason': 'cannot_start'" in crawl.log
    assert crawl.process.returncode == 2
    assert "Traceback" not in crawl.log
    assert tasks(mysql_settings, "母婴") == []
    assert query(mysql_settings, "SELECT status FROM accounts") == [{"status": "idle"}]


def test_a_wrong_secret_key_on_a_deployment_without_a_recorded_key_stops_the_crawl_at_its_first_login(
        sandbox, crawls, env, mysql_settings, db) -> None:
    from cryptography.fernet import Fernet

    add_accounts(env, "demo5")
    with db.cursor() as cursor:  # a deployment from before the key check
        cursor.execute("DELETE FROM secret_key_check")
    db.commit()
    crawls.env = {**env, "INFLUENCERS_SECRET_KEY": Fernet.generate_key().decode()}
    crawl = crawls.run(sandbox.url, "domain=母婴", "pages=3", timeout=60)
    assert ("stopping the crawl: INFLUENCERS_SECRET_KEY: the key is not this deployment's key (it decrypts 0 of the"
            " 1 stored passwords)") in crawl.log
    assert "'finish_reason': 'secret_key'" in crawl.log
    assert crawl.process.returncode == 2
    assert "Traceback" not in crawl.log
    (task,) = tasks(mysql_settings, "母婴")
    assert task["status"] in ("pending", "paused") and task["claimed_by"] is None
    assert query(mysql_settings, "SELECT status FROM accounts") == [{"status": "idle"}]
    assert query(mysql_settings, "SELECT * FROM secret_key_check") == []  # the wrong key was not recorded


def test_no_account_says_so(sandbox, crawls, env, mysql_settings, db) -> None:
    crawl = crawls.run(sandbox.url, "domain=游戏", "pages=2")
    assert "no usable account: none exists or all are disabled" in crawl.log, crawl.log[-3000:]
    (task,) = tasks(mysql_settings, "游戏")
    assert task["status"] == "pending"


def test_credentials_never_reach_the_log(sandbox, crawls, env, db) -> None:
    add_accounts(env, "demo7")
    crawl = crawls.run(sandbox.url, "domain=穿搭", "pages=1", LOG_LEVEL="DEBUG")
    assert crawl.process.returncode == 0
    assert "logged in" in crawl.log
    assert "sandbox-demo7" not in crawl.log
    assert "sid=" not in crawl.log


def test_failed_pages_keep_the_task_open_with_the_reason(sandbox, crawls, env, mysql_settings, db) -> None:
    add_accounts(env, "demo8")
    sandbox.configure(error_rate=1.0)  # every listing request answers 5xx
    try:
        crawl = crawls.run(sandbox.url, "domain=母婴", "pages=2", RETRY_TIMES=1, INGEST_FAILED_PAGES_RETRY_AFTER=1)
    finally:
        sandbox.reset()
    assert "'finish_reason': 'pages_failed'" in crawl.log, crawl.log[-3000:]
    (task,) = tasks(mysql_settings, "母婴")
    assert task["status"] == "paused"  # not completed: its pages are not in
    assert "2 page(s) failed" in task["last_error"] and "page 1: server_error" in task["last_error"]
    assert page_logs(mysql_settings, task["id"]) == []
    # The platform behaves again: the same command picks the task up and reads the failed pages.
    crawl = crawls.run(sandbox.url, "domain=母婴", "pages=2")
    assert crawl.process.returncode == 0
    (task,) = tasks(mysql_settings, "母婴")
    assert (task["status"], task["progress_marker"]) == ("completed", "page=2")
    assert_matches_truth(mysql_settings, "母婴", sandbox.truth("母婴", 1, 2))


def test_downloader_middlewares_from_the_command_line_add_to_the_projects(sandbox, crawls, env, mysql_settings,
                                                                          db) -> None:
    """`-s DOWNLOADER_MIDDLEWARES=…` replaced the project's dict: the account middleware was gone
    and the crawl ran with no account and no login, without a word."""
    add_accounts(env, "demo2")
    crawl = crawls.run(sandbox.url, "domain=科技", "pages=2", DOWNLOADER_MIDDLEWARES="{}")
    assert crawl.process.returncode == 0, crawl.log[-3000:]
    assert "account 1 logged in" in crawl.log, crawl.log[-3000:]
    (task,) = tasks(mysql_settings, "科技")
    assert (task["status"], task["progress_marker"]) == ("completed", "page=2")
    assert [log["account_id"] for log in page_logs(mysql_settings, task["id"])] == [1, 1]
    assert_matches_truth(mysql_settings, "科技", sandbox.truth("科技", 1, 2))


def test_a_crawl_without_its_account_middleware_does_not_start(sandbox, crawls, env, mysql_settings, db) -> None:
    add_accounts(env, "demo3")
    crawl = crawls.run(sandbox.url, "domain=科技", "pages=1",
                       DOWNLOADER_MIDDLEWARES='{"influencers.middlewares.accounts.AccountsMiddleware": null}')
    assert crawl.process.returncode == 2, crawl.log[-3000:]
    assert "cannot start the crawl: DOWNLOADER_MIDDLEWARES: influencers.middlewares.accounts.AccountsMiddleware" \
           " is switched off" in crawl.log
    assert "Traceback" not in crawl.log
    assert tasks(mysql_settings, "科技") == []
