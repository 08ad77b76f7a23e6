"""The exporter rides out an export directory it cannot write, for real: the domain's directory
replaced by a regular file (ENOTDIR), then a file size limit on the running process (EFBIG), each
for a few seconds mid-export. The tests run as root, so permission bits would not stop a write.

CPython ignores SIGXFSZ at start-up, so a write past RLIMIT_FSIZE fails with EFBIG instead of
killing the process."""
from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.batches import BatchExporter
from tests.acceptance.test_export_service import (
    StderrWatch,
    check_exactly_once,
    exporter,
    file_uids,
    insert_rows,
    one,
    query,
    start_export,
    wait_until,
)

pytestmark = pytest.mark.slow

WENT, BACK = "unreachable (cannot write", "reachable again after"
FAULT_SECONDS = 2.0


def published(db) -> int:
    return one(db, "SELECT COUNT(*) FROM export_logs WHERE state = 'published'")


def lines_with(watch: StderrWatch, text: str) -> int:
    return sum(text in line for line in list(watch.lines))


def check_exported_rows_are_in_finished_files(db, where: Callable[[Path], Path]) -> int:
    """Rows marked exported are exactly the rows in the files of published batches (``where``
    tells where a file is while its directory is moved away); returns how many."""
    in_files: set[str] = set()
    for log in query(db, "SELECT file_path, exported_count FROM export_logs WHERE state = 'published'"):
        uids = file_uids(where(Path(log["file_path"])))
        assert len(uids) == log["exported_count"]
        in_files.update(uids)
    exported = {row["uid"] for row in query(db, "SELECT uid FROM influencers WHERE status = 'exported'")}
    assert exported == in_files
    return len(exported)


def ride_out(db, proc, watch: StderrWatch, fault: int, where: Callable[[Path], Path] = lambda path: path) -> None:
    """While fault number ``fault`` lasts: the process lives, says so once, publishes nothing and
    marks nothing exported that is not in a finished file."""
    wait_until(lambda: lines_with(watch, WENT) == fault, 20, f"the exporter to notice fault {fault}", proc)
    exported = check_exported_rows_are_in_finished_files(db, where)
    time.sleep(FAULT_SECONDS)
    assert proc.poll() is None, "the exporter exited during a disk fault"
    assert check_exported_rows_are_in_finished_files(db, where) == exported  # nothing got through meanwhile
    assert one(db, "SELECT COUNT(*) FROM export_logs WHERE state = 'reserved'") >= 1  # the batch waits, reserved
    assert lines_with(watch, WENT) == fault  # one line when it starts, not one per retry


def test_exporter_rides_out_disk_faults_and_publishes_every_row_once(db, accounts, env):
    rows = 3000
    insert_rows(db, "美妆", rows)
    for n in (1, 2):
        accounts.add(f"account{n}", "pw", daily_export_limit=2000)  # the relay happens too
    task_id = start_export(env, "美妆")
    export_dir = Path(env["INFLUENCERS_EXPORT_DIR"])
    domain_dir, moved = export_dir / "美妆", export_dir.parent / "moved-away"

    proc = exporter(env, "--once", "--poll-interval", "0.2", "--batch-size", "10")
    watch = StderrWatch(proc, "claimed task")
    try:
        # Fault 1: the domain's directory replaced by a regular file.
        wait_until(lambda: published(db) >= 5, 30, "the first batches", proc)
        domain_dir.rename(moved)
        domain_dir.write_text("not a directory")
        ride_out(db, proc, watch, 1, lambda path: moved / path.relative_to(domain_dir))
        domain_dir.unlink()
        moved.rename(domain_dir)
        wait_until(lambda: lines_with(watch, BACK) == 1, 30, "the exporter to write again", proc)

        # Fault 2: the process may not write a file larger than 512 bytes (a batch file is more).
        # Only the soft limit: raising a hard limit again needs CAP_SYS_RESOURCE, even as root.
        soft, hard = resource.prlimit(proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (512, hard))
        try:
            ride_out(db, proc, watch, 2)
        finally:
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (soft, hard))
        stderr = watch.text(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        if not domain_dir.is_dir() and moved.is_dir():
            domain_dir.unlink(missing_ok=True)
            moved.rename(domain_dir)

    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr
    assert (stderr.count(WENT), stderr.count(BACK)) == (2, 2), stderr[-3000:]
    assert f"export directory {export_dir}" in stderr
    # a batch published between the rename and the file taking the directory's place sees ENOENT first
    assert ("(ENOTDIR)" in stderr or "(ENOENT)" in stderr) and "(EFBIG)" in stderr
    owner = check_exactly_once(db, export_dir)  # quotas equal the rows in the files, too
    assert len(owner) == rows
    assert one(db, "SELECT status FROM tasks WHERE id = %s", (task_id,)) == "completed"


def test_a_disk_fault_during_start_up_recovery_is_ridden_out(db, accounts, scheduler, config, env):
    """A batch a dead worker left reserved, and an exporter started with a file size limit (as by
    ``ulimit -f``): the recovery at start cannot write the file, waits, and writes it once it can."""
    insert_rows(db, "美妆", 100)
    accounts.add("account1", "pw", daily_export_limit=4000)
    task_id = start_export(env, "美妆")
    claim = scheduler.claim("export")
    batch = BatchExporter(db, scheduler, accounts, config.export_dir, batch_size=60).reserve(claim).batch
    scheduler.release(claim, "a worker that died after its reserve")
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    proc = exporter(env, "--once", "--poll-interval", "0.2", "--batch-size", "60",
                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (512, hard)))
    watch = StderrWatch(proc, "claimed task")
    try:
        ride_out(db, proc, watch, 1)
        assert one(db, "SELECT COUNT(*) FROM influencers WHERE status = 'exported'") == 0
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
        stderr = watch.text(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr
    assert (stderr.count(WENT), stderr.count(BACK)) == (1, 1), stderr[-3000:]
    logs = query(db, "SELECT id, file_path, exported_count FROM export_logs ORDER BY id")
    assert (logs[0]["id"], logs[0]["file_path"], logs[0]["exported_count"]) == (batch.id, str(batch.file_path), 60)
    assert len(check_exactly_once(db, Path(env["INFLUENCERS_EXPORT_DIR"]))) == 100
    assert one(db, "SELECT status FROM tasks WHERE id = %s", (task_id,)) == "completed"
