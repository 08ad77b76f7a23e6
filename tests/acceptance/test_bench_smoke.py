"""Every benchmark script still runs: a tiny run of each (a few seconds), exit 0, its figures printed.

Benchmarks are scripts, not tests: nothing here looks at a timing. See bench/README.md.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fixtures.database import REPO_ROOT, SERVER_URL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

# (module, tiny arguments, lines its report must contain)
SCRIPTS = [
    ("bench.export", ["--rows", "1500", "--repeat", "1", "--per-row-rows", "100"],
     ["keyset SELECT → CSV (baseline)", "python -m exporter run --once", "peak RSS", "targets:"]),
    ("bench.claims", ["--tasks", "120", "--workers", "3", "--repeat", "1", "--anchor-rows", "3000"],
     ["TaskScheduler claim + complete (claims/s)", "SKIP LOCKED batches of 1,000", "double claims: 0"]),
    ("bench.ingest_pipeline", ["--items", "1200", "--naive-items", "200", "--repeat", "1"],
     ["MySQLPipeline in a running crawl", "naive pipeline", "LOAD DATA LOCAL INFILE", "targets:"]),
    ("bench.crawl", ["--pages", "20", "--repeat", "1", "--bench-seconds", "1"],
     ["spider, MySQL pipeline (persistence on)", "spider, no storage", "scrapy bench", "targets:"]),
    ("bench.crawl_memory", ["--pages", "30"],
     ["crawler RSS over 30 pages", "peak RSS of the whole crawl", "target:"]),
    ("bench.accounts", ["--accounts", "2", "--rate", "5", "--seconds", "5", "--warmup", "3", "--headers"],
     ["ideal pages/s (share)", "crawler pages/s (share, vs ideal)", "accounts busy", "targets"]),
    ("bench.growth", ["--rows", "20000", "--logs", "2000", "--tasks", "500", "--repeat", "1", "--heavy-repeat", "1",
                      "--pages", "10", "--split", "5", "--export-rows", "1000"],
     ["status --format json", "report ingestion", "GET /api/v1/status", "dashboard refresh", "crawl, new rows",
      "crawl again", "exporter run --once", "targets:"]),
    ("bench.search", ["--rows", "5000", "--small-rows", "2000", "--repeat", "1", "--explain"],
     ["nickname, rare", "tag + domain + fans_min", "has_contact, page 50", "detail(uid)", "GET (nickname, rare)",
      "plan key (large)", "EXPLAIN (uid)"]),
]


@pytest.mark.parametrize(("module", "args", "expected"), SCRIPTS, ids=[script[0] for script in SCRIPTS])
def test_benchmark_runs_and_prints_its_figures(module: str, args: list[str], expected: list[str]) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("INFLUENCERS_", "SCRAPY_"))}
    env.update(BENCH_MYSQL_URL=SERVER_URL, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=150)
    assert result.returncode == 0, f"{module} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    for line in expected:
        assert line in result.stdout, f"{module} did not print {line!r}:\n{result.stdout[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
