"""`db init`'s fill of the typed fields of rows stored before migration 0009 (real MariaDB): a
chunk per transaction, going on where it stopped, each row's first history point, then forgotten."""

from __future__ import annotations

import json

from influencers.core import profilefill
from influencers.core.profile import default_profile

ROWS = 2_500


def query(db, sql: str, *args) -> list[dict]:
    with db.cursor() as cursor:
        cursor.execute(sql, args)
        rows = list(cursor.fetchall())
    db.commit()
    return rows


def test_a_fill_stopped_after_a_chunk_goes_on_from_there(db) -> None:
    rows = [(f"老{i}", f"u{i:05d}", "美妆", json.dumps({"fans": i, "tags": ["彩妆"], "region": "上海"}
                                                       if i % 10 else {"nickname": "no fields"}))
            for i in range(ROWS)]
    with db.cursor() as cursor:
        cursor.executemany("INSERT INTO influencers (nickname, uid, domain, raw_data) VALUES (%s, %s, %s, %s)", rows)
        cursor.execute("INSERT INTO profile_fill (id, next_id) VALUES (1, 0)")  # what migration 0009 does
    db.commit()
    before = {row["id"]: row["updated_at"] for row in query(db, "SELECT id, updated_at FROM influencers")}
    assert profilefill.pending(db)

    calls = []

    def failing_after_one_chunk(row):
        calls.append(row)
        if len(calls) > profilefill.CHUNK:
            raise SystemExit("killed")  # not an Exception: it ends the fill as a kill would
        return default_profile(row)

    try:
        profilefill.fill(db, failing_after_one_chunk)
    except SystemExit:
        pass
    db.rollback()
    assert query(db, "SELECT next_id FROM profile_fill") == [{"next_id": profilefill.CHUNK}]
    assert query(db, "SELECT COUNT(*) AS n FROM influencers WHERE search_terms IS NOT NULL")[0]["n"] == profilefill.CHUNK

    filled = profilefill.fill(db, default_profile)
    assert filled == ROWS - profilefill.CHUNK and not profilefill.pending(db)
    stored = query(db, "SELECT id, uid, fans, region, tags, search_terms, growth_7d, updated_at FROM influencers"
                       " ORDER BY id")
    for row, (_, _, _, raw) in zip(stored, rows, strict=True):
        typed = default_profile(json.loads(raw))
        assert (row["fans"], row["region"]) == (typed.fans, typed.region)
        assert (json.loads(row["tags"]) if row["tags"] else []) == list(typed.tags)
        assert row["search_terms"] and row["growth_7d"] == (None if typed.fans is None else 0)
        assert row["updated_at"] == before[row["id"]]  # not a crawl: the last-crawled time stays
    history = query(db, "SELECT COUNT(*) AS n, COUNT(DISTINCT influencer_id) AS d FROM influencer_history")[0]
    assert history["n"] == history["d"] == sum(1 for i in range(ROWS) if i % 10)
    assert profilefill.fill(db, default_profile) == 0  # nothing scheduled: no scan
