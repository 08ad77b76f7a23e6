"""The exporter rides out its database going away: a private MariaDB SIGKILLed mid-export, down
for a few seconds, started again on the same data directory, several times at random moments."""
from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from influencers.core.accounts import AccountManager
from influencers.core.config import Config
from influencers.core.credentials import CredentialCipher
from influencers.core.db import connect
from tests.acceptance.test_export_service import (
    StderrWatch,
    check_exactly_once,
    exporter,
    insert_rows,
    one,
    start_export,
)
from tests.fixtures.database import mysql_url

pytestmark = pytest.mark.slow


def test_exporter_survives_database_restarts_and_exports_every_row_once(private_mysql, env, tmp_path):
    settings = private_mysql.settings
    env = {**env, "INFLUENCERS_MYSQL_URL": mysql_url(settings)}
    db = connect(settings)
    rows, outages = 30_000, 3
    try:
        insert_rows(db, "美妆", rows)
        config = Config.from_env(env)
        accounts = AccountManager(db, quota_day=config.quota_day, cipher=CredentialCipher.from_config(config))
        for n in (1, 2):
            accounts.add(f"account{n}", "pw", daily_export_limit=16_000)  # the relay happens too
        task_id = start_export(env, "美妆")
    finally:
        db.close()

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    proc = exporter(env, "--once", "--poll-interval", "0.5", "--batch-size", "50")
    watch = StderrWatch(proc, "claimed task")
    assert watch.seen.wait(30), "the exporter never claimed its task"
    killed = 0
    for _ in range(outages):  # the first always lands mid-export (a few seconds of batches are left)
        time.sleep(rng.uniform(0.2, 1.0))
        if proc.poll() is not None:
            break
        private_mysql.kill()
        killed += 1
        time.sleep(rng.uniform(2.0, 4.0))
        assert proc.poll() is None, f"the exporter gave up while its database was away (seed {seed}): {watch.text()[-3000:]}"
        private_mysql.start()
    stderr = watch.text(timeout=180)

    assert proc.returncode == 0, f"seed {seed}: {stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr
    went = stderr.count("MySQL unreachable")
    back = stderr.count("MySQL reachable again after")
    assert 1 <= went == back <= killed, stderr  # one line each way per outage, not one per retry
    db = connect(settings)
    try:
        owner = check_exactly_once(db, Path(env["INFLUENCERS_EXPORT_DIR"]))
        assert len(owner) == rows, f"seed {seed}"
        assert one(db, "SELECT status FROM tasks WHERE id = %s", (task_id,)) == "completed"
    finally:
        db.close()
    print(f"\n{killed} outages, seed {seed}")


def test_the_fixture_server_is_not_the_shared_one(private_mysql, mysql_settings):
    assert private_mysql.port != mysql_settings.port
    assert private_mysql.settings.port == private_mysql.port
