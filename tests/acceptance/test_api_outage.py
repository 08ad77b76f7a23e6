"""The API rides out its database going away: a private MariaDB SIGKILLed under a running
`python -m influencers api`, down for a few seconds, started again on the same data directory.

While it is away every request gets a quick 503 in the JSON error shape (with Retry-After) and
/healthz says so; once it is back the same server answers 200 again, without a restart; the log
has one WARNING when each outage starts, one INFO when it ends, and never a traceback."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.api import API_TOKEN, ApiServer, Reply, api_environment, launch_api

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

QUICK = 2.0  # seconds a request may take while the database is away


def timed(call, *args, **kwargs) -> tuple[Reply, float]:
    started = time.monotonic()
    reply = call(*args, **kwargs)
    return reply, time.monotonic() - started


def assert_unavailable(reply: Reply, elapsed: float) -> None:
    assert reply.status == 503, reply.text
    assert reply.error["code"] == "database_unavailable", reply.text
    assert "MySQL" in reply.error["message"]
    assert int(reply.headers.get("Retry-After", "0")) >= 1, "a 503 says when to try again"
    assert elapsed < QUICK, f"a request took {elapsed:.1f}s while the database was away"


def wait_healthy(api: ApiServer, timeout: float = 15.0) -> float:
    """Seconds until /healthz answers 200 again."""
    started = time.monotonic()
    while True:
        reply = api.get("/healthz", token=None, timeout=10)
        if reply.status == 200:
            assert reply.json() == {"status": "ok", "database": "ok"}
            return time.monotonic() - started
        assert reply.status == 503, reply.text
        assert time.monotonic() - started < timeout, f"/healthz still {reply.status}: {api.log()[-2000:]}"
        time.sleep(0.2)


def test_the_api_answers_503_while_the_database_is_away_and_200_once_it_is_back(private_mysql, secret_key, tmp_path):
    workdir = tmp_path / "api"
    api = launch_api(api_environment(private_mysql.settings, secret_key, workdir, API_TOKEN), workdir, token=API_TOKEN)
    try:
        created = api.post("/api/v1/tasks/crawl", {"domain": "美妆", "pages": 4, "split": 2})
        assert created.status == 201, created.text
        task_id = created.json()["id"]

        for outage in (1, 2):
            private_mysql.kill()
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:  # first tries, then the back-off's quick answers
                assert_unavailable(*timed(api.get, "/api/v1/tasks"))
                assert_unavailable(*timed(api.get, "/healthz", token=None))
                assert_unavailable(*timed(api.post, "/api/v1/tasks/crawl", {"domain": "游戏", "pages": 1}))
                time.sleep(0.2)
            assert api.process.poll() is None
            private_mysql.start()
            assert wait_healthy(api) < 10, f"outage {outage}"
            listed = api.get("/api/v1/tasks", params={"domain": "美妆"})
            assert listed.status == 200, listed.text
            assert task_id in [task["id"] for task in listed.json()["tasks"]]

        assert api.get(f"/api/v1/tasks/{task_id}").status == 200
        assert api.get("/api/v1/tasks", params={"domain": "游戏"}).json()["total"] == 0  # no 503 request wrote
        log = api.log()
        assert "Traceback" not in log, log
        assert log.count("MySQL unreachable") == 2, log  # one line when each outage starts …
        assert log.count("MySQL reachable again after") == 2, log  # … and one when it ends
        assert " ERROR " not in log, log  # not one line per refused request
    finally:
        api.stop()
