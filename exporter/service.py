"""`python -m exporter run`: the export service loop.

Claims export tasks (``python -m influencers start_export``), binds an account with quota left and
exports the domain's pending rows batch by batch (see ``exporter/batches.py``). When the account's
quota for the day is spent the task is paused at its marker, the account goes back to the pool and
the task is claimed again at once with the next account that has quota (the seed's relay). With no
account left the task stays ``paused``; the service polls and resumes it by itself when the quota
day turns (local midnight, ``INFLUENCERS_TZ``) — the quota reset is lazy, no cron job is needed.

Settings (command line; the rest comes from ``influencers.core.config``):
  --batch-size N      rows per file at most (default 5000; a file never crosses an account's quota)
  --poll-interval S   seconds between looks for claimable work when idle (default 10)
  --worker-name X     prefix of this process's worker id in tasks/events (default "exporter")
  --once              drain what can be exported now, then exit

Exit status: 0 done (with --once: no export work left), 3 (--once) export work remains — tasks
waiting for quota, held by another exporter or backing off after an error, 2 configuration or
database unreachable at start (one line on stderr), 1 unexpected error. Once running, any other
MySQL error is one line and a try again ERROR_BACKOFF_SECONDS later, a database
outage is waited out (`influencers.core.outage`), and so is an export directory that cannot be
written (no space, file too large, not a directory, I/O error): the task is given back, its
reserved batches stay reserved, and recovery publishes them — the same rows under the same names —
once the directory takes them again. SIGTERM/SIGINT finish the current batch, give the task back
and exit 0.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from exporter.batches import (
    ACCOUNT_DISABLED,
    DEFAULT_BATCH_SIZE,
    LIMIT_REACHED,
    NO_ROWS_LEFT,
    QUOTA_SPENT,
    Batch,
    BatchExporter,
    Reservation,
)
from exporter.errors import ExportDiskFault, ExporterError
from influencers.argtypes import OneLineParser, positive_int, seconds
from influencers.core import counts, exports, tasks
from influencers.core.accounts import AccountManager
from influencers.core.config import Config, get_config
from influencers.core.db import connect, ensure_connected, transaction
from influencers.core.errors import (
    ClaimLost,
    ConfigError,
    DatabaseError,
    DatabaseUnavailable,
    InfluencersError,
    SchemaMissing,
)
from influencers.core.outage import Outage
from influencers.core.tasks import Claim, TaskScheduler, id_marker
from influencers.core.workers import Worker
from influencers.progress import bar as progress_bar

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 10.0
DEFAULT_WORKER_NAME = "exporter"
LEASE_SECONDS = 60.0
HEARTBEATS_PER_LEASE = 6  # renew the lease every lease/6 seconds while batches go on
ERROR_BACKOFF_SECONDS = 30.0
OUTAGE_BACKOFF_CAP = 10.0  # seconds between reconnection attempts at most while MySQL is away
DISK_BACKOFF_CAP = 30.0  # seconds between tries at most while the export directory cannot be written
EXPORT_DIR_MAX = 150  # leaves room for domain/date/file name in export_logs.file_path (255)
EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_WORK_LEFT = 0, 1, 2, 3

@dataclass(frozen=True)
class ExporterSettings:
    batch_size: int = DEFAULT_BATCH_SIZE
    poll_interval: float = DEFAULT_POLL_INTERVAL
    worker_name: str = DEFAULT_WORKER_NAME
    once: bool = False
    lease_seconds: float = LEASE_SECONDS


class Progress:
    """One status line on a terminal (rows, rate, account, quota left), with ``--once`` a bar of
    the rows exported out of those pending (`expect`); silent otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.rows = 0
        self.started = time.monotonic()
        self.line = ""
        self.bar: Any = None

    def expect(self, pending: int) -> None:
        """Show the rows exported from now on as a bar towards ``pending`` (on a terminal only)."""
        if self.enabled and self.bar is None:
            self.bar = progress_bar("exporting rows", total=pending or None, unit="row", stream=self.stream)

    def batch(self, task_id: int, domain: str, account_id: int, rows: int, quota_left: int | None) -> None:
        self.rows += rows
        if not self.enabled:
            return
        if self.bar is not None:
            quota = quota_left if quota_left is not None else "?"
            self.bar.set_postfix_str(f"task {task_id} {domain}, account {account_id}, quota left {quota}",
                                     refresh=False)
            self.bar.update(rows)
            return
        rate = self.rows / max(time.monotonic() - self.started, 1e-3)
        self.line = (f"task {task_id} {domain}: {self.rows} rows exported, {rate:,.0f} rows/s,"
                     f" account {account_id}, quota left {quota_left if quota_left is not None else '?'}")
        self.draw()

    def draw(self) -> None:
        if self.bar is not None:
            self.bar.refresh()
        elif self.enabled and self.line:
            self.stream.write("\r\x1b[K" + self.line)
            self.stream.flush()

    def clear(self) -> None:
        if self.bar is not None:
            self.bar.clear()
        elif self.enabled and self.line:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        """Take the line or the bar off the screen for good."""
        if self.bar is not None:
            self.bar.clear()  # tqdm's close leaves a bar that only `draw` drew (before its delay) on the screen
            self.bar.close()
            self.bar = None
        self.clear()


class _ProgressAwareHandler(logging.StreamHandler):
    """Log lines go above the progress line instead of through it."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(progress.stream)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.clear()
        super().emit(record)
        self.progress.draw()


class ExportService:
    def __init__(self, config: Config, settings: ExporterSettings, *, progress: Progress | None = None) -> None:
        self.config = config
        self.settings = settings
        self.progress = progress or Progress(sys.stderr)
        self.stopping = threading.Event()
        self.export_dir = _prepare_export_dir(config.export_dir)
        self.disk = Outage(f"export directory {self.export_dir}", logger, cap=DISK_BACKOFF_CAP)
        self.conn: Any = None
        self.worker: Worker | None = None
        self._held: Claim | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        self.conn = connect(self.config.mysql)
        self.worker = Worker.start(self.config.mysql, self.settings.worker_name)
        self.accounts = AccountManager(self.conn, quota_day=self.config.quota_day)
        self.scheduler = TaskScheduler(self.conn, self.worker, self.accounts, lease_seconds=self.settings.lease_seconds)
        self.batches = BatchExporter(self.conn, self.scheduler, self.accounts, self.export_dir,
                                     batch_size=self.settings.batch_size,
                                     stream_connect=lambda: connect(self.config.mysql))

    def close(self) -> None:
        self.progress.close()
        for closable in (getattr(self, "batches", None), self.worker, self.conn):
            if closable is not None:
                try:
                    closable.close()
                except Exception:  # noqa: BLE001 - closing a dead connection is fine
                    pass

    def stop(self, *_: Any) -> None:
        """Signal handler: finish the current batch, give the task back, exit."""
        if not self.stopping.is_set():
            logger.info("stopping after the current batch")
        self.stopping.set()

    def run(self) -> int:
        """Export until stopped (with ``--once``: until nothing can be exported now). A database that
        goes away at any moment is waited for, with back-off, and the work goes on where its
        fence and the batches' recovery say it stands."""
        outage = Outage("MySQL", logger, cap=OUTAGE_BACKOFF_CAP)
        recovered = left = False
        while not self.stopping.is_set():
            try:
                if self._held is not None:
                    self._give_back()
                if not recovered:
                    self.startup_recovery()
                    recovered = True
                    if self.settings.once and self.progress.enabled:  # the rows waiting: a kept count
                        self.progress.expect(sum(counts.pending_by_domain(self.conn).values()))
                worked = self.tick()
                if not worked and self.settings.once:
                    left = self.work_left()
                    outage.recovered()
                    break
            except DatabaseUnavailable as exc:  # ConnectionLost included
                self.stopping.wait(outage.failed(exc))
                self._reconnect()
                continue
            except ExportDiskFault as exc:  # the batches stay reserved; the next tick's recovery tries them again
                self.stopping.wait(self.disk.failed(exc))
                continue
            except DatabaseError as exc:  # e.g. lock waits that outlasted every retry: the task is given back
                outage.recovered()
                logger.error("MySQL error: %s; trying again in %.0fs", exc, ERROR_BACKOFF_SECONDS)
                self.stopping.wait(ERROR_BACKOFF_SECONDS)
                continue
            outage.recovered()
            if not worked:
                self.stopping.wait(self.settings.poll_interval)
        logger.info("exporter exits: %d rows exported by this process%s", self.progress.rows,
                    "; export work remains (waiting for quota or held by another exporter)" if left else "")
        return EXIT_WORK_LEFT if left else EXIT_OK

    def startup_recovery(self) -> None:
        self.scheduler.recover()
        self._recover_batches()
        self.batches.clean_temp_files()

    def tick(self) -> bool:
        """Finish orphaned batches, claim one export task (the claim recovers dead workers' tasks
        first) and run it as far as it goes; False if nothing to claim.

        A batch file that cannot be written gives the task back at once (no attempt counted) and
        raises `ExportDiskFault`: its reserved batches are then orphans that the next tick's
        recovery publishes before anything is claimed, so a disk fault holds up no account and
        costs no claim per retry.
        """
        self._recover_batches()
        claim = self.scheduler.claim("export")
        if claim is None:
            return False
        self._held = claim  # until drive returns: a lost connection leaves it to be given back
        try:
            self.drive(claim)
        except ExportDiskFault as exc:
            self._give_back(f"the export directory cannot be written ({exc.code or 'OSError'})")
            raise
        self._held = None
        return True

    # -- one task ---------------------------------------------------------------------------

    def drive(self, claim: Claim) -> None:
        """Export batches for a claim until the task completes, pauses or the service stops.

        Files are written in the background while the next batch is reserved (see
        exporter/batches.py); every change of the task's state waits for the batch in flight.
        """
        beaten = time.monotonic()  # the claim itself set the lease
        try:
            self._recover_batches(task_id=claim.task_id)
            while True:
                if self.stopping.is_set():
                    self._batches_done(self.batches.drain())
                    self.scheduler.release(claim, "exporter stopped by signal")
                    return
                reservation = self.batches.export_next(claim)
                self._batches_done(reservation.finished)
                if reservation.batch is not None:
                    # Every reserve is fenced by the task row; the lease only needs renewing well
                    # before it runs out, not a commit (and an fsync) per batch.
                    if time.monotonic() - beaten >= self.settings.lease_seconds / HEARTBEATS_PER_LEASE:
                        if not self.scheduler.heartbeat(claim):
                            raise ClaimLost(f"task {claim.task_id} is no longer held by {claim.worker_id}")
                        beaten = time.monotonic()
                    continue
                next_claim = self._no_batch(claim, reservation)
                if next_claim is None:
                    return
                claim = next_claim
        except ClaimLost as exc:
            self._batches_done(self.batches.drain(quiet=True))
            logger.warning("%s; leaving it to its new holder", exc, extra={"task_id": claim.task_id})
        except ExportDiskFault:
            raise  # the service gives the task back and backs off (tick, run)
        except (OSError, ExporterError) as exc:
            self._batches_done(self.batches.drain(quiet=True))
            logger.error("task %s: export failed: %s; retrying in %.0fs", claim.task_id, exc, ERROR_BACKOFF_SECONDS,
                         extra={"task_id": claim.task_id, "account_id": claim.account_id})
            try:
                self.scheduler.pause(claim, None, f"export error: {exc}", resume_after=ERROR_BACKOFF_SECONDS)
            except ClaimLost:
                pass
        finally:
            self._batches_done(self.batches.drain(quiet=True))  # after any other error, too

    def _recover_batches(self, *, task_id: int | None = None) -> None:
        """Publish the reserved batches no live worker is publishing (`BatchExporter.recover`)."""
        if self.batches.recover(task_id=task_id):
            self.disk.recovered()

    def _batches_done(self, batches: tuple[Batch, ...]) -> None:
        if batches:
            self.disk.recovered()  # a file was written: a disk fault, if one was going on, is over
        for batch in batches:
            logger.info(
                "task %s: exported %d %s rows (ids %d-%d) with account %s to %s; quota left %s",
                batch.task_id, batch.count, batch.domain, batch.first_id, batch.last_id, batch.account_id,
                batch.file_path, batch.quota_left,
                extra={"task_id": batch.task_id, "account_id": batch.account_id, "export_log_id": batch.id},
            )
            self.progress.batch(batch.task_id, batch.domain, batch.account_id, batch.count, batch.quota_left)

    def _no_batch(self, claim: Claim, reservation: Reservation) -> Claim | None:
        """The task cannot go on with this account: complete it, or relay to the next account."""
        marker = id_marker(reservation.last_id)
        if reservation.stop == NO_ROWS_LEFT:
            self.scheduler.complete(claim, f"no pending rows left after {marker}")
            return None
        if reservation.stop == LIMIT_REACHED:
            self.scheduler.complete(claim, f"export limit of {claim.task.export_limit} rows reached at {marker}")
            return None
        assert reservation.stop in (QUOTA_SPENT, ACCOUNT_DISABLED)
        # The seed's relay: the account goes back to idle (full for today) and the next ready
        # account with quota continues from the marker; with none, the task pauses there and is
        # claimed again by itself once some account has quota (the next quota day).
        why = f"account {claim.account_id} " + ("export quota spent for today" if reservation.stop == QUOTA_SPENT
                                                 else "disabled")
        next_claim = self.scheduler.switch_account(claim, why, at_marker=marker)
        if next_claim is None:
            self.scheduler.pause(claim, marker, why, resume_after=0)
            logger.info("task %s paused at %s: no account has export quota left today; it resumes by itself"
                        " when the quota day turns", claim.task_id, marker, extra={"task_id": claim.task_id})
            return None
        logger.info("task %s continues from %s with account %s (was account %s)", claim.task_id, marker,
                    next_claim.account_id, claim.account_id,
                    extra={"task_id": claim.task_id, "account_id": next_claim.account_id})
        return next_claim

    # -- helpers ----------------------------------------------------------------------------

    def work_left(self) -> bool:
        with transaction(self.conn) as cursor:
            return tasks.count_unfinished(cursor, "export") + exports.count_reserved(cursor) > 0

    def _reconnect(self) -> None:
        """Reconnect and re-take the worker lock; quiet while the database is still away."""
        try:
            ensure_connected(self.conn)
            if self.worker is not None:
                self.worker.ensure_alive()
        except DatabaseError as exc:
            logger.debug("MySQL still unreachable: %s", exc)

    def _give_back(self, reason: str = "the connection to MySQL was lost") -> None:
        """Give back the task a lost connection (or a disk fault) interrupted, before claiming
        anything: this worker holds its lock again, so no recovery would take the task before its
        lease ran out. Its fence decides (someone else may hold it by now)."""
        try:
            self.scheduler.release(self._held, reason)
        except ClaimLost:
            pass
        self._held = None


def _prepare_export_dir(path: Path) -> Path:
    root = path.expanduser().absolute()
    if len(str(root)) > EXPORT_DIR_MAX:
        raise ConfigError("INFLUENCERS_EXPORT_DIR", f"path longer than {EXPORT_DIR_MAX} characters")
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)  # the files hold contact data (an existing one is kept as is)
    except OSError as exc:
        raise ConfigError("INFLUENCERS_EXPORT_DIR", f"cannot create {root}: {exc.strerror}") from None
    if not root.is_dir():
        raise ConfigError("INFLUENCERS_EXPORT_DIR", f"{root} is not a directory")
    return root


# -- command line ---------------------------------------------------------------------------------


_positive_int = positive_int
_positive_float = seconds  # finite, more than 0, at most a day: `inf` overflowed the wait


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m exporter", description="The export service.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="claim export tasks and export them (runs until stopped)")
    run.add_argument("--once", action="store_true",
                     help="export what can be exported now, then exit (3 if work remains)")
    run.add_argument("--poll-interval", type=_positive_float, default=DEFAULT_POLL_INTERVAL, metavar="S",
                     help=f"seconds between looks for work when idle (default {DEFAULT_POLL_INTERVAL:g})")
    run.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE, metavar="N",
                     help=f"rows per file at most (default {DEFAULT_BATCH_SIZE})")
    run.add_argument("--worker-name", default=DEFAULT_WORKER_NAME, metavar="X",
                     help="prefix of this process's worker id (default exporter)")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _configure_logging(progress: Progress, verbose: bool) -> None:
    handler = _ProgressAwareHandler(progress)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = Progress(sys.stderr)
    _configure_logging(progress, args.verbose)
    settings = ExporterSettings(batch_size=args.batch_size, poll_interval=args.poll_interval,
                                worker_name=args.worker_name, once=args.once)
    service: ExportService | None = None
    try:
        service = ExportService(get_config(), settings, progress=progress)
        signal.signal(signal.SIGTERM, service.stop)
        signal.signal(signal.SIGINT, service.stop)
        service.open()
        return service.run()
    except (ConfigError, DatabaseUnavailable, SchemaMissing) as exc:
        progress.clear()
        print(f"exporter: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except InfluencersError as exc:
        progress.clear()
        print(f"exporter: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if service is not None:
            service.close()
