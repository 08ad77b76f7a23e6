"""Rows committed behind a running export task's marker (their ids were given out before the
marker passed them, their commits came after) are exported by that task before it completes;
real MariaDB, the export service in process."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.service import ExporterSettings, ExportService
from influencers.core import counts
from influencers.core.db import connect
from tests.acceptance.test_export_service import check_exactly_once, query

DOMAIN = "美妆"
FIRST_ID = 100  # the crawl's rows start here; the late rows take ids below it


def insert_at(conn, ids: list[int], *, prefix: str = "u", commit: bool = True) -> None:
    """Rows of DOMAIN with the given ids, as a pipeline writer whose ids were given out earlier would."""
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO influencers (id, nickname, uid, domain, source_page, raw_data) VALUES (%s, %s, %s, %s, %s, %s)",
            [(i, f"达人{i}😀", f"{prefix}{i:06d}", DOMAIN, f"page={i}", json.dumps({"fans": i})) for i in ids],
        )
        counts.add(cursor, {(DOMAIN, "pending_export"): len(ids)})  # with the rows, as the pipeline does
    if commit:
        conn.commit()


def start_task(scheduler, accounts, *, limit: int | None = None, quota: int = 4000) -> int:
    accounts.add("account1", "pw", daily_export_limit=quota)
    return scheduler.create_export(DOMAIN, limit=limit)


def run_service(config, after_first_reserve: Callable[[], None]) -> int:
    """``python -m exporter run --once --batch-size 10`` in process; ``after_first_reserve`` runs
    once the task's marker has passed its first batch."""
    service = ExportService(config, ExporterSettings(batch_size=10, poll_interval=0.1, once=True))
    service.open()
    reserve, calls = service.batches.reserve, []

    def reserve_then_hook(claim):
        reservation = reserve(claim)
        calls.append(reservation)
        if len(calls) == 1:
            after_first_reserve()
        return reservation

    service.batches.reserve = reserve_then_hook
    try:
        return service.run()
    finally:
        service.close()


def exported_uids(db) -> set[str]:
    return {row["uid"] for row in query(db, "SELECT uid FROM influencers WHERE status = 'exported'")}


def test_a_row_committed_behind_the_marker_is_exported_before_the_task_completes(
        db, mysql_settings, scheduler, accounts, config):
    insert_at(db, list(range(FIRST_ID, FIRST_ID + 30)))
    task_id = start_task(scheduler, accounts)
    late = connect(mysql_settings)
    try:
        code = run_service(config, lambda: insert_at(late, [50, 51], prefix="late"))
    finally:
        late.close()

    assert code == 0
    assert exported_uids(db) == {f"u{i:06d}" for i in range(FIRST_ID, FIRST_ID + 30)} | {"late000050", "late000051"}
    task = scheduler.get(task_id)
    assert (task.status, task.exported_count, task.progress_marker) == ("completed", 32, f"last_id={FIRST_ID + 29}")
    owner = check_exactly_once(db, Path(config.export_dir))
    assert owner["late000050"] == owner["late000051"]  # one catch-up batch after the marker's last one
    assert owner["late000050"] == max(owner.values())


def test_the_task_waits_for_a_row_still_being_inserted_behind_its_marker(db, mysql_settings, scheduler, accounts,
                                                                        config):
    """The row's insert has run (its id is below the marker) but its transaction commits only
    later: the catch-up's locking read waits for it rather than completing without it."""
    insert_at(db, list(range(FIRST_ID, FIRST_ID + 30)))
    task_id = start_task(scheduler, accounts)
    late = connect(mysql_settings)
    committer = threading.Timer(1.0, late.commit)

    def insert_and_commit_later() -> None:
        insert_at(late, [60], prefix="late", commit=False)
        committer.start()

    try:
        code = run_service(config, insert_and_commit_later)
    finally:
        if committer.ident is not None:
            committer.join()
        late.close()

    assert code == 0
    assert "late000060" in exported_uids(db)
    assert scheduler.get(task_id).status == "completed"
    check_exactly_once(db, Path(config.export_dir))


@pytest.mark.parametrize(("limit", "late_exported"), [(31, True), (30, False)])
def test_the_catch_up_keeps_to_the_tasks_limit(db, mysql_settings, scheduler, accounts, config, limit, late_exported):
    insert_at(db, list(range(FIRST_ID, FIRST_ID + 30)))
    task_id = start_task(scheduler, accounts, limit=limit)
    late = connect(mysql_settings)
    try:
        assert run_service(config, lambda: insert_at(late, [70], prefix="late")) == 0
    finally:
        late.close()

    task = scheduler.get(task_id)
    assert (task.status, task.exported_count) == ("completed", limit)
    assert len(exported_uids(db)) == limit
    assert ("late000070" in exported_uids(db)) is late_exported
    check_exactly_once(db, Path(config.export_dir))


def test_the_catch_up_goes_on_with_the_next_account_when_the_quota_is_spent(
        db, mysql_settings, scheduler, accounts, config):
    """The relay counts rows behind the marker as work left: the task does not complete with
    them pending because the first account's quota ran out exactly at the last row ahead."""
    insert_at(db, list(range(FIRST_ID, FIRST_ID + 30)))
    task_id = start_task(scheduler, accounts, quota=30)
    second = accounts.add("account2", "pw", daily_export_limit=30)
    late = connect(mysql_settings)
    try:
        assert run_service(config, lambda: insert_at(late, [80], prefix="late")) == 0
    finally:
        late.close()

    assert "late000080" in exported_uids(db)
    assert scheduler.get(task_id).status == "completed"
    logs = query(db, "SELECT account_id, first_id, last_id FROM export_logs ORDER BY id")
    assert logs[-1] == {"account_id": second, "first_id": 80, "last_id": 80}
    check_exactly_once(db, Path(config.export_dir))
