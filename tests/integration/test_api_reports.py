"""Reports and status over HTTP: the same numbers as the core's queries and the tables."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from influencers.core import reports

pytestmark = pytest.mark.usefixtures("db")


def test_ingestion_report_today_per_domain_and_account(api_server, small_run, db, config):
    reply = api_server.get("/api/v1/reports/ingestion")
    assert reply.status == 200, reply.text
    report = reply.json()
    _, _, today = reports.local_day_bounds(None, config.quota_day)
    assert report["date"] == today.isoformat() and report["tz"] == "Asia/Shanghai" and report["pages"] is None
    got = {(row["domain"], row["account"]): row for row in report["rows"]}
    assert set(got) == set(small_run["ingestion"])
    for key, expected in small_run["ingestion"].items():
        assert {name: got[key][name] for name in expected} == expected
        assert got[key]["last_time"].endswith("+08:00")
    core = reports.ingestion_report(db, quota_day=config.quota_day)
    assert [(r["domain"], r["account"], int(r["influencers"])) for r in core] == [
        (r["domain"], r["account"], r["influencers"]) for r in report["rows"]]


def test_ingestion_report_details_and_filters(api_server, small_run):
    detailed = api_server.get("/api/v1/reports/ingestion", params={"details": "true", "domain": "美妆"}).json()
    assert [(r["domain"], r["account"]) for r in detailed["rows"]] == [("美妆", "采集账号一")]
    pages = detailed["pages"]
    assert [(p["page_number"], p["influencers"]) for p in pages] == [(1, 20), (2, 18)]
    assert pages[0]["nicknames"][:2] == ["达人美妆1-0✨", "达人美妆1-1✨"]
    assert len(pages[1]["nicknames"]) == 18

    by_name = api_server.get("/api/v1/reports/ingestion", params={"account": "导出账号二"}).json()["rows"]
    by_id = api_server.get("/api/v1/reports/ingestion",
                           params={"account": str(small_run["accounts"]["导出账号二"])}).json()["rows"]
    assert [(r["domain"], r["influencers"]) for r in by_name] == [("游戏", 7)] == [
        (r["domain"], r["influencers"]) for r in by_id]
    yesterday = (date.fromisoformat(api_server.get("/api/v1/status").json()["today"]) - timedelta(days=1)).isoformat()
    assert api_server.get("/api/v1/reports/ingestion", params={"date": yesterday}).json()["rows"] == []


def test_export_report(api_server, small_run):
    report = api_server.get("/api/v1/reports/export").json()
    got = {(row["domain"], row["account"]): row for row in report["rows"]}
    assert set(got) == set(small_run["export"])
    for key, expected in small_run["export"].items():
        assert {name: got[key][name] for name in expected} == expected
    assert api_server.get("/api/v1/reports/export", params={"domain": "游戏"}).json()["rows"] == []
    assert api_server.get("/api/v1/reports/export", params={"account": "nobody"}).json()["rows"] == []


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/api/v1/reports/ingestion", {"date": "2026-13-01"}, "not a calendar date"),
        ("/api/v1/reports/ingestion", {"date": "27/11/2026"}, "query.date"),
        ("/api/v1/reports/export", {"date": "2026-02-30"}, "not a calendar date"),
        ("/api/v1/reports/ingestion", {"details": "maybe"}, "query.details"),
        ("/api/v1/reports/ingestion", {"account": "²"}, "digits 0-9"),
    ],
)
def test_report_filters_reject_bad_values(api_server, path, params, fragment):
    reply = api_server.get(path, params=params)
    assert reply.status == 422, reply.text
    assert reply.error["code"] == "invalid_request"
    assert fragment in reply.error["message"]


@pytest.mark.parametrize("day", ["0001-01-01", "1969-12-31", "9999-12-31"])
def test_days_beyond_the_database_are_empty_not_errors(api_server, day):
    for kind, params in (("ingestion", {"details": "true"}), ("export", {})):
        reply = api_server.get(f"/api/v1/reports/{kind}", params={"date": day, **params})
        assert reply.status == 200, reply.text
        assert reply.json()["date"] == day and reply.json()["rows"] == []


def test_status_is_the_cli_summary(api_server, small_run, db, accounts):
    status = api_server.get("/api/v1/status").json()
    assert set(status) == {"generated_at", "today", "tz", "task_counts", "tasks", "accounts", "backlog"}
    counts = {(row["task_type"], row["status"]): row["tasks"] for row in status["task_counts"]}
    assert counts == small_run["task_counts"]
    assert counts == {(r["task_type"], r["status"]): r["tasks"] for r in reports.task_counts(db)}
    quota = {account["username"]: account["remaining_quota"] for account in status["accounts"]}
    assert quota == small_run["quota_left"]
    banned = next(a for a in status["accounts"] if a["username"] == "停用账号")
    assert (banned["status"], banned["status_reason"]) == ("disabled", "平台封禁 🚫")
    fields = ("pending", "daily_quota", "days_needed")
    backlog = {row["domain"]: {k: row[k] for k in fields} for row in status["backlog"]}
    assert backlog == small_run["backlog"]
    assert [task["id"] for task in status["tasks"]] == [row["id"] for row in reports.task_progress(db)]


def test_empty_system(api_server):
    status = api_server.get("/api/v1/status").json()
    assert (status["task_counts"], status["tasks"], status["accounts"], status["backlog"]) == ([], [], [], [])
    assert api_server.get("/api/v1/reports/ingestion").json()["rows"] == []
    assert api_server.get("/api/v1/reports/export").json()["rows"] == []
    assert api_server.get("/api/v1/tasks").json() == {"total": 0, "tasks": []}
