"""A crawl on a server whose buffer pool no longer holds the influencers indexes says so once, at
start, and still stores every row; `db status` says it too (core/sizing.py). The pool is small for
real: a private MariaDB started with the smallest pool InnoDB takes (6 MiB), 30,000 rows stored.
"""
from __future__ import annotations

import pytest

from influencers.core.config import parse_mysql_url
from influencers.core.db import connect
from influencers.core.sizing import index_fit
from tests.fixtures.crawl import add_accounts, assert_matches_truth
from tests.fixtures.database import mysql_url
from tests.fixtures.processes import run_cli

pytestmark = pytest.mark.slow

FILL = ("INSERT INTO influencers (uid, nickname, domain, fans, search_terms)"
        " SELECT CONCAT('filled-', seq), CONCAT('达人', seq), '游戏', seq * 7919 MOD 1000003,"
        " CONCAT('g', HEX(seq), ' t', HEX(seq MOD 977)) FROM seq_1_to_30000")
WARNING = "MariaDB's buffer pool 6 MiB is smaller than the"


def _run(settings, *statements: str) -> None:
    conn = connect(settings, autocommit=True)
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                cursor.fetchall()
    finally:
        conn.close()


def _fit(settings):
    conn = connect(settings)
    try:
        return index_fit(conn)
    finally:
        conn.close()


def test_a_crawl_warns_once_when_the_indexes_outgrow_the_pool(private_mysql, env, crawls, start_sandbox):
    private_mysql.stop()
    private_mysql.buffer_pool = "6M"
    private_mysql.start()
    settings = private_mysql.settings
    env = {**env, "INFLUENCERS_MYSQL_URL": mysql_url(settings)}
    crawls.env = env
    add_accounts(env, "demo1")
    sandbox = start_sandbox(pages=5)

    quiet = crawls.run(sandbox.url, "domain=美妆", "pages=2")  # the indexes still fit: no word of it
    assert quiet.process.returncode == 0, quiet.log[-3000:]
    assert "buffer pool" not in quiet.log

    _run(settings, FILL, "ANALYZE TABLE influencers")
    fit = _fit(settings)
    assert not fit.holds, fit
    status = run_cli(env, "db", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1].startswith("buffer pool 6 MiB is smaller than the"), status.stdout

    crawl = crawls.run(sandbox.url, "domain=美妆", "pages=5")

    assert crawl.process.returncode == 0, crawl.log[-3000:]
    assert crawl.log.count(WARNING) == 1, crawl.log[-3000:]
    assert "Traceback" not in crawl.log
    assert_matches_truth(settings, "美妆", sandbox.truth("美妆", 1, 5))


def test_without_the_process_privilege_the_fulltext_index_is_left_out_and_said(private_mysql):
    settings = private_mysql.settings
    _run(settings, "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app-pass'",
         f"GRANT ALL ON `{settings.database}`.* TO 'app'@'127.0.0.1'")
    app = parse_mysql_url(f"mysql://app:app-pass@127.0.0.1:{private_mysql.port}/{settings.database}")

    as_root, as_app = _fit(settings), _fit(app)

    assert as_root.fulltext_counted and not as_app.fulltext_counted
    assert as_app.pool_bytes == as_root.pool_bytes
    assert 0 < as_app.index_bytes < as_root.index_bytes  # the fulltext tables are the difference
    assert "the fulltext index not counted: its size needs the PROCESS privilege" in as_app.line()
