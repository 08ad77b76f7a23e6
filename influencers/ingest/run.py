"""One claimed task being crawled: an explicit state machine around its `PagePlan` (pure logic).

The ingestion service (`influencers.extensions.ingestion`) does the I/O — the claim, heartbeats,
account switches, recording the task's end — and asks its `TaskRun` what to do: which pages to
request next, whether the account may go back to the pool now, whether the run's pages must be
written at once (it is *draining*), when the run ends and what to record then.

States (`RunState`) and the transitions that move between them::

    CLAIMED ──start──▶ READING ──begin_switch──▶ SWITCHING ──end_switch──▶ READING (or DRAINING)
    READING ──all pages fetched──▶ DRAINING ──begin_hand_back──▶ HANDING_BACK
    HANDING_BACK ──handed_back──▶ HANDED_BACK        HANDING_BACK ──hand_back_failed──▶ DRAINING
    READING | DRAINING | HANDED_BACK ──order_stop──▶ STOPPING
    SWITCHING | HANDING_BACK ──order_stop──▶ (the same; STOPPING once the account work ends)
    READING | DRAINING | HANDED_BACK | STOPPING ──begin_finish (its pages allow)──▶ FINISHING
    any state before FINISHING ──shut_down (the crawl closes)──▶ FINISHING
    FINISHING ──ended──▶ DONE | PAUSED | FAILED | RELEASED | LOST | ERROR

*Draining*: a run that reads no more pages holds something up until its fetched pages are
committed — its account (DRAINING), its stop (STOPPING), or, once its account is back in the pool
(HANDING_BACK, HANDED_BACK), only the crawl's end when no other run is reading; in that last case
its pages ride in the next full batch with the others' instead of a transaction of their own.

A run may hand its account back when all its pages are fetched, only in service mode, only while
the writes keep up with the crawl (a crawl that outruns its writes would only pile up pages), and
only while it holds an account. It finishes when every page is committed or failed and nothing is
in flight, or, after a stop, once nothing is in flight and nothing waits for the pipeline; never
while an account switch or a hand-back is under way (the claim those change is what it records).

Transitions a state does not allow: the caller's bugs raise `TransitionError` (`start` twice,
`ended` before `begin_finish`, the end of account work that never began); events that may
legitimately arrive late are ignored and say so by their return value (`order_stop` after the
first order: the first one wins; `begin_switch` while stopping, switching or with another
account; `begin_hand_back` when a hand-back is not allowed; `begin_finish` while waiting). Page
events (`page_fetched`, `pages_committed` …) always update the plan: the plan, not the state,
knows which pages are where.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING

from influencers.core.tasks.model import page_marker
from influencers.ingest.plan import PagePlan

if TYPE_CHECKING:
    from influencers.core.tasks import Claim


class TransitionError(RuntimeError):
    """A transition the run's state does not allow (a bug in the caller)."""


class RunState(Enum):
    CLAIMED = "claimed"  # built from a claim, no page requested yet
    READING = "reading"  # requesting pages with the claim's account
    SWITCHING = "switching"  # moving to another account (requests wait for it)
    DRAINING = "draining"  # all pages fetched; the account waits for the last writes
    HANDING_BACK = "handing_back"  # all pages fetched; the account is on its way back to the pool
    HANDED_BACK = "handed_back"  # the account is back in the pool; only the last writes are awaited
    STOPPING = "stopping"  # ordered to stop: waits for the pages in flight and the writes
    FINISHING = "finishing"  # its end is being recorded
    DONE = "done"
    PAUSED = "paused"
    FAILED = "failed"
    RELEASED = "released"
    LOST = "lost"
    ERROR = "error"  # the end could not be recorded: the lease expires and the task is recovered


TERMINAL = frozenset({RunState.DONE, RunState.PAUSED, RunState.FAILED, RunState.RELEASED, RunState.LOST,
                      RunState.ERROR})
_ACCOUNT_WORK = frozenset({RunState.SWITCHING, RunState.HANDING_BACK})
_STOPPABLE = frozenset({RunState.CLAIMED, RunState.READING, RunState.DRAINING, RunState.HANDED_BACK})


class StopAction(StrEnum):
    PAUSE = "pause"  # keep the marker; claimable again after resume_after (None: by an operator)
    RELEASE = "release"  # back to pending for any worker
    FAIL = "fail"  # the task cannot succeed
    LOST = "lost"  # another worker holds the claim now: record nothing


@dataclass(frozen=True)
class Stop:
    action: StopAction
    reason: str
    resume_after: float | None = 0.0  # for a pause: seconds until claimable again (None: an operator)
    count_attempt: bool = False  # for a pause: the round counts as an attempt (an adapter error)


class RunOutcome(StrEnum):
    COMPLETED = "completed"
    PAGES_FAILED = "pages_failed"  # paused for a while, the round counting as an attempt
    PAUSED = "paused"
    FAILED = "failed"
    RELEASED = "released"
    LOST = "lost"
    ERROR = "error"


_STATE_OF = {
    RunOutcome.COMPLETED: RunState.DONE, RunOutcome.PAGES_FAILED: RunState.PAUSED,
    RunOutcome.PAUSED: RunState.PAUSED, RunOutcome.FAILED: RunState.FAILED,
    RunOutcome.RELEASED: RunState.RELEASED, RunOutcome.LOST: RunState.LOST, RunOutcome.ERROR: RunState.ERROR,
}


@dataclass(frozen=True)
class Ending:
    """What to record when a run ends: complete, pause (with the marker), fail, release, or
    nothing (lost)."""

    outcome: RunOutcome
    reason: str
    marker: str | None  # "page=N", None when no page of the range is committed
    resume_after: float | None = 0.0
    count_attempt: bool = False


class Readiness(Enum):
    WAIT = "wait"  # pages in flight or to read, account work under way, or already finishing
    WRITE_FIRST = "write_first"  # stopping: only the pages waiting for the pipeline hold it up
    FINISH = "finish"  # now FINISHING: record its end


class TaskRun:
    """One claimed task: its claim (replaced by account switches and the hand-back), its plan and
    the state of its run. ``may_hand_back`` is False in domain mode, where the run's end closes
    the crawl and there is no next task to give the account to."""

    def __init__(self, claim: Claim, plan: PagePlan, render: str, *, may_hand_back: bool = True) -> None:
        self.task_id: int = claim.task_id  # the claim changes with its account; its task never does
        self.claim = claim
        self.plan = plan
        self.render = render
        self.may_hand_back = may_hand_back
        self.state = RunState.CLAIMED
        self.stop: Stop | None = None  # the first order to stop, once given
        self.account_returned = False  # the account went back to the pool before the run ended
        self.outcome: RunOutcome | None = None  # set exactly when the state becomes terminal
        self._retired: set[int] = set()  # accounts this run has taken out of rotation

    @classmethod
    def from_claim(cls, claim: Claim, committed: set[int], *, window: int, render: str,
                   may_hand_back: bool = True, cursors: bool = False) -> TaskRun:
        """A run of the claimed task's page range, after its marker and the pages it
        ``committed`` before (a resumed task skips them), ``window`` pages in flight; on a
        cursor platform (``cursors``) from the marker and the position stored with it."""
        task = claim.task
        plan = PagePlan(task.page_from or 1, task.page_to, marker=task.marker_value, committed=committed,
                        window=window, cursors=cursors, position=task.progress_cursor)
        return cls(claim, plan, render, may_hand_back=may_hand_back)

    def __repr__(self) -> str:
        return f"<TaskRun task={self.task_id} {self.state.value} stop={self.stop and self.stop.action.value}>"

    # -- questions ----------------------------------------------------------------------------

    @property
    def domain(self) -> str:
        return self.claim.task.domain

    @property
    def reading(self) -> bool:
        """Still fetching pages with its account (not stopping, not all fetched)."""
        return self.stop is None and (self.state is RunState.READING or self.state is RunState.SWITCHING)

    @property
    def stopping(self) -> bool:
        return self.stop is not None

    @property
    def finishing(self) -> bool:
        return self.state is RunState.FINISHING

    @property
    def holds_slot(self) -> bool:
        """Counts against INGEST_MAX_TASKS: a slot is an account reading pages."""
        return not self.account_returned

    @property
    def holds_claim(self) -> bool:
        """Its writes may still go in under its claim (the claim is not known to be lost)."""
        return self.stop is None or self.stop.action is not StopAction.LOST

    @property
    def needs_heartbeat(self) -> bool:
        return self.holds_claim and self.outcome is None and self.state is not RunState.FINISHING

    @property
    def account_busy(self) -> bool:
        """An account switch or a hand-back is under way: requests and the end wait for it."""
        return self.state is RunState.SWITCHING or self.state is RunState.HANDING_BACK

    def retired(self, account_id: int) -> bool:
        return account_id in self._retired

    def draining(self, others_reading: Callable[[], bool]) -> bool:
        """Its pages waiting for the pipeline should be written now (see the module docstring).
        ``others_reading`` is asked only for a run whose account is (going) back in the pool.
        Asked once per page and item: `reading` inline."""
        state = self.state
        if self.stop is not None:
            return True
        if state is RunState.READING or state is RunState.SWITCHING:
            return False
        if not (state is RunState.HANDING_BACK or self.account_returned):
            return True
        return not others_reading()

    def marker(self, pages: list[int]) -> int:
        """The committed prefix once ``pages`` are committed too."""
        return self.plan.marker(pages)

    def position(self, marker: int) -> str | None:
        """A cursor platform's position to store with ``marker`` (None on a page platform)."""
        return self.plan.position(marker)

    # -- reading ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.state is not RunState.CLAIMED:
            raise TransitionError(f"task {self.task_id}: start in state {self.state.value}")
        self.state = RunState.READING
        self._settle()

    def next_pages(self, limit: int | None = None) -> list[int] | None:
        """Pages to request now (in flight from here on); None once stopping or finishing. (The
        state stays: a READING run that gets pages still reads, and a run that has fetched all
        its pages gets none.) Once per page: identity tests only, as an Enum's hash is a
        Python call."""
        if self.stop is not None or self.outcome is not None or self.state is RunState.FINISHING:
            return None
        return self.plan.next_pages(limit)

    def page_fetched(self, page: int, *, has_more: bool, total_pages: int | None, writes_keeping_up: bool,
                     next_cursor: str | None = None) -> bool:
        """The page's rows went to the pipeline. True: the run now hands its account back
        (HANDING_BACK) and the caller returns it to the pool."""
        self.plan.on_fetched(page, has_more=has_more, total_pages=total_pages, next_cursor=next_cursor)
        self._settle()
        return self.state is RunState.DRAINING and self.begin_hand_back(writes_keeping_up=writes_keeping_up)

    def page_failed(self, page: int, reason: str) -> bool:
        """The page's retries are spent, or its request was dropped. True: recorded as failed;
        False: the run is stopping, and the page is only dropped (the next run reads it)."""
        if self.stop is not None:
            self.plan.on_dropped(page)
            return False
        self.plan.on_failed(page, reason)
        self._settle()
        return True

    def pages_committed(self, pages: list[int]) -> bool:
        """True: a cursor listing restarted from its first page (the caller requests it)."""
        restarted = self.plan.on_committed(pages)
        self._settle()
        return restarted

    def pages_uncommitted(self, pages: list[int]) -> bool:
        """The pipeline could not commit these pages. True: they count as failed (the caller
        records each); False: the run is stopping, and the next run reads them, or a cursor
        listing restarted and reads them again."""
        restarted = self.plan.on_uncommitted(pages)
        self._settle()
        return self.stop is None and not restarted

    def cursor_expired(self, page: int) -> bool:
        """The cursor of ``page`` is dead: the listing is read again from its first page. True:
        restarted now (the caller requests it); False: once the pages waiting for the pipeline
        are in, or not at all when the run is stopping (the page is only dropped)."""
        if self.stop is not None:
            self.plan.on_dropped(page)
            return False
        restarted = self.plan.on_cursor_expired(page)
        self._settle()
        return restarted

    def _settle(self) -> None:
        """READING while pages are left to fetch, DRAINING once all are fetched. (A run that has
        handed its account back never reads again: its uncommitted pages fail or wait for the
        next run.)"""
        if self.state is RunState.READING:
            if self.plan.all_fetched:
                self.state = RunState.DRAINING
        elif self.state is RunState.DRAINING and not self.plan.all_fetched:
            self.state = RunState.READING

    # -- the account --------------------------------------------------------------------------

    def begin_switch(self, account_id: int) -> bool:
        """Take ``account_id`` out of this run's rotation and move to another account. False
        (ignored): the run is stopping, finishing, already at work on its account, or no longer
        uses that account."""
        if self.stop is not None or self.state not in (RunState.READING, RunState.DRAINING) \
                or self.claim.account_id != account_id:
            return False
        self._retired.add(account_id)
        self.state = RunState.SWITCHING
        return True

    def switched(self, claim: Claim) -> None:
        """The claim after the switch: another account, or none left (the caller then stops the
        run with a pause)."""
        self._during_account_work("switched")
        self.claim = claim

    def end_switch(self) -> None:
        """The switch is over, whatever its result: reading goes on, or the stop ordered
        meanwhile takes effect."""
        if self._during_account_work("end_switch"):
            self.state = RunState.STOPPING if self.stop is not None else RunState.READING
            self._settle()

    def begin_hand_back(self, *, writes_keeping_up: bool) -> bool:
        """All pages fetched: return the account to the pool now if allowed (the module
        docstring says when). True: HANDING_BACK, the caller does it."""
        if self.state is not RunState.DRAINING or not self.may_hand_back or self.claim.account_id is None \
                or not writes_keeping_up:
            return False
        self.state = RunState.HANDING_BACK
        return True

    def handed_back(self, claim: Claim) -> None:
        """The account is back in the pool; ``claim`` (without it) is the run's from now on."""
        if self._during_account_work("handed_back"):
            self.state = RunState.STOPPING if self.stop is not None else RunState.HANDED_BACK
        self.claim = claim
        self.account_returned = True

    def hand_back_failed(self) -> None:
        """The account stays with the run, which now drains as one that never tried."""
        if self._during_account_work("hand_back_failed"):
            self.state = RunState.STOPPING if self.stop is not None else RunState.DRAINING
            self._settle()

    def _during_account_work(self, event: str) -> bool:
        """True in SWITCHING / HANDING_BACK; False in FINISHING (the crawl shut the run down
        meanwhile: the claim still changes, the state does not); raises otherwise."""
        if self.state in _ACCOUNT_WORK:
            return True
        if self.state is RunState.FINISHING:
            return False
        raise TransitionError(f"task {self.task_id}: {event} in state {self.state.value}")

    # -- stopping and the end -----------------------------------------------------------------

    def order_stop(self, action: StopAction | str, reason: str, *, resume_after: float | None = 0.0,
                   count_attempt: bool = False) -> bool:
        """Stop the run: pause, release, fail, or lost (the claim is someone else's now). The first
        order wins; later ones, and orders to an ended run, return False. During account work the
        order takes effect when it ends; during FINISHING it counts if the ending is not decided
        yet (a lost claim then records nothing)."""
        if self.stop is not None or self.outcome is not None:
            return False
        self.stop = Stop(StopAction(action), reason, resume_after, count_attempt)
        if self.state in _STOPPABLE:
            self.state = RunState.STOPPING
        return True

    def begin_finish(self) -> Readiness:
        """Enter FINISHING when the run may end now; otherwise say what it waits for. (Asked
        after every page event: the common answer, pages left, comes first.)"""
        plan, stop, state = self.plan, self.stop, self.state
        if (not plan.finished) if stop is None else bool(plan.in_flight):
            return Readiness.WAIT
        if self.outcome is not None or state is RunState.FINISHING or state is RunState.SWITCHING \
                or state is RunState.HANDING_BACK:
            return Readiness.WAIT
        if stop is not None and plan.fetched:
            return Readiness.WRITE_FIRST
        self.state = RunState.FINISHING
        return Readiness.FINISH

    def shut_down(self, reason: str) -> None:
        """The crawl is closing: pages in flight will not come back, and a run not told otherwise
        is released. FINISHING at once (the caller waits for account work under way)."""
        if self.state is RunState.FINISHING or self.state in TERMINAL:
            raise TransitionError(f"task {self.task_id}: shut_down in state {self.state.value}")
        for page in list(self.plan.in_flight):  # wanted again: the plan must not think them read
            self.plan.on_dropped(page)
        if self.stop is None:
            self.stop = Stop(StopAction.RELEASE, f"spider closed ({reason})")
        self.state = RunState.FINISHING

    def ending(self, failed_pages_retry_after: float) -> Ending:
        """What to record now (FINISHING; decided when the recording starts). First match:
        lost → nothing; fail → failed; every page committed and no pause ordered → completed;
        pages failed after their retries → paused for ``failed_pages_retry_after`` seconds,
        counting an attempt; pause ordered → paused as ordered; otherwise → released."""
        if self.state is not RunState.FINISHING:
            raise TransitionError(f"task {self.task_id}: ending in state {self.state.value}")
        plan, stop = self.plan, self.stop
        action = stop.action if stop is not None else None
        reason = stop.reason if stop is not None else ""
        marker_page = plan.marker([])
        marker = page_marker(marker_page) if marker_page >= plan.page_from else None
        if action is StopAction.LOST:
            return Ending(RunOutcome.LOST, reason, marker)
        if action is StopAction.FAIL:
            return Ending(RunOutcome.FAILED, reason, marker)
        if plan.succeeded and action is not StopAction.PAUSE:
            return Ending(RunOutcome.COMPLETED, f"{len(plan.committed)} pages committed, last page {plan.last_page}",
                          marker)
        if plan.failed and plan.finished:
            failed = "; ".join(f"page {page}: {why}" for page, why in sorted(plan.failed.items()))
            message = f"{len(plan.failed)} page(s) failed, retried in {failed_pages_retry_after:.0f}s: {failed}"
            return Ending(RunOutcome.PAGES_FAILED, message[:1000], marker, resume_after=failed_pages_retry_after,
                          count_attempt=True)
        if action is StopAction.PAUSE:
            assert stop is not None
            return Ending(RunOutcome.PAUSED, reason, marker, resume_after=stop.resume_after,
                          count_attempt=stop.count_attempt)
        return Ending(RunOutcome.RELEASED, reason or "worker stopping", marker)

    def ended(self, outcome: RunOutcome) -> None:
        """Its end is recorded (or could not be: LOST, ERROR)."""
        if self.state is not RunState.FINISHING:
            raise TransitionError(f"task {self.task_id}: ended in state {self.state.value}")
        self.outcome = outcome
        self.state = _STATE_OF[outcome]
