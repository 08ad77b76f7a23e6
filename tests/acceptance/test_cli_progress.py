"""Progress bars of the long commands as real processes: `db init`'s fill of the typed fields,
`accounts import`, `python -m exporter run --once`. On a terminal (a pseudo-terminal here) the bar
is drawn on stderr and cleared at the end, and stdout is what it always was; with stderr not a
terminal nothing at all is added: the output is exactly what the commands printed before bars."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from dataclasses import dataclass

import pytest

from influencers.core.config import Config
from influencers.core.counts import recount
from influencers.sites.base import configured_adapter
from tests.fixtures.database import REPO_ROOT
from tests.fixtures.processes import run_cli

pytestmark = pytest.mark.slow

FILL_ROWS = 6_000  # six chunks of the fill: longer than the bar's delay
ACCOUNTS = 2_000  # two seconds or so of encrypting and inserting
EXPORT_ROWS = 3_000
#: What a bar draws and a plain command never prints.
BAR_MARKS = ("\r", "\x1b", "%|", "row/s", "account/s", "filling typed fields", "importing accounts", "exporting rows")
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) [\w.]+: .*")


@dataclass
class OnTerminal:
    returncode: int
    stdout: str
    terminal: str  # what stderr, a 120-column terminal, received


def on_a_terminal(env: dict[str, str], *args: str, module: str = "influencers", stdin: str | None = None,
                  timeout: float = 120) -> OnTerminal:
    """Run a command with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    received = bytearray()

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed its end
                return
            if not data:
                return
            received.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=REPO_ROOT, text=True,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=slave, start_new_session=True)
        os.close(slave)
        try:
            stdout, _ = proc.communicate(stdin, timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=10)
    finally:
        os.close(master)
    return OnTerminal(proc.returncode, stdout, received.decode("utf-8", errors="replace"))


def assert_cleared(terminal: str) -> None:
    """The last thing on the bar's line is blanks: the bar took itself away (leave=False)."""
    assert terminal.rstrip(" ").endswith("\r")
    assert terminal.rsplit("\r", 1)[-1].strip() == ""


def assert_no_bar(text: str) -> None:
    assert not [mark for mark in BAR_MARKS if mark in text], repr(text[-300:])


def schedule_fill(db, rows: int) -> None:
    """Rows stored before their typed fields existed, and the fill a migration schedules for them."""
    values = [(f"达人{i}", f"u{i:06d}", "美妆", json.dumps({"fans": i, "region": "上海"})) for i in range(rows)]
    with db.cursor() as cursor:
        cursor.executemany("INSERT INTO influencers (nickname, uid, domain, raw_data) VALUES (%s, %s, %s, %s)", values)
        cursor.execute("INSERT INTO profile_fill (id, next_id) VALUES (1, 0)")
    db.commit()


def fill_output(env: dict[str, str], rows: int) -> str:
    config = Config.from_env(env)
    adapter = configured_adapter(config.site_adapter, config.site_url)
    return (f"schema of {config.mysql.display} is up to date (nothing to apply)\n"
            f"typed fields filled for {rows} stored row(s) by {adapter.name}\n")


def import_text(count: int) -> str:
    return "".join(f"user{i},pw{i},http://u:p@127.0.0.1:{1000 + i % 100},Mozilla/5.0,100\n" for i in range(count))


def export_setup(db, accounts, env: dict[str, str], rows: int) -> None:
    values = [(f"达人{i}", f"u{i:06d}", "美妆", json.dumps({"fans": i})) for i in range(rows)]
    with db.cursor() as cursor:
        cursor.executemany("INSERT INTO influencers (nickname, uid, domain, raw_data) VALUES (%s, %s, %s, %s)", values)
    db.commit()
    recount(db)  # inserted around the pipeline, which keeps the domain counts
    accounts.add("exporter1", "pw", daily_export_limit=rows)
    assert run_cli(env, "start_export", "--domain", "美妆").returncode == 0


# -- on a terminal ---------------------------------------------------------------------------------


def test_db_init_draws_the_fill_on_a_terminal_and_prints_the_same_lines(db, env):
    schedule_fill(db, FILL_ROWS)
    result = on_a_terminal(env, "db", "init")
    assert result.returncode == 0, result.terminal
    assert result.stdout == fill_output(env, FILL_ROWS)
    assert "filling typed fields" in result.terminal and f"/{FILL_ROWS} [" in result.terminal
    assert_cleared(result.terminal)


def test_accounts_import_draws_the_accounts_added_on_a_terminal(db, env):
    result = on_a_terminal(env, "accounts", "import", "-", stdin=import_text(ACCOUNTS))
    assert result.returncode == 0, result.terminal
    assert result.stdout == f"{ACCOUNTS} account(s) imported from standard input ({ACCOUNTS} with a proxy)\n"
    assert "importing accounts" in result.terminal and f"/{ACCOUNTS} [" in result.terminal
    assert_cleared(result.terminal)


def test_exporter_once_draws_the_rows_exported_out_of_those_pending_on_a_terminal(db, accounts, env):
    export_setup(db, accounts, env, EXPORT_ROWS)
    result = on_a_terminal(env, "run", "--once", "--batch-size", "500", module="exporter")
    assert result.returncode == 0, result.terminal
    assert result.stdout == ""
    assert "exporting rows" in result.terminal and f"{EXPORT_ROWS}/{EXPORT_ROWS} [" in result.terminal
    assert "task 1 美妆, account 1, quota left" in result.terminal
    assert result.terminal.count("exported 500 美妆 rows") == EXPORT_ROWS // 500  # the log lines go above the bar
    assert_cleared(result.terminal)


# -- not on a terminal: exactly the output of before --------------------------------------------------


def test_off_a_terminal_db_init_with_a_fill_prints_its_two_lines_and_nothing_else(db, env):
    schedule_fill(db, FILL_ROWS)
    result = run_cli(env, "db", "init")
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == (fill_output(env, FILL_ROWS), "")


def test_off_a_terminal_accounts_import_and_start_crawl_print_one_line_each(db, env):
    imported = run_cli(env, "accounts", "import", "-", stdin=import_text(ACCOUNTS))
    assert (imported.returncode, imported.stderr) == (0, "")
    assert imported.stdout == f"{ACCOUNTS} account(s) imported from standard input ({ACCOUNTS} with a proxy)\n"
    crawl = run_cli(env, "start_crawl", "--domain", "美妆", "--pages", "1000", "--split", "1")
    assert (crawl.returncode, crawl.stderr) == (0, "")
    assert crawl.stdout == "ingestion task 1 created for 美妆: pages 1-1000 in 1000 subtask(s)\n"


def test_off_a_terminal_exporter_once_prints_log_lines_only(db, accounts, env):
    export_setup(db, accounts, env, EXPORT_ROWS)
    result = subprocess.run([sys.executable, "-m", "exporter", "run", "--once", "--batch-size", "500"], env=env,
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert_no_bar(result.stderr)
    lines = result.stderr.splitlines()
    assert all(LOG_LINE.fullmatch(line) for line in lines), lines
    assert sum("exported 500 美妆 rows" in line for line in lines) == EXPORT_ROWS // 500


def test_the_bar_check_is_not_vacuous():
    with pytest.raises(AssertionError):
        assert_no_bar("filling typed fields:  50%|█████     | 3000/6000 [00:01<00:01, 3000.00row/s]\r")
