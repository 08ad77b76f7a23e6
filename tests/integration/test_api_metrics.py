"""GET /metrics through the real API server: after real work (pages through the pipeline's
`write_batch`, an export finalized by the exporter's protocol, a lease recovery, 429s and a captcha
flushed by the crawl's `ResponseTallies`), Prometheus' parser reads exactly what the tables hold.
Bearer token as the API's; 503 while the database is away, like every endpoint."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest_twisted
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import Deferred

from exporter.batches import BatchExporter
from influencers.api.app import create_app
from influencers.core.config import Config
from influencers.core.db import connect
from influencers.core.profile import EMPTY
from influencers.core.store import PageBatch, TaskBatch, write_batch
from influencers.extensions.dbthread import DatabaseThread
from influencers.extensions.tallying import ResponseTallies
from influencers.sites.base import Outcome

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def rows_of(db, sql: str) -> list[dict]:
    with db.cursor() as cursor:
        cursor.execute(sql)
        rows = list(cursor.fetchall())
    db.commit()
    return rows


def page(claim, number: int, domain: str, uids: list[str]) -> PageBatch:
    now = datetime(2026, 1, 1, 8, 0, 0)
    rows = [(uid, f"达人{uid}", domain, None, {"uid": uid}, EMPTY) for uid in uids]
    return PageBatch(claim.task_id, number, domain, claim.account_id, f"http://x/{domain}?page={number}", now, now, rows)


def scrape(api_server) -> Samples:
    reply = api_server.get("/metrics", headers={"Accept": "text/plain"})
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(reply.text) for sample in family.samples}


def of(samples: Samples, name: str) -> dict[Any, float]:
    """One metric's samples by their label values (a single label: the value itself)."""
    found = {}
    for (sample, labels), value in samples.items():
        if sample == name:
            values = tuple(value for _, value in sorted(labels))
            found[values[0] if len(values) == 1 else values] = value
    return found


def do_real_work(db, scheduler, accounts, config, mysql_settings) -> dict[str, int]:
    ids = {name: accounts.add(name, "pw", limit) for name, limit in (("采集一", 4000), ("采集二", 4000),
                                                                       ("导出三", 9), ("停用四", 50))}
    accounts.disable(ids["停用四"], "平台封禁")
    writer = connect(mysql_settings)
    try:
        games = scheduler.claim("ingestion", task_id=scheduler.find_or_create_domain_task("游戏", 10))
        beauty = scheduler.claim("ingestion", task_id=scheduler.find_or_create_domain_task("美妆", 10))
        write_batch(writer, [TaskBatch(games, [page(games, 1, "游戏", ["a", "b", "c"]), page(games, 2, "游戏", ["c", "d"])],
                                       2, 0),
                             TaskBatch(beauty, [page(beauty, 1, "美妆", ["e", "f", "g", "h"])], 1, 0)])
    finally:
        writer.close()
    scheduler.complete(games)
    scheduler.complete(beauty)

    scheduler.create_export("游戏")
    export = scheduler.claim("export")
    exporter = BatchExporter(db, scheduler, accounts, config.export_dir, batch_size=3)
    while exporter.export_next(export).batch:
        pass
    scheduler.complete(export)

    food = scheduler.claim("ingestion", task_id=scheduler.find_or_create_domain_task("美食", 10))
    with db.cursor() as cursor:
        cursor.execute("UPDATE tasks SET lease_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s",
                       (food.task_id,))
    db.commit()
    assert scheduler.recover() == 1
    return {**ids, "exporter": export.account_id}


@pytest_twisted.ensureDeferred
async def test_metrics_are_what_the_database_holds_after_real_work(api_server, db, scheduler, accounts, config,
                                                                   mysql_settings) -> None:
    ids = do_real_work(db, scheduler, accounts, config, mysql_settings)
    thread = DatabaseThread(mysql_settings, "test-tallies")
    crawl = ResponseTallies(lambda: thread, interval=60)
    for outcome, account in ((Outcome.RATE_LIMITED, "采集一"), (Outcome.RATE_LIMITED, "采集一"),
                             (Outcome.CAPTCHA, "采集二"), (Outcome.OK, "采集二")):
        crawl.counted(outcome, ids[account])
    await Deferred.fromFuture(asyncio.ensure_future(crawl.spider_closed()))

    samples = scrape(api_server)
    # the ingestion logs, export logs and events, counted here the expensive way
    logs = rows_of(db, "SELECT domain, COUNT(*) AS pages, SUM(ingested_count) AS n FROM ingestion_logs GROUP BY domain")
    assert of(samples, "influencers_pages_ingested_total") == {row["domain"]: row["pages"] for row in logs} == {
        "游戏": 2, "美妆": 1}
    assert of(samples, "influencers_rows_ingested_total") == {row["domain"]: int(row["n"]) for row in logs} == {
        "游戏": 5, "美妆": 4}
    exported = rows_of(db, "SELECT a.username, SUM(e.exported_count) AS n FROM export_logs e"
                           " JOIN accounts a ON a.id = e.account_id WHERE e.state = 'published' GROUP BY a.username")
    exporter = next(name for name, account in ids.items() if account == ids["exporter"] and name != "exporter")
    assert of(samples, "influencers_rows_exported_total") == {row["username"]: int(row["n"]) for row in exported} == {
        exporter: 4}  # the 游戏 rows a, b, c, d
    recovered = rows_of(db, "SELECT COUNT(*) AS n FROM events WHERE event = 'recovered'")[0]["n"]
    assert of(samples, "influencers_lease_recoveries_total") == {(): recovered} == {(): 1}
    assert of(samples, "influencers_rate_limited_responses_total") == {"采集一": 2}
    assert of(samples, "influencers_captcha_responses_total") == {"采集二": 1}

    quota = rows_of(db, "SELECT username, daily_export_limit - today_export_count AS n FROM accounts")
    assert of(samples, "influencers_export_quota_left") == {row["username"]: row["n"] for row in quota}
    assert of(samples, "influencers_export_quota_left")[exporter] == accounts.get(ids["exporter"]).daily_export_limit - 4
    statuses = {row["status"]: row["n"] for row in rows_of(db, "SELECT status, COUNT(*) AS n FROM accounts GROUP BY status")}
    assert of(samples, "influencers_accounts") == {"idle": statuses["idle"], "ingesting": 0, "exporting": 0,
                                                    "disabled": 1}
    tasks = rows_of(db, "SELECT task_type, status, COUNT(*) AS n FROM tasks WHERE NOT is_parent GROUP BY task_type, status")
    got_tasks = of(samples, "influencers_tasks")
    assert {key: value for key, value in got_tasks.items() if value} == {
        (row["status"], row["task_type"]): row["n"] for row in tasks}  # labels in name order: state, type
    assert len(got_tasks) == 10 and got_tasks[("pending", "ingestion")] == 1  # 美食, back in the queue
    stored = rows_of(db, "SELECT domain, status, COUNT(*) AS n FROM influencers GROUP BY domain, status")
    assert {key: value for key, value in of(samples, "influencers_rows").items() if value} == {
        (row["domain"], row["status"]): row["n"] for row in stored}
    assert of(samples, "influencers_rows")[("游戏", "pending_export")] == 0  # both statuses of a domain


def test_quota_left_counts_only_todays_exports(api_server, db, accounts) -> None:
    today, yesterday = accounts.add("今天", "pw", 100), accounts.add("昨天", "pw", 100)
    accounts.update_export_count(today, 30)
    accounts.update_export_count(yesterday, 30)
    with db.cursor() as cursor:  # its count is of the day before: nothing used today (reset lazily, no cron)
        cursor.execute("UPDATE accounts SET quota_date = quota_date - INTERVAL 1 DAY WHERE id = %s", (yesterday,))
    db.commit()
    assert of(scrape(api_server), "influencers_export_quota_left") == {"今天": 70, "昨天": 100}


def test_metrics_need_the_token(api_server, db) -> None:
    for token in (None, "wrong-token-0123456789"):
        reply = api_server.get("/metrics", token=token)
        assert reply.status == 401 and reply.error["code"] == "unauthenticated"
        assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert api_server.get("/metrics", params={"name[]": "x"}).status == 422  # as every endpoint: no unknown query


def test_metrics_answer_503_while_the_database_is_away() -> None:
    """In process (the real app; no server needed): no MySQL listens on port 1."""
    token = "metrics-test-token-0123456789"
    app = create_app(Config.from_env({"INFLUENCERS_MYSQL_URL": "mysql://root:@127.0.0.1:1/influencers",
                                      "INFLUENCERS_API_TOKEN": token}))

    async def get() -> tuple[int, dict[bytes, bytes], bytes]:
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                   "path": "/metrics", "raw_path": b"/metrics", "query_string": b"", "root_path": "",
                   "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1234),
                   "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]},
                  receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])

    with ThreadPoolExecutor(max_workers=1) as thread:  # pytest-twisted runs an asyncio loop on this one
        status, headers, body = thread.submit(asyncio.run, get()).result(timeout=30)
    assert status == 503 and b"retry-after" in headers
    error = json.loads(body)["error"]
    assert error["code"] == "database_unavailable" and "\n" not in error["message"]
