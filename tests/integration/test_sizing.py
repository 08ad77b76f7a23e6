"""`db status` says whether the buffer pool holds the influencers indexes (core/sizing.py): on the
test database, a few MiB of indexes against the shared server's pool, it does."""
from __future__ import annotations

from influencers.core.sizing import IndexFit, index_fit, mebibytes
from tests.fixtures.processes import run_cli


def test_the_shared_pool_holds_a_small_databases_indexes(db, env):
    with db.cursor() as cursor:
        cursor.execute("SELECT @@innodb_buffer_pool_size AS pool")
        pool = cursor.fetchone()["pool"]
    db.commit()

    fit = index_fit(db)

    assert fit.pool_bytes == pool
    assert 0 < fit.index_bytes < pool  # the empty table's index roots, the fulltext tables among them
    assert fit.holds and fit.fulltext_counted
    result = run_cli(env, "db", "status")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == fit.line() == f"buffer pool {mebibytes(pool)}: holds the" \
        f" {mebibytes(fit.index_bytes)} of influencers indexes"


def test_the_line_names_both_sizes_and_the_remedy():
    small = IndexFit(pool_bytes=128 * 2**20, index_bytes=int(2.2 * 2**30))
    assert not small.holds
    assert small.line().startswith("buffer pool 128 MiB is smaller than the 2.2 GiB of influencers indexes:")
    assert "innodb_buffer_pool_size" in small.line()
    assert IndexFit(2**30, 2**30).holds  # equal is enough: the rule is the indexes, not the rows
