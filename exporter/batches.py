"""Export batches: the exactly-once protocol, reserve → publish → finalize.

This module runs the protocol; the statements are the tables' owners': `influencers.core.tasks`
(fence, marker), `core.accounts` (quota), `core.store` (the rows), `core.exports` (the batch).

One batch = one ``export_logs`` row = one file. A batch never crosses an account or a quota day:
its size is min(batch size, the account's quota left today, the task's limit left), so with the
default batch size of 5000 each account's segment of the seed's relay is one file.

1. reserve  (one transaction, retried on deadlock/lock wait): fence the claim (task row lock);
   lock the account's quota row; lock up to n ``pending_export`` rows of the domain with
   ``id > last_id`` and no batch yet, in id order (with none left there: those committed behind
   the marker meanwhile, see `BatchExporter._lock_next`); insert the ``export_logs`` row (state
   ``reserved``, file path, quota day, first/last id, format); point the rows at it
   (``export_log_id``); count n against the account's quota; move the task's marker to
   ``last_id=<last>``. Commit. From here the rows, the file name and the quota are decided.
2. publish  stream exactly the batch's rows (the domain's pending rows in [first_id, last_id]
   with ``export_log_id = batch``) into a hidden temp file beside the final name, fsync, rename
   over the final name, fsync the directory.
3. finalize (one transaction): the batch becomes ``published``; its rows become ``exported``; its
   account's ``rows_exported`` tally grows by them (`influencers.core.tallies`).

A kill between any two steps leaves a ``reserved`` batch. Recovery (at start and before every
claim) re-publishes each reserved batch whose task no live worker holds — the same rows to the
same name — and finalizes it: always forward, never back. So a row is counted once, lands in
exactly one finished file, is ``exported`` only after its file is complete, and an account's
``today_export_count`` equals the rows in its files. Recovery locks the batch row (``SKIP
LOCKED``) for the whole re-publish, so two recovering processes never race; temp files of a
killed writer are removed.

Recovery never writes where ``export_logs.file_path`` says: anyone who can write that table (with
the default MySQL account, any local user) would choose which file is overwritten. The path is
derived again from the export directory and the batch's own columns (domain, quota date, task,
account, id range, format; the part number from the recorded name), exactly as `reserve` built
it, and a recorded path that is not that path is refused: one ERROR line, an ``export_refused``
event on the task (``task show``), the batch left reserved and untouched. That includes a batch
reserved under an earlier ``INFLUENCERS_EXPORT_DIR``: the recorded directory cannot be told from
a planted one, and writing the batch into the current directory instead would duplicate its rows
if the old file was complete. The line names the recorded directory; if it was an earlier export
directory, one run of the exporter with it publishes the batch there.

A file that cannot be written (no space, file too large, the directory replaced by a file, an I/O
error) is the same case without the kill: the ``OSError`` becomes an `ExportDiskFault`, the batch
stays ``reserved`` with no row ``exported``, and a later recovery writes the same rows to the same
name. The service gives the task back and retries with back-off (``exporter/service.py``).

Pipelining (the service's mode, ``stream_connect`` given): a background thread publishes batch k
on a second connection while this connection reserves batch k+1; once k's file is complete, k+1's
publish starts and this connection finalizes k. The order of the three steps of one batch never
changes and a batch is finalized only after its file is complete; at most two batches are
reserved and unfinished at any moment, and a kill leaves them ``reserved`` for recovery as above.
What it buys: the database's row updates (the reserve's and the finalize's) run on one thread
while the other streams rows and formats CSV in Python, on two cores instead of one after the
other (a publisher that also finalized would have most of the work). ``drain()`` waits for the
batch in flight and finalizes it; the service calls it before every change of the task's state
(complete, pause, release) and on every error.

Rows are locked with a plain ``FOR UPDATE`` (not ``SKIP LOCKED``): the marker only moves forward,
so a row skipped because someone else (a spider upsert) held it for a moment would never be
looked at again by this task. Concurrent reserves on one domain wait for each other for the few
milliseconds a reserve takes, then see the rows the other took as taken.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pymysql.connections import Connection

from exporter import writers
from exporter.errors import ExportDiskFault, ExporterError, ExportPathError
from influencers.core import exports, store, tallies
from influencers.core.accounts import AccountManager
from influencers.core.db import StreamingCursor, ensure_connected, run_transaction, transaction
from influencers.core.events import record_event
from influencers.core.exports import Batch
from influencers.core.selection import Selection
from influencers.core.tasks import Claim, TaskScheduler, fence, id_marker, move_marker, parse_marker

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000
FILE_PATH_MAX = 255  # export_logs.file_path

# Why a task cannot reserve another batch.
QUOTA_SPENT = "quota_spent"
NO_ROWS_LEFT = "no_rows_left"
LIMIT_REACHED = "limit_reached"
ACCOUNT_DISABLED = "account_disabled"


@dataclass(frozen=True)
class Reservation:
    """What `reserve` decided: a batch to publish, or why there is none (`stop`)."""

    batch: Batch | None
    stop: str | None
    last_id: int
    finished: tuple[Batch, ...] = ()  # batches whose files were completed and finalized meanwhile


class BatchExporter:
    """Runs the protocol for one connection (one exporter process).

    With ``stream_connect`` (a factory for a second connection), files are written in the
    background while the next batch is reserved (see "Pipelining" above); without it every
    ``export_next`` reserves, publishes and finalizes one batch before it returns.
    """

    def __init__(
        self,
        conn: Connection,
        scheduler: TaskScheduler,
        accounts: AccountManager,
        export_dir: Path,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        stream_connect: Callable[[], Connection] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch size must be 1 or more")
        self.conn = conn
        self.scheduler = scheduler
        self.accounts = accounts
        self.export_dir = Path(os.path.abspath(export_dir))
        self.batch_size = batch_size
        self._stream_connect = stream_connect
        self._stream_conn: Connection | None = None
        self._publisher: ThreadPoolExecutor | None = None
        self._in_flight: tuple[Batch, Future[None]] | None = None
        self._refused: set[int] = set()  # batches whose recorded path was refused (said once)

    # -- the protocol -----------------------------------------------------------------------

    def export_next(self, claim: Claim) -> Reservation:
        """Reserve the task's next batch and get it published and finalized (or say why there is
        none). Pipelined, the batch returned may still be in flight; ``finished`` lists the ones
        completed during the call. With no batch, nothing is left in flight."""
        if self._stream_connect is None:
            reservation = self.reserve(claim)
            if reservation.batch is None:
                return reservation
            self.publish(reservation.batch)
            self.finalize(reservation.batch)
            return replace(reservation, finished=(reservation.batch,))
        try:
            reservation = self.reserve(claim)  # while the previous batch's file is being written
        except BaseException:
            self.drain(quiet=True)
            raise
        published = self._wait_in_flight() if self._in_flight is not None else None  # its file is complete
        if reservation.batch is not None:
            self._start_publish(reservation.batch)
        if published is None:
            return reservation
        self.finalize(published)  # while the next batch's file is being written
        return replace(reservation, finished=(published,))

    def drain(self, *, quiet: bool = False) -> tuple[Batch, ...]:
        """Wait until the batch in flight (if any) is published and finalized. A batch whose file
        could not be written stays reserved for recovery; with ``quiet`` that is logged instead of
        raised."""
        if self._in_flight is None:
            return ()
        try:
            done = self._wait_in_flight()
            self.finalize(done)
        except Exception as exc:
            if not quiet:
                raise
            logger.error("export batch left reserved for recovery: %s", exc)
            return ()
        return (done,)

    def close(self) -> None:
        """Finish the batch in flight (quietly) and close the second connection and thread."""
        self.drain(quiet=True)
        if self._publisher is not None:
            self._publisher.shutdown(wait=True)
            self._publisher = None
        if self._stream_conn is not None:
            try:
                self._stream_conn.close()
            except Exception:  # closing a dead connection is fine
                logger.debug("closing the export stream connection failed", exc_info=True)
            self._stream_conn = None

    def reserve(self, claim: Claim) -> Reservation:
        if claim.account_id is None:
            raise ExporterError(f"task {claim.task_id} is claimed without an account")
        reservation = run_transaction(self.conn, lambda cursor: self._reserve(cursor, claim))
        batch = reservation.batch
        if batch is not None and batch.last_id < reservation.last_id:
            logger.info("task %s: %d row(s) committed behind its marker %s (ids %d-%d) go into batch %s",
                        claim.task_id, batch.count, id_marker(reservation.last_id), batch.first_id, batch.last_id,
                        batch.id, extra={"task_id": claim.task_id, "export_log_id": batch.id})
        return reservation

    def _reserve(self, cursor: Any, claim: Claim) -> Reservation:
        task = fence(cursor, claim)  # locks the task row
        domain, last_id = claim.task.domain, parse_marker(task.progress_marker)
        selection = Selection.from_json(claim.task.export_filter) if claim.task.export_filter else None
        wanted = self.batch_size
        if task.export_limit is not None:
            limit_left = task.export_limit - task.exported_count
            if limit_left <= 0:
                return Reservation(None, LIMIT_REACHED, last_id)
            wanted = min(wanted, limit_left)
        grant = self.accounts.lock_for_export(cursor, claim.account_id)
        if grant.status == "disabled":  # banned by an operator meanwhile
            return Reservation(None, ACCOUNT_DISABLED, last_id)
        if grant.remaining <= 0:  # rows behind the marker count as work left too (see `_lock_next`)
            left = store.any_pending(cursor, domain, 0, selection)
            return Reservation(None, QUOTA_SPENT if left else NO_ROWS_LEFT, last_id)
        ids = self._lock_next(cursor, domain, last_id, min(wanted, grant.remaining), selection)
        if not ids:
            return Reservation(None, NO_ROWS_LEFT, last_id)

        quota_left, quota_day = self.accounts.count_export(cursor, claim.account_id, len(ids))
        fmt = claim.task.export_format or "csv"
        path = writers.batch_path(
            self.export_dir, domain, quota_day, task_id=claim.task_id, seq=exports.next_part(cursor, claim.task_id),
            account_id=claim.account_id, first_id=ids[0], last_id=ids[-1], fmt=fmt,
        )
        if len(str(path)) > FILE_PATH_MAX:
            raise ExporterError(f"export file path longer than {FILE_PATH_MAX} characters: {path}")
        batch_id = exports.insert_reserved(
            cursor, task_id=claim.task_id, account_id=claim.account_id, domain=domain, count=len(ids),
            file_path=str(path), quota_date=quota_day, first_id=ids[0], last_id=ids[-1], fmt=fmt,
        )
        marked = store.assign_batch(cursor, batch_id, domain, ids[0], ids[-1], ids if selection else None)
        if marked != len(ids):  # cannot happen under the row locks; never commit a short batch
            raise ExporterError(f"batch {batch_id}: marked {marked} of {len(ids)} locked rows")
        marker = max(last_id, ids[-1])  # a catch-up batch leaves the marker where it is
        move_marker(cursor, claim, id_marker(marker), exported=len(ids))
        batch = Batch(
            id=batch_id, task_id=claim.task_id, account_id=claim.account_id, domain=domain, count=len(ids),
            file_path=path, quota_date=quota_day, first_id=ids[0], last_id=ids[-1], fmt=fmt,
            quota_left=quota_left,
        )
        return Reservation(batch, None, marker)

    @staticmethod
    def _lock_next(cursor: Any, domain: str, last_id: int, limit: int, selection: Selection | None) -> list[int]:
        """The rows of the next batch: after the marker, or, once none are left there, those
        committed behind it meanwhile.

        A row's id is given out when its insert starts (a multi-row upsert takes its whole range
        at once) and it becomes visible at its commit, so a row can appear below a marker that has
        already passed its id. The task catches such rows up before it completes instead of
        leaving them to the next ``start_export``; the relay (each account going on after the
        last one's last id) is unchanged while rows lie ahead.
        """
        ids = store.lock_pending(cursor, domain, last_id, limit, selection)
        return ids or store.lock_behind(cursor, domain, last_id, limit, selection)

    def publish(self, batch: Batch) -> None:
        """Write the batch's file; ends the read transaction it streamed from."""
        self._publish_on(self.conn, batch)

    def _publish_on(self, conn: Connection, batch: Batch) -> None:
        try:
            self._write(batch, conn)
        except Exception:
            conn.rollback()
            if self._state(batch.id, conn) == "published":  # a recovering process got there first
                logger.warning("batch %s was published by another process meanwhile", batch.id)
                return
            raise
        conn.commit()

    def finalize(self, batch: Batch) -> None:
        run_transaction(self.conn, lambda cursor: self._finalize(cursor, batch))

    # -- recovery ---------------------------------------------------------------------------

    def recover(self, *, task_id: int | None = None) -> int:
        """Finish every reserved batch no live worker is publishing; returns how many.

        Those are the batches of tasks that are not in progress (their worker died and the
        scheduler took the task back, or the task was paused or failed meanwhile) and, with
        ``task_id``, the batches of the task this process has just claimed (its previous holder
        is gone). A batch whose file cannot be written now (disk full) stays reserved: the others
        are tried, then the first such `ExportDiskFault` is raised for the caller to back off.
        """
        with transaction(self.conn) as cursor:
            candidates = [one for one in exports.orphaned(cursor, task_id) if one not in self._refused]
        done = 0
        fault: ExportDiskFault | None = None
        for batch_id in candidates:
            try:
                done += self._recover_one(batch_id)
            except ExportDiskFault as exc:
                logger.debug("export batch %s left reserved: %s", batch_id, exc, extra={"export_log_id": batch_id})
                fault = fault or exc
            except ExporterError as exc:
                logger.error("could not re-publish export batch %s: %s", batch_id, exc,
                             extra={"export_log_id": batch_id})
        if fault is not None:
            raise fault
        return done

    def _recover_one(self, batch_id: int) -> int:
        with transaction(self.conn) as cursor:
            batch = exports.lock_reserved(cursor, batch_id)
            if batch is None:  # finished meanwhile, or another process is recovering it
                return 0
            try:
                batch = replace(batch, file_path=derived_path(self.export_dir, batch))
            except ExportPathError as exc:
                self._refuse(cursor, batch, str(exc))
                return 0
            removed = self._remove_temp_files(batch.file_path)
            self._write(batch)
            self._finalize(cursor, batch)
        logger.warning(
            "re-published export batch %s (task %s, account %s, %d rows) to %s%s", batch.id, batch.task_id,
            batch.account_id, batch.count, batch.file_path,
            f"; removed {removed} partial temp file(s)" if removed else "",
            extra={"task_id": batch.task_id, "account_id": batch.account_id, "export_log_id": batch.id},
        )
        return 1

    def _refuse(self, cursor: Any, batch: Batch, why: str) -> None:
        """Leave a batch whose recorded path is not its own alone: one line, one event."""
        self._refused.add(batch.id)
        message = (f"export batch {batch.id} ({batch.count} rows) left reserved, not re-published: {why}")
        record_event(cursor, "task", batch.task_id, "export_refused", task_id=batch.task_id,
                     account_id=batch.account_id, reason=message)
        logger.error("task %s: %s", batch.task_id, message,
                     extra={"task_id": batch.task_id, "account_id": batch.account_id, "export_log_id": batch.id})

    def clean_temp_files(self) -> int:
        """Remove temp files under the export dir whose batch is not waiting to be published."""
        removed = 0
        with _disk_fault(self.export_dir):
            temps = list(writers.iter_temp_files(self.export_dir))
        for temp in temps:
            final = writers.final_of_temp(temp)
            with transaction(self.conn) as cursor:
                reserved = exports.is_reserved_path(cursor, str(final))
            if not reserved:
                with _disk_fault(temp):
                    temp.unlink(missing_ok=True)
                removed += 1
        if removed:
            logger.warning("removed %d orphaned temp file(s) under %s", removed, self.export_dir)
        return removed

    # -- helpers ----------------------------------------------------------------------------

    def _write(self, batch: Batch, conn: Connection | None = None) -> None:
        """Stream the batch's rows from MySQL into its file (temp → fsync → rename). Every
        ``OSError`` here is the file system's (the driver's errors are `DatabaseError`s): it
        becomes an `ExportDiskFault`, and the batch stays reserved for a later try."""
        rows = (conn or self.conn).cursor(StreamingCursor)
        try:
            store.stream_batch(rows, batch.id, batch.domain, batch.first_id, batch.last_id, batch.fmt)
            writers.publish(batch.file_path, batch.fmt, rows, export_dir=self.export_dir, expect=batch.count)
        except OSError as exc:
            raise ExportDiskFault(batch.file_path, exc) from exc
        finally:
            rows.close()

    def _start_publish(self, batch: Batch) -> None:
        assert self._in_flight is None
        if self._publisher is None:
            self._publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-publish")
        self._in_flight = (batch, self._publisher.submit(self._publish_in_background, batch))

    def _publish_in_background(self, batch: Batch) -> None:
        """The background thread's work for one batch, on the second connection."""
        if self._stream_conn is None:
            assert self._stream_connect is not None
            self._stream_conn = self._stream_connect()
        else:
            ensure_connected(self._stream_conn)
        self._publish_on(self._stream_conn, batch)

    def _wait_in_flight(self) -> Batch:
        assert self._in_flight is not None
        batch, future = self._in_flight
        self._in_flight = None
        future.result()
        return batch

    @staticmethod
    def _finalize(cursor: Any, batch: Batch) -> None:
        if exports.mark_published(cursor, batch.id):  # counted once, by whoever publishes it
            tallies.add(cursor, {(tallies.ROWS_EXPORTED, str(batch.account_id)): batch.count})
        store.mark_exported(cursor, batch.id, batch.domain, batch.first_id, batch.last_id)

    def _state(self, batch_id: int, conn: Connection | None = None) -> str | None:
        with transaction(conn or self.conn) as cursor:
            return exports.state(cursor, batch_id)

    @staticmethod
    def _remove_temp_files(final: Path) -> int:
        removed = 0
        with _disk_fault(final.parent):
            if not final.parent.is_dir():
                return 0
            for temp in final.parent.glob(f".{final.name}.*{writers.TEMP_SUFFIX}"):
                if writers.final_of_temp(temp) == final:
                    temp.unlink(missing_ok=True)
                    removed += 1
        return removed


@contextmanager
def _disk_fault(path: Path) -> Iterator[None]:
    """A file system that refuses to list or remove (I/O error, a directory replaced by a file)
    is a disk fault like one that refuses a write."""
    try:
        yield
    except OSError as exc:
        raise ExportDiskFault(path, exc) from exc


def derived_path(export_dir: Path, batch: Batch) -> Path:
    """The one path ``batch``'s file may have under ``export_dir``, built as `reserve` built it.

    Raises `ExportPathError` (saying why) when the recorded path is not that path, or when there
    is none (the recorded name is no batch name, the domain's directory leads out by a symlink).
    """
    recorded = batch.file_path
    part = writers.part_of(recorded.name)
    if part is None:
        raise ExportPathError(f"its recorded file path {str(recorded)!r} does not end in an export batch file name")
    path = writers.batch_path(
        export_dir, batch.domain, batch.quota_date, task_id=batch.task_id, seq=part, account_id=batch.account_id,
        first_id=batch.first_id, last_id=batch.last_id, fmt=batch.fmt,
    )
    if recorded == path:
        return path
    why = (f"its recorded file path {str(recorded)!r} is not the path derived from the export directory and"
           f" the batch, {str(path)!r}")
    relative = path.relative_to(os.path.abspath(export_dir))
    if recorded.parts[-len(relative.parts):] == relative.parts and len(recorded.parts) > len(relative.parts):
        old = Path(*recorded.parts[:-len(relative.parts)])
        why += (f"; if {str(old)!r} was an earlier INFLUENCERS_EXPORT_DIR, the exporter run once with"
                f" INFLUENCERS_EXPORT_DIR={old} publishes it there")
    raise ExportPathError(why)
