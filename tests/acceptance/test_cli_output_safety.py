"""The CLI's CSV and table output of platform-chosen text, as an operator runs it (issue 18):
`report ingestion --details` lists scraped nicknames, `accounts list` usernames."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.fixtures.processes import run_cli
from tests.unit.test_spreadsheet_safety import DANGEROUS, OSC_LINK, TERMINAL_HOSTILE, formula_cells

pytestmark = pytest.mark.slow

DAY = "2026-11-27"


@pytest.fixture
def hostile_data(db, accounts, scheduler):
    """Accounts named and a page of nicknames crawled by someone who wants a formula or an escape
    sequence in the operator's spreadsheet or terminal."""
    names = DANGEROUS[:12] + TERMINAL_HOSTILE
    account_ids = [accounts.add(f"plain{i}", "pw") for i in range(len(names))]
    task_id = scheduler.find_or_create_domain_task("美妆")
    with db.cursor() as cursor:
        for account_id, name in zip(account_ids, names, strict=True):  # names as a platform may hand them out
            cursor.execute("UPDATE accounts SET username = %s WHERE id = %s", (name, account_id))
        start = datetime(2026, 11, 27, 4)  # UTC: noon in Shanghai
        for page, nickname in enumerate(DANGEROUS + TERMINAL_HOSTILE, start=1):
            cursor.execute(
                "INSERT INTO ingestion_logs (task_id, account_id, domain, page_number, ingested_count, start_time,"
                " end_time) VALUES (%s, %s, '美妆', %s, 1, %s, %s)",
                (task_id, account_ids[page % len(account_ids)], page, start, start),
            )
            cursor.execute("INSERT INTO influencers (uid, nickname, domain, ingestion_log_id) VALUES (%s, %s, '美妆', %s)",
                           (f"u{page}", nickname, cursor.lastrowid))
    db.commit()
    return names


@pytest.mark.parametrize("command", [
    ["report", "ingestion", "--details", "--date", DAY, "--format", "csv"],
    ["accounts", "list", "--format", "csv"],
])
def test_csv_output_has_no_formula_with_any_separator(db, env, hostile_data, command):
    result = run_cli(env, *command)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") >= len(hostile_data)  # the hostile rows are there
    assert formula_cells(result.stdout) == []


@pytest.mark.parametrize("command", [
    ["report", "ingestion", "--details", "--date", DAY],
    ["accounts", "list"],
    ["status"],
])
def test_table_output_sends_no_control_sequence_to_the_terminal(db, env, hostile_data, command):
    result = run_cli(env, *command)
    assert result.returncode == 0, result.stderr
    assert not any(c in result.stdout for c in "\x1b\x9b\x07\x08\u202e")
    assert OSC_LINK.replace("\x1b", "\\x1b") in result.stdout
