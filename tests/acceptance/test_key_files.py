"""The credential key as an operator meets it (issue 18, item 3), through the real commands: every
key-file problem is one line and exit 2 within seconds for the CLI and `scrapy crawl`; a key that
is not the deployment's is refused at once; an account whose password another key stored is
disabled with the reason while the crawl goes on; the default key file is the same from any
directory. Every path, HOME and XDG_CONFIG_HOME is under the test's tmp_path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from influencers.core.credentials import CredentialCipher
from tests.fixtures.crawl import add_accounts, query, tasks
from tests.fixtures.processes import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOWHERE = "http://127.0.0.1:9"  # no platform is reached before the key is read


@pytest.fixture
def key_env(env: dict[str, str], mysql_settings, db, tmp_path: Path) -> Iterator[dict[str, str]]:
    """`env` without INFLUENCERS_SECRET_KEY (the key comes from a file), HOME and XDG_CONFIG_HOME
    under tmp_path, and no key recorded in the database before or after (the other tests share one
    key for the session)."""
    environment = {key: value for key, value in env.items() if key != "INFLUENCERS_SECRET_KEY"}
    environment.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    clear_key_check(db)
    yield environment
    clear_key_check(db)


def clear_key_check(db) -> None:
    with db.cursor() as cursor:
        cursor.execute("DELETE FROM secret_key_check")
    db.commit()


def bad_key_files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "garbage.key").write_text("not a key\n")
    (tmp_path / "garbage.key").chmod(0o600)
    return {
        "directory": tmp_path / "a-directory",
        "under a regular file": tmp_path / "a-file" / "secret.key",  # ENOTDIR
        "invalid content": tmp_path / "garbage.key",
        "uncreatable": Path("/proc/no-such-dir/secret.key"),  # even root cannot create it
    }


CASES = ["directory", "under a regular file", "invalid content", "uncreatable"]


def one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text[-3000:]
    assert "Traceback" not in text
    return lines[0]


def add(env: dict[str, str], username: str, *, cwd: Path | None = None) -> subprocess.CompletedProcess:
    if cwd is None:
        return run_cli(env, "accounts", "add", "--username", username, "--password-stdin", stdin="pw\n", timeout=20)
    return subprocess.run([sys.executable, "-m", "influencers", "accounts", "add", "--username", username,
                           "--password-stdin"], env=env, cwd=cwd, input="pw\n", capture_output=True, text=True,
                          timeout=20)


@pytest.mark.parametrize("case", CASES)
def test_a_bad_key_file_is_one_line_and_exit_2_in_the_cli(key_env, tmp_path, case, mysql_settings):
    path = bad_key_files(tmp_path)[case]
    result = add({**key_env, "INFLUENCERS_KEY_FILE": str(path)}, "a")
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert line.startswith("influencers: error: INFLUENCERS_KEY_FILE: ") and str(path) in line, line
    assert query(mysql_settings, "SELECT id FROM accounts") == []


@pytest.mark.parametrize("case", CASES)
def test_a_bad_key_file_stops_scrapy_crawl_with_one_line_and_exit_2(key_env, crawls, tmp_path, case):
    path = bad_key_files(tmp_path)[case]
    crawls.env = {**key_env, "INFLUENCERS_KEY_FILE": str(path)}
    crawl = crawls.run(NOWHERE, "domain=游戏", "pages=2", timeout=30, LOG_LEVEL="ERROR")
    assert crawl.process.returncode == 2
    line = one_error_line(crawl.log)
    assert "cannot start the crawl: INFLUENCERS_KEY_FILE: " in line and str(path) in line, line


def test_a_key_file_open_to_others_gets_one_warning_line(key_env, tmp_path):
    path = tmp_path / "secret.key"
    path.write_text(Fernet.generate_key().decode() + "\n")
    path.chmod(0o644)
    result = add({**key_env, "INFLUENCERS_KEY_FILE": str(path)}, "a")
    assert result.returncode == 0, result.stderr
    line = one_error_line(result.stderr)
    assert "WARNING" in line and str(path) in line and "0644" in line


def test_a_key_that_is_not_the_deployments_is_refused_naming_where_it_came_from(key_env, tmp_path, mysql_settings):
    good = tmp_path / "good.key"
    assert add({**key_env, "INFLUENCERS_KEY_FILE": str(good)}, "a").returncode == 0
    other = tmp_path / "other" / "secret.key"
    by_file = add({**key_env, "INFLUENCERS_KEY_FILE": str(other)}, "b")
    by_variable = add({**key_env, "INFLUENCERS_SECRET_KEY": Fernet.generate_key().decode()}, "c")
    assert (by_file.returncode, by_variable.returncode) == (2, 2)
    line = one_error_line(by_file.stderr)
    assert line.startswith(f"influencers: error: INFLUENCERS_KEY_FILE: the key file {other} is not this deployment's"
                           " key"), line
    assert str(good) in line  # where the deployment's key was recorded from
    assert one_error_line(by_variable.stderr).startswith(
        "influencers: error: INFLUENCERS_SECRET_KEY: the key is not this deployment's key")
    assert [row["username"] for row in query(mysql_settings, "SELECT username FROM accounts")] == ["a"]


def test_the_default_key_file_is_the_same_from_any_directory(key_env, tmp_path, mysql_settings):
    environment = {key: value for key, value in key_env.items() if key not in ("INFLUENCERS_KEY_FILE",
                                                                               "XDG_CONFIG_HOME")}
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    assert add(environment, "a", cwd=here).returncode == 0
    second = add(environment, "b", cwd=there)
    assert second.returncode == 0, second.stderr
    key_file = tmp_path / "home" / ".config" / "influencers" / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert not list(here.iterdir()) and not list(there.iterdir())  # nothing next to the working directory
    cipher = CredentialCipher(key_file.read_bytes().strip())
    assert [cipher.decrypt(row["password"]) for row in query(mysql_settings, "SELECT password FROM accounts")] == [
        "pw", "pw"]
    xdg = add({**environment, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}, "c", cwd=here)
    assert xdg.returncode == 2  # $XDG_CONFIG_HOME/influencers/secret.key: a new key, not the deployment's
    assert str(tmp_path / "xdg" / "influencers" / "secret.key") in one_error_line(xdg.stderr)


def test_a_wrong_key_stops_scrapy_crawl_at_start(sandbox, key_env, crawls, tmp_path, mysql_settings):
    good = tmp_path / "good.key"
    add_accounts({**key_env, "INFLUENCERS_KEY_FILE": str(good)}, "demo5")
    crawls.env = {**key_env, "INFLUENCERS_KEY_FILE": str(tmp_path / "other.key")}
    crawl = crawls.run(sandbox.url, "domain=母婴", "pages=3", timeout=30, LOG_LEVEL="ERROR")
    assert crawl.process.returncode == 2
    line = one_error_line(crawl.log)
    assert f"cannot start the crawl: INFLUENCERS_KEY_FILE: the key file {tmp_path / 'other.key'} is not this" in line
    assert query(mysql_settings, "SELECT status FROM accounts") == [{"status": "idle"}]
    assert tasks(mysql_settings, "母婴") == []  # refused before it made or claimed anything


def test_an_account_stored_with_another_key_is_disabled_and_the_others_crawl(sandbox, env, crawls, mysql_settings,
                                                                            db):
    sandbox.reset()
    clear_key_check(db)
    try:
        good = add_accounts(env, "demo1", "demo2", "demo3")  # records the session's key
        with db.cursor() as cursor:
            # what `accounts add` run from another directory left: a password under a key of its own
            cursor.execute("INSERT INTO accounts (username, password) VALUES ('demo4', %s)",
                           (CredentialCipher(Fernet.generate_key()).encrypt("sandbox-demo4"),))
            stray = cursor.lastrowid
            cursor.execute("UPDATE accounts SET last_used_at = '2020-01-01' WHERE id <> %s", (stray,))  # demo4 first
        db.commit()
        crawl = crawls.run(sandbox.url, "domain=游戏", "pages=3", timeout=90)
    finally:
        clear_key_check(db)
    assert crawl.process.returncode == 0, crawl.log[-3000:]
    assert "Traceback" not in crawl.log
    (task,) = tasks(mysql_settings, "游戏")
    assert task["status"] == "completed"
    accounts = {row["id"]: row for row in query(mysql_settings, "SELECT id, status, status_reason FROM accounts")}
    assert accounts[stray]["status"] == "disabled"
    assert "'demo4'" in accounts[stray]["status_reason"] and "cannot be decrypted" in accounts[stray]["status_reason"]
    assert {accounts[i]["status"] for i in good.values()} == {"idle"}
    assert f"account {stray} disabled: " in crawl.log and "account 'demo4'" in crawl.log

