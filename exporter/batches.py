"""Export batches: the exactly-once protocol, reserve → publish → finalize.

One batch = one ``export_logs`` row = one file. A batch never crosses an account or a quota day:
its size is min(batch size, the account's quota left today, the task's limit left), so with the
default batch size of 5000 each account's segment of the seed's relay is one file.

1. reserve  (one transaction, retried on deadlock/lock wait): fence the claim (task row lock);
   lock the account's quota row; lock up to n ``pending_export`` rows of the domain with
   ``id > last_id`` and no batch yet, in id order; insert the ``export_logs`` row (state
   ``reserved``, file path, quota day, first/last id, format); point the rows at it
   (``export_log_id``); count n against the account's quota; move the task's marker to
   ``last_id=<last>``. Commit. From here the rows, the file name and the quota are decided.
2. publish  stream exactly the batch's rows (the domain's pending rows in [first_id, last_id]
   with ``export_log_id = batch``) into a hidden temp file beside the final name, fsync, rename
   over the final name, fsync the directory.
3. finalize (one transaction): the batch becomes ``published``; its rows become ``exported``.

A kill between any two steps leaves a ``reserved`` batch. Recovery (at start and before every
claim) re-publishes each reserved batch whose task no live worker holds — the same rows to the
same name — and finalizes it: always forward, never back. So a row is counted once, lands in
exactly one finished file, is ``exported`` only after its file is complete, and an account's
``today_export_count`` equals the rows in its files. Recovery locks the batch row (``SKIP
LOCKED``) for the whole re-publish, so two recovering processes never race; temp files of a
killed writer are removed.

Pipelining (the service's mode, ``stream_connect`` given): a background thread publishes batch k
on a second connection while this connection reserves batch k+1; once k's file is complete, k+1's
publish starts and this connection finalizes k. The order of the three steps of one batch never
changes and a batch is finalized only after its file is complete; at most two batches are
reserved and unfinished at any moment, and a kill leaves them ``reserved`` for recovery as above.
What it buys: the database's row updates (the reserve's and the finalize's) run on one thread
while the other streams rows and formats CSV in Python, on two cores instead of one after the
other. (When the publisher finalized too, it had most of the work: 15,671 rows/s against 17,984
now, bench/README.md.) ``drain()`` waits for the batch in flight and finalizes it; the service
calls it before every change of the task's state (complete, pause, release) and on every error.

Rows are locked with a plain ``FOR UPDATE`` (not ``SKIP LOCKED``): the marker only moves forward,
so a row skipped because someone else (a spider upsert) held it for a moment would never be
looked at again by this task. Concurrent reserves on one domain wait for each other for the few
milliseconds a reserve takes, then see the rows the other took as taken.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.connections import Connection

from exporter import writers
from exporter.errors import ExporterError
from influencers.core.accounts import AccountManager
from influencers.core.db import ensure_connected, run_transaction, transaction
from influencers.core.tasks import Claim, TaskScheduler, parse_marker

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000
FILE_PATH_MAX = 255  # export_logs.file_path

# -- SQL ----------------------------------------------------------------------------------------

TASK_FOR_BATCH = (
    "SELECT domain, progress_marker, export_limit, exported_count, export_format FROM tasks WHERE id = %s"
)
PENDING_FILTER = "domain = %s AND status = 'pending_export' AND export_log_id = 0 AND id > %s"
LOCK_ROWS = f"SELECT id FROM influencers WHERE {PENDING_FILTER} ORDER BY id LIMIT %s FOR UPDATE"
ANY_ROW_LEFT = f"SELECT id FROM influencers WHERE {PENDING_FILTER} ORDER BY id LIMIT 1"
ACCOUNT_DAY = (
    "SELECT quota_date, GREATEST(daily_export_limit - today_export_count, 0) AS remaining FROM accounts WHERE id = %s"
)
ACCOUNT_STATUS = "SELECT status FROM accounts WHERE id = %s"
NEXT_PART = "SELECT COUNT(*) AS parts FROM export_logs WHERE task_id = %s"
INSERT_BATCH = (
    "INSERT INTO export_logs (task_id, account_id, domain, exported_count, file_path, start_time, state,"
    " quota_date, first_id, last_id, export_format)"
    " VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(), 'reserved', %s, %s, %s, %s)"
)
BATCH_COLUMNS = (
    "id, task_id, account_id, domain, exported_count, file_path, state, quota_date, first_id, last_id, export_format"
)
# Tuples in the writers' column order, streamed (SSCursor): memory stays flat whatever the batch size.
# CSV takes `ingested_at` as the server's text ('YYYY-MM-DD HH:MM:SS', what isoformat(sep=" ") of
# a DATETIME gives) instead of a datetime parsed and formatted again in Python for every row.
# A batch's rows: its domain's pending rows in [first_id, last_id] that point at it. The range
# keeps the scan on ix_influencers_export_scan; export_log_id itself has no index (schema.sql).
BATCH_FILTER = "domain = %s AND status = 'pending_export' AND id BETWEEN %s AND %s AND export_log_id = %s"
BATCH_ROWS = f"SELECT {', '.join(writers.COLUMNS)} FROM influencers WHERE {BATCH_FILTER} ORDER BY id"
CSV_BATCH_ROWS = BATCH_ROWS.replace("ingested_at,", "CAST(ingested_at AS CHAR) AS ingested_at,", 1)
MARK_PUBLISHED = (
    "UPDATE export_logs SET state = 'published', end_time = UTC_TIMESTAMP() WHERE id = %s AND state = 'reserved'"
)
MARK_EXPORTED = f"UPDATE influencers SET status = 'exported' WHERE {BATCH_FILTER}"
# Under the reserve's row locks the filter's rows in [first, last] with no batch (0) are exactly
# the locked ones.
MARK_RESERVED = f"UPDATE influencers SET export_log_id = %s WHERE {BATCH_FILTER}"
ORPHANED_BATCHES = (
    "SELECT e.id FROM export_logs e JOIN tasks t ON t.id = e.task_id"
    " WHERE e.state = 'reserved' AND (t.status <> 'in_progress' OR t.id = %s) ORDER BY e.id"
)
LOCK_RESERVED_BATCH = (
    f"SELECT {BATCH_COLUMNS} FROM export_logs WHERE id = %s AND state = 'reserved' FOR UPDATE SKIP LOCKED"
)
BATCH_STATE_BY_PATH = "SELECT state FROM export_logs WHERE file_path = %s AND state = 'reserved' LIMIT 1"
BATCH_STATE = "SELECT state FROM export_logs WHERE id = %s"

# Why a task cannot reserve another batch.
QUOTA_SPENT = "quota_spent"
NO_ROWS_LEFT = "no_rows_left"
LIMIT_REACHED = "limit_reached"
ACCOUNT_DISABLED = "account_disabled"


@dataclass(frozen=True)
class Batch:
    id: int
    task_id: int
    account_id: int
    domain: str
    count: int
    file_path: Path
    quota_date: dt.date
    first_id: int
    last_id: int
    fmt: str
    quota_left: int | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Batch:
        return cls(
            id=row["id"], task_id=row["task_id"], account_id=row["account_id"], domain=row["domain"],
            count=row["exported_count"], file_path=Path(row["file_path"]), quota_date=row["quota_date"],
            first_id=row["first_id"], last_id=row["last_id"], fmt=row["export_format"],
        )


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
        return run_transaction(self.conn, lambda cursor: self._reserve(cursor, claim))

    def _reserve(self, cursor: Any, claim: Claim) -> Reservation:
        self.scheduler.check_claim(cursor, claim)  # locks the task row
        cursor.execute(TASK_FOR_BATCH, (claim.task_id,))
        task = cursor.fetchone()
        domain, last_id = task["domain"], parse_marker(task["progress_marker"])
        wanted = self.batch_size
        if task["export_limit"] is not None:
            limit_left = task["export_limit"] - task["exported_count"]
            if limit_left <= 0:
                return Reservation(None, LIMIT_REACHED, last_id)
            wanted = min(wanted, limit_left)
        quota_left = self.accounts.lock_quota(cursor, claim.account_id)
        cursor.execute(ACCOUNT_STATUS, (claim.account_id,))  # the row is locked now
        if cursor.fetchone()["status"] == "disabled":  # banned by an operator meanwhile
            return Reservation(None, ACCOUNT_DISABLED, last_id)
        if quota_left <= 0:
            cursor.execute(ANY_ROW_LEFT, (domain, last_id))
            return Reservation(None, QUOTA_SPENT if cursor.fetchone() else NO_ROWS_LEFT, last_id)
        cursor.execute(LOCK_ROWS, (domain, last_id, min(wanted, quota_left)))
        ids = [row["id"] for row in cursor.fetchall()]
        if not ids:
            return Reservation(None, NO_ROWS_LEFT, last_id)

        self.accounts.update_export_count(claim.account_id, len(ids), cursor=cursor)
        cursor.execute(ACCOUNT_DAY, (claim.account_id,))
        account = cursor.fetchone()
        cursor.execute(NEXT_PART, (claim.task_id,))
        part = cursor.fetchone()["parts"] + 1
        fmt = task["export_format"] or "csv"
        path = writers.batch_path(
            self.export_dir, domain, account["quota_date"], task_id=claim.task_id, seq=part,
            account_id=claim.account_id, first_id=ids[0], last_id=ids[-1], fmt=fmt,
        )
        if len(str(path)) > FILE_PATH_MAX:
            raise ExporterError(f"export file path longer than {FILE_PATH_MAX} characters: {path}")
        cursor.execute(INSERT_BATCH, (claim.task_id, claim.account_id, domain, len(ids), str(path),
                                      account["quota_date"], ids[0], ids[-1], fmt))
        batch_id = cursor.lastrowid
        cursor.execute(MARK_RESERVED, (batch_id, domain, ids[0], ids[-1], 0))
        marked = cursor.rowcount
        if marked != len(ids):  # cannot happen under the row locks; never commit a short batch
            raise ExporterError(f"batch {batch_id}: marked {marked} of {len(ids)} locked rows")
        self.scheduler.set_progress(cursor, claim, f"last_id={ids[-1]}", exported=len(ids))
        batch = Batch(
            id=batch_id, task_id=claim.task_id, account_id=claim.account_id, domain=domain, count=len(ids),
            file_path=path, quota_date=account["quota_date"], first_id=ids[0], last_id=ids[-1], fmt=fmt,
            quota_left=int(account["remaining"]),
        )
        return Reservation(batch, None, ids[-1])

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
        is gone). A batch that cannot be published now (disk full) is logged and left reserved.
        """
        with transaction(self.conn) as cursor:
            cursor.execute(ORPHANED_BATCHES, (task_id or 0,))
            candidates = [row["id"] for row in cursor.fetchall()]
        done = 0
        for batch_id in candidates:
            try:
                done += self._recover_one(batch_id)
            except (OSError, ExporterError) as exc:
                logger.error("could not re-publish export batch %s: %s", batch_id, exc,
                             extra={"export_log_id": batch_id})
        return done

    def _recover_one(self, batch_id: int) -> int:
        with transaction(self.conn) as cursor:
            cursor.execute(LOCK_RESERVED_BATCH, (batch_id,))
            row = cursor.fetchone()
            if row is None:  # finished meanwhile, or another process is recovering it
                return 0
            batch = Batch.from_row(row)
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

    def clean_temp_files(self) -> int:
        """Remove temp files under the export dir whose batch is not waiting to be published."""
        removed = 0
        for temp in writers.iter_temp_files(self.export_dir):
            final = writers.final_of_temp(temp)
            with transaction(self.conn) as cursor:
                cursor.execute(BATCH_STATE_BY_PATH, (str(final),))
                reserved = cursor.fetchone() is not None
            if not reserved:
                temp.unlink(missing_ok=True)
                removed += 1
        if removed:
            logger.warning("removed %d orphaned temp file(s) under %s", removed, self.export_dir)
        return removed

    # -- helpers ----------------------------------------------------------------------------

    def _write(self, batch: Batch, conn: Connection | None = None) -> None:
        """Stream the batch's rows from MySQL into its file (temp → fsync → rename)."""
        inside = _is_inside(self.export_dir, batch.file_path)
        rows = (conn or self.conn).cursor(pymysql.cursors.SSCursor)
        try:
            rows.execute(CSV_BATCH_ROWS if batch.fmt == "csv" else BATCH_ROWS, _batch_filter_args(batch))
            writers.publish(batch.file_path, batch.fmt, rows, export_dir=self.export_dir if inside else None,
                            expect=batch.count)
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
        cursor.execute(MARK_PUBLISHED, (batch.id,))
        cursor.execute(MARK_EXPORTED, _batch_filter_args(batch))

    def _state(self, batch_id: int, conn: Connection | None = None) -> str | None:
        with transaction(conn or self.conn) as cursor:
            cursor.execute(BATCH_STATE, (batch_id,))
            row = cursor.fetchone()
        return row["state"] if row else None

    @staticmethod
    def _remove_temp_files(final: Path) -> int:
        if not final.parent.is_dir():
            return 0
        removed = 0
        for temp in final.parent.glob(f".{final.name}.*{writers.TEMP_SUFFIX}"):
            if writers.final_of_temp(temp) == final:
                temp.unlink(missing_ok=True)
                removed += 1
        return removed


def _batch_filter_args(batch: Batch) -> tuple[str, int, int, int]:
    return (batch.domain, batch.first_id, batch.last_id, batch.id)


def _is_inside(root: Path, path: Path) -> bool:
    """Batches reserved under an earlier INFLUENCERS_EXPORT_DIR are published where they were promised."""
    try:
        writers.ensure_inside(root, path)
    except ExporterError:
        return False
    return True
