"""Schedules over real MariaDB (`influencers.core.schedules`): occurrences in the configured zone
and across DST changes, no run while the previous one is unfinished, missed occurrences fired
once or skipped, exactly one firing when several schedulers race. Time is moved by rewriting the
stored times, never by sleeping."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from influencers.core import cron
from influencers.core.db import connect
from influencers.core.errors import InvalidArgument, ScheduleNotFound
from influencers.core.quotaday import QuotaDay
from influencers.core.schedules import ScheduleStore

SHANGHAI = QuotaDay(ZoneInfo("Asia/Shanghai"))
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def store(db) -> ScheduleStore:
    return ScheduleStore(db, SHANGHAI)


def sql(db, statement: str, args=()) -> list[dict]:
    with db.cursor() as cursor:
        cursor.execute(statement, args)
        rows = list(cursor.fetchall())
    db.commit()
    return rows


def database_now(db) -> datetime:
    return sql(db, "SELECT UTC_TIMESTAMP(6) AS now")[0]["now"]


def due_this_minute(db, schedule_id: int) -> datetime:
    """Make an every-minute schedule due at the current minute (waiting out a minute's last seconds,
    so the occurrence is still the latest when the test fires it), with its earlier runs moved back."""
    if database_now(db).second >= 55:
        time.sleep(6)
    minute = database_now(db).replace(second=0, microsecond=0)
    sql(db, "UPDATE schedule_runs SET occurrence_at = occurrence_at - INTERVAL 1 HOUR WHERE schedule_id = %s",
        (schedule_id,))
    sql(db, "UPDATE schedules SET next_run_at = %s WHERE id = %s", (minute, schedule_id))
    return minute


def runs(db, schedule_id: int) -> list[dict]:
    return sql(db, "SELECT * FROM schedule_runs WHERE schedule_id = %s ORDER BY id", (schedule_id,))


def top_tasks(db) -> list[dict]:
    return sql(db, "SELECT id, task_type, status FROM tasks WHERE parent_id IS NULL ORDER BY id")


# -- when -------------------------------------------------------------------------------------


def test_next_occurrence_is_local_time_in_shanghai_stored_in_utc(db, store):
    schedule_id = store.add_crawl("美妆", 4, 2, "0 3 * * *")
    stored = store.get(schedule_id)["next_run_at"]
    assert (stored.hour, stored.minute) == (19, 0)  # 03:00 in UTC+8
    assert timedelta(0) < stored - database_now(db) <= timedelta(days=1)
    assert cron.next_after("0 3 * * *", SHANGHAI.zone, datetime(2026, 12, 1, 18, 59)) == datetime(2026, 12, 1, 19, 0)
    assert cron.next_after("0 3 * * *", SHANGHAI.zone, datetime(2026, 12, 1, 19, 0)) == datetime(2026, 12, 2, 19, 0)


def test_occurrences_across_daylight_saving_changes_in_new_york():
    def walk(expression: str, start: datetime, count: int) -> list[datetime]:
        found, instant = [], start
        for _ in range(count):
            instant = cron.next_after(expression, NEW_YORK, instant)
            found.append(instant)
        return found

    # 03:00 local every day: 08:00 UTC in winter (EST), 07:00 UTC in summer (EDT).
    assert walk("0 3 * * *", datetime(2026, 3, 7, 0, 0), 3) == [
        datetime(2026, 3, 7, 8), datetime(2026, 3, 8, 7), datetime(2026, 3, 9, 7)]
    assert walk("0 3 * * *", datetime(2026, 10, 31, 0, 0), 3) == [
        datetime(2026, 10, 31, 7), datetime(2026, 11, 1, 8), datetime(2026, 11, 2, 8)]
    # 02:30 does not exist on 2026-03-08: it fires when the clocks land (03:00 EDT), once.
    assert walk("30 2 * * *", datetime(2026, 3, 7, 12), 2) == [datetime(2026, 3, 8, 7), datetime(2026, 3, 9, 6, 30)]
    # 01:30 happens twice on 2026-11-01: a fixed-hour time fires in the first pass only ...
    assert walk("30 1 * * *", datetime(2026, 10, 31, 12), 2) == [datetime(2026, 11, 1, 5, 30),
                                                                 datetime(2026, 11, 2, 6, 30)]
    # ... an hourly expression fires in both hours, each an hour of real time.
    assert walk("0 * * * *", datetime(2026, 11, 1, 4, 30), 3) == [
        datetime(2026, 11, 1, 5), datetime(2026, 11, 1, 6), datetime(2026, 11, 1, 7)]


@pytest.mark.parametrize("expression", ["", "bad cron", "61 * * * *", "0 0 30 2 *", "* * * * * *"])
def test_a_bad_cron_expression_is_refused_at_add(db, store, expression):
    with pytest.raises(InvalidArgument, match="--cron"):
        store.add_crawl("美妆", 4, None, expression)
    assert sql(db, "SELECT COUNT(*) AS n FROM schedules")[0]["n"] == 0


# -- firing -----------------------------------------------------------------------------------


def test_an_occurrence_starts_its_task_and_no_second_one_while_it_is_unfinished(db, store):
    schedule_id = store.add_crawl("美妆", 4, 2, "* * * * *", name="nightly")
    first = due_this_minute(db, schedule_id)
    [run] = store.fire_due(actor="test")
    assert (run.outcome, run.occurrence_at) == ("started", first)
    [parent] = top_tasks(db)
    assert run.task_id == parent["id"]
    assert sql(db, "SELECT COUNT(*) AS n FROM tasks WHERE parent_id = %s", (parent["id"],))[0]["n"] == 2
    assert store.get(schedule_id)["next_run_at"] > database_now(db)
    assert store.fire_due(actor="test") == []  # nothing due until the next minute

    due_this_minute(db, schedule_id)
    sql(db, "UPDATE tasks SET status = 'completed' WHERE parent_id = %s AND page_from = 1", (parent["id"],))
    [skipped] = store.fire_due(actor="test")
    assert skipped.outcome == "skipped" and skipped.task_id is None
    assert f"task {parent['id']}" in skipped.reason and "pending" in skipped.reason
    assert len(top_tasks(db)) == 1

    due_this_minute(db, schedule_id)
    sql(db, "UPDATE tasks SET status = 'completed' WHERE id = %s OR parent_id = %s", (parent["id"], parent["id"]))
    [again] = store.fire_due(actor="test")
    assert again.outcome == "started" and again.task_id not in (None, parent["id"])
    listed = store.get(schedule_id)
    assert (listed["last_outcome"], listed["last_task_id"], listed["last_task_status"]) == (
        "started", again.task_id, "pending")


def test_an_export_schedule_waits_for_its_unfinished_export(db, store):
    schedule_id = store.add_export("游戏", "* * * * *", limit=10, fmt="jsonl")
    due_this_minute(db, schedule_id)
    [run] = store.fire_due(actor="test")
    task = sql(db, "SELECT task_type, export_limit, export_format FROM tasks WHERE id = %s", (run.task_id,))[0]
    assert task == {"task_type": "export", "export_limit": 10, "export_format": "jsonl"}
    sql(db, "UPDATE tasks SET status = 'paused' WHERE id = %s", (run.task_id,))
    due_this_minute(db, schedule_id)
    [skipped] = store.fire_due(actor="test")
    assert skipped.outcome == "skipped" and "paused" in skipped.reason


@pytest.mark.parametrize(("missed", "outcome", "tasks"), [("run-once", "started", 1), ("skip", "skipped", 0)])
def test_occurrences_missed_while_no_scheduler_ran(db, store, missed, outcome, tasks):
    schedule_id = store.add_crawl("美妆", 2, None, "0 3 * * *", missed=missed)
    sql(db, "UPDATE schedules SET next_run_at = next_run_at - INTERVAL 3 DAY WHERE id = %s", (schedule_id,))
    first, now = store.get(schedule_id)["next_run_at"], database_now(db)
    expected, _ = cron.due("0 3 * * *", SHANGHAI.zone, first, now)
    assert len(expected) >= 2
    [run] = store.fire_due(actor="test")
    [row] = runs(db, schedule_id)
    assert (row["outcome"], row["occurrences"], row["occurrence_at"]) == (outcome, len(expected), expected[-1])
    assert f"{len(expected)} occurrence(s) missed" in row["reason"]
    assert len(top_tasks(db)) == tasks
    assert store.get(schedule_id)["next_run_at"] > now
    assert store.fire_due(actor="test") == []  # caught up once, not once per occurrence


@pytest.mark.parametrize(("missed", "recorded"), [("run-once", [("started", 6)]),
                                                  ("skip", [("skipped", 5), ("started", 1)])])
def test_missed_occurrences_before_one_on_time(db, store, missed, recorded):
    schedule_id = store.add_export("美妆", "* * * * *", missed=missed)
    minute = due_this_minute(db, schedule_id)
    sql(db, "UPDATE schedules SET next_run_at = %s WHERE id = %s", (minute - timedelta(minutes=5), schedule_id))
    store.fire_due(actor="test")
    assert [(row["outcome"], row["occurrences"]) for row in runs(db, schedule_id)] == recorded
    assert runs(db, schedule_id)[-1]["occurrence_at"] == minute
    assert len(top_tasks(db)) == 1


def test_a_paused_schedule_records_nothing_and_resumes_from_now(db, store):
    schedule_id = store.add_crawl("美妆", 2, None, "* * * * *")
    store.pause(schedule_id)
    sql(db, "UPDATE schedules SET next_run_at = next_run_at - INTERVAL 1 DAY WHERE id = %s", (schedule_id,))
    assert store.fire_due(actor="test") == []
    store.resume(schedule_id)
    assert store.get(schedule_id)["next_run_at"] > database_now(db)
    assert store.fire_due(actor="test") == [] and runs(db, schedule_id) == []


def test_a_task_that_cannot_be_made_any_more_is_a_failed_run(db, store):
    schedule_id = store.add_crawl("美妆", 4, 2, "* * * * *")
    due_this_minute(db, schedule_id)
    [run] = store.fire_due(actor="test", cursor_listing=True)  # the platform now pages with cursors
    assert run.outcome == "failed" and "cursors" in run.reason
    assert top_tasks(db) == []


def test_unknown_schedules(store):
    for action in (store.pause, store.resume, store.remove, store.get):
        with pytest.raises(ScheduleNotFound):
            action(999)


def test_remove_forgets_the_schedule_and_its_runs_not_its_tasks(db, store):
    schedule_id = store.add_export("美妆", "* * * * *")
    due_this_minute(db, schedule_id)
    store.fire_due(actor="test")
    store.remove(schedule_id)
    assert store.list() == [] and runs(db, schedule_id) == []
    assert len(top_tasks(db)) == 1


def test_racing_schedulers_fire_each_occurrence_once(db, store, mysql_settings):
    ids = [store.add_export(f"d{number}", "* * * * *") for number in range(30)]
    if database_now(db).second >= 55:
        time.sleep(6)
    sql(db, "UPDATE schedules SET next_run_at = %s", (database_now(db).replace(second=0, microsecond=0),))
    fired: list = []
    start = threading.Barrier(4)

    def scheduler() -> None:
        conn = connect(mysql_settings)
        try:
            own = ScheduleStore(conn, SHANGHAI)
            start.wait()
            for _ in range(3):
                fired.extend(own.fire_due(actor=threading.current_thread().name))
        finally:
            conn.close()

    threads = [threading.Thread(target=scheduler, name=f"s{number}") for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(run.schedule_id for run in fired) == ids
    assert len(top_tasks(db)) == 30 == len({run.task_id for run in fired})


# -- over HTTP --------------------------------------------------------------------------------

EMPTY_JSON = {"Content-Type": "application/json"}


def test_schedules_over_http(api_server, db):
    added = api_server.post("/api/v1/schedules", {"kind": "crawl", "domain": "美妆", "pages": 20, "split": 10,
                                                  "cron": "0 3 * * *", "name": "nightly"})
    assert added.status == 201, added.text
    schedule = added.json()
    assert added.headers["Location"] == f"/api/v1/schedules/{schedule['id']}"
    assert (schedule["kind"], schedule["pages"], schedule["paused"], schedule["last_outcome"]) == (
        "crawl", 20, False, None)
    assert schedule["next_run_at"].endswith("Z") and schedule["next_run_local"].endswith("03:00:00+08:00")
    export = api_server.post("/api/v1/schedules", {"kind": "export", "domain": "游戏", "cron": "*/5 * * * *",
                                                   "limit": 100, "format": "xlsx", "missed": "skip"}).json()
    assert (export["format"], export["limit"], export["missed"]) == ("xlsx", 100, "skip")
    assert [row["id"] for row in api_server.get("/api/v1/schedules").json()["schedules"]] == [
        schedule["id"], export["id"]]

    paused = api_server.post(f"/api/v1/schedules/{schedule['id']}/pause", headers=EMPTY_JSON)
    assert paused.status == 200 and paused.json()["paused"] is True and paused.json()["next_run_at"] is None
    assert api_server.post(f"/api/v1/schedules/{schedule['id']}/resume", headers=EMPTY_JSON).json()["paused"] is False
    assert api_server.request("DELETE", f"/api/v1/schedules/{export['id']}", headers=EMPTY_JSON).status == 204
    assert api_server.request("DELETE", f"/api/v1/schedules/{export['id']}").status == 415

    for body, status in (({"kind": "crawl", "domain": "美妆", "pages": 5, "cron": "bad"}, 400),
                         ({"kind": "crawl", "domain": "美妆", "cron": "* * * * *"}, 400),
                         ({"kind": "export", "domain": "美妆", "cron": "* * * * *", "pages": 3}, 400),
                         ({"kind": "weekly", "domain": "美妆", "cron": "* * * * *"}, 422)):
        reply = api_server.post("/api/v1/schedules", body)
        assert reply.status == status, (body, reply.text)
    for path in (f"/api/v1/schedules/{export['id']}/pause", "/api/v1/schedules/999/resume"):
        reply = api_server.post(path, headers=EMPTY_JSON)
        assert (reply.status, reply.error["code"]) == (404, "schedule_not_found")
    assert [row["id"] for row in api_server.get("/api/v1/schedules").json()["schedules"]] == [schedule["id"]]
