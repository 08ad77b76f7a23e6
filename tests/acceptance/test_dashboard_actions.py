"""The dashboard's actions and charts in headless Chromium (``on_browser``, tests/fixtures/browser.py),
after a small crawl and export (``small_run``):

- a task is paused and resumed from its row, an account disabled with a reason and enabled, a
  crawl, an export and two schedules are created from the forms: each time the tables hold
  what the page said it did;
- a refusal (400, 409, 422) shows the API's own message on one line, and nothing is written;
- the three charts have one bar per hour (168), per day (7) and per account, with the numbers
  of the tables.

Screenshots go where the overview's does (``screenshot``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from influencers.core.quotaday import TODAY_SQL
from tests.fixtures.browser import screenshot

pytestmark = pytest.mark.slow

REASON = "验证码太多 <b>停</b>"


def rows(db, sql: str, *args) -> list[dict]:
    db.commit()  # a fresh snapshot
    with db.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def wait_for_refresh(page, after: int = 0) -> int:
    page.wait_for_function("(after) => Number(document.body.dataset.refreshes || 0) > after", arg=after,
                           timeout=15_000)
    return int(page.evaluate("document.body.dataset.refreshes"))


def open_overview(page, api_server) -> int:
    page.goto(f"{api_server.url}/dashboard#token={api_server.token}")
    return wait_for_refresh(page)


def outcome(page, line: str, action) -> tuple[bool, str]:
    """Do ``action()`` and return (succeeded, text) of the one-line outcome it writes in ``#line``."""
    page.evaluate("(id) => { const l = document.getElementById(id); l.textContent = ''; l.className = 'action-result'; }",
                  line)
    action()
    page.wait_for_function("(id) => document.getElementById(id).textContent !== ''", arg=line, timeout=15_000)
    locator = page.locator(f"#{line}")
    return "ok" in (locator.get_attribute("class") or "").split(), locator.text_content()


def one_line(page, line: str) -> None:
    """The outcome is shown on a single line (no wrapping, whatever its length)."""
    height, line_height = page.evaluate(
        "(id) => { const l = document.getElementById(id); return [l.clientHeight, parseFloat(getComputedStyle(l).lineHeight)"
        " || 20]; }", line)
    assert height <= 1.6 * line_height


def refused_requests(page, *statuses: int) -> None:
    """Chromium logs each refused request as a console error: exactly those, and nothing else went wrong."""
    for status in statuses:
        logged = next((p for p in page.problems if f"status of {status}" in p), None)
        assert logged is not None, (status, page.problems)
        page.problems.remove(logged)
    assert page.problems == [], page.problems


def fill(page, form: str, **values: str) -> None:
    for name, value in values.items():
        field = page.locator(f'#{form} [name="{name}"]')
        if field.evaluate("node => node.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


# -- tasks ------------------------------------------------------------------------------------


def test_pause_and_resume_a_task(on_browser, api_server, small_run, db, tmp_path):
    on_browser(lambda page: check_tasks(page, api_server, small_run, db, tmp_path))


def task_state(db, task_id: int) -> tuple[str, str | None]:
    row = rows(db, "SELECT status, last_error FROM tasks WHERE id = %s", task_id)[0]
    return row["status"], row["last_error"]


def check_tasks(page, api_server, small_run, db, tmp_path):
    task = small_run["tasks"]["beauty_next"]  # a pending subtask
    refreshes = open_overview(page, api_server)
    row = f'#tasks tr[data-key="{task}"]'
    assert page.locator(f'{row} button[data-action="resume"]').count() == 0
    assert page.locator(f'#tasks tr[data-key="{small_run["tasks"]["export"]}"] button').count() == 0  # completed

    ok, text = outcome(page, "tasks-message", lambda: page.click(f'{row} button[data-action="pause"]'))
    assert (ok, text) == (True, f"任务 #{task} 已暂停")
    assert task_state(db, task) == ("paused", "paused on the dashboard")
    refreshes = wait_for_refresh(page, refreshes)  # the action's own refresh
    assert page.locator(f'{row} td[data-field="status"]').inner_text() == "已暂停"

    ok, text = outcome(page, "tasks-message", lambda: page.click(f'{row} button[data-action="resume"]'))
    assert (ok, text) == (True, f"任务 #{task} 已恢复，等待领取")
    assert task_state(db, task)[0] == "pending"
    refreshes = wait_for_refresh(page, refreshes)
    assert page.locator(f'{row} td[data-field="status"]').inner_text() == "等待中"

    # the task finishes while its row still offers "pause" (the next refresh is 5 s away): 409, the
    # API's message, nothing changed
    with db.cursor() as cursor:
        cursor.execute("UPDATE tasks SET status = 'completed' WHERE id = %s", (task,))
    db.commit()
    refreshes = int(page.evaluate("document.body.dataset.refreshes"))
    ok, text = outcome(page, "tasks-message", lambda: page.click(f'{row} button[data-action="pause"]'))
    expected = api_server.post(f"/api/v1/tasks/{task}/pause", {"reason": "x"})
    assert expected.status == 409
    assert (ok, text) == (False, expected.error["message"])
    one_line(page, "tasks-message")
    assert task_state(db, task)[0] == "completed"
    wait_for_refresh(page, refreshes)  # the view was out of date: it is fetched again, the message stays
    assert page.locator(f'{row} td[data-field="status"]').inner_text() == "已完成"
    assert page.locator(f"{row} button").count() == 0
    assert page.locator("#tasks-message").text_content() == expected.error["message"]
    screenshot(page, tmp_path, "dashboard-actions-tasks.png")
    refused_requests(page, 409)


# -- accounts ---------------------------------------------------------------------------------


def test_disable_and_enable_an_account(on_browser, api_server, small_run, db, tmp_path):
    on_browser(lambda page: check_accounts(page, api_server, db, tmp_path))


def account_state(db, username: str) -> tuple[str, str | None]:
    row = rows(db, "SELECT status, status_reason FROM accounts WHERE username = %s", username)[0]
    return row["status"], row["status_reason"]


def check_accounts(page, api_server, db, tmp_path):
    refreshes = open_overview(page, api_server)
    row = '#accounts tr[data-key="导出账号二"]'
    assert account_state(db, "导出账号二") == ("idle", None)
    assert page.locator('#accounts tr[data-key="停用账号"] button[data-action="enable"]').count() == 1

    page.click(f'{row} button[data-action="disable"]')
    page.wait_for_selector("#account-dialog[open]")
    assert page.locator("#account-dialog-title").inner_text() == "停用账号「导出账号二」"
    # no reason: the API's 422, in the dialog, which stays open; nothing changed
    ok, text = outcome(page, "account-dialog-result", lambda: page.click("#account-confirm"))
    assert (ok, text) == (False, "body.reason: String should have at least 1 character")
    assert page.locator("#account-dialog[open]").count() == 1
    assert account_state(db, "导出账号二") == ("idle", None)
    screenshot(page, tmp_path, "dashboard-actions-dialog.png")

    page.fill("#account-reason", REASON)
    ok, text = outcome(page, "accounts-message", lambda: page.click("#account-confirm"))
    assert (ok, text) == (True, f"账号「导出账号二」已停用：{REASON}")
    assert page.locator("#account-dialog[open]").count() == 0
    assert account_state(db, "导出账号二") == ("disabled", REASON)
    refreshes = wait_for_refresh(page, refreshes)
    assert page.locator(f'{row} td[data-field="status_reason"]').inner_text() == REASON  # text, not markup
    assert page.locator("#accounts b").count() == 0
    screenshot(page, tmp_path, "dashboard-actions-accounts.png")

    page.click(f'{row} button[data-action="enable"]')
    page.wait_for_selector("#account-dialog[open]")
    page.fill("#account-reason", "复查通过")
    ok, text = outcome(page, "accounts-message", lambda: page.press("#account-reason", "Enter"))
    assert (ok, text) == (True, "账号「导出账号二」已启用")
    assert account_state(db, "导出账号二") == ("idle", None)
    events = rows(db, "SELECT to_status, reason FROM events WHERE entity = 'account' AND entity_id ="
                      " (SELECT id FROM accounts WHERE username = '导出账号二') ORDER BY id")
    assert [(e["to_status"], e["reason"]) for e in events][-2:] == [("disabled", REASON), ("idle", "复查通过")]
    wait_for_refresh(page, refreshes)
    assert page.locator(f'{row} button[data-action="disable"]').count() == 1
    refused_requests(page, 422)


# -- forms ------------------------------------------------------------------------------------


def test_start_a_crawl_an_export_and_add_schedules(on_browser, api_server, small_run, db, tmp_path):
    on_browser(lambda page: check_forms(page, api_server, db, tmp_path))


def created(page, line: str) -> int:
    return int(page.get_attribute(f"#{line}", "data-id"))


def check_forms(page, api_server, db, tmp_path):
    open_overview(page, api_server)
    tasks_before = rows(db, "SELECT COUNT(*) AS n FROM tasks")[0]["n"]

    # refused: the API's message, one line, nothing created
    fill(page, "crawl-form", domain="美/妆", pages="2")
    ok, text = outcome(page, "crawl-result", lambda: page.click('#crawl-form button[type="submit"]'))
    expected = api_server.post("/api/v1/tasks/crawl", {"domain": "美/妆", "pages": 2})
    assert expected.status == 400 and (ok, text) == (False, expected.error["message"])
    fill(page, "export-form", domain="美妆", limit="0")
    ok, text = outcome(page, "export-form-result", lambda: page.click('#export-form button[type="submit"]'))
    assert (ok, text) == (False, "body.limit: Input should be greater than or equal to 1")
    one_line(page, "export-form-result")
    assert rows(db, "SELECT COUNT(*) AS n FROM tasks")[0]["n"] == tasks_before

    # a crawl of 6 pages, 3 a subtask
    fill(page, "crawl-form", domain="测试领域", pages="6", split="3")
    ok, text = outcome(page, "crawl-result", lambda: page.click('#crawl-form button[type="submit"]'))
    crawl = created(page, "crawl-result")
    assert (ok, text) == (True, f"已创建采集任务 #{crawl}（测试领域，2 个子任务）")
    assert [(r["task_type"], r["domain"], r["is_parent"]) for r in rows(db, "SELECT * FROM tasks WHERE id = %s", crawl)
            ] == [("ingestion", "测试领域", 1)]
    assert [(r["page_from"], r["page_to"], r["status"]) for r in rows(
        db, "SELECT * FROM tasks WHERE parent_id = %s ORDER BY page_from", crawl)] == [(1, 3, "pending"), (4, 6, "pending")]

    # an export of at most 5 rows as JSON Lines
    fill(page, "export-form", domain="美妆", limit="5", format="jsonl")
    ok, text = outcome(page, "export-form-result", lambda: page.click('#export-form button[type="submit"]'))
    export = created(page, "export-form-result")
    assert (ok, text) == (True, f"已创建导出任务 #{export}（美妆，jsonl，最多 5 条）")
    task = rows(db, "SELECT * FROM tasks WHERE id = %s", export)[0]
    assert (task["task_type"], task["domain"], task["export_limit"], task["export_format"], task["status"]) == (
        "export", "美妆", 5, "jsonl", "pending")
    page.wait_for_selector(f'#tasks tr[data-key="{export}"]')  # the action's refresh lists it

    # schedules: a bad cron refused, then a crawl and an export
    fill(page, "schedule-form", kind="crawl", domain="游戏", cron="61 * * * *", pages="5")
    ok, text = outcome(page, "schedule-result", lambda: page.click('#schedule-form button[type="submit"]'))
    expected = api_server.post("/api/v1/schedules", {"kind": "crawl", "domain": "游戏", "cron": "61 * * * *", "pages": 5})
    assert expected.status == 400 and (ok, text) == (False, expected.error["message"])
    ok, _ = outcome(page, "schedule-result", lambda: (
        fill(page, "schedule-form", cron="0 3 * * *"), page.click('#schedule-form button[type="submit"]')))
    crawl_schedule = created(page, "schedule-result")
    assert page.locator("#schedule-form [name=limit]").is_hidden()
    fill(page, "schedule-form", kind="export", domain="美妆", cron="30 4 * * 1", limit="100", schedule_name="周一导出")
    assert page.locator("#schedule-form [name=pages]").is_hidden()
    ok_export, text = outcome(page, "schedule-result", lambda: page.click('#schedule-form button[type="submit"]'))
    export_schedule = created(page, "schedule-result")
    assert ok and ok_export and text.startswith(f"已添加定时任务 #{export_schedule}「周一导出」，下次运行 ")
    stored = {r["id"]: r for r in rows(db, "SELECT * FROM schedules")}
    assert set(stored) == {crawl_schedule, export_schedule}
    one = stored[crawl_schedule]
    assert (one["kind"], one["domain"], one["cron"], one["pages"], one["export_limit"]) == ("crawl", "游戏", "0 3 * * *", 5, None)
    other = stored[export_schedule]
    assert (other["kind"], other["name"], other["cron"], other["pages"], other["export_limit"]) == (
        "export", "周一导出", "30 4 * * 1", None, 100)
    page.wait_for_selector(f'#schedules tr[data-key="{export_schedule}"]')
    screenshot(page, tmp_path, "dashboard-actions-forms.png")
    refused_requests(page, 400, 422, 400)


# -- charts -----------------------------------------------------------------------------------


@pytest.fixture
def week(db, small_run, accounts):
    """small_run, plus pages in earlier hours (one beyond the week), exports on earlier days, and an
    account whose count belongs to yesterday."""
    task, account = small_run["tasks"]["beauty_running"], small_run["accounts"]["采集账号一"]
    with db.cursor() as cursor:
        for n, hours_ago in enumerate([5, 5, 26, 50, 100, 150, 166, 24 * 9], start=10):
            cursor.execute(
                "INSERT INTO ingestion_logs (task_id, account_id, domain, page_number, ingested_count, start_time,"
                " end_time) VALUES (%s, %s, '美妆', %s, 5, UTC_TIMESTAMP() - INTERVAL %s HOUR,"
                " UTC_TIMESTAMP() - INTERVAL %s HOUR)", (task, account, n, hours_ago, hours_ago))
        for days_ago, count in ((2, 30), (5, 12), (8, 99)):
            cursor.execute(
                "INSERT INTO export_logs (task_id, account_id, domain, exported_count, file_path, start_time, end_time,"
                " state, quota_date) VALUES (%s, %s, '美妆', %s, %s, UTC_TIMESTAMP() - INTERVAL %s DAY,"
                " UTC_TIMESTAMP() - INTERVAL %s DAY, 'published', UTC_DATE())",
                (small_run["tasks"]["export"], small_run["accounts"]["导出账号二"], count, f"美妆/old-{days_ago}.csv",
                 days_ago, days_ago))
    db.commit()
    spent = accounts.add("昨日用尽", "pw", 300)
    with db.cursor() as cursor:
        cursor.execute(f"UPDATE accounts SET today_export_count = 300, quota_date = {TODAY_SQL} - INTERVAL 1 DAY"
                       " WHERE id = %s", (*accounts.quota_day.today_params(), spent))
    db.commit()
    return small_run


def test_the_charts(on_browser, api_server, week, db, config, tmp_path):
    on_browser(lambda page: check_charts(page, api_server, db, config, tmp_path))


def check_charts(page, api_server, db, config, tmp_path):
    open_overview(page, api_server)
    page.wait_for_function("() => Number(document.body.dataset.activityLoads || 0) > 0")
    served = api_server.get("/api/v1/reports/activity").json()

    hours = page.eval_on_selector_all("#chart-pages rect.bar", "bars => bars.map(b => [b.dataset.key, Number(b.dataset.value)])")
    assert len(hours) == 168
    assert hours == [[hour["start"], hour["pages"]] for hour in served["hours"]]
    first = datetime.fromisoformat(served["hours"][0]["start"]).astimezone(UTC).replace(tzinfo=None)
    in_week = rows(db, "SELECT COUNT(*) AS n FROM ingestion_logs WHERE start_time >= %s", first)[0]["n"]
    assert sum(value for _, value in hours) == in_week == 3 + 7  # small_run's 3 pages and 7 of the 8 placed

    days = page.eval_on_selector_all("#chart-exports rect.bar", "bars => bars.map(b => [b.dataset.key, Number(b.dataset.value)])")
    today = config.quota_day.today()
    assert [key for key, _ in days] == [(today - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
    by_day = dict(days)
    exports = rows(db, "SELECT start_time, exported_count FROM export_logs WHERE state = 'published'")
    expected = {key: 0 for key in by_day}
    for export in exports:
        key = config.quota_day.local_date(export["start_time"]).isoformat()
        if key in expected:
            expected[key] += export["exported_count"]
    assert by_day == expected and by_day[today.isoformat()] == 10 and sum(by_day.values()) == 10 + 30 + 12

    quota = page.eval_on_selector_all(
        "#chart-quota .quota-row", "rows => rows.map(r => [r.dataset.username, Number(r.querySelector('.used').dataset.used),"
        " Number(r.querySelector('.used').dataset.limit)])")
    assert quota == [["采集账号一", 0, 4000], ["导出账号二", 10, 100], ["停用账号", 0, 50], ["昨日用尽", 0, 300]]
    assert page.locator("#chart-quota .quota-row.disabled").count() == 1
    assert page.locator("#pages-total").inner_text() == "近 7 天共 10 页"

    assert page.requests and all(url.startswith(api_server.url) for url in page.requests), page.requests
    assert page.problems == [], page.problems
    assert screenshot(page, tmp_path, "dashboard-charts.png").stat().st_size > 10_000
