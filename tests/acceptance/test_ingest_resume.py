"""Crash safety: SIGKILL the crawl at many moments, rerun it at once, and nothing is lost or doubled.

Kill moments: during start-up, at random times while pages flow, and twice in the middle of a
batch's transaction (seen on the server: the pipeline's upsert executing). A SIGTERM in
between must stop cleanly and release the claim. The lease is 10 minutes, so a rerun that
claims at once proves recovery does not wait for it.

On both API styles (`api`). Every rerun's first listing request continues right after the
marker: page N+1 on /api/v1, and on the token-cursor API the cursor stored with the marker in
the same transaction (`tasks.progress_cursor`), which the crawls' DEBUG log shows in the URL.
"""

from __future__ import annotations

import random
import re
import signal
import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from influencers.core.db import connect
from tests.fixtures.crawl import (
    add_accounts,
    assert_matches_truth,
    page_logs,
    query,
    tasks,
)

pytestmark = pytest.mark.timeout(240)

DOMAIN = "游戏"
PAGES = 24
PAGE_SIZE = 100
SETTINGS = {
    "INGEST_LEASE_SECONDS": 600,
    "MYSQL_BATCH_ITEMS": 300,
    "MYSQL_FLUSH_INTERVAL": 0.05,
    "ACCOUNTS_REQUEST_INTERVAL": 0.1,  # 24 pages take ~3 s: every kill lands mid-crawl
    "LOG_LEVEL": "DEBUG",  # Scrapy logs every listing request's URL
}
LISTING_URL = re.compile(r"<GET (\S*/influencers\?\S*)>")


def wait_mid_batch(mysql_settings, crawl, timeout: float = 20) -> bool:
    """Poll the server until the pipeline's upsert is executing (inside its batch transaction,
    after the page logs were written); True if caught. PROCESSLIST is live, unlike INNODB_TRX,
    which InnoDB refreshes only every 0.1 s."""
    conn = connect(mysql_settings, autocommit=True)
    try:
        deadline = time.monotonic() + timeout
        with conn.cursor() as cursor:
            while time.monotonic() < deadline and crawl.process.poll() is None:
                cursor.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND INFO LIKE %s",
                    (mysql_settings.database, "INSERT INTO influencers%"),
                )
                if cursor.fetchone():
                    return True
        return False
    finally:
        conn.close()


def check_consistent(mysql_settings, task_id: int, cursors: bool) -> tuple[int, str | None]:
    """After any interruption: every logged page is whole, the marker is covered by the logs and,
    on a cursor listing, stored with the cursor of the page after it. Returns both."""
    (task,) = query(mysql_settings, "SELECT progress_marker, progress_cursor FROM tasks WHERE id = %s", task_id)
    marker = int(task["progress_marker"].split("=")[1]) if task["progress_marker"] else 0
    position = task["progress_cursor"]
    if not cursors or marker == 0:
        assert position is None, task
    elif marker < PAGES:
        assert position, f"page={marker} stored without the cursor of page {marker + 1}"
    else:
        assert position == "", task  # the end of the listing: nothing to resume from
    logs = page_logs(mysql_settings, task_id)
    pages = [log["page_number"] for log in logs]
    assert len(pages) == len(set(pages))
    assert set(range(1, marker + 1)) <= set(pages)
    assert all(log["ingested_count"] == PAGE_SIZE for log in logs)
    counts = query(mysql_settings, "SELECT COUNT(*) AS n, COUNT(DISTINCT uid) AS d FROM influencers")[0]
    assert counts["n"] == counts["d"] == PAGE_SIZE * len(pages)  # no half page, no duplicate
    kept = query(mysql_settings, "SELECT COALESCE(SUM(pending), 0) AS n FROM domain_counts")[0]
    assert int(kept["n"]) == counts["n"]  # the backlog count commits with the rows
    # so do GET /metrics' tallies: pages and rows ingested, neither lost nor doubled by a kill
    logged = query(mysql_settings, "SELECT domain, COUNT(*) AS pages, SUM(ingested_count) AS n_rows FROM ingestion_logs"
                                   " GROUP BY domain")
    tallied = {(row["name"], row["label"]): int(row["n"])
               for row in query(mysql_settings, "SELECT name, label, SUM(value) AS n FROM tallies GROUP BY name, label")}
    assert {key: n for key, n in tallied.items() if key[0] in ("pages_ingested", "rows_ingested")} == {
        **{("pages_ingested", row["domain"]): row["pages"] for row in logged},
        **{("rows_ingested", row["domain"]): int(row["n_rows"]) for row in logged}}
    recovered = query(mysql_settings, "SELECT COUNT(*) AS n FROM events WHERE event = 'recovered'")[0]["n"]
    assert tallied.get(("lease_recoveries", ""), 0) == recovered  # the killed runs' claims, taken back
    # one first history row per row with fans, none lost or doubled by a kill (the fans do not change)
    history = query(mysql_settings, "SELECT COUNT(*) AS n, COUNT(DISTINCT influencer_id) AS d FROM influencer_history")[0]
    with_fans = query(mysql_settings, "SELECT COUNT(*) AS n FROM influencers WHERE fans IS NOT NULL")[0]["n"]
    assert history["n"] == history["d"] == with_fans == counts["n"]
    return marker, position


def first_listing_request(log: str) -> dict[str, str] | None:
    """The query of the first listing request in a crawl's log (None if it sent none)."""
    match = LISTING_URL.search(log)
    return dict(parse_qsl(urlsplit(match[1]).query)) if match else None


def resumes_after(query_args: dict[str, str], marker: int, position: str | None, cursors: bool) -> bool:
    if cursors:
        return query_args.get("cursor") == (position or None)
    return query_args.get("page") == str(marker + 1)


def check_resume(crawl, left_at: tuple[int, str | None] | None, cursors: bool, seed: int) -> int:
    """The crawl's first listing request (if it sent one) continued where the last run left the
    task; 1 if that was seen."""
    first = first_listing_request(crawl.log)
    if first is None or left_at is None:
        return 0
    marker, position = left_at
    assert resumes_after(first, marker, position, cursors), (
        f"left at page={marker} (cursor {position!r}), resumed with {first} (seed {seed})")
    return 1


def test_sigkill_at_any_moment_then_rerun(api, start_sandbox, crawls, env, mysql_settings, db, scheduler) -> None:
    site = start_sandbox(**api.sandbox_flags, pages=PAGES, page_size=PAGE_SIZE)
    add_accounts(env, "demo1")
    # A SIGKILL before any page of the run commits counts an attempt (progress clears them), and
    # a task fails after max_attempts (5). Several kills here may land before a commit, on purpose.
    task_id = scheduler.find_or_create_domain_task(DOMAIN, PAGES)
    with db.cursor() as cursor:
        cursor.execute("UPDATE tasks SET max_attempts = 50 WHERE id = %s", (task_id,))
    db.commit()
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    moments = ["startup", "mid_batch", rng.uniform(0.05, 0.6), "sigterm", "mid_batch", rng.uniform(0.05, 0.6),
               rng.uniform(0.2, 1.0)]
    markers = []
    killed_mid_batch = 0
    resumes_seen = 0
    left_at: tuple[int, str | None] | None = None  # marker and position after the last interruption
    for moment in moments:
        started = time.monotonic()
        crawl = crawls.start(site.url, f"domain={DOMAIN}", f"pages={PAGES}", **SETTINGS)
        if moment == "startup":
            time.sleep(rng.uniform(0.3, 1.0))
            crawl.kill()
        else:
            crawl.wait_for("crawling", 30)
            claimed_after = time.monotonic() - started
            assert claimed_after < 15, f"the rerun waited {claimed_after:.1f}s to claim (seed {seed})"
            if moment == "mid_batch":
                killed_mid_batch += wait_mid_batch(mysql_settings, crawl)
                crawl.kill()
            elif moment == "sigterm":
                time.sleep(0.3)
                crawl.signal(signal.SIGTERM)
                assert crawl.wait(30) == 0, crawl.log[-3000:]
                (task,) = tasks(mysql_settings, DOMAIN)
                assert task["status"] == "pending" or task["progress_marker"] == f"page={PAGES}", task
                assert task["claimed_by"] is None
                assert {a["status"] for a in query(mysql_settings, "SELECT status FROM accounts")} == {"idle"}
            else:
                time.sleep(moment)
                crawl.kill()
        resumes_seen += check_resume(crawl, left_at, api.cursors, seed)
        for task in tasks(mysql_settings, DOMAIN):  # none yet if killed before creating it
            left_at = check_consistent(mysql_settings, task["id"], api.cursors)
            markers.append(left_at[0])
    assert killed_mid_batch >= 1, f"never caught a batch in flight (seed {seed})"

    final = crawls.run(site.url, f"domain={DOMAIN}", f"pages={PAGES}", timeout=90, **SETTINGS)
    assert final.process.returncode == 0, final.log[-3000:]
    resumes_seen += check_resume(final, left_at, api.cursors, seed)
    assert resumes_seen >= 1 or markers[-1] == PAGES, f"no rerun's first request was seen (seed {seed})"
    (task,) = tasks(mysql_settings, DOMAIN)
    assert (task["status"], task["progress_marker"]) == ("completed", f"page={PAGES}"), (task, markers, seed)
    assert [log["page_number"] for log in page_logs(mysql_settings, task["id"])] == list(range(1, PAGES + 1))
    assert_matches_truth(mysql_settings, DOMAIN, site.truth(DOMAIN, 1, PAGES))
    assert markers == sorted(markers), f"the marker went backwards: {markers} (seed {seed})"
