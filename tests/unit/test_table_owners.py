"""Each table's writes live in its one owner module, and driver errors stay behind `core.db`.

"No double claim" and "quota never exceeded" hold because one module spells each table's
conditions; a write to a table from anywhere else would let a second spelling drift from the first.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("influencers", "exporter")
OWNERS = {
    "tasks": {"influencers/core/tasks/scheduler.py", "influencers/core/tasks/creating.py",
              "influencers/core/tasks/fence.py", "influencers/core/tasks/dispatches.py",
              "influencers/core/tasks/recovery.py"},
    "accounts": {"influencers/core/accounts.py"},
    "account_budgets": {"influencers/core/budgets.py"},
    "influencers": {"influencers/core/store.py"},
    "ingestion_logs": {"influencers/core/store.py"},
    "export_logs": {"influencers/core/exports.py"},
    "events": {"influencers/core/events.py"},
    "account_identities": {"influencers/core/identities.py"},
    "domain_counts": {"influencers/core/counts.py"},
    "influencer_history": {"influencers/core/store.py"},
    "saved_searches": {"influencers/core/selection.py"},
    "profile_fill": {"influencers/core/profilefill.py"},
    "schedules": {"influencers/core/schedules.py"},
    "schedule_runs": {"influencers/core/schedules.py"},
    "tallies": {"influencers/core/tallies.py"},
    "alerts": {"influencers/core/alerts.py"},
    "alert_watch": {"influencers/core/alerts.py"},
    "outages": {"influencers/core/outages.py"},
}


def sources() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[path.relative_to(ROOT).as_posix()] = path.read_text(encoding="utf-8")
    return found


def writers_of(table: str, texts: dict[str, str]) -> set[str]:
    statement = re.compile(rf"\b(INSERT\s+(?:IGNORE\s+)?INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+`?{table}`?\s", re.IGNORECASE)
    return {name for name, text in texts.items() if statement.search(text)}


@pytest.mark.parametrize("table", sorted(OWNERS))
def test_only_the_owner_writes_a_table(table):
    texts = sources()
    assert writers_of(table, texts) <= OWNERS[table]
    assert writers_of(table, texts), f"the owner of {table} writes it"  # the pattern still finds them


def test_the_pattern_finds_a_write_outside_the_owner():
    assert writers_of("tasks", {"elsewhere.py": 'cursor.execute("UPDATE tasks SET status = %s", (s,))'}) == {
        "elsewhere.py"}


def test_only_core_db_touches_driver_errors():
    touching = {name for name, text in sources().items()
                if re.search(r"pymysql\.err\b|\.args\[0\]", text) and name != "influencers/core/db.py"}
    # the schema module hands yoyo's driver errors to `db.driver_error`, which reads the codes
    assert touching <= {"influencers/core/schema.py"}
