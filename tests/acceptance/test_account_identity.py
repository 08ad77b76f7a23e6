"""Each account crawls through its own identity (proxy, user agent), so a platform that links
accounts sharing an address or a user agent (the reference platform's ``--link-accounts``)
links none of them; without identities it does; and a dead proxy only rests its own account.

The proxies are real forward proxies on this machine (`tests.fixtures.proxies`), each leaving
from its own loopback address, so the platform sees a different client per account.
"""

from __future__ import annotations

import json

import pytest

from influencers.core.config import Config
from influencers.core.credentials import CredentialCipher
from influencers.core.db import connect
from influencers.core.identities import IdentityStore
from tests.fixtures.crawl import add_accounts, assert_matches_truth, query

pytestmark = pytest.mark.timeout(240)

DOMAINS = ("美妆", "游戏", "美食")
PAGES = 6
USERNAMES = ("demo1", "demo2", "demo3")
SETTINGS = {"INGEST_MAX_TASKS": 3, "ACCOUNTS_REQUEST_INTERVAL": 0.05}


def set_identity(env: dict[str, str], account_id: int, **fields: object) -> None:
    config = Config.from_env(env)
    conn = connect(config.mysql)
    try:
        IdentityStore(conn, cipher=CredentialCipher.from_config(config)).set(account_id, **fields)
    finally:
        conn.close()


def crawl_three_domains(crawls, sandbox, mysql_settings, env, **settings: object) -> str:
    from tests.fixtures.processes import run_cli

    for domain in DOMAINS:
        assert run_cli(env, "start_crawl", "--domain", domain, "--pages", str(PAGES), "--split", str(PAGES)).returncode == 0
    crawl = crawls.run(sandbox.url, "once=1", timeout=150, **{**SETTINGS, **settings})
    log = crawl.log
    assert crawl.process.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    return log


def accounts_by_name(mysql_settings) -> dict[str, dict]:
    return {row["username"]: row for row in query(mysql_settings, "SELECT * FROM accounts")}


def test_one_proxy_and_user_agent_per_account_links_no_one(start_sandbox, start_proxy, crawls, env, mysql_settings,
                                                             db) -> None:
    sandbox = start_sandbox(link_accounts=True)
    ids = add_accounts(env, *USERNAMES)
    proxies = {}
    for number, username in enumerate(USERNAMES, start=2):
        proxies[username] = proxy = start_proxy(source=f"127.0.0.{number}", auth=(f"user{number}", f"secret{number}"))
        set_identity(env, ids[username], proxy_url=proxy.url, user_agent=f"Mozilla/5.0 (identity {username})")

    log = crawl_three_domains(crawls, sandbox, mysql_settings, env)

    for domain in DOMAINS:
        assert_matches_truth(mysql_settings, domain, sandbox.truth(domain, 1, PAGES))
    stats = sandbox.admin_stats()["accounts"]
    used = [name for name in USERNAMES if stats[name]["pages"]]
    assert len(used) >= 2  # several accounts at once, each from its own address
    for number, username in enumerate(USERNAMES, start=2):
        seen = stats[username]
        assert not seen["banned"] and not seen["linked_to"], seen
        if seen["pages"]:
            assert seen["addresses"] == [f"127.0.0.{number}"]  # only ever through its own proxy
            assert seen["user_agents"] == [f"Mozilla/5.0 (identity {username})"]
            assert proxies[username].forwarded > 0
    assert {row["status"] for row in accounts_by_name(mysql_settings).values()} == {"idle"}
    for number in (2, 3, 4):
        assert f"secret{number}" not in log  # the proxies' credentials never reach the log


def test_without_identities_the_platform_links_the_accounts(start_sandbox, crawls, env, mysql_settings, db) -> None:
    sandbox = start_sandbox(link_accounts=True)
    add_accounts(env, *USERNAMES)

    crawl_three_domains(crawls, sandbox, mysql_settings, env, ACCOUNTS_REQUEST_INTERVAL=0.3)  # three at once

    disabled = {name: row for name, row in accounts_by_name(mysql_settings).items() if row["status"] == "disabled"}
    assert disabled, "accounts sharing one address and user agent were not linked"
    platform = sandbox.admin_stats()["accounts"]
    for name, row in disabled.items():
        assert row["status_reason"].startswith("banned") and platform[name]["ban_reason"] == "账号关联"
    assert len(disabled) < len(USERNAMES)  # the platform keeps the first account of each link


def test_a_dead_proxy_rests_only_its_account_with_the_reason(start_sandbox, start_proxy, crawls, env, mysql_settings,
                                                              db) -> None:
    sandbox = start_sandbox()
    ids = add_accounts(env, *USERNAMES)
    for number, username in enumerate(USERNAMES, start=2):
        proxy = start_proxy(source=f"127.0.0.{number}")
        set_identity(env, ids[username], proxy_url=proxy.url, user_agent=f"Mozilla/5.0 (identity {username})")
        if username == "demo2":
            proxy.stop()  # connection refused from now on

    crawl_three_domains(crawls, sandbox, mysql_settings, env)

    for domain in DOMAINS:
        assert_matches_truth(mysql_settings, domain, sandbox.truth(domain, 1, PAGES))
    accounts = accounts_by_name(mysql_settings)
    dead = accounts["demo2"]
    assert dead["status"] != "disabled" and "proxy" in (dead["status_reason"] or ""), dead
    assert dead["cooldown_until"] is not None
    (health,) = query(mysql_settings, "SELECT proxy_failures, proxy_error FROM account_identities WHERE account_id = %s",
                      ids["demo2"])
    assert health["proxy_failures"] >= 1 and health["proxy_error"]
    assert {accounts[name]["status"] for name in ("demo1", "demo3")} == {"idle"}
    assert sandbox.admin_stats()["accounts"]["demo2"]["pages"] == 0


def test_accounts_check_says_per_account_what_is_wrong(start_sandbox, start_proxy, env, mysql_settings, db) -> None:
    from tests.fixtures.processes import run_cli

    sandbox = start_sandbox(ban_accounts=["demo3"])
    ids = add_accounts(env, "demo1", "demo2", "demo3", "demo4")
    good = start_proxy(source="127.0.0.2", auth=("user", "secret"))
    dead = start_proxy(source="127.0.0.3")
    set_identity(env, ids["demo1"], proxy_url=good.url, user_agent="Mozilla/5.0 (check 1)")
    set_identity(env, ids["demo2"], proxy_url=dead.url)
    dead.stop()
    set_identity(env, ids["demo4"], proxy_url=good.url.replace("secret", "wrong"))
    env = {**env, "INFLUENCERS_SITE_URL": sandbox.url}

    result = run_cli(env, "accounts", "check", "--domain", "美妆", "--format", "json", timeout=120)

    assert result.returncode == 1, result.stderr  # not every account is ok
    found = {row["username"]: row for row in json.loads(result.stdout)}
    assert found["demo1"]["result"] == "ok" and "rows" in found["demo1"]["detail"]
    assert found["demo2"]["result"] == "proxy failed" and found["demo2"]["proxy"] == dead.url.split("@")[-1]
    assert found["demo3"]["result"] == "banned"
    assert found["demo4"]["result"] == "proxy failed" and "407" in found["demo4"]["detail"]
    assert "secret" not in result.stdout + result.stderr and "sandbox-demo" not in result.stdout + result.stderr
    assert good.forwarded >= 2  # demo1 logged in and read its page through its own proxy
    statuses = {row["status"] for row in query(mysql_settings, "SELECT status FROM accounts")}
    assert statuses == {"idle"}  # a check changes nothing
    refused = run_cli(env, "accounts", "check", "--username", "demo1")
    assert (refused.returncode, refused.stderr.count("\n")) == (2, 1) and "give --domain" in refused.stderr
    assert run_cli(env, "start_crawl", "--domain", "美妆", "--pages", "1").returncode == 0
    only = run_cli(env, "accounts", "check", "--username", "demo1")  # the newest crawl's domain
    assert only.returncode == 0 and "demo1" in only.stdout and "demo2" not in only.stdout


def test_page_budgets_stop_each_account_before_the_platforms_daily_cap(start_sandbox, crawls, env, mysql_settings,
                                                                       db) -> None:
    from tests.fixtures.processes import run_cli

    sandbox = start_sandbox(daily_page_cap=5)  # the platform refuses an account's 6th page of the day
    add_accounts(env, "demo1", "demo2")
    for username in ("demo1", "demo2"):
        result = run_cli(env, "accounts", "set-budget", "--username", username, "--pages-per-day", "4")
        assert result.returncode == 0, result.stderr

    crawl = crawls.run(sandbox.url, "domain=美妆", "pages=8", timeout=120)

    assert crawl.process.returncode == 0, crawl.log[-3000:]
    assert_matches_truth(mysql_settings, "美妆", sandbox.truth("美妆", 1, 8))
    platform = sandbox.admin_stats()["accounts"]
    assert [platform[name]["pages"] for name in ("demo1", "demo2")] == [4, 4]
    assert all(platform[name]["daily_cap"] == 0 for name in ("demo1", "demo2"))  # never met the cap
    listed = {row["username"]: row for row in json.loads(run_cli(env, "accounts", "list", "--format", "json").stdout)}
    assert [(listed[name]["pages_today"], listed[name]["pages_per_day"]) for name in ("demo1", "demo2")] == [
        (4, "4"), (4, "4")]
    spent = [row for row in listed.values() if "budget of 4 pages a day is spent" in (row["status_reason"] or "")]
    assert spent and all(row["status"] != "disabled" for row in spent)


def test_browser_pages_go_through_the_accounts_proxy_and_user_agent(start_sandbox, start_proxy, crawls, env,
                                                                    mysql_settings, db) -> None:
    sandbox = start_sandbox(link_accounts=True)
    ids = add_accounts(env, "demo5")
    proxy = start_proxy(source="127.0.0.5", auth=("browser", "secret5"))
    set_identity(env, ids["demo5"], proxy_url=proxy.url, user_agent="Mozilla/5.0 (browser identity)")

    crawl = crawls.run(sandbox.url, "domain=科技", "pages=2", "render=js", timeout=150)

    assert crawl.process.returncode == 0, crawl.log[-3000:]
    assert_matches_truth(mysql_settings, "科技", sandbox.truth("科技", 1, 2))
    seen = sandbox.admin_stats()["accounts"]["demo5"]
    assert seen["addresses"] == ["127.0.0.5"]  # the login and the browser's page and API calls alike
    assert seen["user_agents"] == ["Mozilla/5.0 (browser identity)"]
    assert "secret5" not in crawl.log
