"""Fans history and growth, written in the pipeline's batch transaction (real MariaDB)."""

from __future__ import annotations

from datetime import datetime, timedelta

from influencers.core.profile import default_profile
from influencers.core.search import detail, search
from influencers.core.selection import Selection
from influencers.core.store import PageBatch, TaskBatch, write_batch

DAY0 = datetime(2026, 1, 1, 8, 0, 0)


def crawl(db, scheduler, accounts, fans: dict[str, int | None], at: datetime, username: str) -> None:
    """One crawl of 美妆 that sees ``fans`` (uid → fans; None: the platform gave none) at ``at``."""
    accounts.add(username, "pw")
    claim = scheduler.claim("ingestion", task_id=scheduler.find_or_create_domain_task("美妆", 100))
    rows = []
    for uid, count in fans.items():
        raw = {"uid": uid, "nickname": f"达人{uid}"} | ({} if count is None else {"fans": count})
        rows.append((uid, raw["nickname"], "美妆", None, raw, default_profile(raw)))
    page = PageBatch(claim.task_id, 1, "美妆", claim.account_id, "http://x/1", at, at, rows)
    committed, _ = write_batch(db, [TaskBatch(claim, [page], 1, 0)])
    assert committed
    scheduler.complete(claim)


def history(db) -> dict[str, list[tuple[int, datetime]]]:
    with db.cursor() as cursor:
        cursor.execute("SELECT i.uid, h.fans, h.recorded_at FROM influencer_history h"
                       " JOIN influencers i ON i.id = h.influencer_id ORDER BY h.id")
        rows = cursor.fetchall()
    db.commit()
    found: dict[str, list[tuple[int, datetime]]] = {}
    for row in rows:
        found.setdefault(row["uid"], []).append((row["fans"], row["recorded_at"]))
    return found


def growth(db) -> dict[str, tuple[int | None, int | None]]:
    rows = search(db, Selection(), sort="ingested_at", limit=100).rows
    return {row["uid"]: (row["growth_7d"], row["growth_30d"]) for row in rows}


def test_a_snapshot_only_when_fans_change_and_growth_over_7_and_30_days(db, scheduler, accounts) -> None:
    crawl(db, scheduler, accounts, {"a": 100, "b": 200, "c": 300, "d": None}, DAY0, "acct1")
    assert history(db) == {"a": [(100, DAY0)], "b": [(200, DAY0)], "c": [(300, DAY0)]}
    assert growth(db) == {"a": (0, 0), "b": (0, 0), "c": (0, 0), "d": (None, None)}

    day3 = DAY0 + timedelta(days=3)
    crawl(db, scheduler, accounts, {"a": 130, "b": 200, "c": None, "d": 50}, day3, "acct2")
    # b unchanged and c not given: no snapshot; c keeps its fans; d's first fans are its first snapshot
    assert history(db) == {"a": [(100, DAY0), (130, day3)], "b": [(200, DAY0)], "c": [(300, DAY0)],
                           "d": [(50, day3)]}
    assert growth(db) == {"a": (30, 30), "b": (0, 0), "c": (0, 0), "d": (0, 0)}  # history younger than 7 days

    day10 = DAY0 + timedelta(days=10)
    crawl(db, scheduler, accounts, {"a": 150, "b": 190, "c": 300, "d": 50}, day10, "acct3")
    # a: 150 now, 130 on day 3 (= day 10 - 7), 100 when first seen; b lost 10
    assert growth(db) == {"a": (20, 50), "b": (-10, -10), "c": (0, 0), "d": (0, 0)}
    assert search(db, Selection(growth_7d_min=1), sort="-growth", limit=10).rows[0]["uid"] == "a"
    assert [row["uid"] for row in search(db, Selection(), sort="growth", limit=2).rows] == ["b", "c"]

    day18 = DAY0 + timedelta(days=18)
    crawl(db, scheduler, accounts, {"a": 150}, day18, "acct4")
    assert growth(db)["a"] == (0, 50)  # unchanged since day 10; 30 days back is before its first fans

    shown = detail(db, "a")
    assert [(point["fans"], point["recorded_at"]) for point in shown["history"]] == [
        (100, DAY0), (130, day3), (150, day10)]
    assert shown["last_crawl"]["account"] == "acct4"
