"""The crawl's claims: its mode, the loop that fills its slots, the heartbeats that keep the leases.

* domain mode (``-a domain=X`` or ``-a task_id=N``): one slot, for that task. When it cannot be
  claimed now and waiting can help (no idle account yet, paused until later), keep trying for
  ``INGEST_CLAIM_WAIT`` seconds; otherwise close with the reason. A run that ends paused for no
  longer than that waits to be claimed again; any other end closes the crawl.
* service mode (no arguments): ``INGEST_MAX_TASKS`` slots (0, the default: as many as the pool
  has idle accounts for claimable tasks), any claimable ingestion task, looked
  for every ``INGEST_POLL_INTERVAL`` seconds; with ``-a once=1`` the crawl closes when nothing is
  left to claim. Dead workers' tasks are recovered between claims, at most once per
  `taskdb.LIVENESS_CHECK_EVERY`.

A slot is a run that holds an account (`TaskRun.holds_slot`): a run that handed its account back
while its last pages commit leaves its slot to the next claim. Every INGEST_HEARTBEAT_INTERVAL
each run's lease is renewed; a lease found lost stops its run (in domain mode the crawl then
tries to claim its task again: a claim lost to a long database outage is recovered and goes on).

While the database is unreachable a claim or a heartbeat fails quietly (the crawl's
`SharedOutage` has said so once) and the next poll or beat is the retry.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from influencers.core.errors import DatabaseUnavailable
from influencers.extensions.runs import Gate
from influencers.ingest.reasons import CloseReason
from influencers.ingest.run import RunOutcome

if TYPE_CHECKING:
    from influencers.core.tasks import Claim
    from influencers.extensions.taskdb import TaskDatabase
    from influencers.ingest.run import TaskRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """What the service does after a round of claims or a run's end."""

    nothing_claimable: bool = False  # the last claim came back empty
    close: CloseReason | None = None  # close the crawl, for this reason
    refill: bool = False  # claim again now (a slot is free)


class Claiming:
    def __init__(self, tasks: TaskDatabase, *, target_task: int | None, once: bool, max_tasks: int,
                 claim_wait: float, retry_after: float = 300.0) -> None:
        """``retry_after``: seconds a task that could not start (its adapter raised) rests."""
        self.tasks = tasks
        self.retry_after = retry_after
        self.target_task = target_task
        self.once = once
        # 0: as many as there are idle accounts and claimable tasks (claims stop at the first miss)
        self.slots = 1 if target_task is not None else (max_tasks or math.inf)
        self.claim_wait = claim_wait
        self.filled: Gate | None = None  # open when no claim is being made
        self._filling = False
        self._beating = False
        self._waiting_since: float | None = None

    @property
    def domain_mode(self) -> bool:
        return self.target_task is not None

    async def fill(self, runs: dict[int, TaskRun], accepting: Callable[[], bool],
                   begin: Callable[[Claim, set[int]], None]) -> Step:
        """Claim while fewer ``runs`` than slots hold an account and the crawl is ``accepting``;
        ``begin`` starts a run from a claim and the pages its task committed before."""
        if self._filling or not accepting():
            return Step()
        self._filling = True
        filled = self.filled = Gate()
        try:
            while sum(run.holds_slot for run in runs.values()) < self.slots and accepting():
                claim, committed = await self.tasks.claim(self.target_task)
                if claim is None:
                    return Step(True, None if runs else await self._nothing_claimable())
                if not accepting():  # a stop arrived while we were claiming
                    await self.tasks.release(claim, "worker stopping")
                    break
                self._waiting_since = None
                try:
                    begin(claim, committed)
                except Exception as exc:  # noqa: BLE001 - e.g. the adapter cannot build its first request
                    runs.pop(claim.task_id, None)
                    await self._could_not_start(claim, exc)
        except DatabaseUnavailable as exc:  # the outage is logged once; the next poll tries again
            logger.debug("claiming failed: %s", exc)
        except Exception as exc:  # noqa: BLE001 - the database hiccuped: the next poll tries again
            logger.error("claiming failed: %s", exc)
        finally:
            self._filling = False
            filled.open()
        return Step()

    async def _could_not_start(self, claim: Claim, error: Exception) -> None:
        """Pause the task for ``retry_after`` seconds with the reason, an attempt counted: given
        back at once, it was claimed again every poll for ever, and never failed."""
        reason = f"could not start: {type(error).__name__}: {error}"[:500]
        logger.error("task %s %s; paused for %.0fs", claim.task_id, reason, self.retry_after,
                     extra={"task_id": claim.task_id})
        await self.tasks.pause(claim, reason, resume_after=self.retry_after, count_attempt=True)

    async def _nothing_claimable(self) -> CloseReason | None:
        if self.target_task is None:
            if not self.once:
                return None
            logger.info("no claimable ingestion task left; stopping (once=1)")
            return CloseReason.QUEUE_EMPTY
        why = await self.tasks.why_unclaimable(self.target_task)
        now = time.monotonic()
        extra = {"task_id": self.target_task}
        if self._waiting_since is None:
            self._waiting_since = now
            logger.info("task %s cannot be claimed now: %s", self.target_task, why.message, extra=extra)
        if not why.can_wait:
            return why.code
        if now - self._waiting_since >= self.claim_wait:
            logger.warning("task %s: gave up after waiting %.0fs: %s", self.target_task, self.claim_wait,
                           why.message, extra=extra)
            return CloseReason.NOT_CLAIMABLE
        return None

    async def beat(self, runs: dict[int, TaskRun], lost: Callable[[int, str], None]) -> None:
        """Renew the lease of every run that needs it; ``lost(task_id, reason)`` for each one
        that is gone (expired, or taken over by another worker)."""
        if self._beating:
            return
        self._beating = True
        try:
            for run in list(runs.values()):
                if not run.needs_heartbeat:
                    continue
                try:
                    alive = await self.tasks.heartbeat(run.claim)
                except DatabaseUnavailable as exc:  # the outage is logged once
                    logger.debug("heartbeat for task %s failed: %s", run.task_id, exc)
                    continue
                except Exception as exc:  # noqa: BLE001 - try again at the next beat
                    logger.warning("heartbeat for task %s failed: %s", run.task_id, exc)
                    continue
                if not alive:
                    lost(run.task_id, "the lease was lost (expired or taken over)")
        finally:
            self._beating = False

    def after_run(self, run: TaskRun, resume_after: float | None, accepting: bool) -> Step:
        """A run ended. Service mode: claim the next task. Domain mode: close, unless the task is
        paused for at most INGEST_CLAIM_WAIT (then the poll claims it again when it can) or its
        claim was lost (then claim it again now: why it cannot be claimed, if so, closes the crawl
        with that reason)."""
        if not self.domain_mode:
            return Step(refill=True)
        if run.outcome is RunOutcome.LOST and accepting:
            self._waiting_since = None
            logger.info("task %s: claiming it again", run.task_id, extra={"task_id": run.task_id})
            return Step(refill=True)
        if run.outcome is RunOutcome.PAUSED and resume_after is not None and resume_after <= self.claim_wait \
                and accepting:
            self._waiting_since = time.monotonic()
            logger.info("task %s: waiting up to %.0fs for an account to come back", run.task_id, self.claim_wait)
            return Step()
        assert run.outcome is not None
        return Step(close=CloseReason.after(run.outcome))
