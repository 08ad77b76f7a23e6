"""The dashboard's overview in headless Chromium (``on_browser``, tests/fixtures/browser.py) after a
small crawl and export: the numbers it renders are the numbers in the tables, it refreshes itself,
it fetches nothing from outside this server, and a screenshot is taken for a person to look at
(``screenshot``: in the test's temporary directory, and in ``$INFLUENCERS_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import pytest

from tests.fixtures.browser import screenshot

pytestmark = pytest.mark.slow


def cell(page, table: str, key: str, field: str) -> str:
    return page.locator(f'#{table} tr[data-key="{key}"] td[data-field="{field}"]').inner_text().strip()


def wait_for_refresh(page, after: int = 0, timeout: float = 15_000) -> int:
    page.wait_for_function("(after) => Number(document.body.dataset.refreshes || 0) > after", arg=after,
                           timeout=timeout)
    return int(page.evaluate("document.body.dataset.refreshes"))


def rows(db, sql: str) -> list[dict]:
    db.commit()  # a fresh snapshot
    with db.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def test_dashboard_shows_the_tables_numbers(on_browser, api_server, small_run, db, tmp_path):
    on_browser(lambda page: check_numbers(page, api_server, small_run, db, tmp_path))


def check_numbers(page, api_server, small_run, db, tmp_path):
    page.goto(f"{api_server.url}/dashboard#token={api_server.token}")
    refreshes = wait_for_refresh(page)
    assert "token=" not in page.url  # taken from the fragment into sessionStorage, then dropped

    # today's ingestion per domain and account, against ingestion_logs
    ingested = rows(db, "SELECT l.domain, a.username, SUM(l.ingested_count) AS n, COUNT(*) AS pages"
                        " FROM ingestion_logs l JOIN accounts a ON a.id = l.account_id GROUP BY l.domain, a.username")
    assert len(ingested) == 2
    for row in ingested:
        key = f"{row['domain']}|{row['username']}"
        assert cell(page, "ingestion", key, "influencers") == f"{int(row['n']):,}"
        assert cell(page, "ingestion", key, "pages") == str(row["pages"])

    # today's exports per account and domain, against export_logs
    exported = rows(db, "SELECT e.domain, a.username, SUM(e.exported_count) AS n, COUNT(*) AS files"
                        " FROM export_logs e JOIN accounts a ON a.id = e.account_id WHERE e.state = 'published'"
                        " GROUP BY e.domain, a.username")
    assert [(r["domain"], r["username"], int(r["n"])) for r in exported] == [("美妆", "导出账号二", 10)]
    assert cell(page, "export", "美妆|导出账号二", "rows_exported") == "10"
    assert cell(page, "export", "美妆|导出账号二", "files") == "1"

    # accounts: status, reason, quota left today, against the accounts table
    for account in rows(db, "SELECT username, status, status_reason, daily_export_limit - today_export_count AS left_"
                            " FROM accounts"):
        assert cell(page, "accounts", account["username"], "remaining_quota") == f"{int(account['left_']):,}"
        assert page.locator(f'#accounts tr[data-key="{account["username"]}"] td[data-field="status"]'
                            ).inner_text() == {"idle": "空闲", "ingesting": "入库中", "exporting": "导出中",
                                               "disabled": "已停用"}[account["status"]]
        assert cell(page, "accounts", account["username"], "status_reason") == (account["status_reason"] or "—")
    assert cell(page, "accounts", "导出账号二", "remaining_quota") == "90"
    assert cell(page, "accounts", "停用账号", "status_reason") == "平台封禁 🚫"

    # backlog per domain with the days of quota it needs
    daily = rows(db, "SELECT SUM(daily_export_limit) AS n FROM accounts WHERE status <> 'disabled'")[0]["n"]
    pending = rows(db, "SELECT domain, COUNT(*) AS n FROM influencers WHERE status = 'pending_export' GROUP BY domain")
    assert len(pending) == 2
    for row in pending:
        assert cell(page, "backlog", row["domain"], "pending") == f"{row['n']:,}"
        assert cell(page, "backlog", row["domain"], "daily_quota") == f"{int(daily):,}"
        assert cell(page, "backlog", row["domain"], "days_needed") == f"{-(-row['n'] // int(daily))} 天"

    # tasks by state (subtasks), and progress
    counts = rows(db, "SELECT task_type, status, COUNT(*) AS n FROM tasks WHERE NOT is_parent"
                      " GROUP BY task_type, status")
    for row in counts:
        card = page.locator(f'.card[data-type="{row["task_type"]}"][data-state="{row["status"]}"] b')
        assert card.inner_text() == str(row["n"])
    assert page.locator('.card[data-type="export"][data-state="failed"] b').inner_text() == "0"
    for task in rows(db, "SELECT t.id, t.page_to - t.page_from + 1 AS total,"
                         " (SELECT COUNT(*) FROM ingestion_logs l WHERE l.task_id = t.id"
                         "   OR l.task_id IN (SELECT c.id FROM tasks c WHERE c.parent_id = t.id)) AS done"
                         " FROM tasks t WHERE t.task_type = 'ingestion'"):
        assert cell(page, "tasks", str(task["id"]), "progress") == f"{task['done']} / {task['total']} 页"
    assert cell(page, "tasks", str(small_run["tasks"]["beauty"]), "progress") == "2 / 4 页"
    assert cell(page, "tasks", str(small_run["tasks"]["export"]), "progress") == "已导出 10 / 10 · 待导出 28"
    assert cell(page, "tasks", str(small_run["tasks"]["games_subtask"]), "last_error") == "运营暂停"

    # it refreshes by itself: a page of the next subtask committed now shows up without a reload
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ingestion_logs"
            " (task_id, account_id, domain, page_number, ingested_count, start_time, end_time)"
            " VALUES (%s, %s, '美妆', 3, 12, UTC_TIMESTAMP(), UTC_TIMESTAMP())",
            (small_run["tasks"]["beauty_next"], small_run["accounts"]["采集账号一"]),
        )
    db.commit()
    wait_for_refresh(page, after=refreshes)
    assert cell(page, "ingestion", "美妆|采集账号一", "influencers") == "50"
    assert cell(page, "ingestion", "美妆|采集账号一", "pages") == "3"

    # nothing fetched from elsewhere; no script errors
    assert page.requests and all(url.startswith(api_server.url) for url in page.requests), page.requests
    assert page.problems == [], page.requests

    assert screenshot(page, tmp_path, "dashboard.png").stat().st_size > 10_000


def test_dashboard_asks_for_the_token_once(on_browser, api_server, small_run):
    on_browser(lambda page: check_token_form(page, api_server))
    assert api_server.token not in api_server.log()


def check_token_form(page, api_server):
    page.goto(f"{api_server.url}/dashboard")
    page.wait_for_selector("#login:not([hidden])")
    assert page.locator("#content").is_hidden()
    page.fill("#token-input", "wrong-token-0123456789")
    with page.expect_response(lambda response: response.url.endswith("/api/v1/status")) as refused:
        page.press("#token-input", "Enter")
    assert refused.value.status == 401
    page.wait_for_selector("#login:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('influencers.apiToken')") is None
    page.fill("#token-input", api_server.token)
    page.click("#login button")
    wait_for_refresh(page)
    assert page.locator("#login").is_hidden()
    assert cell(page, "accounts", "导出账号二", "remaining_quota") == "90"
    page.reload()  # the token is kept for the tab (sessionStorage), not asked again
    wait_for_refresh(page)
    assert page.locator("#login").is_hidden()
    assert page.evaluate("sessionStorage.getItem('influencers.apiToken')") == api_server.token
