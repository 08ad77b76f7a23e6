"""Hostile and careless input to the commands (issue 18, items 5 and 6): one clear line on stderr,
exit 2, no traceback and nothing written; credentials in INFLUENCERS_SITE_URL never in a log."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fixtures.crawl import add_accounts
from tests.fixtures.database import REPO_ROOT
from tests.fixtures.processes import run_cli

pytestmark = pytest.mark.slow

#: What the shell passes for `$'\xff'` (a byte that is not UTF-8): Python sees a lone surrogate.
NOT_UTF8 = "\udcff"


def assert_one_line_refusal(result: subprocess.CompletedProcess, fragment: str) -> None:
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    assert result.returncode == 2, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert fragment in stderr, stderr


def assert_nothing_written(db) -> None:
    db.commit()  # a fresh snapshot: the command wrote (or not) from another connection
    with db.cursor() as cursor:
        for table in ("accounts", "tasks", "events"):
            cursor.execute(f"SELECT COUNT(*) AS n FROM {table}")
            assert cursor.fetchone()["n"] == 0, f"{table} has rows"


def test_invalid_utf8_password_on_stdin(db, env):
    result = subprocess.run([sys.executable, "-m", "influencers", "accounts", "add", "--username", "u1",
                             "--password-stdin"], env=env, cwd=REPO_ROOT, input=b"\xff\xfepw\n",
                            capture_output=True, timeout=60)
    assert_one_line_refusal(result, "not valid UTF-8")
    assert_nothing_written(db)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["accounts", "add", "--username", NOT_UTF8, "--password-stdin"], "--username"),
        (["accounts", "add", "--username", "a\udced\udcb3\udcbf", "--password-stdin"], "--username"),  # $'\udcff'
        (["accounts", "disable", "--username", NOT_UTF8, "--reason", "x"], "--username"),
        (["start_crawl", "--domain", NOT_UTF8, "--pages", "3"], "--domain"),
        (["start_export", "--domain", "美妆" + NOT_UTF8], "--domain"),
        (["report", "ingestion", "--account", NOT_UTF8], "--account"),
        (["start_crawl", "--domain", "美妆", "--pages", "20000", "--split", "1"], "at most 1000"),
        (["start_crawl", "--domain", "美妆", "--pages", "1001", "--split", "1"], "at most 1000"),
        (["start_crawl", "--domain", "美妆", "--pages", "99999999999", "--split", "99999999999"], "100000"),
        (["start_crawl", "--domain", "美\u200b妆", "--pages", "3"], "U+200B"),
        (["start_crawl", "--domain", "\u202e妆美", "--pages", "3"], "U+202E"),
        (["start_crawl", "--domain", "美妆\u2066", "--pages", "3"], "U+2066"),
        (["start_crawl", "--domain", "美\u00ad妆", "--pages", "3"], "U+00AD"),
        (["start_crawl", "--domain", "\ufeff美妆", "--pages", "3"], "U+FEFF"),
        (["start_crawl", "--domain", "美妆\x1b[31m", "--pages", "3"], "U+001B"),
        (["start_crawl", "--domain=-rf", "--pages", "3"], "must not start with '-'"),
        (["start_export", "--domain=-rf"], "must not start with '-'"),
        (["start_crawl", "--domain", "美妆", "--pages", "ten"], "not a whole number"),
    ],
)
def test_hostile_argument_is_one_line_and_writes_nothing(db, env, args, fragment):
    result = run_cli(env, *args, stdin="pw\n")
    assert_one_line_refusal(result, fragment)
    assert_nothing_written(db)


def test_the_cap_itself_is_allowed(db, env):
    result = run_cli(env, "start_crawl", "--domain", "ＡＢ美妆", "--pages", "1000", "--split", "1")
    assert result.returncode == 0, result.stderr
    assert "created for AB美妆" in result.stdout  # NFKC: full-width letters are the ASCII ones
    assert query_count(db, "SELECT COUNT(*) AS n FROM tasks WHERE domain = 'AB美妆'") == 1001


def query_count(db, sql: str) -> int:
    db.commit()
    with db.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()["n"]


@pytest.mark.parametrize(("value", "fragment"), [
    ("inf", "'inf' is not a number of seconds"),
    ("nan", "'nan' is not a number of seconds"),  # was refused as "must be more than 0"
    ("1e300", "must be 86400 or less"),
])
def test_exporter_poll_interval_that_is_not_a_finite_wait(env, value, fragment):
    # Before: `inf` and `1e300` got past the check and the first idle wait raised OverflowError.
    result = run_cli(env, "run", "--once", "--poll-interval", value, module="exporter", timeout=30)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()  # one line: no usage block either
    assert "--poll-interval" in line and fragment in line, result.stderr


@pytest.mark.timeout(180)
def test_site_url_credentials_never_reach_the_crawl_log(sandbox, crawls, env, db) -> None:
    add_accounts(env, "demo6")
    host = sandbox.url.split("://", 1)[1]
    crawl = crawls.run(f"http://siteuser:Pl4tf0rmPw@{host}", "domain=穿搭", "pages=1", LOG_LEVEL="DEBUG")
    assert "ingestion worker" in crawl.log, crawl.log[-3000:]
    assert "Pl4tf0rmPw" not in crawl.log
    assert "siteuser:***@" in crawl.log


def test_site_url_credentials_not_in_the_start_line_of_an_unreachable_site(crawls, env, db) -> None:
    """Without a platform the start line is still written, with the password masked."""
    add_accounts(env, "demo6")
    crawl = crawls.start("http://siteuser:Pl4tf0rmPw@127.0.0.1:9/", "domain=穿搭", "pages=1")
    try:
        crawl.wait_for("ingestion worker", timeout=60)
    finally:
        crawl.kill()
    assert "Pl4tf0rmPw" not in crawl.log
    assert "site http://siteuser:***@127.0.0.1:9" in crawl.log


@pytest.mark.parametrize(
    ("path", "domain", "fragment"),
    [
        ("/api/v1/tasks/crawl", "美\u200b妆", "U+200B"),
        ("/api/v1/tasks/crawl", "\u202e妆美", "U+202E"),
        ("/api/v1/tasks/crawl", "-rf", "must not start with '-'"),
        ("/api/v1/tasks/export", "美\u2060妆", "U+2060"),
    ],
)
def test_api_refuses_the_same_domains_with_400(api_server, db, path, domain, fragment):
    body = {"domain": domain, "pages": 3} if path.endswith("crawl") else {"domain": domain}
    reply = api_server.post(path, body)
    assert reply.status == 400, reply.text
    assert reply.error["code"] == "invalid_argument" and fragment in reply.error["message"]
    assert_nothing_written(db)
