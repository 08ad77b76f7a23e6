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
    rows, outages = 12_000, 3
    try:
        insert_rows(db, "美妆", rows)
        accounts = AccountManager(db, quota_day=Config.from_env(env).quota_day,
                                  cipher=CredentialCipher.from_config(Config.from_env(env)))
        for n in (1, 2):
            accounts.add(f"account{n}", "pw", daily_export_limit=7_000)  # the relay happens too
        task_id = start_export(env, "美妆")
    finally:
        db.close()

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    proc = exporter(env, "--once", "--poll-interval", "0.5", "--batch-size", "100")
    watch = StderrWatch(proc, "claimed task")
    assert watch.seen.wait(30), "the exporter never claimed its task"
    for _ in range(outages):
        time.sleep(rng.uniform(0.2, 1.5))
        private_mysql.kill()
        assert proc.poll() is None, "the exporter died with its database"
        time.sleep(rng.uniform(2.0, 4.0))
        assert proc.poll() is None, "the exporter gave up while its database was away"
        private_mysql.start()
    stderr = watch.text(timeout=180)

    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr
    went = stderr.count("MySQL unreachable")
    back = stderr.count("MySQL reachable again after")
    assert 1 <= went == back <= outages, stderr  # one line each way per outage, not one per retry
    db = connect(settings)
    try:
        owner = check_exactly_once(db, Path(env["INFLUENCERS_EXPORT_DIR"]))
        assert len(owner) == rows, f"seed {seed}"
        assert one(db, "SELECT status FROM tasks WHERE id = %s", (task_id,)) == "completed"
    finally:
        db.close()


def test_the_fixture_server_is_not_the_shared_one(private_mysql, mysql_settings):
    assert private_mysql.port != mysql_settings.port
    assert private_mysql.settings.port == private_mysql.port
