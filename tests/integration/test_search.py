"""Search on real MariaDB: every filter against a data set whose answers are known, keyset pages
that walk the whole selection exactly once in every sort order, Chinese substrings, hostile text."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from influencers.core import search as search_module
from influencers.core.accounts import AccountManager
from influencers.core.credentials import CredentialCipher
from influencers.core.db import connect
from influencers.core.errors import InvalidArgument
from influencers.core.profile import default_profile
from influencers.core.search import SORTS, detail, search
from influencers.core.searchterms import normalize
from influencers.core.selection import Selection, delete, load, save, saved
from influencers.core.tasks import TaskScheduler
from influencers.core.workers import Worker
from tests.fixtures.database import empty_tables
from tests.fixtures.influencer_rows import store_rows

DOMAINS = ("美妆", "游戏")
REGIONS = ("广东·深圳", "广东·广州", "上海", "浙江·杭州", None)
TAGS = ("彩妆", "护肤", "测评", "AI", "平价_好物%")
NAMES = ("小鹿酱", "鹿小酱", "阿杰的口红", "口红达人7", "糖糖🍑", "MiXeD Case", "100%_真", "小\u200b美酱", "南风", "x")


def make_rows(count: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        row = {"uid": f"u{index:04d}", "nickname": rng.choice(NAMES) + (str(index) if rng.random() < 0.5 else "")}
        if rng.random() < 0.9:
            row["fans"] = rng.choice((0, 10, 500, 500, 20_000, rng.randint(0, 5_000_000)))
        region = rng.choice(REGIONS)
        if region:
            row["region"] = region
        row["tags"] = rng.sample(TAGS, rng.randint(0, 3))
        row["contact"] = {"wechat": rng.choice((None, "", "wx_1"))}
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def data(mysql_settings, secret_key) -> Iterator[tuple]:
    """300 rows in two domains, stored once for the module (a connection of its own)."""
    empty_tables(mysql_settings)
    conn = connect(mysql_settings)
    worker = Worker.start(mysql_settings, "search-test")
    try:
        accounts = AccountManager(conn, cipher=CredentialCipher(secret_key.encode()))
        scheduler = TaskScheduler(conn, worker, accounts, lease_seconds=30)
        rows = make_rows(300)
        truth = {}
        for index, domain in enumerate(DOMAINS):
            part = rows[index::2]
            store_rows(conn, scheduler, accounts, domain, part, datetime(2026, 1, 1, 8), f"acct{index}")
            truth.update({row["uid"]: (domain, row) for row in part})
        yield conn, truth
    finally:
        worker.close()
        conn.close()
        empty_tables(mysql_settings)


def expected(truth: dict, chosen: Selection) -> set[str]:
    """The uids ``chosen`` selects, computed in Python from the rows as generated."""
    found = set()
    for uid, (domain, row) in truth.items():
        profile = default_profile(row)
        checks = [
            chosen.domain is None or chosen.domain == domain,
            chosen.uid is None or chosen.uid == uid,
            chosen.q is None or normalize(chosen.q) in normalize(row["nickname"]) and chosen.q.strip().casefold()
            in row["nickname"].casefold(),
            chosen.fans_min is None or (profile.fans is not None and profile.fans >= chosen.fans_min),
            chosen.fans_max is None or (profile.fans is not None and profile.fans <= chosen.fans_max),
            chosen.region is None or (profile.region or "").startswith(chosen.region),
            chosen.tag is None or chosen.tag in profile.tags,
            not chosen.has_contact or profile.has_contact,
            chosen.status in (None, "pending_export"),
        ]
        if all(checks):
            found.add(uid)
    return found


def walk(conn, chosen: Selection, sort: str, limit: int) -> list[dict]:
    rows, after = [], None
    while True:
        page = search(conn, chosen, sort=sort, limit=limit, after=after)
        rows.extend(page.rows)
        assert len(page.rows) <= limit
        if page.next is None:
            return rows
        after = page.next


selections = st.builds(
    Selection,
    domain=st.sampled_from((None, *DOMAINS)),
    q=st.sampled_from((None, "鹿酱", "小鹿", "口红", "红达", "小美", "mixed", "100%_", "%", "_", "南", "🍑", "无此人")),
    fans_min=st.sampled_from((None, 0, 10, 500, 20_000)),
    fans_max=st.sampled_from((None, 500, 1_000_000)),
    region=st.sampled_from((None, "广东", "上海", "浙江·杭州", "北京")),
    tag=st.sampled_from((None, *TAGS, "无此标签")),
    has_contact=st.booleans(),
    status=st.sampled_from((None, "pending_export", "exported")),
).filter(lambda s: s.fans_min is None or s.fans_max is None or s.fans_min <= s.fans_max)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=selections, sort=st.sampled_from(tuple(SORTS)), walk_rows=st.sampled_from((3, 40, 2000)),
       fulltext_seconds=st.sampled_from((30.0, 1e-6)))
def test_every_filter_selects_exactly_the_known_rows(data, chosen, sort, walk_rows, fulltext_seconds) -> None:
    """Every plan gives the same rows. ``walk_rows``: how far a text search walks the sort order
    before it asks the fulltext index (3: nearly always the index; 40: both, page by page; 2000:
    the walk alone); ``fulltext_seconds`` 1e-6: the index always runs out of time and the sort
    order is walked with the row checks instead."""
    conn, truth = data
    kept = search_module.WALK, search_module.FULLTEXT_SECONDS
    search_module.WALK, search_module.FULLTEXT_SECONDS = walk_rows, fulltext_seconds
    try:
        rows = walk(conn, chosen, sort, limit=37)
    finally:
        search_module.WALK, search_module.FULLTEXT_SECONDS = kept
    uids = [row["uid"] for row in rows]
    assert len(uids) == len(set(uids))  # no row twice across pages
    assert set(uids) == expected(truth, chosen)
    column, descending = SORTS[sort]
    key = [(row["id"] if column == "id" else row[column]) for row in rows]
    known = [k for k in key if k is not None]
    assert known == sorted(known, reverse=descending) and key[len(known):] == [None] * (len(key) - len(known))


@pytest.mark.parametrize("sort", tuple(SORTS))
def test_keyset_pages_walk_the_sort_order_with_unknown_values_last(data, sort) -> None:
    conn, truth = data
    column, descending = SORTS[sort]
    rows = walk(conn, Selection(), sort, limit=7)
    assert len(rows) == len(truth)
    key = "id" if column == "id" else column
    known = [row for row in rows if row[key] is not None]
    unknown = rows[len(known):]
    assert all(row[key] is None for row in unknown)  # NULLs come after every known value
    assert [(r[key], r["id"]) for r in known] == sorted(((r[key], r["id"]) for r in known), reverse=descending)
    assert [r["id"] for r in unknown] == sorted((r["id"] for r in unknown), reverse=descending)


def test_a_cursor_is_checked(data) -> None:
    conn, _ = data
    page = search(conn, Selection(), sort="-fans", limit=5)
    with pytest.raises(InvalidArgument, match="another sort"):
        search(conn, Selection(), sort="fans", limit=5, after=page.next)
    for bad in ("nonsense", "W10", page.next[:-3] + "!!!", "WyItZmFucyIsInZhbHVlcyIsIngiLDFd"):
        with pytest.raises(InvalidArgument, match="after"):
            search(conn, Selection(), sort="-fans", limit=5, after=bad)
    with pytest.raises(InvalidArgument, match="limit"):
        search(conn, Selection(), limit=501)


def test_chinese_substrings_not_scattered_bigrams(data) -> None:
    conn, truth = data
    found = {row["nickname"] for row in walk(conn, Selection(q="鹿酱"), "-fans", 50)}
    assert found and all("鹿酱" in name for name in found)  # 鹿小酱 holds both characters, not the text
    assert any(name.startswith("小鹿酱") for name in found)
    spaced = {row["nickname"] for row in walk(conn, Selection(q="小美"), "-fans", 50)}
    assert spaced == set()  # the zero-width space is in the stored nickname: the exact check wants the text


def test_saved_searches_round_trip(data) -> None:
    conn, _ = data
    chosen = Selection(domain="美妆", fans_min=500, tag="彩妆", has_contact=True)
    save(conn, "美妆 大号", chosen)
    assert load(conn, "美妆 大号") == chosen
    save(conn, "美妆 大号", Selection(domain="美妆"))
    assert load(conn, "美妆 大号") == Selection(domain="美妆")
    assert [row["name"] for row in saved(conn)] == ["美妆 大号"]
    assert delete(conn, "美妆 大号") and load(conn, "美妆 大号") is None
    with pytest.raises(InvalidArgument):
        Selection.from_json('{"fans_min": "many"}')
    with pytest.raises(InvalidArgument):
        Selection.from_json('{"drop": 1}')


def test_detail_has_the_fields_the_raw_data_the_crawl_and_the_history(data) -> None:
    conn, truth = data
    uid = next(uid for uid, (_, row) in truth.items() if row.get("fans"))
    found = detail(conn, uid)
    assert found["influencer"]["uid"] == uid and found["influencer"]["raw_data"] == truth[uid][1]
    assert found["last_crawl"]["account"] in {"acct0", "acct1"} and found["export"] is None
    assert [(h["fans"], h["recorded_at"]) for h in found["history"]] == [(truth[uid][1]["fans"], datetime(2026, 1, 1, 8))]
    assert detail(conn, "no such uid") is None


def test_a_search_over_its_time_is_stopped_and_refused_in_one_line(data, monkeypatch) -> None:
    conn, _ = data
    monkeypatch.setattr(search_module, "SEARCH_SECONDS", 1e-6)
    with pytest.raises(InvalidArgument, match="the search ran over"):
        search(conn, Selection(q="x"), sort="-fans", limit=50)  # one character: a walk with the row check
    monkeypatch.undo()
    assert search(conn, Selection(q="x"), sort="-fans", limit=50).rows is not None  # the connection still works
