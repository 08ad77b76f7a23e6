"""Tasks over HTTP: create, list with progress, show with history, pause and resume, and the
4xx answers for bad input (never a 500)."""

from __future__ import annotations

import pytest

#: A body-less POST still says JSON: the API refuses (415) what a cross-site form could send.
EMPTY_JSON = {"Content-Type": "application/json"}

pytestmark = pytest.mark.usefixtures("db")


def test_create_crawl_splits_into_subtasks_with_history(api_server, db):
    reply = api_server.post("/api/v1/tasks/crawl", {"domain": "美妆", "pages": 25, "split": 10})
    assert reply.status == 201, reply.text
    task = reply.json()
    assert reply.headers["Location"] == f"/api/v1/tasks/{task['id']}"
    assert (task["task_type"], task["domain"], task["status"]) == ("ingestion", "美妆", "pending")
    assert task["is_parent"] is True
    assert [(s["page_from"], s["page_to"]) for s in task["subtasks"]] == [(1, 10), (11, 20), (21, 25)]
    assert task["progress"] == {"pages_done": 0, "pages_total": 25, "exported": None, "rows_pending": None,
                                "percent": 0.0}
    assert task["events"][0]["event"] == "created" and "pages 1-25" in task["events"][0]["reason"]
    with db.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) AS n FROM tasks WHERE parent_id = %s", (task["id"],))
        assert cursor.fetchone()["n"] == 3


def test_create_export_defaults_to_csv(api_server):
    reply = api_server.post("/api/v1/tasks/export", {"domain": "游戏"})
    assert reply.status == 201, reply.text
    task = reply.json()
    assert (task["task_type"], task["export_format"], task["export_limit"], task["progress_marker"]) == (
        "export", "csv", None, "last_id=0")
    limited = api_server.post("/api/v1/tasks/export", {"domain": "游戏", "limit": 500, "format": "xlsx"}).json()
    assert (limited["export_format"], limited["export_limit"]) == ("xlsx", 500)


def test_list_filters_and_progress(api_server, small_run):
    seeded = small_run
    everything = api_server.get("/api/v1/tasks").json()
    ids = [task["id"] for task in everything["tasks"]]
    assert ids == sorted(ids) and everything["total"] == len(ids)
    by_id = {task["id"]: task for task in everything["tasks"]}
    running = by_id[seeded["tasks"]["beauty_running"]]
    assert running["status"] == "in_progress" and running["account"] == "采集账号一"
    assert running["progress"]["pages_done"] == 2 and running["progress"]["pages_total"] == 2
    assert by_id[seeded["tasks"]["beauty"]]["progress"]["pages_done"] == 2  # the parent counts its subtasks
    assert by_id[seeded["tasks"]["beauty"]]["progress"]["pages_total"] == 4
    export = by_id[seeded["tasks"]["export"]]
    assert export["progress"]["exported"] == 10 and export["progress"]["rows_pending"] == 28

    paused = api_server.get("/api/v1/tasks", params={"state": "paused"}).json()["tasks"]
    assert [task["id"] for task in paused] == [seeded["tasks"]["games_subtask"]]
    exports = api_server.get("/api/v1/tasks", params={"type": "export"}).json()["tasks"]
    assert [task["id"] for task in exports] == [seeded["tasks"]["export"]]
    games = api_server.get("/api/v1/tasks", params={"domain": "游戏"}).json()["tasks"]
    assert {task["domain"] for task in games} == {"游戏"} and len(games) == 2
    newest = api_server.get("/api/v1/tasks", params={"limit": 2}).json()
    assert newest["total"] == len(ids) and [t["id"] for t in newest["tasks"]] == ids[-2:]


def test_show_task_with_event_history(api_server, small_run):
    seeded = small_run
    task = api_server.get(f"/api/v1/tasks/{seeded['tasks']['export']}").json()
    assert task["status"] == "completed" and task["exported_count"] == 10 and task["account"] == "导出账号二"
    events = [event["event"] for event in task["events"]]
    assert events[:2] == ["created", "taken"] and "claimed" in events and "completed" in events
    assert all(event["created_at"].endswith("Z") for event in task["events"])


def test_pause_and_resume_with_wrong_state_conflicts(api_server, scheduler):
    parent = api_server.post("/api/v1/tasks/crawl", {"domain": "美食", "pages": 4, "split": 2}).json()
    subtask = parent["subtasks"][0]["id"]

    reply = api_server.post(f"/api/v1/tasks/{subtask}/resume", headers=EMPTY_JSON)
    assert reply.status == 409 and reply.error["code"] == "invalid_transition"
    assert "only paused tasks can be resumed" in reply.error["message"]

    paused = api_server.post(f"/api/v1/tasks/{subtask}/pause", {"reason": "运营手动暂停"})
    assert paused.status == 200, paused.text
    assert paused.json()["status"] == "paused" and paused.json()["last_error"] == "运营手动暂停"
    assert paused.json()["events"][-1]["event"] == "paused"

    resumed = api_server.post(f"/api/v1/tasks/{subtask}/resume", headers=EMPTY_JSON)
    assert resumed.status == 200 and resumed.json()["status"] == "pending"

    whole = api_server.post(f"/api/v1/tasks/{parent['id']}/pause", headers=EMPTY_JSON)  # no body: the default reason
    assert whole.status == 200
    assert {s["status"] for s in whole.json()["subtasks"]} == {"paused"}
    assert api_server.post(f"/api/v1/tasks/{parent['id']}/resume", headers=EMPTY_JSON).status == 200

    export = api_server.post("/api/v1/tasks/export", {"domain": "美食"}).json()
    with scheduler.conn.cursor() as cursor:
        cursor.execute("UPDATE tasks SET status = 'completed' WHERE id = %s", (export["id"],))
    scheduler.conn.commit()
    finished = api_server.post(f"/api/v1/tasks/{export['id']}/pause", headers=EMPTY_JSON)
    assert finished.status == 409 and "completed" in finished.error["message"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "fragment"),
    [
        ("/api/v1/tasks/crawl", {"domain": "../../etc", "pages": 3}, 400, "invalid_argument", "domain"),
        ("/api/v1/tasks/crawl", {"domain": "  ", "pages": 3}, 400, "invalid_argument", "domain"),
        ("/api/v1/tasks/crawl", {"domain": "美妆", "pages": -1}, 422, "invalid_request", "body.pages"),
        ("/api/v1/tasks/crawl", {"domain": "美妆", "pages": 0}, 422, "invalid_request", "greater than or equal to 1"),
        ("/api/v1/tasks/crawl", {"domain": "美妆", "pages": "10"}, 422, "invalid_request", "body.pages"),
        ("/api/v1/tasks/crawl", {"domain": "美妆", "pages": 5000, "split": 1}, 400, "invalid_argument", "raise split"),
        ("/api/v1/tasks/crawl", {"domain": "美妆"}, 422, "invalid_request", "body.pages: Field required"),
        ("/api/v1/tasks/crawl", {"domain": "美妆", "pages": 3, "extra": 1}, 422, "invalid_request", "body.extra"),
        ("/api/v1/tasks/crawl", {"domain": "x" * 101, "pages": 3}, 422, "invalid_request", "body.domain"),
        ("/api/v1/tasks/export", {"domain": "美妆", "format": "pdf"}, 422, "invalid_request", "body.format"),
        ("/api/v1/tasks/export", {"domain": "美妆", "limit": 0}, 422, "invalid_request", "body.limit"),
        ("/api/v1/tasks/export", {"domain": "a/b"}, 400, "invalid_argument", "domain"),
    ],
)
def test_bad_input_gets_4xx_that_says_what_is_wrong(api_server, path, body, status, code, fragment):
    reply = api_server.post(path, body)
    assert reply.status == status, reply.text
    assert reply.error["code"] == code
    assert fragment in reply.error["message"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/tasks/999", 404, "task_not_found"),
        ("POST", "/api/v1/tasks/999/pause", 404, "task_not_found"),
        ("POST", "/api/v1/tasks/999/resume", 404, "task_not_found"),
        ("GET", "/api/v1/tasks/0", 422, "invalid_request"),
        ("GET", "/api/v1/tasks/abc", 422, "invalid_request"),
        ("GET", "/api/v1/tasks/99999999999999999999999", 422, "invalid_request"),
        ("GET", "/api/v1/tasks?state=sleeping", 422, "invalid_request"),
        ("GET", "/api/v1/tasks?stat=paused", 422, "invalid_request"),  # a typo is not "no filter"
        ("GET", "/healthz?verbose=1", 422, "invalid_request"),
        ("GET", "/api/v1/nowhere", 404, "not_found"),
        ("DELETE", "/api/v1/tasks/1", 405, "method_not_allowed"),
    ],
)
def test_unknown_and_malformed_targets(api_server, method, path, status, code):
    reply = api_server.request(method, path, headers=EMPTY_JSON if method == "POST" else None)
    assert reply.status == status, reply.text
    assert reply.error["code"] == code


def test_malformed_json_and_oversized_bodies(api_server):
    broken = api_server.request("POST", "/api/v1/tasks/crawl", raw_body=b'{"domain": "x", pages',
                                headers={"Content-Type": "application/json"})
    assert broken.status == 422 and broken.error["code"] == "invalid_request"
    huge = api_server.request("POST", "/api/v1/tasks/crawl", raw_body=b"{" + b" " * 70_000 + b"}",
                              headers={"Content-Type": "application/json"})
    assert huge.status == 413 and huge.error["code"] == "payload_too_large"
    assert "Traceback" not in api_server.log()


def test_a_cursor_platforms_crawl_is_one_subtask_and_refuses_a_split(start_api, db):
    api = start_api(extra={"INFLUENCERS_SITE_ADAPTER": "influencers.sites.sandbox_token.SandboxTokenAdapter"})
    refused = api.post("/api/v1/tasks/crawl", {"domain": "美妆", "pages": 25, "split": 10})
    assert (refused.status, refused.error["code"]) == (400, "invalid_argument")
    assert "pages with cursors" in refused.error["message"]
    task = api.post("/api/v1/tasks/crawl", {"domain": "美妆", "pages": 25}).json()
    assert [(s["page_from"], s["page_to"]) for s in task["subtasks"]] == [(1, 25)]
    with db.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) AS n FROM tasks")
        assert cursor.fetchone()["n"] == 2  # the refused one made nothing
