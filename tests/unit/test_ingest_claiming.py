"""Claiming: how many slots a mode fills, and when a crawl closes for want of work (no database)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import pytest

from influencers.core.tasks import Claim, Task
from influencers.extensions.claiming import Claiming, Step
from influencers.ingest.reasons import CloseReason, Unclaimable
from influencers.ingest.run import RunOutcome, TaskRun


def run_now(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the coroutine waited")


def claim(task_id: int) -> Claim:
    task = Task(id=task_id, task_type="ingestion", domain="游戏", status="in_progress", progress_marker=None,
                assigned_account_id=1, parent_id=None, is_parent=False, page_from=1, page_to=2, export_limit=None,
                export_format=None, exported_count=0, claimed_by="w", lease_token="t", attempts=0, max_attempts=3,
                last_error=None)
    return Claim(task, "t", task_id, "w")


class Tasks:
    """The `TaskDatabase` calls Claiming makes, answered at once."""

    def __init__(self, claimable: list[int], why: Unclaimable | None = None) -> None:
        self.claimable = claimable
        self.why = why
        self.released: list[int] = []
        self.paused: list[tuple[int, str, float, bool]] = []

    async def claim(self, task_id: int | None) -> tuple[Claim | None, set[int]]:
        if task_id is not None:
            return (claim(task_id), set()) if task_id in self.claimable else (None, set())
        return (claim(self.claimable.pop(0)), set()) if self.claimable else (None, set())

    async def release(self, claim: Claim, reason: str) -> None:
        self.released.append(claim.task_id)

    async def pause(self, claim: Claim, reason: str, *, resume_after: float, count_attempt: bool) -> None:
        self.paused.append((claim.task_id, reason, resume_after, count_attempt))
        if claim.task_id in self.claimable:
            self.claimable.remove(claim.task_id)  # paused until later: not claimable now

    async def why_unclaimable(self, task_id: int) -> Unclaimable:
        return self.why


def begin_into(runs: dict[int, TaskRun]) -> Any:
    def begin(got: Claim, committed: set[int]) -> None:
        runs[got.task_id] = TaskRun.from_claim(got, committed, window=1, render="json")

    return begin


def test_service_mode_fills_its_slots_and_once_closes_when_none_is_left() -> None:
    runs: dict[int, TaskRun] = {}
    claiming = Claiming(Tasks([1, 2, 3]), target_task=None, once=True, max_tasks=2, claim_wait=60)
    assert run_now(claiming.fill(runs, lambda: True, begin_into(runs))) == Step()
    assert sorted(runs) == [1, 2] and claiming.filled.is_open
    runs[1].account_returned = True  # handed its account back: its slot is free
    assert run_now(claiming.fill(runs, lambda: True, begin_into(runs))) == Step(nothing_claimable=False)
    assert sorted(runs) == [1, 2, 3]
    runs.clear()
    assert run_now(claiming.fill(runs, lambda: True, begin_into(runs))) == \
        Step(nothing_claimable=True, close=CloseReason.QUEUE_EMPTY)


def test_a_claim_made_while_the_crawl_stops_is_released() -> None:
    tasks = Tasks([1])
    runs: dict[int, TaskRun] = {}
    answers = iter([True, True, False])
    run_now(Claiming(tasks, target_task=None, once=False, max_tasks=2, claim_wait=60).fill(
        runs, lambda: next(answers), begin_into(runs)))
    assert runs == {} and tasks.released == [1]


@pytest.mark.parametrize(("why", "close"), [
    (Unclaimable(CloseReason.TASK_COMPLETED, "task completed: nothing left to crawl", False),
     CloseReason.TASK_COMPLETED),
    (Unclaimable(CloseReason.NOT_CLAIMABLE, "no idle account yet (one may be free in 5s)", True), None),
])
def test_domain_mode_closes_with_the_reason_or_waits(why: Unclaimable, close: CloseReason | None) -> None:
    claiming = Claiming(Tasks([], why), target_task=9, once=False, max_tasks=2, claim_wait=60)
    assert run_now(claiming.fill({}, lambda: True, begin_into({}))) == Step(nothing_claimable=True, close=close)


def test_domain_mode_gives_up_after_the_claim_wait() -> None:
    why = Unclaimable(CloseReason.NOT_CLAIMABLE, "task paused until later: banned", True)
    claiming = Claiming(Tasks([], why), target_task=9, once=False, max_tasks=2, claim_wait=0)
    assert run_now(claiming.fill({}, lambda: True, begin_into({}))).close is CloseReason.NOT_CLAIMABLE


def ended(outcome: RunOutcome) -> TaskRun:
    run = TaskRun.from_claim(claim(9), set(), window=1, render="json")
    run.start()
    run.order_stop("release", "test")
    run.begin_finish()
    run.ended(outcome)
    return run


def test_after_a_run_service_mode_claims_again_and_domain_mode_closes_or_waits() -> None:
    run = ended(RunOutcome.PAUSED)
    service = Claiming(Tasks([]), target_task=None, once=False, max_tasks=2, claim_wait=60)
    assert service.after_run(run, 30.0, True) == Step(refill=True)
    domain = Claiming(Tasks([]), target_task=9, once=False, max_tasks=2, claim_wait=60)
    assert domain.after_run(run, 30.0, True) == Step()  # a short pause: claim it again when it can
    assert domain.after_run(run, None, True) == Step(close=CloseReason.PAUSED)  # until an operator resumes it
    assert domain.after_run(ended(RunOutcome.COMPLETED), 0.0, True) == Step(close=CloseReason.FINISHED)


def test_a_task_that_cannot_start_rests_with_the_reason_and_an_attempt_counted() -> None:
    """The adapter raised building the first request: the task used to be given back and claimed
    again every poll for ever, no attempt counted."""
    tasks = Tasks([1, 2])
    runs: dict[int, TaskRun] = {}

    def begin(got: Claim, committed: set[int]) -> None:
        if got.task_id == 1:
            raise KeyError("next_cursor")
        begin_into(runs)(got, committed)

    claiming = Claiming(tasks, target_task=None, once=False, max_tasks=1, claim_wait=60, retry_after=120)
    assert run_now(claiming.fill(runs, lambda: True, begin)) == Step()
    assert tasks.paused == [(1, "could not start: KeyError: 'next_cursor'", 120, True)]
    assert tasks.released == [] and list(runs) == [2]  # the slot went on to the next task
