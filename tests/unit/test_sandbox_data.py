"""The sandbox data set: shape, determinism across processes, hostile nicknames."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.data import DEFAULT_DOMAINS, expected_rows, inserted_row, uid_prefix

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_ROWS = {d: expected_rows(d) for d in DEFAULT_DOMAINS}


def test_rows_have_exactly_the_documented_shape():
    row = ALL_ROWS["美妆"][0]
    assert list(row) == ["uid", "nickname", "domain", "fans", "avg_likes", "region", "gender",
                         "tags", "contact", "profile_url", "price"]
    assert list(row["contact"]) == ["wechat", "email"]
    for rows in ALL_ROWS.values():
        for r in rows:
            assert isinstance(r["fans"], int)
            assert r["fans"] > 0
            assert isinstance(r["avg_likes"], int)
            assert r["avg_likes"] >= 0
            assert r["gender"] in ("male", "female", "unknown")
            assert r["tags"]
            assert all(isinstance(t, str) and t for t in r["tags"])
            assert all(v is None or (isinstance(v, str) and v) for v in r["contact"].values())
            assert r["profile_url"] == f"https://sandbox.invalid/u/{r['uid']}"
            assert isinstance(r["price"], float)
            assert round(r["price"], 2) == r["price"]
            assert r["region"]


def test_default_listing_is_50_pages_of_20_with_unique_uids_across_domains():
    uids = [r["uid"] for rows in ALL_ROWS.values() for r in rows]
    assert all(len(rows) == 1000 for rows in ALL_ROWS.values())
    assert len(set(uids)) == len(uids) == 6000
    assert ALL_ROWS["美妆"][122]["uid"] == "mz-000123"
    assert len({uid_prefix(d) for d in DEFAULT_DOMAINS}) == len(DEFAULT_DOMAINS)
    assert all(r["domain"] == d for d, rows in ALL_ROWS.items() for r in rows)


def test_page_ranges_slice_the_same_listing():
    rows = ALL_ROWS["游戏"]
    assert expected_rows("游戏", 2, 3) == rows[20:60]
    assert expected_rows("游戏", 50, 99) == rows[980:]
    assert expected_rows("游戏", 51) == []
    # a smaller listing is a prefix of a bigger one; other page sizes cut the same rows
    assert expected_rows("游戏", pages=5) == rows[:100]
    assert expected_rows("游戏", 2, 2, page_size=7) == rows[7:14]
    with pytest.raises(ValueError, match="page_from"):
        expected_rows("游戏", 0)


def test_seed_changes_the_rows_and_unknown_domains_work():
    assert expected_rows("美食", 1, 1, seed=1) != expected_rows("美食", 1, 1, seed=2)
    other = expected_rows("宠物", 1, 1)
    assert other[0]["uid"].startswith(uid_prefix("宠物") + "-")
    assert other[0]["domain"] == "宠物"
    assert inserted_row(42, "美食", 3)["uid"] == "new-ms-000003"


def _digest_in_subprocess(hash_seed: str) -> str:
    code = ("import hashlib, json; from sandbox.data import expected_rows, DEFAULT_DOMAINS;"
            "print(hashlib.sha256(json.dumps([expected_rows(d, 1, 5) for d in DEFAULT_DOMAINS],"
            " ensure_ascii=False).encode()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


@pytest.mark.timeout(60)
def test_same_seed_same_rows_in_any_process_whatever_the_hash_seed():
    here = hashlib.sha256(json.dumps([expected_rows(d, 1, 5) for d in DEFAULT_DOMAINS],
                                     ensure_ascii=False).encode()).hexdigest()
    assert _digest_in_subprocess("1") == _digest_in_subprocess("12345") == here


def test_about_two_percent_hostile_nicknames_of_every_kind():
    names = [r["nickname"] for rows in ALL_ROWS.values() for r in rows]
    hostile = [n for n in names if n[0] in "=+-@" or any(c in n for c in "\"',\n\u200b<>")
               or len(n) >= 300]
    assert 0.015 <= len(hostile) / len(names) <= 0.03
    assert {n[0] for n in hostile} >= set("=+-@")
    assert any('"' in n and "," in n and "'" in n for n in hostile)
    assert any("\n" in n for n in hostile)
    assert any("\u200b" in n and "\ufeff" in n for n in hostile)
    assert any(len(n) >= 300 for n in hostile)
    assert any("<script>" in n for n in hostile)
    assert any(ord(c) >= 0x1F300 for n in names for c in n)  # emoji
    # never characters an HTML parser rewrites, never edge whitespace
    assert not any("\r" in n or "\x00" in n or n != n.strip() for n in names)
    # page 1 of every domain carries one hostile row (handy for saved-page tests)
    for rows in ALL_ROWS.values():
        assert rows[7]["nickname"] in hostile
