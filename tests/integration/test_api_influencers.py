"""Influencers over HTTP: search with filters and keyset pages, one influencer's detail, saved
searches, an export of a selection; bad input is a 4xx, never a 500."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode

import pytest

from influencers.core.search import search
from influencers.core.selection import Selection
from tests.fixtures.influencer_rows import store_rows

pytestmark = pytest.mark.usefixtures("db")

ROWS = [
    {"uid": f"mz/{index:03d}", "nickname": f"{'小鹿酱' if index % 3 == 0 else '糖糖'}{index}", "fans": index * 1000,
     "region": "广东·深圳" if index % 2 else "上海", "tags": ["彩妆"] if index % 4 == 0 else ["护肤"],
     "contact": {"wechat": "wx" if index % 5 == 0 else None}}
    for index in range(45)
]


@pytest.fixture
def stored(db, scheduler, accounts):
    store_rows(db, scheduler, accounts, "美妆", ROWS, datetime(2026, 1, 1, 8), "采集一")
    return db


def get_all(api_server, query: dict) -> list[dict]:
    items, after = [], None
    while True:
        reply = api_server.get("/api/v1/influencers?" + urlencode({**query, **({"after": after} if after else {})}))
        assert reply.status == 200, reply.text
        body = reply.json()
        items += body["items"]
        if body["next"] is None:
            return items
        after = body["next"]


def test_search_pages_through_the_same_rows_as_the_core(api_server, stored):
    query = {"domain": "美妆", "q": "鹿酱", "fans_min": 3000, "region": "广东", "sort": "-fans", "limit": 2}
    items = get_all(api_server, query)
    core = search(stored, Selection(domain="美妆", q="鹿酱", fans_min=3000, region="广东"), sort="-fans", limit=500)
    assert [item["uid"] for item in items] == [row["uid"] for row in core.rows]
    assert items and all("鹿酱" in item["nickname"] and item["region"].startswith("广东") for item in items)
    assert [item["fans"] for item in items] == sorted((item["fans"] for item in items), reverse=True)
    tagged = get_all(api_server, {"tag": "彩妆", "has_contact": "true"})
    assert {item["uid"] for item in tagged} == {row["uid"] for i, row in enumerate(ROWS) if i % 20 == 0}
    assert tagged[0]["tags"] == ["彩妆"] and tagged[0]["has_contact"] is True


@pytest.mark.parametrize(("query", "status"), [
    ("sort=bogus", 422), ("limit=0", 422), ("limit=501", 422), ("fans_min=many", 422), ("status=deleted", 422),
    ("after=not-a-cursor", 400), ("q=", 422), ("colour=red", 422), ("has_contact=perhaps", 422),
])
def test_bad_search_input_is_a_4xx(api_server, query, status):
    reply = api_server.get(f"/api/v1/influencers?{query}")
    assert reply.status == status, reply.text
    assert "error" in reply.json()


def test_one_influencer_with_its_crawl_and_history(api_server, stored):
    reply = api_server.get("/api/v1/influencers/" + quote("mz/003", safe=""))
    assert reply.status == 200, reply.text
    body = reply.json()
    assert body["influencer"]["uid"] == "mz/003" and body["raw_data"] == ROWS[3]
    assert body["last_crawl"]["account"] == "采集一" and body["export"] is None
    assert body["history"] == [{"recorded_at": "2026-01-01T08:00:00Z", "fans": 3000}]
    missing = api_server.get("/api/v1/influencers/nobody")
    assert missing.status == 404 and missing.json()["error"]["code"] == "influencer_not_found"


def test_saved_searches_and_an_export_of_a_selection(api_server, stored):
    saved = api_server.request("PUT", "/api/v1/searches/" + quote("大号 广东"),
                               json_body={"domain": "美妆", "fans_min": 20000, "region": "广东"})
    assert saved.status == 200, saved.text
    assert saved.json()["filter"] == {"domain": "美妆", "fans_min": 20000, "region": "广东"}
    assert [row["name"] for row in api_server.get("/api/v1/searches").json()] == ["大号 广东"]

    task = api_server.post("/api/v1/tasks/export", {"domain": "美妆", "search": "大号 广东",
                                                    "filter": {"tag": "护肤"}})
    assert task.status == 201, task.text
    assert task.json()["export_filter"] == {"fans_min": 20000, "region": "广东", "tag": "护肤"}
    assert "where fans_min=20000" in task.json()["events"][0]["reason"]
    unknown = api_server.post("/api/v1/tasks/export", {"domain": "美妆", "search": "nothing saved"})
    assert unknown.status == 404
    bad = api_server.post("/api/v1/tasks/export", {"domain": "美妆", "filter": {"fans_min": "1"}})
    assert bad.status == 422

    json_only = {"Content-Type": "application/json"}  # as for every change: no cross-site form can send it
    path = "/api/v1/searches/" + quote("大号 广东")
    assert api_server.request("DELETE", path).status == 415
    assert api_server.request("DELETE", path, headers=json_only).status == 204
    assert api_server.request("DELETE", path, headers=json_only).status == 404
