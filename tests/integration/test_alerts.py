"""Alerts over real MariaDB and a real local webhook (`influencers.core.alerts`, `influencers.alerting`):
each cause found from the events or the state, once per window however often it recurs, delivered
through apprise's JSON webhook, retried after a failed delivery, exactly once with two alerters,
and never a URL's key in what is stored or logged."""

from __future__ import annotations

import logging
import threading

import pytest

from influencers.alerting import AlerterService, Notifier
from influencers.core import outages
from influencers.core.alerts import AlertStore, Cause
from influencers.core.config import AlertSettings
from influencers.core.db import connect


def sql(db, statement: str, args=()) -> list[dict]:
    with db.cursor() as cursor:
        cursor.execute(statement, args)
        rows = list(cursor.fetchall())
    db.commit()
    return rows


@pytest.fixture
def store(db, config) -> AlertStore:
    return marked(AlertStore(db, config.quota_day, window=3600, event_lag=0))


def marked(store: AlertStore) -> AlertStore:
    """The store after its first round: a database without a mark starts from its latest event."""
    store.raise_alerts()
    return store


def kinds(alerts) -> list[tuple[str, str]]:
    return sorted((alert.kind, alert.subject) for alert in alerts)


def stored(db) -> list[dict]:
    return sql(db, "SELECT kind, subject, message, delivered_at, attempts, last_error FROM alerts ORDER BY id")


def test_a_disabled_account_is_alerted_once_per_window_with_its_reason(db, store, accounts):
    account_id = accounts.add("alice", "pw")
    store.raise_alerts()  # the account's creation is not a cause
    for n in range(5):  # a storm: disabled, enabled, disabled again …
        accounts.disable(account_id, f"banned: the platform said so ({n})")
        accounts.enable(account_id)
    new = store.raise_alerts()
    assert kinds(new) == [("account_disabled", str(account_id))]
    assert "alice" in new[0].message and "banned: the platform said so (0)" in new[0].message
    accounts.disable(account_id, "banned again")
    assert store.raise_alerts() == []  # same cause, same window
    assert len(stored(db)) == 1


def test_a_cause_is_alerted_again_once_its_window_has_passed(db, config, accounts):
    store = marked(AlertStore(db, config.quota_day, window=1, event_lag=0))
    account_id = accounts.add("bob", "pw")
    accounts.disable(account_id, "banned")
    assert len(store.raise_alerts()) == 1
    sql(db, "UPDATE alerts SET window_start = window_start - INTERVAL 2 SECOND")
    accounts.enable(account_id)
    accounts.disable(account_id, "banned again")
    assert [alert.message.endswith("banned again") for alert in store.raise_alerts()] == [True]


def test_events_younger_than_the_lag_wait_for_a_later_round(db, config, accounts):
    store = marked(AlertStore(db, config.quota_day, window=3600, event_lag=60))
    account_id = accounts.add("carol", "pw")
    accounts.disable(account_id, "banned")
    assert store.raise_alerts() == []  # written just now: a transaction with a lower id may not have committed
    sql(db, "UPDATE events SET created_at = created_at - INTERVAL 61 SECOND")
    assert kinds(store.raise_alerts()) == [("account_disabled", str(account_id))]


def test_failed_subtasks_are_one_alert_for_their_crawl(db, store, scheduler, accounts):
    accounts.add("dave", "pw")
    parent = scheduler.create_crawl("美妆", 30, 10)
    store.raise_alerts()
    for _ in range(3):
        claim = scheduler.claim("ingestion")
        scheduler.fail(claim, "the listing answered nonsense")
    new = store.raise_alerts()
    assert kinds(new) == [("task_failed", str(parent))]
    assert "the listing answered nonsense" in new[0].message


def test_a_crawl_that_committed_no_row_is_alerted_and_one_that_did_is_not(db, store, scheduler, accounts):
    accounts.add("erin", "pw")
    empty = scheduler.create_crawl("游戏", 10, 10)
    claim = scheduler.claim("ingestion")
    scheduler.complete(claim)
    full = scheduler.create_crawl("美妆", 10, 10)
    claim = scheduler.claim("ingestion")
    sql(db, "INSERT INTO ingestion_logs (task_id, account_id, domain, page_number, ingested_count, start_time,"
            " end_time) VALUES (%s, NULL, '美妆', 1, 20, UTC_TIMESTAMP(), UTC_TIMESTAMP())", (claim.task_id,))
    scheduler.complete(claim)
    assert {alert.kind: alert.subject for alert in store.raise_alerts()} == {"crawl_empty": str(empty)}
    assert full != empty


def test_a_dead_workers_recovered_task_is_a_worker_gone_alert(db, store, scheduler, accounts, mysql_settings):
    from influencers.core.tasks import TaskScheduler
    from influencers.core.workers import Worker

    accounts.add("frank", "pw")
    scheduler.create_crawl("美妆", 10, 10)
    other = Worker.start(mysql_settings, "doomed")
    try:
        claim = TaskScheduler(db, other, accounts, lease_seconds=30).claim("ingestion")
        sql(db, "UPDATE tasks SET lease_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s",
            (claim.task_id,))
        assert scheduler.recover() == 1
    finally:
        other.close()
    new = store.raise_alerts()
    assert kinds(new) == [("worker_gone", other.worker_id)]
    assert "back in the queue" in new[0].message


def test_quota_spent_while_an_export_waits(db, store, scheduler, accounts):
    first, second = accounts.add("gina", "pw", 100), accounts.add("hank", "pw", 100)
    scheduler.create_export("美妆")
    accounts.update_export_count(first, 100)
    assert store.quota_spent() is False  # hank has 100 left
    accounts.update_export_count(second, 100)
    assert store.quota_spent() is True
    sql(db, "UPDATE accounts SET quota_date = quota_date - INTERVAL 1 DAY WHERE id = %s", (second,))
    assert store.quota_spent() is False  # yesterday's count: a full quota today


def test_outages_are_alerted_after_the_threshold_while_reported(db, store):
    outages.report(db, "platform http://127.0.0.1:8800", "crawl:a:1", "ConnectionRefusedError")
    outages.report(db, "scrapyd http://127.0.0.1:6800", "dispatcher:b:2", "connection refused")
    assert store.outages(60) == []  # not long enough yet
    sql(db, "UPDATE outages SET started_at = started_at - INTERVAL 120 SECOND")
    assert kinds(store.outages(60)) == [("node_gone", "scrapyd http://127.0.0.1:6800"),
                                        ("platform_unreachable", "platform http://127.0.0.1:8800")]
    sql(db, "UPDATE outages SET seen_at = seen_at - INTERVAL 1 DAY WHERE reporter = 'crawl:a:1'")
    assert kinds(store.outages(60)) == [("node_gone", "scrapyd http://127.0.0.1:6800")]  # its crawl is gone
    outages.clear(db, "scrapyd http://127.0.0.1:6800", "dispatcher:b:2")
    assert store.outages(60) == []


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def service(store: AlertStore, urls: list[str], clock: Clock | None = None, outage_after: float = 60) -> AlerterService:
    return AlerterService(store, Notifier(urls), AlertSettings(urls=tuple(urls), window=3600, outage_after=outage_after),
                          clock=clock or Clock())


def test_a_starved_pool_is_alerted_only_once_it_has_lasted(db, store, scheduler, accounts, webhook):
    account_id = accounts.add("ivy", "pw")
    scheduler.create_crawl("美妆", 20, 10)
    claim = scheduler.claim("ingestion")  # ivy is busy; the second subtask waits
    assert claim is not None and store.pool_starved()
    clock = Clock()
    alerter = service(store, [webhook.url()], clock)
    alerter.round()
    clock.now += 59
    alerter.round()
    assert stored(db) == []
    clock.now += 2
    alerter.round()
    body = webhook.wait_for(1)[0]
    assert body["title"] == "[influencers] pool_exhausted: all" and "61s" in body["message"]
    scheduler.release(claim)
    assert sql(db, "SELECT status FROM accounts WHERE id = %s", (account_id,))[0]["status"] == "idle"
    assert not store.pool_starved()


def test_delivery_fails_is_retried_and_arrives_once_without_its_key_anywhere(db, store, accounts, webhook, caplog):
    caplog.set_level(logging.DEBUG)
    url = webhook.url("hooks/k3y-0f-the-team-chat")
    alerter = service(store, [url])
    account_id = accounts.add("jack", "pw")
    accounts.disable(account_id, "banned")
    webhook.status = 500
    alerter.round()
    (row,) = stored(db)
    assert row["delivered_at"] is None and row["attempts"] == 1 and "URL 1 (JSON)" in row["last_error"]
    alerter.round()
    assert stored(db)[0]["attempts"] == 1  # not due again yet: no hammering a failing receiver
    webhook.status = 200
    sql(db, "UPDATE alerts SET next_attempt_at = UTC_TIMESTAMP(6)")
    alerter.round()
    (row,) = stored(db)
    assert row["delivered_at"] is not None and row["attempts"] == 2 and row["last_error"] is None
    (body,) = webhook.wait_for(1)
    assert body["title"] == f"[influencers] account_disabled: {account_id}" and "jack" in body["message"]
    alerter.round()
    assert len(webhook.received) == 1
    # apprise's own records go nowhere in a process (pytest's capture reaches loggers that do not
    # propagate, so they are left out here); everything the alerter logs or stores is checked.
    assert logging.getLogger("apprise").propagate is False
    ours = "\n".join(record.getMessage() for record in caplog.records if not record.name.startswith("apprise"))
    assert "k3y-0f-the-team-chat" not in ours + repr(sql(db, "SELECT * FROM alerts"))


def test_two_alerters_make_and_send_each_alert_once(mysql_settings, db, config, accounts, webhook):
    marked(AlertStore(db, config.quota_day, window=3600))
    ids = [accounts.add(f"user{n}", "pw") for n in range(20)]
    for account_id in ids:
        accounts.disable(account_id, "banned")
    conns = [connect(mysql_settings) for _ in range(2)]
    alerters = [service(AlertStore(conn, config.quota_day, window=3600, event_lag=0), [webhook.url()])
                for conn in conns]
    errors: list[BaseException] = []

    def rounds(alerter: AlerterService) -> None:
        try:
            for _ in range(5):
                alerter.round()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rounds, args=(alerter,)) for alerter in alerters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for conn in conns:
        conn.close()
    assert errors == []
    assert sorted(row["subject"] for row in stored(db)) == sorted(str(i) for i in ids)
    bodies = webhook.wait_for(20)
    assert len(webhook.received) == 20
    assert sorted(body["title"] for body in bodies) == sorted(f"[influencers] account_disabled: {i}" for i in ids)


def test_an_alert_raised_while_mysql_was_away_is_recorded_when_it_is_back(db, store):
    (alert,) = store.raise_alerts([Cause("database_unreachable", "", "MySQL unreachable for 301s")], delivered=True)
    assert alert.delivered_at is not None and alert.attempts == 0
    assert store.due(limit=10, lease=60) == []


def test_the_api_lists_alerts_newest_first_with_their_delivery(db, store, accounts, api_server):
    first, second = accounts.add("lee", "pw"), accounts.add("mia", "pw")
    accounts.disable(first, "banned")
    store.raise_alerts()
    accounts.disable(second, "captcha every page")
    (newest,) = store.raise_alerts()
    store.delivered(newest.id)
    reply = api_server.get("/api/v1/alerts", params={"limit": "5"})
    assert reply.status == 200, reply.text
    listed = reply.json()["alerts"]
    assert [(row["kind"], row["subject"], row["delivered_at"] is not None) for row in listed] == [
        ("account_disabled", str(second), True), ("account_disabled", str(first), False)]
    assert listed[0]["created_at"].endswith("Z") or listed[0]["created_at"].endswith("+00:00")
    assert api_server.get("/api/v1/alerts", params={"limit": "0"}).status == 422
