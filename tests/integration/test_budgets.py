"""Per-account budgets: set by an operator, and the pages each account read today counted in the
pipeline's batch transaction (so a batch that does not commit counts nothing)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from influencers.core.budgets import Budget, BudgetStore
from influencers.core.errors import AccountNotFound, InvalidArgument
from influencers.core.quotaday import QuotaDay
from influencers.core.store import TaskBatch, write_batch
from tests.integration.test_ingest_store import claim_task, page, query, row, writer  # noqa: F401 - a fixture

ZONE = QuotaDay(ZoneInfo("Asia/Shanghai"))


def test_an_operator_sets_and_removes_budgets_with_an_event(db, accounts) -> None:
    account_id = accounts.add("demo1", "sandbox-demo1")
    store = BudgetStore(db, quota_day=ZONE)
    assert store.get(account_id) == Budget()
    assert store.set(account_id, pages_per_day=200, requests_per_minute=30) == (
        "pages per day 200; requests per minute 30")
    assert store.set(account_id, requests_per_minute=None) == "requests per minute none"
    assert store.get(account_id) == Budget(pages_per_day=200)
    reasons = [r["reason"] for r in query(db, "SELECT reason FROM events WHERE event = 'budget_changed'")]
    assert reasons == ["pages per day 200; requests per minute 30", "requests per minute none"]
    for bad in (0, -1, 10**9, True):
        with pytest.raises(InvalidArgument, match="whole number from 1"):
            store.set(account_id, pages_per_day=bad)
    with pytest.raises(AccountNotFound):
        store.set(999, pages_per_day=5)


def test_committed_pages_count_per_account_and_only_for_today(db, scheduler, accounts, writer) -> None:  # noqa: F811
    claim = claim_task(scheduler, accounts)
    other = accounts.add("demo2", "sandbox-demo2")
    store = BudgetStore(db, quota_day=ZONE)
    pages = [page(claim.task_id, 1, [row("a")]), page(claim.task_id, 2, [row("b")], account_id=other),
             page(claim.task_id, 3, [row("c")])]
    write_batch(writer, [TaskBatch(claim, pages, marker=3, current_marker=0)], ZONE)
    assert (store.get(claim.account_id).pages_today, store.get(other).pages_today) == (2, 1)
    write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 4, [row("d")])], marker=4, current_marker=3)], ZONE)
    assert store.get(claim.account_id).pages_today == 3
    with db.cursor() as cursor:  # the count was yesterday's: today starts from zero
        cursor.execute("UPDATE account_budgets SET pages_date = pages_date - INTERVAL 1 DAY")
    db.commit()
    assert store.get(claim.account_id).pages_today == 0
    write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 5, [row("e")])], marker=5, current_marker=4)], ZONE)
    assert store.get(claim.account_id).pages_today == 1


def test_a_batch_whose_claim_is_lost_counts_nothing(db, scheduler, accounts, writer) -> None:  # noqa: F811
    claim = claim_task(scheduler, accounts)
    scheduler.pause_task(claim.task_id, "operator")  # the claim is lost: the fence refuses the batch
    committed, lost = write_batch(writer, [TaskBatch(claim, [page(claim.task_id, 1, [row("a")])], 1, 0)], ZONE)
    assert committed == [] and claim.task_id in lost
    assert BudgetStore(db, quota_day=ZONE).get(claim.account_id).pages_today == 0


def test_the_adapters_budget_applies_where_the_account_sets_none() -> None:
    site = Budget(pages_per_day=500, requests_per_minute=60)
    assert Budget(pages_per_day=100, pages_today=7).over(site) == Budget(100, 60, 7)
    assert Budget().over(site) == Budget(500, 60, 0)
