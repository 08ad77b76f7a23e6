"""PagePlan on a platform that pages with cursors: page n only with page n-1's cursor, one page
in flight, the cursor to resume from after the marker, and a restart when a cursor dies."""

from __future__ import annotations

import pytest

from influencers.ingest.plan import END_OF_LISTING, PagePlan


def cursor(page: int) -> str:
    return f"c{page}"


def fetch(plan: PagePlan, page: int, *, last: int) -> None:
    """The platform answers ``page`` of a ``last``-page listing: rows, and the next cursor."""
    more = page < last
    plan.on_fetched(page, has_more=more, next_cursor=cursor(page + 1) if more else None)


def read(plan: PagePlan, *, last: int, commit: bool = True) -> list[tuple[int, str | None]]:
    """Read to the end, one request at a time: (page, the cursor it was asked for with)."""
    asked = []
    while pages := plan.next_pages():
        (page,) = pages  # never more than one in flight
        asked.append((page, plan.cursor_for(page)))
        fetch(plan, page, last=last)
        if commit:
            plan.on_committed([page])
    return asked


def test_each_page_is_asked_for_with_the_cursor_of_the_page_before() -> None:
    plan = PagePlan(1, None, cursors=True, window=8)
    assert read(plan, last=4) == [(1, None), (2, "c2"), (3, "c3"), (4, "c4")]
    assert plan.succeeded and plan.marker() == 4


def test_a_page_waits_for_its_cursor_whatever_the_window_or_total() -> None:
    plan = PagePlan(1, 10, cursors=True, window=5)
    assert plan.next_pages() == [1]
    assert plan.next_pages() == []  # page 2's cursor is not known yet
    plan.on_fetched(1, has_more=True, total_pages=10, next_cursor="c2")
    assert plan.next_pages() == [2]  # page 1 still waits for the pipeline: that holds nothing up


def test_the_position_stored_with_a_marker_is_the_next_pages_cursor() -> None:
    plan = PagePlan(1, None, cursors=True)
    read(plan, last=3, commit=False)
    assert plan.position(0) is None  # nothing committed: resume from page 1
    assert [plan.position(marker) for marker in (1, 2)] == ["c2", "c3"]
    assert plan.position(3) == END_OF_LISTING  # page 3 was the last: nothing follows


def test_resume_asks_for_the_page_after_the_marker_with_the_stored_cursor() -> None:
    plan = PagePlan(1, None, marker=7, position="c8", committed={8, 9, 12}, cursors=True)
    assert read(plan, last=9) == [(8, "c8"), (9, "c9")]  # pages logged past the marker count for nothing
    assert plan.succeeded and plan.marker() == 9


def test_resume_after_the_last_page_has_nothing_left_to_read() -> None:
    plan = PagePlan(1, None, marker=5, position=END_OF_LISTING, cursors=True)
    assert plan.next_pages() == []
    assert plan.succeeded and plan.last_page == 5


def test_a_marker_without_a_position_is_read_again_from_page_one() -> None:
    plan = PagePlan(1, None, marker=5, position=None, cursors=True)  # a page adapter wrote the marker
    assert read(plan, last=2) == [(1, None), (2, "c2")]


def test_a_page_range_reads_its_pages_and_no_further() -> None:
    plan = PagePlan(1, 3, cursors=True)
    assert [page for page, _ in read(plan, last=10)] == [1, 2, 3]
    assert plan.succeeded and plan.position(3) == "c4"


def test_a_cursor_listing_cannot_start_after_page_one() -> None:
    with pytest.raises(ValueError, match="from page 1"):
        PagePlan(11, 20, cursors=True)


def test_an_expired_cursor_restarts_the_listing_from_page_one() -> None:
    plan = PagePlan(1, None, marker=4, position="c5", cursors=True)
    assert plan.next_pages() == [5]
    assert plan.on_cursor_expired(5) is True
    assert plan.restarts == 1 and plan.marker() == 0 and plan.position(0) is None
    assert read(plan, last=6) == [(1, None), *[(page, cursor(page)) for page in range(2, 7)]]
    assert plan.succeeded and plan.marker() == 6


def test_the_restart_waits_for_the_pages_in_the_pipeline() -> None:
    plan = PagePlan(1, None, cursors=True)
    plan.next_pages()
    fetch(plan, 1, last=10)
    assert plan.next_pages() == [2]
    assert plan.on_cursor_expired(2) is False  # page 1 still waits for the pipeline
    assert plan.next_pages() == [] and not plan.all_fetched and not plan.finished
    assert plan.on_committed([1]) is True  # now: page 1 was read along the dead chain
    assert plan.marker() == 0 and plan.committed == set()
    assert plan.next_pages() == [1] and plan.cursor_for(1) is None


def test_pages_the_pipeline_gives_back_during_a_restart_are_read_again() -> None:
    plan = PagePlan(1, None, cursors=True)
    plan.next_pages()
    fetch(plan, 1, last=3)
    plan.next_pages()
    plan.on_cursor_expired(2)
    assert plan.on_uncommitted([1]) is True
    assert read(plan, last=3) == [(1, None), (2, "c2"), (3, "c3")]
    assert plan.succeeded and not plan.failed


def test_a_failed_page_stops_the_listing_at_its_cursor() -> None:
    plan = PagePlan(1, None, cursors=True)
    plan.next_pages()
    fetch(plan, 1, last=5)
    plan.on_committed([1])
    assert plan.next_pages() == [2]
    plan.on_failed(2, "server error")
    assert plan.next_pages() == [] and plan.finished and not plan.succeeded
    assert plan.position(plan.marker()) == "c2"  # the next run asks for page 2 again with its cursor


def test_committed_pages_forget_their_cursors() -> None:
    plan = PagePlan(1, None, cursors=True)
    read(plan, last=500)
    assert plan.cursors == {}  # a long listing keeps no cursor it will not use again
