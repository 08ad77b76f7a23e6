"""The README's first set-up command, run from a fresh clone against the real MariaDB."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys

import pytest

from influencers.core.db import connect
from tests.fixtures.database import REPO_ROOT, mysql_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def run_in_own_group(args: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run, but a timeout stops the demo with SIGTERM, so it stops its reference platform
    (started in a session of its own) on the way out; SIGKILL if it does not go."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, **kwargs)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def test_demo_from_a_fresh_clone(tmp_path, mysql_settings, env):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    base = mysql_settings.database + "_d"
    demo_env = {**env, "INFLUENCERS_MYSQL_URL": mysql_url(mysql_settings).rsplit("/", 1)[0] + "/" + base,
                "PYTHONPATH": str(clone)}
    try:
        result = run_in_own_group([sys.executable, "-m", "influencers.demo", "--workdir", str(tmp_path / "work")],
                                  cwd=clone, env=demo_env, timeout=200)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        out = result.stdout
        for expected in ("=== reference platform", "ingestion report for", "export report for", "Pending export backlog",
                         "every account's quota is spent for today", "demo done"):
            assert expected in out
        assert "sandbox-demo" not in out.split("=== accounts", 1)[1]  # passwords never printed

        files = sorted((tmp_path / "work" / "exports").rglob("*.csv"))
        assert len(files) == 3, files  # demo1's 150 美妆 rows, then demo2 relays: 50 美妆 + 100 游戏
        uids = []
        for path in files:
            assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
            assert str(path) in out
            with path.open(encoding="utf-8-sig", newline="") as handle:
                uids += [row["uid"] for row in csv.DictReader(handle)]
        assert len(uids) == len(set(uids)) == 300

        demo_db = connect(mysql_settings.__class__(**{**mysql_settings.__dict__, "database": base + "_demo"}))
        with demo_db.cursor() as cursor:
            cursor.execute("SELECT status, COUNT(*) AS n FROM influencers GROUP BY status")
            assert {r["status"]: r["n"] for r in cursor.fetchall()} == {"exported": 300, "pending_export": 100}
            cursor.execute("SELECT COUNT(*) AS n FROM ingestion_logs")
            assert cursor.fetchone()["n"] == 20
            cursor.execute("SELECT a.username, SUM(e.exported_count) AS n FROM export_logs e JOIN accounts a"
                           " ON a.id = e.account_id GROUP BY a.username")
            assert {r["username"]: int(r["n"]) for r in cursor.fetchall()} == {"demo1": 150, "demo2": 150}
        demo_db.close()
    finally:
        server = connect(mysql_settings, database=False, autocommit=True)
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{base}_demo`")
        server.close()
