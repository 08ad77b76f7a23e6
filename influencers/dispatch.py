"""`python -m influencers dispatch`: hand pending ingestion subtasks to Scrapyd nodes.

The task scheduler's bridge to Scrapyd (DESIGN.md, Scale). Every round it

1. runs the scheduler's normal `recover()`, so a subtask whose job died (its worker's
   GET_LOCK connection closed) or got stuck (lease expired) is pending again;
2. asks every node for `daemonstatus.json` (running + pending jobs, all projects) and
   `listjobs.json?project=…` (which of our job ids it knows and in which state); a node that
   is down, refuses the credentials (401), answers 5xx or not JSON, or lacks the project is
   logged in one line and skipped for this round and, backing off, for a few more;
3. withdraws dispatches whose job ended without claiming its subtask (the job is `finished`
   on its node while the subtask is still claimable), or that the node does not know
   `UNKNOWN_JOB_GRACE` seconds after the handing-over (lost history, or a dispatcher that died
   between recording and scheduling);
4. hands claimable subtasks to the node with the most free slots (`--slots` minus running and
   pending there), at most as many as there are idle accounts not already promised to a
   dispatched job, each as `schedule.json` with `task_id` and a job id of our own
   (`task<id>-<random>`).

Never twice: the handing-over is recorded *before* `schedule.json` is called, in one
transaction that holds the subtask's row lock and checks that no dispatch is outstanding, so
two dispatchers cannot both pick a subtask. The record is the subtask's own row
(`tasks.dispatch_job`, `dispatch_node`, `dispatched_at`, owned by `influencers.core.tasks`),
with a `dispatched` event for the history (reason `scrapyd job <job id> on <node URL>`). A
claim consumes it; a recovery, release, pause or resume and our own `undispatched` end it. A
`schedule.json` that certainly did not
schedule (refused connection, HTTP error, `status: error`) is withdrawn at once; one whose
answer was lost (read timeout) stays outstanding until `listjobs.json` says what happened.

MySQL may go away at any moment (a restart, a fail-over): the round it cuts short is abandoned
and the dispatcher waits, one WARNING when MySQL goes and one INFO when it is back (with how
long), reconnecting with back-off up to OUTAGE_BACKOFF_CAP seconds. A record the outage left
behind for a job that was never scheduled (the connection broke while it was committed, or
before a failed `schedule.json` could be withdrawn) is withdrawn as soon as MySQL answers, through
its job id, which is its fence. (Jobs that rode a server restart out are not taken for dead while
they reconnect: the scheduler's recovery trusts free worker locks only once the server has been up
a while, `LOCK_GRACE_SECONDS`.)

Credentials come from the node URL (`http://user:pass@host:6800`) or from SCRAPYD_USERNAME /
SCRAPYD_PASSWORD (via `influencers.core.config`); messages show node URLs without them.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from influencers.argtypes import positive_int, seconds
from influencers.core import accounts, outages, tasks
from influencers.core.config import Config
from influencers.core.db import ensure_connected, run_transaction
from influencers.core.errors import DatabaseError, DatabaseUnavailable, InvalidArgument
from influencers.core.outage import Outage
from influencers.core.tasks import Dispatch, TaskScheduler
from influencers.scrapyd_nodes import (  # noqa: F401 - the dispatcher's public names, as before
    DEFAULT_SLOTS,
    AnswerLost,
    Node,
    NodeError,
    NodeState,
    ScrapydClient,
    choose_node,
    pair_slots,
    parse_answer,
    parse_node,
    strip_credentials,
)

logger = logging.getLogger(__name__)

DEFAULT_PROJECT = "influencers"
DEFAULT_INTERVAL = 5.0
UNKNOWN_JOB_GRACE = 90.0  # seconds after which a job its node does not know is given up
MAX_BACKOFF = 30.0  # a failing node is polled again after at most this many seconds
OUTAGE_BACKOFF_CAP = 10.0  # seconds between reconnection attempts at most while MySQL is away
LOST_RECORD = "the connection to MySQL broke while the handing-over was recorded; the job was never scheduled"

_REASON = re.compile(r"^scrapyd job (?P<job>\S+) on (?P<node>\S+)")


# -- the record of handing-over ----------------------------------------------------------------


def dispatch_reason(job_id: str, node: Node) -> str:
    return f"scrapyd job {job_id} on {node.url}"


def parse_dispatch_reason(reason: str | None) -> tuple[str, str] | None:
    match = _REASON.match(reason or "")
    return (match["job"], match["node"]) if match else None


def verdict(dispatch: Dispatch, states: dict[str, NodeState], grace: float) -> str | None:
    """Why a dispatch should be withdrawn now, or None to leave it out.

    Only a node that answered this round can say a job is over; a job still pending or running
    keeps its dispatch, however long it takes.
    """
    state = states.get(dispatch.node_url)
    if state is None:
        return None
    where = state.jobs.get(dispatch.job_id)
    if where in ("pending", "running"):
        return None
    if where == "finished":
        return f"scrapyd job {dispatch.job_id} on {dispatch.node_url} ended without claiming the task"
    if dispatch.age >= grace:
        return f"scrapyd job {dispatch.job_id} is unknown to {dispatch.node_url} {dispatch.age:.0f}s after dispatch"
    return None


class DispatchLedger:
    """The dispatcher's transactions over the subtasks' dispatch record (`influencers.core.tasks`)."""

    def __init__(self, conn: Any, actor: str) -> None:
        self.conn = conn
        self.actor = actor

    def outstanding(self) -> list[Dispatch]:
        return run_transaction(self.conn, tasks.outstanding_dispatches)

    def idle_accounts(self) -> int:
        return run_transaction(self.conn, accounts.count_ready)

    def candidates(self, limit: int) -> list[int]:
        """Claimable subtasks not out on dispatch, oldest first."""
        if limit <= 0:
            return []
        return run_transaction(self.conn, lambda cursor: tasks.dispatch_candidates(cursor, limit))

    def reserve(self, task_id: int, node: Node, job_id: str) -> Dispatch | None:
        """Record the handing-over under the subtask's row lock; None if it is no longer free to go."""
        return run_transaction(self.conn, lambda cursor: tasks.record_dispatch(
            cursor, task_id, job_id, node.url, self.actor, dispatch_reason(job_id, node)))

    def withdraw(self, dispatch: Dispatch, reason: str) -> bool:
        """End a dispatch, if it is still the subtask's current one (and the subtask unclaimed)."""
        return run_transaction(self.conn, lambda cursor: tasks.withdraw_dispatch(cursor, dispatch, self.actor, reason))

    def node_down(self, node: Node, problem: str) -> None:
        """Tell the alerter the node does not answer (`influencers.core.outages`)."""
        outages.report(self.conn, f"scrapyd {node.url}", self.actor, problem)

    def node_up(self, node: Node) -> None:
        outages.clear(self.conn, f"scrapyd {node.url}", self.actor)


# -- the dispatcher ----------------------------------------------------------------------------


@dataclass
class RoundResult:
    dispatched: list[tuple[int, str, str]] = field(default_factory=list)  # task, job, node
    withdrawn: list[tuple[int, str]] = field(default_factory=list)  # task, reason
    answered: list[str] = field(default_factory=list)  # nodes that answered
    failed: dict[str, str] = field(default_factory=dict)  # node -> problem


class Dispatcher:
    def __init__(self, ledger: DispatchLedger, scheduler: TaskScheduler, client: ScrapydClient, nodes: Sequence[Node],
                 *, project: str = DEFAULT_PROJECT, grace: float = UNKNOWN_JOB_GRACE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not nodes:
            raise InvalidArgument("give at least one --scrapyd URL")
        urls = [node.url for node in nodes]
        if len(set(urls)) != len(urls):
            raise InvalidArgument("a Scrapyd node is given twice")
        self.ledger = ledger
        self.scheduler = scheduler
        self.client = client
        self.nodes = list(nodes)
        self.project = project
        self.grace = grace
        self.clock = clock
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._starved = False
        self._warned: set[str] = set()
        self._unsent: dict[str, tuple[Dispatch, str]] = {}  # job id -> a record of a job never scheduled, why

    def run_round(self, interval: float = DEFAULT_INTERVAL) -> RoundResult:
        result = RoundResult()
        self.scheduler.recover()
        self._withdraw_unsent(result)
        states = self._poll(result, interval)
        outstanding = self._settle(self.ledger.outstanding(), states, result)
        budget = self.ledger.idle_accounts() - len(outstanding)
        free = sum(max(0, state.free) for state in states.values())
        candidates = self.ledger.candidates(min(budget, free))
        self._note_starved(budget, free)
        for task_id in candidates:
            if not self._hand_over(task_id, states, result, interval):
                break
        return result

    def _poll(self, result: RoundResult, interval: float) -> dict[str, NodeState]:
        states: dict[str, NodeState] = {}
        now = self.clock()
        for node in self.nodes:
            if self._retry_at.get(node.url, 0) > now:
                result.failed[node.url] = "backing off after an earlier failure"
                continue
            try:
                states[node.url] = self.client.status(node, self.project)
            except NodeError as exc:
                self._node_failed(node, str(exc), result, interval)
                continue
            if node.url in self._backoff:
                logger.info("scrapyd node %s answers again", node.url)
                self._tell_alerter(self.ledger.node_up, node)
            self._backoff.pop(node.url, None)
            self._retry_at.pop(node.url, None)
            result.answered.append(node.url)
        return states

    def _node_failed(self, node: Node, problem: str, result: RoundResult, interval: float) -> None:
        backoff = min(MAX_BACKOFF, max(interval, self._backoff.get(node.url, 0) * 2))
        self._backoff[node.url] = backoff
        self._retry_at[node.url] = self.clock() + backoff
        result.failed[node.url] = problem
        logger.warning("scrapyd node %s skipped: %s (next try in %.3gs)", node.url, problem, backoff,
                       extra={"node": node.url})
        self._tell_alerter(self.ledger.node_down, node, problem)

    @staticmethod
    def _tell_alerter(report: Callable[..., None], *args: Any) -> None:
        """An outage record that cannot be written is not worth the round (MySQL away still is)."""
        try:
            report(*args)
        except DatabaseUnavailable:
            raise
        except DatabaseError as exc:
            logger.debug("outage record not written: %s", exc)

    def _settle(self, dispatches: list[Dispatch], states: dict[str, NodeState], result: RoundResult) -> list[Dispatch]:
        """Withdraw dispatches whose jobs are over; the rest stay out."""
        known = {node.url for node in self.nodes}
        still_out = []
        for dispatch in dispatches:
            reason = verdict(dispatch, states, self.grace)
            if reason and self.ledger.withdraw(dispatch, reason):
                logger.info("task %s can be dispatched again: %s", dispatch.task_id, reason,
                            extra={"task_id": dispatch.task_id})
                result.withdrawn.append((dispatch.task_id, reason))
                continue
            if dispatch.node_url not in known and dispatch.job_id not in self._warned:
                self._warned.add(dispatch.job_id)
                logger.warning("task %s waits for job %s on %s, a node this dispatcher does not watch"
                               " (`task pause` then `task resume` releases it)", dispatch.task_id,
                               dispatch.job_id, dispatch.node_url, extra={"task_id": dispatch.task_id})
            still_out.append(dispatch)
        return still_out

    def _note_starved(self, budget: int, free: int) -> None:
        starved = budget <= 0 and free > 0 and bool(self.ledger.candidates(1))
        if starved and not self._starved:
            logger.info("claimable subtasks wait: no idle account left for another job")
        self._starved = starved

    def _hand_over(self, task_id: int, states: dict[str, NodeState], result: RoundResult, interval: float) -> bool:
        """Send one subtask to the freest node (trying the next on failure); False when no node has room."""
        while True:
            state = choose_node(states.values())
            if state is None:
                return False
            node = state.node
            job_id = f"task{task_id}-{secrets.token_hex(4)}"
            try:
                dispatch = self.ledger.reserve(task_id, node, job_id)
            except DatabaseError:
                # The commit may have happened before the connection broke: a record for a job
                # that will never exist, to be withdrawn once MySQL answers.
                self._unsent[job_id] = (Dispatch(task_id, job_id, node.url, 0.0), LOST_RECORD)
                raise
            if dispatch is None:
                return True  # taken meanwhile (another dispatcher, a service-mode spider, an operator)
            try:
                self.client.schedule(node, self.project, job_id, {"task_id": str(task_id)})
            except AnswerLost as exc:
                # It may be queued: leave the dispatch out; listjobs.json settles it next rounds.
                self._node_failed(node, f"{exc}; job {job_id} is checked in later rounds", result, interval)
                del states[node.url]
                return True
            except NodeError as exc:
                reason = f"schedule.json on {node.url} failed: {exc}"
                try:
                    self.ledger.withdraw(dispatch, reason)
                except DatabaseError:
                    self._unsent[job_id] = (dispatch, reason)
                    raise
                self._node_failed(node, str(exc), result, interval)
                del states[node.url]
                continue
            state.promised += 1
            result.dispatched.append((task_id, job_id, node.url))
            logger.info("task %s dispatched to %s as job %s", task_id, node.url, job_id, extra={"task_id": task_id})
            return True

    def _withdraw_unsent(self, result: RoundResult) -> None:
        """End the records of jobs that were never scheduled, left behind when MySQL went away;
        the job id is the fence, so a record that never committed or was ended meanwhile stays as it is."""
        for job_id, (dispatch, reason) in list(self._unsent.items()):
            if self.ledger.withdraw(dispatch, reason):
                logger.info("task %s can be dispatched again: %s", dispatch.task_id, reason,
                            extra={"task_id": dispatch.task_id})
                result.withdrawn.append((dispatch.task_id, reason))
            del self._unsent[job_id]

    def run(self, interval: float, stop: threading.Event, *, once: bool = False) -> int:
        """Rounds every `interval` seconds until `stop` is set; 1 if a single round found no node answering.

        A MySQL outage at any moment is waited out, however long it lasts (with `once` too): the
        round it cut short runs again from the start once MySQL answers."""
        outage = Outage("MySQL", logger, cap=OUTAGE_BACKOFF_CAP, clock=self.clock)
        while True:
            try:
                answered = self._guarded_round(interval, outage)
            except DatabaseUnavailable as exc:  # ConnectionLost included
                if stop.wait(outage.failed(exc)):
                    return 0
                continue
            if once:
                return 0 if answered else 1
            if stop.wait(interval):
                return 0

    def _guarded_round(self, interval: float, outage: Outage) -> bool:
        """One round on a live connection (reconnected if MySQL dropped it, which ends an outage).
        An unreachable MySQL is the caller's; other MySQL trouble is one log line and the next
        round tries again."""
        try:
            ensure_connected(self.ledger.conn)
            outage.recovered()
            return bool(self.run_round(interval).answered)
        except DatabaseUnavailable:
            raise
        except DatabaseError as exc:
            logger.warning("round skipped: %s", exc)
        return False


# -- command -----------------------------------------------------------------------------------


def nodes_from_args(urls: Sequence[str], slots: Sequence[int] | None, config: Config) -> list[Node]:
    default_auth = None
    if config.scrapyd_username:
        default_auth = (config.scrapyd_username, config.scrapyd_password or "")
    return [parse_node(url, count, default_auth) for url, count in zip(urls, pair_slots(urls, slots), strict=True)]


def cmd_dispatch(args: argparse.Namespace, ctx: Any) -> int:
    nodes = nodes_from_args(args.scrapyd, args.slots, ctx.config)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # the service's log says what it hands out
    actor = f"dispatch:{socket.gethostname()[:40]}:{os.getpid()}"
    dispatcher = Dispatcher(DispatchLedger(ctx.conn, actor), ctx.scheduler(), ScrapydClient(), nodes,
                            project=args.project)
    stop = threading.Event()
    if not args.once:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    logger.info("dispatching %s subtasks to %s every %gs", args.project,
                ", ".join(f"{node.url} ({node.slots} slots)" for node in nodes), args.interval)
    return dispatcher.run(args.interval, stop, once=args.once)


def register(commands: Any) -> None:
    """Add `dispatch` to the CLI's sub-parsers."""
    parser = commands.add_parser(
        "dispatch", help="hand pending ingestion subtasks to Scrapyd nodes",
        description="Hand claimable ingestion subtasks (from start_crawl) to Scrapyd nodes as "
                    "`schedule.json … task_id=ID` jobs, each subtask to one job at a time. Basic auth "
                    "from the URL (http://user:pass@host:6800) or SCRAPYD_USERNAME/SCRAPYD_PASSWORD.",
    )
    parser.add_argument("--scrapyd", action="append", required=True, metavar="URL",
                        help="a Scrapyd node; repeat for several")
    parser.add_argument("--slots", action="append", type=positive_int, metavar="N",
                        help=f"jobs (running + pending) a node may hold, e.g. its max_proc; once for all nodes "
                             f"or once per --scrapyd in order (default {DEFAULT_SLOTS})")
    parser.add_argument("--interval", type=seconds, default=DEFAULT_INTERVAL,
                        help="seconds between rounds (default %(default)s)")
    parser.add_argument("--project", default=DEFAULT_PROJECT, help="the Scrapyd project (default %(default)s)")
    parser.add_argument("--once", action="store_true", help="one round, then exit (1 if no node answered)")
    parser.set_defaults(handler=cmd_dispatch)
