"""Export paths come from the export directory and the batch, never from ``export_logs.file_path``
(issue 18): a planted reserved batch cannot make recovery write anywhere, and files are private."""
from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from exporter import batches
from exporter.batches import BatchExporter
from exporter.errors import ExportPathError
from tests.integration.test_export_batches import insert_rows, query

VICTIM_TEXT = "the operator's own file\n"


@pytest.fixture
def reserved_batch(db, accounts, scheduler, config):
    """A real reserved batch whose task is no longer in progress: what recovery picks up."""
    insert_rows(db, "美妆", 5, nicknames=["=HYPERLINK(\"http://evil.example\",\"x\")"])
    accounts.add("acc1", "pw", daily_export_limit=100)
    scheduler.create_export("美妆")
    claim = scheduler.claim("export")
    batch = BatchExporter(db, scheduler, accounts, config.export_dir).reserve(claim).batch
    scheduler.release(claim, "simulated crash after the reserve")
    return batch


def plant(db, batch_id: int, file_path: Path | str) -> None:
    with db.cursor() as cursor:
        cursor.execute("UPDATE export_logs SET file_path = %s WHERE id = %s", (str(file_path), batch_id))
    db.commit()


def refusal_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "exporter.batches" and "left reserved" in r.getMessage()]


@pytest.mark.parametrize("where", ["outside", "traversal", "other_name"])
def test_a_planted_path_is_refused_and_the_file_left_alone(db, accounts, scheduler, config, reserved_batch,
                                                           tmp_path, caplog, where):
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    root = Path(config.export_dir).absolute()
    name = reserved_batch.file_path.name  # a batch's own name, placed elsewhere by ".."
    planted = {
        "outside": victim,
        "traversal": root / "美妆" / "x" / ".." / ".." / ".." / name,
        "other_name": reserved_batch.file_path.with_name("victim.txt"),
    }[where]
    if where != "outside":
        (root / "美妆" / "x").mkdir(parents=True)
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_text(VICTIM_TEXT)
    plant(db, reserved_batch.id, planted)
    exporter = BatchExporter(db, scheduler, accounts, config.export_dir)

    with caplog.at_level(logging.INFO):
        assert exporter.recover() == 0
        assert exporter.recover() == 0  # recovery runs before every claim: said once
    assert victim.read_text() == VICTIM_TEXT and planted.read_text() == VICTIM_TEXT
    assert not reserved_batch.file_path.exists()
    [line] = refusal_lines(caplog)
    assert line.levelno == logging.ERROR and str(planted) in line.getMessage()
    assert query(db, "SELECT state FROM export_logs")[0]["state"] == "reserved"
    assert query(db, "SELECT COUNT(*) AS n FROM influencers WHERE status = 'exported'")[0]["n"] == 0
    [event] = query(db, "SELECT * FROM events WHERE event = 'export_refused'")
    assert event["task_id"] == reserved_batch.task_id and str(planted) in event["reason"]
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".csv"] == ([] if where != "traversal"
                                                                                     else [tmp_path / name])


def test_a_symlinked_domain_directory_is_refused(db, accounts, scheduler, config, reserved_batch, tmp_path, caplog):
    """The recorded path is the derived one, but its directory now leads out of the export dir."""
    outside = tmp_path / "outside"
    outside.mkdir()
    domain_dir = reserved_batch.file_path.parent.parent
    domain_dir.parent.mkdir(parents=True, exist_ok=True)
    domain_dir.symlink_to(outside)
    exporter = BatchExporter(db, scheduler, accounts, config.export_dir)
    with caplog.at_level(logging.INFO):
        assert exporter.recover() == 0
    assert len(refusal_lines(caplog)) == 1
    assert list(outside.rglob("*")) == []
    assert query(db, "SELECT state FROM export_logs")[0]["state"] == "reserved"


def test_a_batch_reserved_under_an_earlier_export_dir_is_published_there_only_when_asked(
    db, accounts, scheduler, config, reserved_batch, tmp_path, caplog
):
    moved = tmp_path / "new-exports"
    with caplog.at_level(logging.INFO):
        assert BatchExporter(db, scheduler, accounts, moved).recover() == 0
    [line] = refusal_lines(caplog)
    old = Path(config.export_dir).absolute()
    assert f"INFLUENCERS_EXPORT_DIR={old}" in line.getMessage()
    assert not moved.exists() and not reserved_batch.file_path.exists()

    # what the line tells the operator to do: one run with the old directory publishes it there
    assert BatchExporter(db, scheduler, accounts, config.export_dir).recover() == 1
    assert reserved_batch.file_path.exists()
    assert query(db, "SELECT state FROM export_logs")[0]["state"] == "published"


def test_the_derived_path_is_the_one_reserve_recorded(db, accounts, scheduler, config, reserved_batch):
    assert batches.derived_path(config.export_dir, reserved_batch) == reserved_batch.file_path
    exporter = BatchExporter(db, scheduler, accounts, config.export_dir)
    assert exporter.recover() == 1
    assert query(db, "SELECT state FROM export_logs")[0]["state"] == "published"


def test_a_recorded_name_that_is_no_batch_name_has_no_derived_path(config, reserved_batch):
    from dataclasses import replace

    for name in ("victim.txt", "task1_part0001_acct1_id1-5.csv.bak", "task1_part00001_acct1_id1-5.csv"):
        with pytest.raises(ExportPathError):
            batches.derived_path(config.export_dir, replace(reserved_batch, file_path=reserved_batch.file_path.with_name(name)))


def test_export_files_are_private(db, accounts, scheduler, config):
    insert_rows(db, "美妆", 3)
    accounts.add("acc1", "pw", daily_export_limit=100)
    scheduler.create_export("美妆", fmt="xlsx")
    root = Path(config.export_dir).absolute()
    batch = BatchExporter(db, scheduler, accounts, root).export_next(scheduler.claim("export")).batch
    assert stat.S_IMODE(batch.file_path.stat().st_mode) == 0o600
    for directory in (root, batch.file_path.parent.parent, batch.file_path.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
