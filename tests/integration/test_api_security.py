"""Issue 18, item 1: the API cannot be driven from a web page, echoes no Host, logs no query
secret and holds no half-open client.

All against a real `python -m influencers api` subprocess: the Host check, the redirect, the
access log and the connection deadline live in the server, not in one endpoint.
"""

from __future__ import annotations

import http.client
import select
import socket
import time
from urllib.parse import urlsplit

import pytest

from influencers.api.server import LIMITS

pytestmark = pytest.mark.usefixtures("db")

FORGED_HOSTS = ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "localhost.evil.example", "0.0.0.0",
                "10.0.0.1", "[::2]"]
MALFORMED_HOSTS = ["[::1", "::1", "127.0.0.1:port", ""]
LOOPBACK_HOSTS = ["localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.4.5.6", "[::1]"]


def address(server) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname, parts.port


def raw_request(server, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> tuple[
        int, dict[str, str], bytes]:
    """One request with exactly these headers (http.client adds no Host when one is given)."""
    conn = http.client.HTTPConnection(*address(server), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def db_state(db) -> tuple:
    """Everything an attacker's request could change: accounts and tasks with their status."""
    db.commit()  # a fresh snapshot
    with db.cursor() as cursor:
        cursor.execute("SELECT id, status, status_reason FROM accounts ORDER BY id")
        accounts = tuple(tuple(row.values()) for row in cursor.fetchall())
        cursor.execute("SELECT id, status, last_error FROM tasks ORDER BY id")
        tasks = tuple(tuple(row.values()) for row in cursor.fetchall())
    db.commit()
    return accounts, tasks


# -- DNS rebinding: no-token mode answers loopback names only ------------------------------------


def test_forged_host_is_misdirected_without_a_token_and_changes_nothing(start_api, db):
    server = start_api(token=None)
    port = address(server)[1]
    before = db_state(db)
    for host in FORGED_HOSTS + [f"evil.example:{port}"]:
        for method, path, body in [("GET", "/api/v1/accounts", None), ("GET", "/api/v1/status", None),
                                   ("GET", "/dashboard", None), ("GET", "/static/dashboard.js", None),
                                   ("GET", "/healthz", None),
                                   ("POST", "/api/v1/accounts", b'{"username": "evil", "password": "pw-0123456789"}'),
                                   ("POST", "/api/v1/tasks/crawl", b'{"domain": "evil", "pages": 1}')]:
            sent = {"Host": host, "Content-Type": "application/json"}
            status, headers, text = raw_request(server, method, path, sent, body)
            assert status == 421, (host, path, status, text)
            assert headers["content-type"] == "application/json"
            assert b'"code":"misdirected_request"' in text
            assert b"evil" not in text
    for host in MALFORMED_HOSTS:
        status, _, text = raw_request(server, "GET", "/api/v1/accounts", {"Host": host})
        assert status == 400, (host, status, text)
    assert db_state(db) == before


def test_loopback_hosts_are_served_without_a_token(start_api):
    server = start_api(token=None)
    port = address(server)[1]
    for host in LOOPBACK_HOSTS:
        for value in (host, f"{host}:{port}"):
            status, _, text = raw_request(server, "GET", "/api/v1/status", {"Host": value})
            assert status == 200, (value, status, text)


def test_with_a_token_any_host_name_is_served(api_server):
    status, _, _ = raw_request(api_server, "GET", "/api/v1/status",
                               {"Host": "crawler.internal:8900", "Authorization": f"Bearer {api_server.token}"})
    assert status == 200


# -- cross-site forms: state-changing requests must be declared JSON ---------------------------


FORM_LIKE = [
    ({"Content-Type": "application/x-www-form-urlencoded"}, b"reason=x"),
    ({"Content-Type": "multipart/form-data; boundary=b"},
     b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b--\r\n"),
    ({"Content-Type": "text/plain"}, b'{"reason": "x"}'),
    ({}, None),  # an empty-body form POST: no Content-Type at all
]


@pytest.fixture
def targets(accounts, scheduler) -> dict[str, int]:
    """A disabled account, a paused subtask and a pending one: what a form would flip."""
    banned = accounts.add("停用账号", "pw-0123456789abcdef", 50)
    accounts.disable(banned, "运营停用")
    parent = scheduler.create_crawl("美妆", 2, 1)
    with scheduler.conn.cursor() as cursor:
        cursor.execute("SELECT id FROM tasks WHERE parent_id = %s ORDER BY id", (parent,))
        subtasks = [row["id"] for row in cursor.fetchall()]
    scheduler.conn.commit()
    scheduler.pause_task(subtasks[0], "运营暂停")
    return {"account": banned, "paused": subtasks[0], "pending": subtasks[1]}


def form_paths(targets: dict[str, int]) -> list[str]:
    return [f"/api/v1/accounts/{targets['account']}/enable", f"/api/v1/tasks/{targets['paused']}/resume",
            f"/api/v1/tasks/{targets['pending']}/pause", "/api/v1/tasks/crawl", "/api/v1/accounts"]


@pytest.mark.parametrize("token_mode", [False, True], ids=["no-token", "token"])
def test_form_posts_are_refused_and_change_nothing(start_api, api_server, db, targets, token_mode):
    server = api_server if token_mode else start_api(token=None)
    before = db_state(db)
    for path in form_paths(targets):
        for headers, body in FORM_LIKE:
            reply = server.request("POST", path, raw_body=body, headers=headers)
            assert reply.status == 415, (path, headers, reply.status, reply.text)
            assert reply.error["code"] == "unsupported_media_type"
    assert db_state(db) == before

    # the same actions declared JSON (an empty body is fine) do work: the check is not a blanket refusal
    json_header = {"Content-Type": "application/json"}
    assert server.request("POST", form_paths(targets)[0], raw_body=None, headers=json_header).status == 200
    assert server.request("POST", form_paths(targets)[1], raw_body=None,
                          headers={"Content-Type": "application/json; charset=utf-8"}).status == 200
    assert db_state(db) != before


def test_without_the_token_a_form_post_still_gets_401(api_server, targets):
    reply = api_server.request("POST", f"/api/v1/tasks/{targets['paused']}/resume", token=None,
                               raw_body=b"a=b", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 401


# -- redirects do not echo Host ----------------------------------------------------------------


@pytest.mark.parametrize("token_mode", [False, True], ids=["no-token", "token"])
def test_no_redirect_names_the_requested_host(start_api, api_server, token_mode):
    server = api_server if token_mode else start_api(token=None)
    host = "evil.example" if token_mode else "localhost"
    auth = {"Authorization": f"Bearer {api_server.token}"} if token_mode else {}
    for path in ("/api/v1/accounts/", "/api/v1/tasks/", "/api/v1/status/", "/static", "/dashboard/", "/"):
        status, headers, _ = raw_request(server, "GET", path, {"Host": host, **auth})
        location = headers.get("location", "")
        assert host not in location and "//" not in location, (path, status, location)
        if path != "/":
            assert status == 404, (path, status, location)
    assert raw_request(server, "GET", "/", {"Host": host})[1]["location"] == "/dashboard"


# -- no query secret in the log ----------------------------------------------------------------


def test_query_string_secrets_are_redacted_from_the_log(start_api):
    server = start_api()
    secrets = {f"{name}={value}": value for name, value in [
        ("token", "SECRET-tok-1"), ("access_token", "SECRET-acc-2"), ("password", "SECRET-pw-3"),
        ("api_key", "SECRET-key-4"), ("%74oken", "SECRET-enc-5"), ("Client_Secret", "SECRET-cs-6"),
    ]}
    for query in secrets:
        server.get(f"/api/v1/status?{query}&state=x")
        server.get(f"/healthz?a=1;{query}", token=None)
    server.get(f"/api/v1/status?q={server.token}")
    server.get("/healthz?marker=done", token=None)
    deadline = time.monotonic() + 5
    while "marker=done" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log()
    assert "marker=done" in log
    assert "[redacted]" in log and "state=x" in log  # the lines are there, only the values are gone
    for value in [*secrets.values(), server.token]:
        assert value not in log, value


# -- idle and half-open clients are let go -----------------------------------------------------


def test_half_open_connections_are_closed_after_the_read_timeout(start_api):
    server = start_api()
    host, port = address(server)
    partial = b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    sockets: list[socket.socket] = []
    try:
        started = time.monotonic()
        for n in range(40):
            sock = socket.create_connection((host, port), timeout=5)
            if n % 4 == 0:
                pass  # connected, never says anything
            elif n % 4 == 1:
                sock.sendall(b"POST /api/v1/tasks/crawl HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                             b"\r\nContent-Length: 100\r\n\r\n{")  # head complete, body never finished
            else:
                sock.sendall(partial)
            sockets.append(sock)
        trickler = sockets[2]
        assert server.get("/healthz", token=None).status == 200  # the server still answers meanwhile

        closed_at: dict[int, float] = {}
        limit = started + LIMITS.request_read_timeout + 4
        next_trickle = time.monotonic() + 1
        while len(closed_at) < len(sockets) and time.monotonic() < limit:
            if time.monotonic() >= next_trickle and id(trickler) not in closed_at:
                try:
                    trickler.sendall(b"a")  # a header byte a second: slowloris
                except OSError:
                    pass
                next_trickle += 1
            open_ones = [sock for sock in sockets if id(sock) not in closed_at]
            readable, _, _ = select.select(open_ones, [], [], 0.2)
            for sock in readable:
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    closed_at[id(sock)] = time.monotonic() - started
        assert len(closed_at) == len(sockets), f"{len(sockets) - len(closed_at)} of {len(sockets)} still open"
        assert min(closed_at.values()) >= LIMITS.request_read_timeout - 1  # not cut before the deadline
        assert server.get("/healthz", token=None).status == 200
    finally:
        for sock in sockets:
            sock.close()
