"""An identity per account from the command line, as an operator runs it (issue 20): `accounts
add --proxy/--user-agent/--header`, `set-proxy`, `set-identity`, `import`; listings show the
proxy's host and never its credentials or an account's password — not on stdout or stderr, not
in the database's bytes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from influencers.core.config import Config
from influencers.core.credentials import CredentialCipher
from influencers.core.identities import IdentityStore
from tests.fixtures.database import REPO_ROOT
from tests.fixtures.processes import run_cli
from tests.unit.test_spreadsheet_safety import OSC_LINK

pytestmark = pytest.mark.slow

PASSWORD = "S3cret-账号-c4d2"
PROXY_USER = "puser-93"
PROXY_PASSWORD = "ProxyPw-e7f0"
PROXY = f"http://{PROXY_USER}:{PROXY_PASSWORD}@proxy.example:3128"
SHOWN = "http://proxy.example:3128"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
SECRETS = (PASSWORD, PROXY_USER, PROXY_PASSWORD)


def database_bytes(db) -> str:
    """Every value of the tables an account touches, as the database holds them."""
    db.commit()
    with db.cursor() as cursor:
        dump = []
        for table in ("accounts", "account_identities", "events", "secret_key_check"):
            cursor.execute(f"SELECT * FROM {table}")
            dump.append(repr(list(cursor.fetchall())))
    return "\n".join(dump)


def count(db, table: str) -> int:
    db.commit()
    with db.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) AS n FROM {table}")
        return cursor.fetchone()["n"]


def assert_no_secret(*results: subprocess.CompletedProcess) -> None:
    for result in results:
        for secret in SECRETS:
            assert secret not in result.stdout + result.stderr, (result.args, secret)


def test_add_with_an_identity_then_list_and_status_show_the_host_only(db, env):
    added = run_cli(env, "accounts", "add", "--username", "账号一", "--password-stdin", "--proxy", PROXY,
                    "--user-agent", UA, "--header", "Accept-Language: zh-CN", "--header", "X-Client: a1",
                    stdin=f"{PASSWORD}\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == [
        "account 账号一 added with id 1 (daily export limit 4000)",
        f"account 账号一: identity set (proxy {SHOWN}; user agent set; headers Accept-Language, X-Client)",
    ]
    plain = run_cli(env, "accounts", "add", "--username", "plain", "--password-stdin", stdin="pw\n")
    assert plain.returncode == 0, plain.stderr

    table = run_cli(env, "accounts", "list")
    as_json = run_cli(env, "accounts", "list", "--format", "json")
    as_csv = run_cli(env, "accounts", "list", "--format", "csv")
    status = run_cli(env, "status")
    status_json = run_cli(env, "status", "--format", "json")
    results = (added, plain, table, as_json, as_csv, status, status_json)
    assert all(result.returncode == 0 for result in results), [r.stderr for r in results]
    assert_no_secret(*results)

    header = table.stdout.splitlines()[0]
    assert "proxy" in header and "user agent" in header and "proxy health" in header
    assert SHOWN in table.stdout and UA not in table.stdout and UA[:39] + "…" in table.stdout  # shortened
    listed = {row["username"]: row for row in json.loads(as_json.stdout)}
    assert (listed["账号一"]["proxy"], listed["账号一"]["user_agent"], listed["账号一"]["proxy_health"]) == (
        SHOWN, UA, "ok")
    assert (listed["plain"]["proxy"], listed["plain"]["user_agent"], listed["plain"]["proxy_health"]) == (
        "", "", "")  # the CLI's JSON writes no value as "", as for every column
    assert as_csv.stdout.splitlines()[0].endswith(",proxy,user_agent,proxy_health,pages_today,pages_per_day,requests_per_minute")
    assert f',{SHOWN},"{UA}",ok' in as_csv.stdout  # quoted: a user agent holds commas
    accounts = {row["username"]: row for row in json.loads(status_json.stdout)["Accounts"]}
    assert (accounts["账号一"]["proxy"], accounts["账号一"]["user_agent"]) == (SHOWN, UA)
    assert SHOWN in status.stdout.split("Accounts\n", 1)[1]

    stored = database_bytes(db)
    for secret in SECRETS:
        assert secret not in stored
    identity = IdentityStore(db, cipher=CredentialCipher.from_config(Config.from_env(env))).get(1)
    assert (identity.proxy_url, identity.user_agent, identity.headers) == (
        PROXY, UA, {"Accept-Language": "zh-CN", "X-Client": "a1"})


@pytest.mark.parametrize(("option", "value", "fragment"), [
    ("--proxy", f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@h:1080", "SOCKS proxies are not supported"),
    ("--proxy", f"{PROXY}/path", "no path"),
    ("--proxy", f"{PROXY}\r\nX-Injected: 1", "printable ASCII"),
    ("--proxy", f"http://{PROXY_USER}:{PROXY_PASSWORD}@h:99999", "port"),
    ("--user-agent", "ua\x1b]0;title\x07", "printable ASCII"),
    ("--user-agent", "x" * 600, "1 to 512"),
    ("--header", f"Cookie: {PROXY_PASSWORD}", "set by the session"),
    ("--header", f"X-A: {PROXY_PASSWORD}\n", "printable ASCII"),
])
def test_a_bad_identity_on_add_is_refused_before_anything_is_written(db, env, option, value, fragment):
    result = run_cli(env, "accounts", "add", "--username", "u", "--password-stdin", option, value,
                     stdin=f"{PASSWORD}\n")
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert fragment in result.stderr
    assert_no_secret(result)
    assert count(db, "accounts") == 0 and count(db, "account_identities") == 0 and count(db, "events") == 0


def test_set_proxy_and_none(db, env):
    assert run_cli(env, "accounts", "add", "--username", "demo1", "--password-stdin", stdin="pw\n").returncode == 0
    changed = run_cli(env, "accounts", "set-proxy", "--username", "demo1", PROXY)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == f"account demo1: proxy {SHOWN}"
    by_id = run_cli(env, "accounts", "set-proxy", "--id", "1", "https://second.example:8443")
    assert by_id.returncode == 0 and by_id.stdout.strip() == "account 1: proxy https://second.example:8443"
    assert json.loads(run_cli(env, "accounts", "list", "--format", "json").stdout)[0]["proxy"] == \
        "https://second.example:8443"

    removed = run_cli(env, "accounts", "set-proxy", "--username", "demo1", "--none")
    assert removed.returncode == 0 and removed.stdout.strip() == "account demo1: proxy removed"
    assert json.loads(run_cli(env, "accounts", "list", "--format", "json").stdout)[0]["proxy"] == ""
    assert_no_secret(changed, by_id, removed)
    assert PROXY_PASSWORD not in database_bytes(db)

    both = run_cli(env, "accounts", "set-proxy", "--id", "1", PROXY, "--none")
    neither = run_cli(env, "accounts", "set-proxy", "--id", "1")
    socks = run_cli(env, "accounts", "set-proxy", "--id", "1", PROXY.replace("http", "socks5"))
    ghost = run_cli(env, "accounts", "set-proxy", "--username", "ghost", PROXY)
    for result in (both, neither, socks):
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "SOCKS" in socks.stderr
    assert ghost.returncode == 1 and "no account named 'ghost'" in ghost.stderr
    assert_no_secret(both, neither, socks, ghost)


def test_set_identity_replaces_or_removes_the_user_agent_and_headers(db, env):
    assert run_cli(env, "accounts", "add", "--username", "demo1", "--password-stdin", "--proxy", PROXY,
                   stdin="pw\n").returncode == 0
    changed = run_cli(env, "accounts", "set-identity", "--username", "demo1", "--user-agent", UA,
                      "--header", "X-A: 1")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == "account demo1: identity changed (user agent set; headers X-A)"
    store = IdentityStore(db, cipher=CredentialCipher.from_config(Config.from_env(env)))
    assert (store.get(1).proxy_url, store.get(1).user_agent, store.get(1).headers) == (PROXY, UA, {"X-A": "1"})

    removed = run_cli(env, "accounts", "set-identity", "--id", "1", "--no-user-agent", "--no-headers")
    assert removed.returncode == 0, removed.stderr
    db.commit()
    assert (store.get(1).proxy_url, store.get(1).user_agent, store.get(1).headers) == (PROXY, None, {})

    nothing = run_cli(env, "accounts", "set-identity", "--id", "1")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    clash = run_cli(env, "accounts", "set-identity", "--id", "1", "--user-agent", "x", "--no-user-agent")
    assert clash.returncode == 2 and "not allowed with" in clash.stderr


def test_import_is_all_or_nothing_and_reports_every_bad_line(db, env, tmp_path):
    assert run_cli(env, "accounts", "add", "--username", "already", "--password-stdin", stdin="pw\n").returncode == 0
    path = tmp_path / "accounts.csv"
    path.write_text("\n".join([
        "username,password,proxy,user_agent,daily_export_limit",
        f'good1,{PASSWORD},{PROXY},"{UA}",150',
        "nopassword,,,,",
        f"socks,{PASSWORD},socks5://{PROXY_USER}:{PROXY_PASSWORD}@h:1080,,",
        f"good1,{PASSWORD},,,",
        f"already,{PASSWORD},,,",
        f"badlimit,{PASSWORD},,,lots",
        f"good2,{PASSWORD},,,",
    ]) + "\n", encoding="utf-8")

    result = run_cli(env, "accounts", "import", str(path))

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[:-1] == [
        "line 3: empty password",
        "line 4: proxy: SOCKS proxies are not supported (Scrapy's HTTP downloader can only use HTTP and HTTPS"
        " proxies): give http://host:port or http://user:password@host:port",
        "line 5: username 'good1' is also on line 2",
        "line 6: username 'already' is already in the pool",
        "line 7: daily_export_limit must be a whole number from 0 to 2147483647",
    ]
    assert lines[-1] == f"influencers: error: {path}: 5 bad line(s); nothing was imported"
    assert result.stdout == ""
    assert_no_secret(result)
    assert count(db, "accounts") == 1 and count(db, "account_identities") == 0


def test_import_from_stdin_with_a_bom(db, env):
    text = ("\ufeffusername,password,proxy,user_agent,daily_export_limit\r\n"
            f'账号一,{PASSWORD},{PROXY},"{UA}",150\r\n'
            f"demo2,{PASSWORD}-2,,,\r\n"
            f'"demo,3","{PASSWORD},3",,Mozilla/5.0,0\r\n')

    result = run_cli(env, "accounts", "import", "-", stdin=text)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3 account(s) imported from standard input (1 with a proxy)"
    assert_no_secret(result)
    listed = {row["username"]: row for row in json.loads(run_cli(env, "accounts", "list", "--format",
                                                                   "json").stdout)}
    assert {name: (row["daily_export_limit"], row["proxy"], row["user_agent"]) for name, row in listed.items()} == {
        "账号一": (150, SHOWN, UA), "demo2": (4000, "", ""), "demo,3": (0, "", "Mozilla/5.0")}
    from influencers.core.accounts import AccountManager
    config = Config.from_env(env)
    manager = AccountManager(db, cipher=CredentialCipher.from_config(config))
    assert manager.credentials(listed["demo,3"]["id"]) == ("demo,3", f"{PASSWORD},3")
    assert IdentityStore(db, cipher=CredentialCipher.from_config(config)).get(listed["账号一"]["id"]).proxy_url == PROXY
    stored = database_bytes(db)
    for secret in SECRETS:
        assert secret not in stored


@pytest.mark.parametrize(("data", "fragment"), [
    (b"u1,pw\nu2,\xff\xfe\n", "standard input: line 2: not UTF-8 text"),
    (b"", "standard input: no accounts to import"),
    (b"username,password\n", "standard input: no accounts to import"),
])
def test_import_of_an_unreadable_or_empty_input_is_one_line(db, env, data, fragment):
    result = subprocess.run([sys.executable, "-m", "influencers", "accounts", "import", "-"], env=env,
                            cwd=REPO_ROOT, input=data, capture_output=True, timeout=60)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, stderr
    assert stderr.strip().splitlines() == [f"influencers: error: {fragment}"]
    assert count(db, "accounts") == 0


def test_import_of_a_missing_file_is_one_line(db, env, tmp_path):
    result = run_cli(env, "accounts", "import", str(tmp_path / "nope.csv"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"influencers: error: {tmp_path / 'nope.csv'}: cannot read it (No such file or directory)"


def test_a_hostile_proxy_failure_is_shown_not_sent_to_the_terminal(db, env):
    assert run_cli(env, "accounts", "add", "--username", "demo1", "--password-stdin", "--proxy", PROXY,
                   stdin="pw\n").returncode == 0
    IdentityStore(db).proxy_failed(1, f"{OSC_LINK} via {PROXY}")
    table = run_cli(env, "accounts", "list")
    as_json = run_cli(env, "accounts", "list", "--format", "json")
    status = run_cli(env, "status")
    assert_no_secret(table, as_json, status)
    for result in (table, status):
        assert result.returncode == 0, result.stderr
        assert not any(c in result.stdout for c in "\x1b\x07\u202e")
        assert "failed 1×: \\x1b]8;;" in result.stdout
    health = json.loads(as_json.stdout)[0]["proxy_health"]
    assert health == f"failed 1×: {OSC_LINK} via http://***@proxy.example:3128"
    assert "\x1b" not in as_json.stdout  # JSON escapes it
