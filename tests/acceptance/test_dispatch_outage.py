"""The dispatcher rides out its database going away: a private MariaDB SIGKILLed while
`python -m influencers dispatch` hands a crawl's subtasks to a real Scrapyd node, down for a few
seconds, started again on the same data directory, twice.

The kills land between two subtasks (one has just completed, the next is still to be handed
out), so what is tested is the dispatcher, not a job's own outage: it stays up, logs each outage
once each way, never a traceback, and afterwards hands out the rest, each subtask to exactly
one job, which completes it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from influencers.core.accounts import AccountManager
from influencers.core.config import Config
from influencers.core.credentials import CredentialCipher
from influencers.core.db import connect
from tests.acceptance.test_scrapyd_dispatch import (
    assert_data_exact,
    dispatches,
    events_of,
    query,
    start_dispatcher,
    stop,
)
from tests.fixtures.database import mysql_url
from tests.fixtures.processes import run_cli
from tests.fixtures.scrapyd import launch_scrapyd, scrapyd_environment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

SUBTASKS = 3
DOWN_SECONDS = 3.0


def read(settings: Any, sql: str, *params: Any) -> list[dict[str, Any]]:
    """One query on a connection of its own (the test's connections die with the server too)."""
    conn = connect(settings)
    try:
        return query(conn, sql, *params)
    finally:
        conn.close()


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout}s\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def between_subtasks(settings: Any, parent_id: int) -> bool:
    """No subtask held by a job or out on dispatch, and one still to hand out."""
    rows = read(settings, "SELECT status, dispatch_job FROM tasks WHERE parent_id = %s", parent_id)
    busy = [row for row in rows if row["status"] == "in_progress" or row["dispatch_job"] is not None]
    return not busy and any(row["status"] == "pending" for row in rows)


def test_dispatcher_survives_database_restarts_and_hands_out_every_subtask_once(
        private_mysql, env, sandbox, project_egg, processes, tmp_path):
    settings = private_mysql.settings
    env = {**env, "INFLUENCERS_MYSQL_URL": mysql_url(settings)}
    sandbox.reset()
    db = connect(settings)
    try:
        config = Config.from_env(env)
        AccountManager(db, quota_day=config.quota_day, cipher=CredentialCipher.from_config(config)).add(
            "demo1", "sandbox-demo1")
    finally:
        db.close()
    node = launch_scrapyd(tmp_path / "scrapyd", scrapyd_environment(env, sandbox.url), username="ops",
                          password=f"pw-{secrets.token_urlsafe(12)}", max_proc=1)
    try:
        node.add_version(project_egg)
        created = run_cli(env, "start_crawl", "--domain", "美妆", "--pages", str(SUBTASKS), "--split", "1")
        assert created.returncode == 0, created.stderr
        parent_id = read(settings, "SELECT id FROM tasks WHERE is_parent")[0]["id"]
        log = tmp_path / "dispatch.log"
        dispatcher = start_dispatcher(processes, env, log, node.url_with(), slots="1")

        killed = 0
        for done in range(1, SUBTASKS):
            wait_for(lambda done=done: len(read(settings, "SELECT id FROM tasks WHERE parent_id = %s"
                                                " AND status = 'completed'", parent_id)) >= done,
                     60, f"subtask {done}'s completion", log)
            if not between_subtasks(settings, parent_id):
                continue  # the next job is already out: a kill now would test the job, not the dispatcher
            private_mysql.kill()
            killed += 1
            time.sleep(DOWN_SECONDS)
            assert dispatcher.poll() is None, f"the dispatcher exited while its database was away:\n{log.read_text()}"
            private_mysql.start()
        assert killed >= 1, "no kill landed between two subtasks"

        wait_for(lambda: read(settings, "SELECT status FROM tasks WHERE id = %s", parent_id)[0]["status"]
                 in ("completed", "failed"), 90, "the crawl", log)
        assert stop(dispatcher) == 0
        text = log.read_text()
        assert "Traceback" not in text, text
        assert text.count("MySQL unreachable") == killed, text  # one line when an outage starts …
        assert text.count("MySQL reachable again after") == killed, text  # … and one when it ends
        assert "round skipped" not in text, text

        db = connect(settings)
        try:
            subtasks = [row["id"] for row in query(db, "SELECT id FROM tasks WHERE parent_id = %s", parent_id)]
            assert len(subtasks) == SUBTASKS
            for task_id in subtasks:  # each handed to one job, which claimed and completed it
                assert events_of(db, task_id) == ["created", "dispatched", "claimed", "completed"], task_id
            assert query(db, "SELECT status FROM tasks WHERE id = %s", parent_id)[0]["status"] == "completed"
            assert_data_exact(db, sandbox.truth("美妆", 1, SUBTASKS), "美妆", SUBTASKS)
            handed = {job for _, job, _ in dispatches(db)}
        finally:
            db.close()
        assert text.count("dispatched to") == SUBTASKS
        node.wait_finished(handed, timeout=30)
        assert node.finished_ids() == handed  # no job beyond one per subtask
    finally:
        node.stop()
    print(f"\n{killed} outages")
