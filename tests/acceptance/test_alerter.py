"""The alerter as a process against a local webhook: an account banned through the CLI arrives
once, with its reason; its database SIGKILLed arrives as `database_unreachable` after the
threshold and is recorded when the database is back; SIGTERM ends it; bad settings are one line;
the URL's key is never in its log."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.crawl import query
from tests.fixtures.database import mysql_url
from tests.fixtures.processes import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

KEY = "k3y-of-the-ops-channel"


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout}s\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def start_alerter(processes, env: dict[str, str], log: Path) -> subprocess.Popen:
    process = processes.python("influencers", "alerter", "--interval", "0.3", env=env,
                               stdout=subprocess.DEVNULL, stderr=log.open("a"))
    wait_for(lambda: "sending to URL 1 (JSON)" in log.read_text(), 30, "the alerter's start", log)
    return process


def test_a_banned_account_reaches_the_webhook_once_with_its_reason(db, mysql_settings, env, processes, webhook,
                                                                  tmp_path):
    env = {**env, "INFLUENCERS_ALERT_URLS": webhook.url(f"hook/{KEY}")}
    log = tmp_path / "alerter.log"
    alerter = start_alerter(processes, env, log)
    assert run_cli(env, "accounts", "add", "--username", "kim", "--password-stdin", stdin="pw\n").returncode == 0
    for reason in ("banned: 账号异常", "banned again"):
        assert run_cli(env, "accounts", "disable", "--username", "kim", "--reason", reason).returncode == 0
    (body,) = webhook.wait_for(1)
    assert body["title"] == "[influencers] account_disabled: 1"
    assert "kim" in body["message"] and "banned: 账号异常" in body["message"]
    listed = run_cli(env, "alerts", "list", "--format", "json")
    assert listed.returncode == 0 and '"delivered' in listed.stdout, listed
    time.sleep(1)
    assert len(webhook.received) == 1  # the second disable is the same cause in the same window
    alerter.send_signal(signal.SIGTERM)
    assert alerter.wait(timeout=30) == 0
    text = log.read_text()
    assert "Traceback" not in text and KEY not in text, text


def test_the_database_gone_is_alerted_after_the_threshold_and_recorded_when_back(private_mysql, env, processes,
                                                                                webhook, tmp_path):
    settings = private_mysql.settings
    env = {**env, "INFLUENCERS_MYSQL_URL": mysql_url(settings), "INFLUENCERS_ALERT_URLS": webhook.url(),
           "INFLUENCERS_ALERT_OUTAGE_AFTER": "2"}
    log = tmp_path / "alerter.log"
    alerter = start_alerter(processes, env, log)
    private_mysql.kill()
    killed = time.monotonic()
    (body,) = webhook.wait_for(1, timeout=60)
    assert time.monotonic() - killed >= 2
    assert body["title"] == "[influencers] database_unreachable: all"
    assert alerter.poll() is None
    private_mysql.start()
    wait_for(lambda: "reachable again" in log.read_text(), 60, "MySQL back", log)
    wait_for(lambda: bool(query(settings, "SELECT id FROM alerts WHERE kind = 'database_unreachable'"
                                          " AND delivered_at IS NOT NULL")), 30, "the alert recorded", log)
    assert len(webhook.received) == 1
    alerter.send_signal(signal.SIGTERM)
    assert alerter.wait(timeout=30) == 0
    text = log.read_text()
    assert "Traceback" not in text and text.count("MySQL unreachable (") == 1, text


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("INFLUENCERS_ALERT_URLS", f"not-a-url/{KEY}", "INFLUENCERS_ALERT_URLS: item 1 is not a URL"),
    ("INFLUENCERS_ALERT_URLS", f"json://127.0.0.1/a nosuchservice://{KEY}", "item 2 is not a notification URL"),
    ("INFLUENCERS_ALERT_WINDOW", "soon", "INFLUENCERS_ALERT_WINDOW: must be a number of seconds"),
    ("INFLUENCERS_ALERT_OUTAGE_AFTER", "-1", "INFLUENCERS_ALERT_OUTAGE_AFTER: must be at least 0 seconds"),
])
def test_bad_alert_settings_are_one_line_without_the_url(db, env, variable, value, says):
    result = run_cli({**env, variable: value}, "alerter", "--once")
    assert result.returncode == 2, result
    assert says in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert KEY not in result.stderr + result.stdout


def test_alerts_test_says_per_url_whether_it_arrived(db, env, webhook):
    dead = "json://127.0.0.1:9/nobody-listens"
    result = run_cli({**env, "INFLUENCERS_ALERT_URLS": f"{webhook.url()},{dead}"}, "alerts", "test")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "URL 1 (JSON): delivered"
    assert result.stdout.splitlines()[1].startswith("URL 2 (JSON): FAILED: ")
    assert webhook.wait_for(1)[0]["title"] == "[influencers] test"
    assert "nobody-listens" not in result.stdout + result.stderr
