"""Why a crawl closes, and why a task cannot be claimed now: codes for machines, messages for people.

`CloseReason` values are what Scrapy records as ``finish_reason`` (scripts, Scrapyd and the tests
read them). `Unclaimable` pairs such a code with the line the log shows and whether waiting can
help (``INGEST_CLAIM_WAIT``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from influencers.ingest.run import RunOutcome

if TYPE_CHECKING:
    from influencers.core.tasks import Task


class CloseReason(StrEnum):
    FINISHED = "finished"  # domain mode: the task completed
    QUEUE_EMPTY = "queue_empty"  # service mode with once=1: nothing left to claim
    NOT_CLAIMABLE = "not_claimable"  # domain mode: still not claimable after INGEST_CLAIM_WAIT
    CLAIM_LOST = "claim_lost"
    CANNOT_START = "cannot_start"  # a bad argument, setting or environment variable
    SECRET_KEY = "secret_key"  # the key cannot decrypt the stored passwords
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_BUSY = "task_busy"
    TASK_PAUSED = "task_paused"  # by an operator: only `task resume` restarts it
    NO_USABLE_ACCOUNT = "no_usable_account"
    # domain mode: the task's run ended otherwise
    FAILED = "failed"
    PAGES_FAILED = "pages_failed"
    PAUSED = "paused"
    RELEASED = "released"
    ERROR = "error"

    @classmethod
    def after(cls, outcome: RunOutcome) -> CloseReason:
        """The reason a domain-mode crawl closes with once its task's run ended so."""
        if outcome is RunOutcome.COMPLETED:
            return cls.FINISHED
        if outcome is RunOutcome.LOST:
            return cls.CLAIM_LOST
        return cls(outcome.value)


@dataclass(frozen=True)
class Unclaimable:
    code: CloseReason  # what the crawl closes with when it gives up on the task
    message: str
    can_wait: bool  # it may become claimable by itself (a pause ends, an account comes back)


def task_unclaimable(task: Task) -> Unclaimable | None:
    """Reasons in the task itself: completed, failed, or held by another worker. None: look
    further (`pause_or_account_unclaimable`)."""
    if task.status == "completed":
        return Unclaimable(CloseReason.TASK_COMPLETED, "task completed: nothing left to crawl", False)
    if task.status == "failed":
        return Unclaimable(CloseReason.TASK_FAILED, f"task failed: {task.last_error or 'see its events'}", False)
    if task.status == "in_progress":
        return Unclaimable(CloseReason.TASK_BUSY, f"task busy: held by worker {task.claimed_by}", False)
    return None


def pause_or_account_unclaimable(task: Task, *, paused_until_later: bool, paused_by_operator: bool,
                                 account_wait: float | None) -> Unclaimable:
    """Reasons in its pause or in the account pool. ``account_wait``: seconds until an account
    may be free (None: none is usable at all)."""
    if task.status == "paused" and paused_by_operator:
        return Unclaimable(CloseReason.TASK_PAUSED,
                           f"task paused: {task.last_error or 'by an operator'} (resume it first)", False)
    if task.status == "paused" and paused_until_later:
        return Unclaimable(CloseReason.NOT_CLAIMABLE, f"task paused until later: {task.last_error}", True)
    if account_wait is None:
        return Unclaimable(CloseReason.NO_USABLE_ACCOUNT,
                           "no usable account: none exists or all are disabled (add or enable one)", False)
    return Unclaimable(CloseReason.NOT_CLAIMABLE, f"no idle account yet (one may be free in {account_wait:.0f}s)",
                       True)
