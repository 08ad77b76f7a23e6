"""`python -m influencers search` and `searches` as real processes: the three formats, hostile
nicknames shown as text, saved searches exported by name, and bad input as one line, exit 2."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.fixtures.influencer_rows import store_rows

REPO = Path(__file__).resolve().parents[2]
HOSTILE = ['=HYPERLINK("http://evil.invalid","点我")', "第一行\n第二行\x1b[31m红", "<script>alert(1)</script>",
           "小\u200b美酱"]
ROWS = [{"uid": f"mz-{i:03d}", "nickname": HOSTILE[i] if i < len(HOSTILE) else f"小鹿酱{i}", "fans": 1000 * i,
         "region": "广东·深圳" if i % 2 else "上海", "tags": ["彩妆", "测评"] if i % 3 == 0 else ["护肤"],
         "contact": {"wechat": "wx"} if i % 4 == 0 else {}} for i in range(30)]


def cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "influencers", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def stored(db, scheduler, accounts):
    store_rows(db, scheduler, accounts, "美妆", ROWS, datetime(2026, 1, 1, 8), "采集一")


def test_three_formats_agree_and_show_hostile_text_as_text(env, stored):
    args = ("search", "--domain", "美妆", "--fans-min", "0", "--fans-max", "5000", "--sort", "fans")
    as_json = json.loads(cli(env, *args, "--format", "json").stdout)
    assert [row["uid"] for row in as_json] == [f"mz-{i:03d}" for i in range(6)]
    assert as_json[1]["nickname"] == HOSTILE[1] and as_json[0]["tags"] == ["彩妆", "测评"]
    as_csv = list(csv.DictReader(io.StringIO(cli(env, *args, "--format", "csv").stdout)))
    assert [row["uid"] for row in as_csv] == [row["uid"] for row in as_json]
    assert not as_csv[0]["nickname"].startswith("=")  # a spreadsheet shows the formula as text
    table = cli(env, *args)
    assert table.returncode == 0 and "\x1b" not in table.stdout
    assert "第二行\\x1b[31m红" in table.stdout  # the escape is written out, not sent to the terminal
    assert "<script>alert(1)</script>" in table.stdout  # a terminal shows markup as it is


def test_pages_chinese_text_tags_and_contact(env, stored):
    first = cli(env, "search", "--q", "鹿酱", "--sort", "-fans", "--limit", "4")
    assert first.returncode == 0, first.stderr
    after = first.stdout.splitlines()[-1].split("--after ")[1]
    rest = json.loads(cli(env, "search", "--q", "鹿酱", "--sort", "-fans", "--limit", "100", "--after", after,
                          "--format", "json").stdout)
    assert [row["fans"] for row in rest] == [1000 * i for i in range(25, 3, -1)]
    tagged = json.loads(cli(env, "search", "--tag", "测评", "--has-contact", "--format", "json").stdout)
    assert {row["uid"] for row in tagged} == {f"mz-{i:03d}" for i in range(0, 30, 12)}


def test_a_saved_search_is_listed_and_exported_by_name(env, stored, db):
    saved = cli(env, "search", "--domain", "美妆", "--region", "广东", "--fans-min", "10000", "--save", "广东大号")
    assert saved.returncode == 0 and "saved: domain=美妆 fans_min=10000 region=广东" in saved.stdout
    listed = json.loads(cli(env, "searches", "list", "--format", "json").stdout)
    assert [(row["name"], json.loads(row["filter"])["region"]) for row in listed] == [("广东大号", "广东")]
    narrowed = json.loads(cli(env, "search", "--search", "广东大号", "--tag", "护肤", "--format", "json").stdout)
    assert {row["uid"] for row in narrowed} == {f"mz-{i:03d}" for i in range(11, 30, 2) if i % 3}
    created = cli(env, "start_export", "--search", "广东大号")
    assert created.returncode == 0, created.stderr
    assert "created for 美妆 (csv, only fans_min=10000 region=广东)" in created.stdout
    with db.cursor() as cursor:
        cursor.execute("SELECT export_filter FROM tasks WHERE task_type = 'export'")
        assert json.loads(cursor.fetchone()["export_filter"]) == {"fans_min": 10000, "region": "广东"}
    db.commit()
    assert cli(env, "searches", "delete", "广东大号").returncode == 0
    assert json.loads(cli(env, "searches", "list", "--format", "json").stdout) == []


@pytest.mark.parametrize(("args", "message"), [
    (("search", "--limit", "0"), "argument --limit"),
    (("search", "--limit", "501"), "limit: 1 to 500"),
    (("search", "--sort", "popularity"), "argument --sort: invalid choice"),
    (("search", "--fans-min", "many"), "not a whole number"),
    (("search", "--fans-min", "10000000000000000"), "fans_min: a whole number"),
    (("search", "--after", "garbage"), "after: not a cursor"),
    (("search", "--q", "鹿" * 101), "q: a non-empty text of at most 100"),
    (("search", "--search", "nothing saved"), "no saved search named 'nothing saved'"),
    (("search", "--save", "\x07bell"), "none of them a control"),
    (("searches", "delete", "nothing saved"), "no saved search"),
    (("start_export", "--fans-min", "5"), "--domain is required"),
])
def test_bad_input_is_one_line_exit_2(env, db, args, message):
    result = cli(env, *args)
    assert result.returncode == 2, result
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
