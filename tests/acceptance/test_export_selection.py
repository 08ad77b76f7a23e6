"""An export of a selection (`start_export --fans-min … --region … --tag …`) as real processes:
exactly the selected rows, each in exactly one file, across quota relays and SIGKILLs; the rest
stays pending for the next export; the filter is shown by `task show` and `status`."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from influencers.core.counts import recount
from influencers.core.searchterms import row_terms
from tests.acceptance.test_export_service import (
    REPO,
    StderrWatch,
    check_exactly_once,
    exporter,
    one,
    query,
    run_exporter,
    start_export,
)

pytestmark = pytest.mark.slow

ROWS = 12_000


def insert_typed_rows(db, domain: str, count: int) -> None:
    """Rows as the pipeline types them: fans = i, region alternating, tag 彩妆 on every third."""
    rows = []
    for i in range(count):
        tags = ["彩妆"] if i % 3 == 0 else ["护肤"]
        nickname = f"达人{i}"
        rows.append((nickname, f"{domain}-{i:06d}", domain, json.dumps({"fans": i}), i,
                     "广东·深圳" if i % 2 else "上海", json.dumps(tags, ensure_ascii=False), row_terms(nickname, tags)))
    with db.cursor() as cursor:
        for start in range(0, len(rows), 4000):
            cursor.executemany(
                "INSERT INTO influencers (nickname, uid, domain, raw_data, fans, region, tags, search_terms)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows[start:start + 4000])
    db.commit()
    recount(db)


def selected(i: int) -> bool:
    return i >= 2000 and i % 2 == 1 and i % 3 == 0


def cli(env, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "influencers", *args], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_filtered_export_takes_exactly_its_selection_through_relays_and_sigkills(db, accounts, env):
    insert_typed_rows(db, "美妆", ROWS)
    insert_typed_rows(db, "游戏", 300)  # another domain: never taken
    for n in range(1, 4):
        accounts.add(f"account{n}", "pw", daily_export_limit=700)
    task_id = start_export(env, "美妆", "--fans-min", "2000", "--region", "广东", "--tag", "彩妆")
    with db.cursor() as cursor:  # a task fails after max_attempts lost workers; this test kills on purpose
        cursor.execute("UPDATE tasks SET max_attempts = 1000 WHERE id = %s", (task_id,))
    db.commit()
    shown = cli(env, "task", "show", str(task_id))
    assert "filter: fans_min=2000 region=广东 tag=彩妆" in shown.splitlines()[0]
    assert "exported of fans_min=2000 region=广东 tag=彩妆" in cli(env, "status")

    rng = random.Random(7)
    for _ in range(6):  # kills at random moments, each followed by a restart
        proc = exporter(env, "--poll-interval", "0.1", "--batch-size", "40")
        watch = StderrWatch(proc, "claimed task")
        watch.seen.wait(15)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        assert "Traceback" not in watch.text()
    final = run_exporter(env, "--once", "--batch-size", "40")
    assert final.returncode == 0, final.stderr

    owner = check_exactly_once(db, Path(env["INFLUENCERS_EXPORT_DIR"]))
    wanted = {f"美妆-{i:06d}" for i in range(ROWS) if selected(i)}
    assert set(owner) == wanted  # every selected row in one file, no other row in any
    assert one(db, "SELECT COUNT(*) FROM influencers WHERE status = 'pending_export' AND export_log_id = 0") \
        == ROWS + 300 - len(wanted)
    assert one(db, "SELECT status FROM tasks WHERE id = %s", (task_id,)) == "completed"
    used = {row["account_id"]: row["n"] for row in
            query(db, "SELECT account_id, SUM(exported_count) AS n FROM export_logs GROUP BY account_id")}
    assert len(used) == 3 and sum(used.values()) == len(wanted)  # the relay crossed every account's quota
    assert all(n <= 700 for n in used.values())

    # the rest of the domain is still there for an export without a filter
    rest = start_export(env, "美妆")
    accounts.add("account4", "pw", daily_export_limit=20_000)
    assert run_exporter(env, "--once", "--batch-size", "2000").returncode == 0
    assert one(db, "SELECT status FROM tasks WHERE id = %s", (rest,)) == "completed"
    assert one(db, "SELECT COUNT(*) FROM influencers WHERE domain = '美妆' AND status <> 'exported'") == 0
    check_exactly_once(db, Path(env["INFLUENCERS_EXPORT_DIR"]))
