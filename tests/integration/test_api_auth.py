"""Bearer auth on every endpoint but /healthz; the refuse-to-start rule; start-up failures in one
line; the token never in a response or a log line."""

from __future__ import annotations

import re
import socket

import pytest

pytestmark = pytest.mark.usefixtures("db")


def operations(api_server) -> list[tuple[str, str]]:
    document = api_server.get("/openapi.json", token=None).json()
    found = []
    for path, methods in document["paths"].items():
        for method in methods:
            found.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return found


def test_every_operation_but_healthz_needs_the_token(api_server):
    found = operations(api_server)
    assert len(found) >= 13
    assert ("GET", "/healthz") in found
    for method, path in found:
        if path == "/healthz":
            continue
        for token in (None, "wrong-token-0123456789", api_server.token + "x", ""):
            reply = api_server.request(method, path, token=token)
            assert reply.status == 401, (method, path, token, reply.text)
            assert reply.error["code"] == "unauthenticated"
            assert reply.headers["WWW-Authenticate"] == "Bearer"
        basic = api_server.request(method, path, token=None, headers={"Authorization": f"Basic {api_server.token}"})
        assert basic.status == 401


def test_auth_is_checked_before_the_body(api_server):
    reply = api_server.post("/api/v1/accounts", {"username": "x"}, token=None)
    assert reply.status == 401


def test_odd_authorization_headers_are_401_not_500(api_server):
    for value in ("Bearer", "Bearer  ", "bearer " + "é" * 20, "Bearer " + "a" * 5000, "Token abc"):
        reply = api_server.request("GET", "/api/v1/status", token=None,
                                   headers={"Authorization": value.encode("utf-8").decode("latin-1")})
        assert reply.status == 401, (value[:20], reply.text)


def test_healthz_needs_no_token_and_the_token_works(api_server):
    health = api_server.get("/healthz", token=None)
    assert health.status == 200 and health.json() == {"status": "ok", "database": "ok"}
    assert api_server.get("/api/v1/status").status == 200
    lower_case = {"Authorization": f"bearer {api_server.token}"}
    assert api_server.get("/api/v1/status", token=None, headers=lower_case).status == 200


def test_the_token_never_reaches_a_response_or_the_log(api_server):
    api_server.get("/api/v1/status")
    api_server.get("/api/v1/status", token="wrong-token-0123456789")
    for reply in api_server.replies:
        assert api_server.token.encode() not in reply.body
    assert api_server.token not in api_server.log()


def test_open_on_loopback_without_a_token_with_a_warning(start_api):
    server = start_api(token=None)
    assert server.get("/api/v1/status", token=None).status == 200
    assert server.post("/api/v1/tasks/crawl", {"domain": "美妆", "pages": 2}, token=None).status == 201
    warnings = [line for line in server.log().splitlines() if "INFLUENCERS_API_TOKEN is not set" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]


def test_a_token_allows_listening_beyond_loopback(start_api):
    server = start_api(host="0.0.0.0")
    assert server.url.startswith("http://0.0.0.0:")
    assert server.get("/api/v1/status", token=None).status == 401
    assert server.get("/api/v1/status").status == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.org"])
def test_refuses_to_start_beyond_loopback_without_a_token(api_env, api_command, host):
    result = api_command(api_env(token=None), "--host", host, "--port", "0")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "INFLUENCERS_API_TOKEN" in lines[0] and host in lines[0] and "Traceback" not in lines[0]


@pytest.mark.parametrize(
    ("extra", "args", "status", "fragment"),
    [
        ({"INFLUENCERS_API_TOKEN": "short"}, [], 2, "INFLUENCERS_API_TOKEN: must be at least 16 characters"),
        ({"INFLUENCERS_MYSQL_URL": "mysql://root:@127.0.0.1:1/influencers"}, [], 2, "cannot reach MySQL"),
        ({}, ["--port", "70000"], 2, "must be 65535 or less"),
    ],
)
def test_start_failures_are_one_line(api_env, api_command, extra, args, status, fragment):
    result = api_command(api_env(extra=extra), "--port", "0", *args)
    assert result.returncode == status, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 1


def test_port_in_use_is_one_line(api_env, api_command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = api_command(api_env(token="tok-0123456789abcdef"), "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"influencers: error: cannot listen on 127.0.0.1:{port}: Address already in use")
