"""`python -m influencers scheduler`: fire the schedules' occurrences (`influencers.core.schedules`).

A long-lived process that every ``--interval`` seconds asks the core to handle whatever is due.
Run as many as you like (one per machine, for availability): each occurrence is handled in one
transaction under the schedule's row lock, so exactly one of them fires it, and a scheduler killed
at any point leaves nothing half done. Started after downtime it catches up: the occurrences
missed meanwhile are fired once or skipped, as each schedule says.

MySQL may go away at any moment: the round it cuts short is abandoned (its transaction rolled
back) and the process waits, one WARNING when MySQL goes and one INFO when it is back, reconnecting
with back-off up to OUTAGE_BACKOFF_CAP seconds. SIGTERM and SIGINT end it after the current round.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
from typing import Any

from influencers.argtypes import seconds
from influencers.core.db import ensure_connected
from influencers.core.errors import DatabaseError, DatabaseUnavailable
from influencers.core.outage import Outage
from influencers.core.schedules import Run, ScheduleStore

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0
OUTAGE_BACKOFF_CAP = 10.0  # seconds between reconnection attempts at most while MySQL is away


class SchedulerService:
    """The loop: a round, a wait; an outage waited out however long it lasts."""

    def __init__(self, store: ScheduleStore, *, actor: str, cursor_listing: bool = False) -> None:
        self.store = store
        self.actor = actor
        self.cursor_listing = cursor_listing

    def run(self, interval: float, stop: threading.Event, *, once: bool = False) -> int:
        """Rounds every ``interval`` seconds until ``stop`` is set (one round with ``once``,
        after any outage it meets); always 0: every failure is logged and retried."""
        outage = Outage("MySQL", logger, cap=OUTAGE_BACKOFF_CAP)
        while not stop.is_set():
            try:
                self._round(outage)
            except DatabaseUnavailable as exc:  # ConnectionLost included
                if stop.wait(outage.failed(exc)):
                    return 0
                continue
            if once or stop.wait(interval):
                return 0
        return 0

    def _round(self, outage: Outage) -> None:
        try:
            ensure_connected(self.store.conn)
            outage.recovered()
            for run in self.store.fire_due(actor=self.actor, cursor_listing=self.cursor_listing):
                log_run(run)
        except DatabaseUnavailable:
            raise
        except DatabaseError as exc:
            logger.warning("round skipped: %s", exc)


def log_run(run: Run) -> None:
    """One INFO line per recorded occurrence: what the operator reads in the scheduler's log."""
    what = f"task {run.task_id}" if run.task_id else run.outcome
    logger.info("schedule %s (%s) occurrence %s UTC: %s%s", run.schedule_id, run.name, run.occurrence_at, what,
                f" ({run.reason})" if run.reason else "", extra={"schedule_id": run.schedule_id, "task_id": run.task_id})


def cmd_scheduler(args: argparse.Namespace, ctx: Any) -> int:
    from influencers.sites.base import pages_with_cursors  # a bad adapter path is exit 2 at start

    cursor_listing = pages_with_cursors(ctx.config.site_adapter)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # the service's log says what it fired
    actor = f"scheduler:{socket.gethostname()[:40]}:{os.getpid()}"
    service = SchedulerService(ScheduleStore(ctx.conn, ctx.config.quota_day), actor=actor,
                               cursor_listing=cursor_listing)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    logger.info("scheduler %s firing due schedules every %gs (times in %s)", actor, args.interval,
                ctx.config.tz_name)
    code = service.run(args.interval, stop, once=args.once)
    logger.info("scheduler %s stopped", actor)
    return code


def register(commands: Any) -> None:
    """Add `scheduler` to the CLI's sub-parsers."""
    parser = commands.add_parser(
        "scheduler", help="fire the schedules' crawls and exports when due (run one or several)",
        description="Every --interval seconds, start the task of each schedule that is due (see `schedule add`)."
                    " Several may run at once: each occurrence fires exactly once. Occurrences missed while"
                    " none ran are fired once or skipped, as each schedule's --missed says.",
    )
    parser.add_argument("--interval", type=seconds, default=DEFAULT_INTERVAL,
                        help="seconds between rounds (default %(default)s)")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    parser.set_defaults(handler=cmd_scheduler)
