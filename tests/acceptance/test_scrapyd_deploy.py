"""Deploy with the real `scrapyd-deploy` to a real Scrapyd with basic auth, schedule by HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.database import REPO_ROOT
from tests.fixtures.scrapyd import BIN, project_copy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

DEPLOY_TARGET = """\
[deploy:node]
url = {url}
project = influencers
username = ${{SCRAPYD_USERNAME}}
password = ${{SCRAPYD_PASSWORD}}
"""


def deploy(env: dict[str, str], project: Path, target: str = "node") -> subprocess.CompletedProcess:
    """The real `scrapyd-deploy`, run in a copy of the project (its egg build writes where it runs)."""
    return subprocess.run([str(BIN / "scrapyd-deploy"), target, "-p", "influencers"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def add_accounts(accounts, count: int) -> None:
    for number in range(1, count + 1):
        accounts.add(f"demo{number}", f"sandbox-demo{number}")


def test_the_committed_local_target_takes_its_credentials_from_the_environment(env):
    probe = ("import json; from scrapyd_client.utils import _get_targets; t = _get_targets()['local'];"
             " print(json.dumps([t['url'], t['project'], t.get('username'), t.get('password')]))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
                            env={**env, "SCRAPYD_USERNAME": "ops", "SCRAPYD_PASSWORD": "p%w$rd"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["http://127.0.0.1:6800", "influencers", "ops", "p%w$rd"]


def test_deploy_then_schedule_by_http_with_a_chinese_domain(db, env, accounts, sandbox, start_scrapyd,  # noqa: F811
                                                            tmp_path: Path):
    sandbox.reset()
    add_accounts(accounts, 2)
    node = start_scrapyd(sandbox.url)
    # A target like the committed [deploy:local], pointed at this node's port (scrapyd-client
    # also reads $XDG_CONFIG_HOME/scrapy.cfg); the credentials only in the environment.
    config_home = tmp_path / "xdg"
    config_home.mkdir()
    (config_home / "scrapy.cfg").write_text(DEPLOY_TARGET.format(url=node.url), encoding="utf-8")
    deploy_env = {key: value for key, value in env.items() if not key.startswith("SCRAPYD_")}
    deploy_env["XDG_CONFIG_HOME"] = str(config_home)

    project = project_copy(tmp_path)
    refused = deploy(deploy_env, project)
    assert refused.returncode == 1, refused.stderr
    assert "401" in refused.stderr

    deployed = deploy({**deploy_env, "SCRAPYD_USERNAME": node.username, "SCRAPYD_PASSWORD": node.password}, project)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert json.loads(deployed.stdout)["spiders"] == 1
    assert node.password not in deployed.stdout + deployed.stderr

    (egg,) = node.eggs()
    tops = {name.split("/", 1)[0] for name in zipfile.ZipFile(egg).namelist()}
    assert tops == {"influencers", "EGG-INFO"}, tops  # no tests, sandbox or exporter
    assert "influencers/settings.py" in zipfile.ZipFile(egg).namelist()

    job = node.schedule(domain="游戏", pages="3")
    rendered = node.schedule(domain="美妆", pages="1", render="js")  # headless Chromium: the asyncio reactor
    node.wait_finished({job, rendered}, timeout=90)

    for job_id in (job, rendered):
        assert "'finish_reason': 'finished'" in node.job_log(job_id), node.job_log(job_id)[-3000:]
    assert "playwright/page_count" in node.job_log(rendered)
    for domain, pages in (("游戏", 3), ("美妆", 1)):
        assert_truth_stored(db, sandbox.truth(domain, 1, pages), domain, pages)


def assert_truth_stored(db, truth: list[dict], domain: str, pages: int) -> None:
    """The platform's rows of pages 1..pages are in MySQL under the domain (sent as non-ASCII), each page once."""
    with db.cursor() as cursor:
        cursor.execute("SELECT uid FROM influencers WHERE domain = %s", (domain,))
        stored = [row["uid"] for row in cursor.fetchall()]
        cursor.execute("SELECT page_number FROM ingestion_logs WHERE domain = %s ORDER BY page_number", (domain,))
        logged = [row["page_number"] for row in cursor.fetchall()]
        cursor.execute("SELECT status FROM tasks WHERE domain = %s", (domain,))
        statuses = [row["status"] for row in cursor.fetchall()]
    db.commit()
    assert len(stored) == len(truth)
    assert sorted(stored) == sorted(row["uid"] for row in truth)
    assert logged == list(range(1, pages + 1))
    assert statuses == ["completed"]
