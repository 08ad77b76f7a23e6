"""TaskRun: the states of one claimed task's run, its transitions, and what it decides (no I/O)."""

from __future__ import annotations

import pytest

from influencers.core.tasks import Claim, Task
from influencers.ingest.plan import PagePlan
from influencers.ingest.reasons import (
    CloseReason,
    pause_or_account_unclaimable,
    task_unclaimable,
)
from influencers.ingest.run import (
    Readiness,
    RunOutcome,
    RunState,
    StopAction,
    TaskRun,
    TransitionError,
)


def task(task_id: int = 1, *, page_from: int = 1, page_to: int | None = 2, marker: str | None = None,
         status: str = "in_progress", last_error: str | None = None) -> Task:
    return Task(id=task_id, task_type="ingestion", domain="游戏", status=status, progress_marker=marker,
                assigned_account_id=1, parent_id=None, is_parent=False, page_from=page_from, page_to=page_to,
                export_limit=None, export_format=None, exported_count=0, claimed_by="w", lease_token="t",
                attempts=0, max_attempts=3, last_error=last_error)


def claim(account_id: int | None = 1, task_id: int = 1, **kwargs) -> Claim:
    return Claim(task(task_id, **kwargs), "t", account_id, "w")


def started(pages: int = 2, *, may_hand_back: bool = True, account_id: int | None = 1, window: int = 1) -> TaskRun:
    run = TaskRun.from_claim(claim(account_id, page_to=pages), set(), window=window, render="json",
                             may_hand_back=may_hand_back)
    run.start()
    return run


def read(run: TaskRun, *, last: int, keeping_up: bool = True, commit: bool = False) -> list[bool]:
    """Fetch every page the run asks for against a listing of ``last`` pages; the hand-back
    answers of each fetch."""
    answers = []
    while pages := run.next_pages():
        for page in pages:
            answers.append(run.page_fetched(page, has_more=page < last, total_pages=last, writes_keeping_up=keeping_up))
            if commit:
                run.pages_committed([page])
    return answers


def finish(run: TaskRun) -> tuple[Readiness, RunState]:
    return run.begin_finish(), run.state


# -- reading ----------------------------------------------------------------------------------


def test_a_claimed_run_reads_its_pages_and_completes() -> None:
    run = TaskRun.from_claim(claim(page_to=3), set(), window=1, render="json")
    assert run.state is RunState.CLAIMED
    run.start()
    assert run.state is RunState.READING and run.reading
    assert run.next_pages() == [1]
    assert run.next_pages() == []  # one in flight at a time
    assert not run.page_fetched(1, has_more=True, total_pages=3, writes_keeping_up=True)
    assert run.state is RunState.READING
    read(run, last=3, commit=False)
    run.pages_committed([1, 2])
    assert finish(run) == (Readiness.WAIT, RunState.HANDING_BACK)  # page 3 waits for the pipeline
    run.handed_back(claim(None, page_to=3))
    assert run.state is RunState.HANDED_BACK and run.account_returned and not run.holds_slot
    assert finish(run) == (Readiness.WAIT, RunState.HANDED_BACK)
    run.pages_committed([3])
    assert finish(run) == (Readiness.FINISH, RunState.FINISHING)
    ending = run.ending(300)
    assert (ending.outcome, ending.marker, ending.count_attempt) == (RunOutcome.COMPLETED, "page=3", False)
    assert ending.reason == "3 pages committed, last page 3"
    run.ended(ending.outcome)
    assert (run.state, run.outcome) == (RunState.DONE, RunOutcome.COMPLETED)


def test_a_resumed_run_skips_what_is_committed_and_may_end_at_once() -> None:
    run = TaskRun.from_claim(claim(page_to=4, marker="page=2"), {4}, window=1, render="json")
    run.start()
    assert run.next_pages() == [3]
    done = TaskRun.from_claim(claim(page_to=2, marker="page=2"), set(), window=1, render="json")
    done.start()
    assert done.state is RunState.DRAINING and done.next_pages() == []
    assert finish(done) == (Readiness.FINISH, RunState.FINISHING)
    assert done.ending(300).outcome is RunOutcome.COMPLETED


def test_start_twice_and_ending_outside_finishing_raise() -> None:
    run = started()
    with pytest.raises(TransitionError):
        run.start()
    with pytest.raises(TransitionError):
        run.ending(300)
    with pytest.raises(TransitionError):
        run.ended(RunOutcome.COMPLETED)
    with pytest.raises(TransitionError):
        run.handed_back(claim(None))  # no hand-back began
    with pytest.raises(TransitionError):
        run.end_switch()  # no switch began


# -- handing the account back -----------------------------------------------------------------


def test_a_read_out_run_hands_its_account_back_in_service_mode() -> None:
    run = started(2)
    assert read(run, last=2) == [False, True]  # on the fetch that reads the last page
    assert run.state is RunState.HANDING_BACK and run.account_busy and not run.reading
    assert run.holds_slot  # until the account is back in the pool


@pytest.mark.parametrize("why", ["domain mode", "writes behind", "no account"])
def test_no_hand_back_in_domain_mode_while_writes_fall_behind_or_without_an_account(why: str) -> None:
    run = started(2, may_hand_back=why != "domain mode", account_id=None if why == "no account" else 1)
    assert read(run, last=2, keeping_up=why != "writes behind") == [False, False]
    assert run.state is RunState.DRAINING  # keeps its account until its pages are in
    assert run.draining(lambda: True)  # which waits for them: written at once


def test_no_hand_back_while_reading_or_stopping() -> None:
    run = started(3)
    run.next_pages()
    run.page_fetched(1, has_more=True, total_pages=3, writes_keeping_up=True)
    assert not run.begin_hand_back(writes_keeping_up=True)  # pages left to read
    run.order_stop(StopAction.PAUSE, "banned")
    assert not run.begin_hand_back(writes_keeping_up=True)


def test_a_failed_hand_back_keeps_the_account_and_drains() -> None:
    run = started(1)
    assert read(run, last=1) == [True]
    run.hand_back_failed()
    assert run.state is RunState.DRAINING and not run.account_returned
    assert run.draining(lambda: True)  # its pages hold its account up: written at once


def test_a_stop_during_a_hand_back_waits_for_it() -> None:
    run = started(1)
    read(run, last=1)
    assert run.order_stop(StopAction.RELEASE, "spider closing")
    assert run.state is RunState.HANDING_BACK  # the account work goes on
    assert run.begin_finish() is Readiness.WAIT
    run.handed_back(claim(None))
    assert run.state is RunState.STOPPING and run.account_returned
    assert run.begin_finish() is Readiness.WRITE_FIRST  # page 1 still waits for the pipeline
    run.pages_committed([1])
    assert finish(run) == (Readiness.FINISH, RunState.FINISHING)
    ending = run.ending(300)
    assert ending.outcome is RunOutcome.COMPLETED  # a release does not undo a finished task
    assert run.claim.account_id is None  # its end frees nothing: the account went back already


def test_a_finish_that_is_due_during_a_hand_back_waits_for_it() -> None:
    run = started(1)
    read(run, last=1, commit=True)
    assert run.state is RunState.HANDING_BACK and run.plan.finished
    assert run.begin_finish() is Readiness.WAIT
    run.handed_back(claim(None))
    assert finish(run) == (Readiness.FINISH, RunState.FINISHING)


# -- switching accounts -----------------------------------------------------------------------


def test_an_account_switch_and_what_it_ignores() -> None:
    run = started(3)
    run.next_pages()
    assert not run.begin_switch(7)  # not the run's account
    assert run.begin_switch(1)
    assert run.state is RunState.SWITCHING and run.account_busy and run.reading and run.retired(1)
    assert not run.begin_switch(1)  # already switching
    run.switched(claim(2))
    run.end_switch()
    assert run.state is RunState.READING and run.claim.account_id == 2
    assert not run.begin_switch(1)  # an account it left behind


def test_a_stop_during_a_switch_takes_effect_when_it_ends() -> None:
    run = started(3)
    run.next_pages()
    run.begin_switch(1)
    assert run.order_stop(StopAction.PAUSE, "no idle account left", resume_after=30.0)
    assert run.state is RunState.SWITCHING and not run.reading and run.draining(lambda: True)
    assert run.begin_finish() is Readiness.WAIT
    run.switched(claim(None))
    run.end_switch()
    assert run.state is RunState.STOPPING
    assert run.begin_finish() is Readiness.WAIT  # page 1 is still in flight
    assert not run.page_failed(1, "request dropped")  # stopping: dropped, not failed
    assert finish(run) == (Readiness.FINISH, RunState.FINISHING)
    ending = run.ending(300)
    assert (ending.outcome, ending.resume_after, ending.marker) == (RunOutcome.PAUSED, 30.0, None)
    assert run.plan.failed == {}
    run.ended(ending.outcome)
    assert run.state is RunState.PAUSED


def test_no_switch_once_stopping() -> None:
    run = started(3)
    run.next_pages()
    run.order_stop(StopAction.FAIL, "unknown domain")
    assert not run.begin_switch(1)


# -- stopping and ending ----------------------------------------------------------------------


def test_the_first_stop_wins() -> None:
    run = started(3)
    assert run.order_stop(StopAction.PAUSE, "banned", resume_after=None)
    assert not run.order_stop(StopAction.LOST, "lease lost")
    assert run.stop.action is StopAction.PAUSE and run.state is RunState.STOPPING
    assert run.next_pages() is None  # none once stopping


def test_pages_that_fail_after_their_retries_pause_the_task_counting_an_attempt() -> None:
    run = started(3)
    assert run.next_pages() == [1]
    run.page_fetched(1, has_more=True, total_pages=3, writes_keeping_up=True)
    run.pages_committed([1])
    assert run.next_pages() == [2]
    assert run.page_failed(2, "server_error (after 6 tries)")
    assert run.next_pages() == [3]
    assert run.page_failed(3, "malformed (after 6 tries)")
    assert run.state is RunState.DRAINING
    assert finish(run) == (Readiness.FINISH, RunState.FINISHING)
    ending = run.ending(120)
    assert (ending.outcome, ending.marker, ending.resume_after, ending.count_attempt) == \
        (RunOutcome.PAGES_FAILED, "page=1", 120, True)
    assert ending.reason.startswith("2 page(s) failed, retried in 120s: page 2: server_error")
    run.ended(ending.outcome)
    assert run.state is RunState.PAUSED


def test_an_operator_style_pause_keeps_its_resume_time_and_the_marker() -> None:
    run = started(3)
    run.next_pages()
    run.page_fetched(1, has_more=True, total_pages=3, writes_keeping_up=True)
    run.order_stop(StopAction.PAUSE, "no usable account", resume_after=None)
    assert run.begin_finish() is Readiness.WRITE_FIRST
    run.pages_committed([1])
    assert finish(run) == (Readiness.FINISH, RunState.FINISHING)
    ending = run.ending(300)
    assert (ending.outcome, ending.reason, ending.marker, ending.resume_after, ending.count_attempt) == \
        (RunOutcome.PAUSED, "no usable account", "page=1", None, False)


def test_a_fail_and_a_release() -> None:
    failing = started(3)
    failing.next_pages()
    failing.order_stop(StopAction.FAIL, "no listing")
    assert not failing.page_failed(1, "request dropped")
    assert failing.begin_finish() is Readiness.FINISH
    assert failing.ending(300).outcome is RunOutcome.FAILED
    failing.ended(RunOutcome.FAILED)
    assert failing.state is RunState.FAILED

    releasing = started(3)
    releasing.next_pages()
    releasing.order_stop(StopAction.RELEASE, "")
    assert not releasing.page_failed(1, "request dropped")
    releasing.begin_finish()
    ending = releasing.ending(300)
    assert (ending.outcome, ending.reason) == (RunOutcome.RELEASED, "worker stopping")
    assert releasing.plan.next_pages() == [1]  # the dropped page is wanted by the next run


def test_a_claim_lost_while_draining_records_nothing_and_writes_nothing_more() -> None:
    run = started(1, may_hand_back=False)
    read(run, last=1)
    assert run.state is RunState.DRAINING and run.holds_claim and run.needs_heartbeat
    run.order_stop(StopAction.LOST, "the lease was lost")
    assert not run.holds_claim and not run.needs_heartbeat
    assert run.begin_finish() is Readiness.WRITE_FIRST  # the pipeline discards its pages
    assert not run.pages_uncommitted([1])  # read again by whoever holds the task now
    assert finish(run) == (Readiness.FINISH, RunState.FINISHING)
    assert run.ending(300).outcome is RunOutcome.LOST
    run.ended(RunOutcome.LOST)
    assert run.state is RunState.LOST and not run.order_stop(StopAction.PAUSE, "late")


def test_uncommitted_pages_of_a_running_task_count_as_failed() -> None:
    run = started(1, may_hand_back=False)
    read(run, last=1)
    assert run.pages_uncommitted([1])
    assert run.page_failed(1, "claim lost before commit")
    assert finish(run) == (Readiness.FINISH, RunState.FINISHING)
    assert run.ending(300).outcome is RunOutcome.PAGES_FAILED


def test_a_stop_while_finishing_counts_until_the_ending_is_decided() -> None:
    run = started(1, may_hand_back=False)
    read(run, last=1, commit=True)
    assert finish(run) == (Readiness.FINISH, RunState.FINISHING)
    assert run.order_stop(StopAction.LOST, "lease lost")  # before the recording starts
    assert run.state is RunState.FINISHING and run.ending(300).outcome is RunOutcome.LOST


def test_shut_down_releases_a_reading_run_and_abandons_its_pages_in_flight() -> None:
    run = started(3)
    run.next_pages()
    run.shut_down("shutdown")
    assert run.state is RunState.FINISHING and not run.plan.in_flight
    assert (run.stop.action, run.stop.reason) == (StopAction.RELEASE, "spider closed (shutdown)")
    assert run.ending(300).outcome is RunOutcome.RELEASED
    with pytest.raises(TransitionError):
        run.shut_down("again")


def test_shut_down_during_account_work_keeps_its_claim_change() -> None:
    run = started(1)
    read(run, last=1)
    run.shut_down("shutdown")
    run.handed_back(claim(None))  # the hand-back ends after the shutdown began
    assert run.state is RunState.FINISHING and run.claim.account_id is None and run.account_returned


# -- draining ---------------------------------------------------------------------------------


def test_draining_asks_about_other_runs_only_once_the_account_goes_back() -> None:
    asked: list[int] = []

    def others() -> bool:
        asked.append(1)
        return True

    reading = started(2)
    assert not reading.draining(others)
    holding = started(1, may_hand_back=False)
    read(holding, last=1)
    assert holding.draining(others)
    assert asked == []
    back = started(1)
    read(back, last=1)
    assert not back.draining(others) and asked == [1]
    back.handed_back(claim(None))
    assert back.draining(lambda: False)  # nobody reads: nothing to wait for


# -- why a task cannot be claimed -------------------------------------------------------------


def test_unclaimable_reasons_are_codes_with_messages() -> None:
    assert task_unclaimable(task(status="completed")).code is CloseReason.TASK_COMPLETED
    failed = task_unclaimable(task(status="failed", last_error="2 pages failed"))
    assert (failed.code, failed.message, failed.can_wait) == (CloseReason.TASK_FAILED, "task failed: 2 pages failed",
                                                              False)
    assert task_unclaimable(task(status="in_progress")).code is CloseReason.TASK_BUSY
    assert task_unclaimable(task(status="paused")) is None
    paused = task(status="paused", last_error="banned")
    manual = pause_or_account_unclaimable(paused, paused_until_later=False, paused_by_operator=True, account_wait=0)
    assert (manual.code, manual.can_wait) == (CloseReason.TASK_PAUSED, False)
    later = pause_or_account_unclaimable(paused, paused_until_later=True, paused_by_operator=False, account_wait=0)
    assert (later.code, later.can_wait) == (CloseReason.NOT_CLAIMABLE, True)
    pending = task(status="pending")
    none = pause_or_account_unclaimable(pending, paused_until_later=False, paused_by_operator=False, account_wait=None)
    assert none.code is CloseReason.NO_USABLE_ACCOUNT
    assert none.message.startswith("no usable account: none exists or all are disabled")
    soon = pause_or_account_unclaimable(pending, paused_until_later=False, paused_by_operator=False, account_wait=12)
    assert (soon.can_wait, soon.message) == (True, "no idle account yet (one may be free in 12s)")


@pytest.mark.parametrize(("outcome", "reason"), [
    (RunOutcome.COMPLETED, "finished"), (RunOutcome.LOST, "claim_lost"), (RunOutcome.PAGES_FAILED, "pages_failed"),
    (RunOutcome.PAUSED, "paused"), (RunOutcome.FAILED, "failed"), (RunOutcome.RELEASED, "released"),
    (RunOutcome.ERROR, "error"),
])
def test_a_domain_crawl_closes_with_a_code_for_its_run_outcome(outcome: RunOutcome, reason: str) -> None:
    assert CloseReason.after(outcome).value == reason


def test_a_window_of_pages_in_flight() -> None:
    run = started(5, window=2)
    assert run.next_pages() == [1, 2]
    plan: PagePlan = run.plan
    assert plan.in_flight == {1, 2}


# -- cursor platforms and adapter errors ------------------------------------------------------

def cursor_run(pages: int | None = None, *, marker: str | None = None, position: str | None = None) -> TaskRun:
    task_row = task(page_to=pages, marker=marker)
    task_row = Task(**{**task_row.__dict__, "progress_cursor": position})
    run = TaskRun.from_claim(Claim(task_row, "t", 1, "w"), {9}, window=4, render="json", cursors=True)
    run.start()
    return run


def test_a_cursor_run_resumes_from_the_stored_position_one_page_at_a_time() -> None:
    run = cursor_run(marker="page=3", position="c4")
    assert run.next_pages() == [4] and run.plan.cursor_for(4) == "c4"
    assert run.next_pages() == []
    run.page_fetched(4, has_more=True, total_pages=None, writes_keeping_up=True, next_cursor="c5")
    assert run.marker([4]) == 4 and run.position(4) == "c5"  # what the pipeline stores with page=4


def test_an_expired_cursor_restarts_the_run_and_keeps_it_reading() -> None:
    run = cursor_run(marker="page=3", position="c4")
    run.next_pages()
    assert run.cursor_expired(4) is True
    assert run.state is RunState.READING and run.next_pages() == [1]
    assert run.begin_finish() is Readiness.WAIT


def test_an_expired_cursor_of_a_stopping_run_is_only_dropped() -> None:
    run = cursor_run(marker="page=3", position="c4")
    run.next_pages()
    run.order_stop(StopAction.RELEASE, "worker stopping")
    assert run.cursor_expired(4) is False
    assert run.plan.restarts == 0 and run.begin_finish() is Readiness.FINISH
    assert run.ending(60).marker == "page=3"  # the next run meets the dead cursor and restarts itself


def test_a_pause_ordered_for_an_adapter_error_counts_an_attempt() -> None:
    run = started(pages=3)
    run.next_pages()
    run.plan.on_dropped(1)
    run.order_stop(StopAction.PAUSE, "adapter error in parse_listing: KeyError: 'x'", resume_after=300,
                   count_attempt=True)
    assert run.begin_finish() is Readiness.FINISH
    ending = run.ending(60)
    assert (ending.outcome, ending.count_attempt, ending.resume_after) == (RunOutcome.PAUSED, True, 300)
    operator = started(pages=3)
    operator.order_stop(StopAction.PAUSE, "paused by an operator", resume_after=None)
    operator.begin_finish()
    assert operator.ending(60).count_attempt is False


@pytest.mark.parametrize("cursors", [False, True], ids=["pages", "cursors"])
def test_a_run_shut_down_with_its_last_page_in_flight_is_released_not_completed(cursors: bool) -> None:
    run = TaskRun.from_claim(claim(page_to=3), set(), window=1, render="json", cursors=cursors)
    run.start()
    for page in (1, 2):
        assert run.next_pages() == [page]
        run.page_fetched(page, has_more=True, total_pages=3, writes_keeping_up=True, next_cursor=f"c{page + 1}")
        run.pages_committed([page])
    assert run.next_pages() == [3]
    run.shut_down("shutdown")
    ending = run.ending(60)
    assert (ending.outcome, ending.marker) == (RunOutcome.RELEASED, "page=2")
