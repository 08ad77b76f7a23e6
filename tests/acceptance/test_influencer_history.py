"""Two crawls of a platform whose fans grow between them (the reference platform's ``fans_growth``
and ``day`` knobs), as real processes: the typed fields equal the platform's, each change of fans
is one history row, growth is the change, and `search` sorts and filters by it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.data import daily_fans_growth
from tests.fixtures.crawl import add_accounts, query

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[2]
PAGES = 4
DAYS = 8


def search(env, *args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "influencers", "search", "--format", "json", *args], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_growth_between_two_crawls(start_sandbox, crawls, env, mysql_settings, db) -> None:
    sandbox = start_sandbox(pages=PAGES, fans_growth=True)
    add_accounts(env, "demo1")
    first = crawls.run(sandbox.url, "domain=美妆", f"pages={PAGES}", timeout=120)
    assert first.process.returncode == 0, first.log[-3000:]
    day0 = {row["uid"]: row for row in sandbox.truth("美妆", 1, PAGES)}
    stored = {row["uid"]: row for row in query(mysql_settings, "SELECT * FROM influencers")}
    assert set(stored) == set(day0)
    for uid, row in day0.items():  # the sandbox adapter's typed fields are the platform's
        got = stored[uid]
        assert (got["fans"], got["region"], got["profile_url"]) == (row["fans"], row["region"], row["profile_url"])
        assert json.loads(got["tags"]) == row["tags"]
        assert bool(got["has_contact"]) == any(row["contact"].values())

    # as if the first crawl had been DAYS days ago: its history rows move back that far
    with db.cursor() as cursor:
        cursor.execute("UPDATE influencer_history SET recorded_at = recorded_at - INTERVAL %s DAY", (DAYS,))
    db.commit()
    sandbox.configure(day=DAYS)
    second = crawls.run(sandbox.url, "domain=美妆", f"pages={PAGES}", timeout=120)
    assert second.process.returncode == 0, second.log[-3000:]

    daily = {uid: daily_fans_growth(42, uid, row["fans"]) for uid, row in day0.items()}
    history = query(mysql_settings, "SELECT i.uid, COUNT(*) AS n, MIN(h.fans) AS low, MAX(h.fans) AS high"
                                    " FROM influencer_history h JOIN influencers i ON i.id = h.influencer_id"
                                    " GROUP BY i.uid")
    seen = {row["uid"]: row for row in history}
    assert set(seen) == set(day0)
    for uid, amount in daily.items():
        now = max(0, day0[uid]["fans"] + DAYS * amount)
        assert seen[uid]["n"] == (2 if now != day0[uid]["fans"] else 1), uid  # a snapshot only on a change
        assert (seen[uid]["low"], seen[uid]["high"]) == tuple(sorted((day0[uid]["fans"], now)))
    assert 0 < sum(amount == 0 for amount in daily.values()) < len(daily)

    top = search(env, "--domain", "美妆", "--sort", "-growth", "--limit", "5")
    expected = sorted(day0, key=lambda uid: (max(0, day0[uid]["fans"] + DAYS * daily[uid]) - day0[uid]["fans"]),
                      reverse=True)
    assert [row["uid"] for row in top][:1] == expected[:1]
    assert top[0]["growth_7d"] == top[0]["growth_30d"] == DAYS * daily[expected[0]]
    losing = search(env, "--growth-7d-min", "1", "--limit", "500")
    assert {row["uid"] for row in losing} == {uid for uid, amount in daily.items() if amount > 0}
