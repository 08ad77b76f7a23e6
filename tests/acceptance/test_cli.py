"""The `python -m influencers` commands as an operator runs them."""

from __future__ import annotations

import unicodedata

import pytest

from tests.fixtures.processes import run_cli

pytestmark = pytest.mark.slow


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def test_accounts_add_list_disable_enable_without_leaking_the_password(db, env):
    added = run_cli(env, "accounts", "add", "--username", "账号一", "--password-stdin", "--daily-export-limit", "4000",
                    stdin="S3cret-密码\n")
    assert added.returncode == 0, added.stderr
    assert run_cli(env, "accounts", "add", "--username", "demo2", "--password-stdin", stdin="pw2\n").returncode == 0
    disabled = run_cli(env, "accounts", "disable", "--username", "demo2", "--reason", "平台封禁")
    assert disabled.returncode == 0, disabled.stderr
    listing = run_cli(env, "accounts", "list")
    status = run_cli(env, "status")
    as_json = run_cli(env, "accounts", "list", "--format", "json")
    for result in (added, disabled, listing, status, as_json):
        assert "S3cret" not in result.stdout + result.stderr
    assert "账号一" in listing.stdout and "平台封禁" in listing.stdout
    with db.cursor() as cursor:
        cursor.execute("SELECT password FROM accounts")
        assert all("S3cret" not in row["password"] for row in cursor.fetchall())
    assert run_cli(env, "accounts", "enable", "--username", "demo2").returncode == 0


def test_password_is_never_an_argument(db, env):
    result = run_cli(env, "accounts", "add", "--username", "x", "--password", "oops")
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr


def test_status_aligns_chinese_columns(db, env):
    run_cli(env, "accounts", "add", "--username", "美妆账号", "--password-stdin", stdin="pw\n")
    run_cli(env, "accounts", "add", "--username", "demo", "--password-stdin", stdin="pw\n")
    assert run_cli(env, "start_crawl", "--domain", "美妆", "--pages", "25").returncode == 0
    assert run_cli(env, "start_export", "--domain", "游戏", "--limit", "100").returncode == 0
    result = run_cli(env, "status")
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("Accounts\n", 1)[1].split("\n\n", 1)[0].splitlines()
    header, rule, *rows = section
    status_column = header.index("status")
    assert any("美妆账号" in row for row in rows)
    for row in rows:  # the status column starts at the same display column on every line
        cut = next(i for i in range(len(row) + 1) if display_width(row[:i]) >= status_column)
        assert display_width(row[:cut]) == status_column, row
        assert row[cut:].split()[0] in ("idle", "ingesting", "exporting", "disabled"), row
    assert "0/25 pages" in result.stdout and "0/10 pages" in result.stdout


def test_start_crawl_and_task_show(db, env):
    result = run_cli(env, "start_crawl", "--domain", "游戏", "--pages", "40", "--split", "10")
    assert result.returncode == 0
    assert "4 subtask(s)" in result.stdout
    shown = run_cli(env, "task", "show", "1")
    assert shown.returncode == 0 and "created" in shown.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["start_crawl", "--domain", "美妆", "--pages", "0"], "must be 1 or more"),
        (["start_crawl", "--domain", "美妆", "--pages", "ten"], "not a whole number"),
        (["start_crawl", "--domain", "../../etc", "--pages", "3"], "domain"),
        (["start_crawl", "--pages", "3"], "--domain"),
        (["start_export", "--domain", "美妆", "--format", "pdf"], "invalid choice"),
        (["task", "show", "999"], "no task with id 999"),
        (["accounts", "disable", "--username", "ghost", "--reason", "x"], "no account named"),
    ],
)
def test_bad_arguments_get_one_clear_line(db, env, args, fragment):
    result = run_cli(env, *args)
    assert result.returncode != 0
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith(("influencers:", "python -m"))]) >= 1


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://root:@127.0.0.1:1/influencers", "cannot reach MySQL at 127.0.0.1:1"),
        ("http://127.0.0.1/x", "INFLUENCERS_MYSQL_URL"),
        ("mysql://root:@127.0.0.1:3306/", "INFLUENCERS_MYSQL_URL"),
    ],
)
def test_missing_or_bad_mysql_is_one_line(env, url, fragment):
    result = run_cli({**env, "INFLUENCERS_MYSQL_URL": url}, "status")
    assert result.returncode == 2  # it could not start, as the exporter and a crawl say
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_wrong_secret_key_is_one_line(db, env):
    assert run_cli(env, "accounts", "add", "--username", "a", "--password-stdin", stdin="pw\n").returncode == 0
    result = run_cli({**env, "INFLUENCERS_SECRET_KEY": "garbage"}, "accounts", "add", "--username", "b",
                     "--password-stdin", stdin="pw\n")
    assert result.returncode == 2
    assert result.stderr.startswith("influencers: error: INFLUENCERS_SECRET_KEY")


def test_db_init_creates_the_database(env, mysql_settings):
    url = env["INFLUENCERS_MYSQL_URL"] + "_init"
    try:
        result = run_cli({**env, "INFLUENCERS_MYSQL_URL": url}, "db", "init")
        assert result.returncode == 0, result.stderr
        again = run_cli({**env, "INFLUENCERS_MYSQL_URL": url}, "db", "init")
        assert again.returncode == 0
        assert run_cli({**env, "INFLUENCERS_MYSQL_URL": url}, "status").returncode == 0
    finally:
        from influencers.core.db import connect

        server = connect(mysql_settings, database=False, autocommit=True)
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{mysql_settings.database}_init`")
        server.close()
