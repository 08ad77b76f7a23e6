"""PagePlan: which pages a task reads next, where it resumes, when it is done."""

from __future__ import annotations

import pytest

from influencers.ingest.plan import PagePlan


def drain(plan: PagePlan, *, last: int, failing: dict[int, str] | None = None) -> list[int]:
    """Read the plan to its end against a listing of ``last`` pages, one page at a time."""
    order = []
    while True:
        pages = plan.next_pages()
        if not pages:
            break
        for page in pages:
            order.append(page)
            if failing and page in failing:
                plan.on_failed(page, failing[page])
                continue
            plan.on_fetched(page, has_more=page < last, total_pages=last)
            plan.on_committed([page])
    return order


def test_a_fixed_range_reads_every_page_in_order() -> None:
    plan = PagePlan(11, 20)
    assert drain(plan, last=50) == list(range(11, 21))
    assert plan.finished and plan.succeeded
    assert plan.marker() == 20


def test_resume_skips_the_marker_prefix_and_logged_pages() -> None:
    plan = PagePlan(1, 10, marker=4, committed={6, 8})
    assert drain(plan, last=10) == [5, 7, 9, 10]
    assert plan.succeeded and plan.marker() == 10


def test_marker_is_the_contiguous_committed_prefix() -> None:
    plan = PagePlan(1, 10, committed={1, 2, 4})
    assert plan.marker() == 2
    assert plan.marker([3]) == 4
    assert PagePlan(11, 20).marker() == 10  # nothing committed: the page before the range


def test_without_page_to_the_listing_tells_its_length() -> None:
    plan = PagePlan(1, None)
    assert plan.next_pages() == [1]  # length unknown: one page
    plan.on_fetched(1, has_more=True, total_pages=3)
    plan.on_committed([1])
    assert drain(plan, last=3) == [2, 3]
    assert plan.succeeded and plan.last_page == 3


def test_a_listing_that_grows_is_followed() -> None:
    plan = PagePlan(1, None)
    plan.next_pages()
    plan.on_fetched(1, has_more=True, total_pages=2)
    plan.on_committed([1])
    assert plan.next_pages() == [2]
    plan.on_fetched(2, has_more=True, total_pages=3)  # rows were inserted at the top meanwhile
    plan.on_committed([2])
    assert plan.next_pages() == [3]
    plan.on_fetched(3, has_more=False, total_pages=3)
    plan.on_committed([3])
    assert plan.succeeded and plan.last_page == 3


def test_a_range_past_the_end_stops_at_the_end() -> None:
    plan = PagePlan(21, 30)
    assert plan.next_pages() == [21]
    plan.on_fetched(21, has_more=False, total_pages=20)
    assert not plan.finished  # page 21 still waits for the pipeline
    plan.on_committed([21])
    assert plan.succeeded and plan.next_pages() == []


def test_window_limits_pages_in_flight() -> None:
    plan = PagePlan(1, 10, window=3)
    assert plan.next_pages() == [1, 2, 3]
    assert plan.next_pages() == []
    plan.on_fetched(2, has_more=True)
    assert plan.next_pages() == [4]
    assert not plan.all_fetched


def test_failed_pages_finish_the_plan_without_success() -> None:
    plan = PagePlan(1, 5)
    drain(plan, last=5, failing={3: "malformed"})
    assert plan.finished and not plan.succeeded
    assert plan.failed == {3: "malformed"}
    assert plan.marker() == 2  # resume re-reads page 3


def test_failed_last_known_page_does_not_hang() -> None:
    plan = PagePlan(1, None)
    plan.next_pages()
    plan.on_failed(1, "server error")
    assert plan.finished and not plan.succeeded


def test_dropped_and_uncommitted_pages_are_read_again() -> None:
    plan = PagePlan(1, 3)
    assert plan.next_pages() == [1]
    plan.on_dropped(1)
    assert plan.next_pages() == [1]
    plan.on_fetched(1, has_more=True)
    plan.on_uncommitted([1])
    assert plan.next_pages() == [1]


def test_a_page_given_back_behind_others_is_read_again_first() -> None:
    plan = PagePlan(1, 6, window=3)
    assert plan.next_pages() == [1, 2, 3]
    plan.on_fetched(1, has_more=True)
    plan.on_committed([1])
    plan.on_dropped(2)
    plan.on_fetched(3, has_more=True)
    assert plan.next_pages() == [2, 4, 5]
    plan.on_uncommitted([3])
    plan.on_fetched(2, has_more=True)
    plan.on_committed([2])
    assert plan.next_pages() == [3]
    assert plan.marker() == 2 and plan.marker([3, 4]) == 4


class CountingPlan(PagePlan):
    checks = 0

    def _busy(self, page: int) -> bool:
        CountingPlan.checks += 1
        return super()._busy(page)


def test_a_long_task_costs_work_linear_in_its_pages() -> None:
    """A 10,000-page task once spent seconds of reactor CPU rescanning its range on every page:
    the page checks a whole run makes must grow with the pages, not with their square."""
    counts = {}
    for pages in (1_000, 4_000):
        CountingPlan.checks = 0
        plan = CountingPlan(1, None, committed=[50, 51, 52], window=2)
        assert drain(plan, last=pages) == [p for p in range(1, pages + 1) if p not in (50, 51, 52)]
        assert plan.marker() == pages and plan.succeeded
        counts[pages] = CountingPlan.checks
    assert counts[4_000] < 5 * counts[1_000], counts


def test_bad_ranges() -> None:
    with pytest.raises(ValueError, match="page_from must be >= 1"):
        PagePlan(0, 3)
    with pytest.raises(ValueError, match="page_to must be >= page_from"):
        PagePlan(5, 4)
