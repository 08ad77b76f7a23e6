"""The README's "Adding a site adapter" example, used exactly as a new user would: its code
block saved as a module outside the project, named by INFLUENCERS_SITE_ADAPTER, a crawl started
with `start_crawl` and run by the spider against the reference platform's token-cursor API (with
5xx answers, bodies cut short and cursors that expire on the way). If the README's adapter or its
instructions stop working, this fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.crawl import REPO_ROOT, Crawls, add_accounts, assert_matches_truth, tasks
from tests.fixtures.processes import run_cli

pytestmark = pytest.mark.timeout(180)

SECTION = "## Adding a site adapter for a real platform"


def readme_adapter() -> str:
    """The first Python block of the README's adapter section."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    return code


def test_the_readmes_adapter_crawls_a_token_cursor_platform_exactly(start_sandbox, env, mysql_settings, db,
                                                                   tmp_path: Path) -> None:
    modules = tmp_path / "operator"
    modules.mkdir()
    (modules / "myplatform.py").write_text(readme_adapter(), encoding="utf-8")
    env = {**env, "PYTHONPATH": f"{env['PYTHONPATH']}:{modules}", "INFLUENCERS_SITE_ADAPTER": "myplatform.MyAdapter"}
    sandbox = start_sandbox(api="token-cursor", error_rate=0.05, malformed_rate=0.05, cursor_ttl=1.5)
    add_accounts(env, "demo1", "demo2")

    refused = run_cli(env, "start_crawl", "--domain", "美妆", "--pages", "12", "--split", "4")
    assert refused.returncode == 2 and "cursors" in refused.stderr and len(refused.stderr.splitlines()) == 1
    created = run_cli(env, "start_crawl", "--domain", "美妆", "--pages", "12")
    assert created.returncode == 0, created.stderr
    assert "1 subtask" in created.stdout

    crawls = Crawls(env, tmp_path)
    try:
        crawl = crawls.run(sandbox.url, "once=1", timeout=120, ACCOUNTS_REQUEST_INTERVAL=0.2, RETRY_TIMES=5)
        log = crawl.log
    finally:
        crawls.stop_all()
    assert crawl.process.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert_matches_truth(mysql_settings, "美妆", sandbox.truth("美妆", 1, 12))
    subtask = next(task for task in tasks(mysql_settings, "美妆") if not task["is_parent"])
    assert (subtask["status"], subtask["progress_marker"]) == ("completed", "page=12")
