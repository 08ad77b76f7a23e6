"""When the ingestion service asks the pipeline to write a task's pages at once.

A task that still holds its account (or is stopping) holds something up until its pages are in:
write now. A task that handed its account back holds nothing up while another task reads; its
pages wait for a full batch or the flush interval, so a crawl of many short subtasks commits in
a few large transactions instead of one per subtask (bench/README.md, crawl)."""

from __future__ import annotations

import pytest
from scrapy.utils.test import get_crawler

from influencers.core.tasks import Claim, Task
from influencers.extensions.ingestion import IngestionService
from influencers.ingest.plan import PagePlan
from influencers.ingest.run import TaskRun


def run_of(task_id: int, *, fetched: bool, handed_back: bool = False, handing_back: bool = False,
           stop: tuple[str, str] | None = None) -> TaskRun:
    task = Task(id=task_id, task_type="ingestion", domain="游戏", status="in_progress", progress_marker=None,
                assigned_account_id=1, parent_id=None, is_parent=False, page_from=1, page_to=2, export_limit=None,
                export_format=None, exported_count=0, claimed_by="w", lease_token="t", attempts=0, max_attempts=3,
                last_error=None)
    plan = PagePlan(1, 2)
    while fetched and not plan.all_fetched:
        for page in plan.next_pages():
            plan.on_fetched(page, has_more=page < 2)
    run = TaskRun(claim=Claim(task, "t", 1, "w"), plan=plan, render="json")
    run.start()
    if handed_back or handing_back:
        assert run.begin_hand_back(writes_keeping_up=True)
    if handed_back:
        run.handed_back(Claim(task, "t", None, "w"))
    if stop is not None:
        run.order_stop(*stop)
    return run


@pytest.fixture
def service() -> IngestionService:
    return IngestionService.of(get_crawler())


def test_a_task_still_reading_is_not_drained(service: IngestionService) -> None:
    service.runs = {1: run_of(1, fetched=False)}
    assert not service.draining(1)
    assert not service.draining(99)  # not ours (any more)


@pytest.mark.parametrize("others_reading", [False, True])
def test_a_read_out_task_holding_its_account_is_written_at_once(service: IngestionService, others_reading) -> None:
    service.runs = {1: run_of(1, fetched=True), 2: run_of(2, fetched=not others_reading)}
    assert service.draining(1)


def test_a_stopping_task_is_written_at_once(service: IngestionService) -> None:
    service.runs = {1: run_of(1, fetched=False, stop=("pause", "banned")), 2: run_of(2, fetched=False)}
    assert service.draining(1)


def test_a_handed_back_task_waits_while_another_reads_and_not_after(service: IngestionService) -> None:
    service.runs = {1: run_of(1, fetched=True, handed_back=True), 2: run_of(2, fetched=False)}
    assert not service.draining(1)
    service.runs[2] = run_of(2, fetched=True, handed_back=True)  # nobody reads: nothing to wait for
    assert service.draining(1) and service.draining(2)


def test_a_task_handing_its_account_back_counts_as_handed_back(service: IngestionService) -> None:
    handing = run_of(1, fetched=True, handing_back=True)
    service.runs = {1: handing, 2: run_of(2, fetched=False)}
    assert not service.draining(1)
