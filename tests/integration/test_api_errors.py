"""The error layer on its own: the last-resort middleware answers a generic JSON 500 and logs the
traceback server-side; core errors map to their statuses; validation messages never echo input.

The ASGI app is driven directly (no server, no database) on a thread of its own, because
pytest-twisted already runs an asyncio loop on the test thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymysql
import pytest
from fastapi import FastAPI

from influencers.api.errors import MAX_BODY_BYTES, CatchAllMiddleware, install_error_handlers
from influencers.core.db import driver_error
from influencers.core.errors import DatabaseUnavailable, InvalidArgument, InvalidTransition, TaskNotFound

SECRET = "pw-never-shown-9f2c"


def build_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(CatchAllMiddleware)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("something broke")

    @app.get("/core/{kind}")
    def core(kind: str) -> None:
        raise {"bad": InvalidArgument("domain 'a/b' is not allowed"), "missing": TaskNotFound("no task with id 9"),
               "state": InvalidTransition("task 9 is completed"),
               "down": DatabaseUnavailable("127.0.0.1", 3306, "connection refused")}[kind]

    @app.get("/mysql/{code}")
    def mysql(code: int) -> None:
        raise driver_error(pymysql.err.OperationalError(code, "server said something"))  # as the boundary does

    @app.post("/echo")
    def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    return app


def call(app: FastAPI, method: str, path: str, body: bytes = b"", headers: list | None = None) -> tuple[int, dict, Any]:
    async def run() -> tuple[int, dict, Any]:
        sent: list[dict] = []
        chunks = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict:
            return chunks.pop(0) if chunks else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
                 "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
                 "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1234),
                 "headers": headers or [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]}
        await app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], dict(start["headers"]), json.loads(payload)

    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, run()).result(timeout=30)


def test_unhandled_exception_is_a_generic_500_with_the_traceback_in_the_log(caplog):
    with caplog.at_level(logging.ERROR, logger="influencers.api.errors"):
        status, headers, document = call(build_app(), "GET", "/boom")
    assert status == 500
    assert document["error"] == {"code": "internal_error", "message": "internal error; the server log has the details"}
    assert headers[b"x-content-type-options"] == b"nosniff"
    record = next(r for r in caplog.records if "unhandled error in GET /boom" in r.getMessage())
    assert record.exc_info and "something broke" in str(record.exc_info[1])


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("bad", 400, "invalid_argument"), ("missing", 404, "task_not_found"), ("state", 409, "invalid_transition"),
     ("down", 503, "database_unavailable")],
)
def test_core_errors_map_to_statuses(kind, status, code):
    got_status, _, document = call(build_app(), "GET", f"/core/{kind}")
    assert (got_status, document["error"]["code"]) == (status, code)
    assert "\n" not in document["error"]["message"]


def test_lost_database_connection_is_503_other_mysql_errors_500():
    status, _, document = call(build_app(), "GET", "/mysql/2013")
    assert (status, document["error"]["code"]) == (503, "database_unavailable")
    assert "lost the connection" in document["error"]["message"]
    status, _, document = call(build_app(), "GET", "/mysql/1064")
    assert (status, document["error"]["code"]) == (500, "internal_error")
    assert "server said" not in json.dumps(document)


def test_validation_errors_name_the_place_not_the_value():
    body = json.dumps({"password": SECRET}).encode()
    status, _, document = call(build_app(), "POST", "/echo", body)
    assert status == 422
    assert document["error"]["code"] == "invalid_request"
    assert "body.password" in document["error"]["message"]
    assert SECRET not in json.dumps(document)


def test_oversized_body_is_413_even_without_content_length():
    body = b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}"
    status, _, document = call(build_app(), "POST", "/echo", body, headers=[(b"content-type", b"application/json")])
    assert (status, document["error"]["code"]) == (413, "payload_too_large")
