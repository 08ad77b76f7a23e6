"""How `start_crawl` splits a crawl into subtasks, and why a cursor platform's is never split."""

from __future__ import annotations

import pytest

from influencers.core.errors import InvalidArgument
from influencers.core.tasks.creating import DEFAULT_SPLIT, split_for


def test_a_page_platform_splits_by_default_or_as_asked() -> None:
    assert split_for(50, None, cursor_listing=False) == DEFAULT_SPLIT
    assert split_for(50, 7, cursor_listing=False) == 7


def test_a_cursor_platform_reads_every_page_in_one_subtask() -> None:
    assert split_for(50, None, cursor_listing=True) == 50
    assert split_for(50, 50, cursor_listing=True) == 50
    assert split_for(50, 80, cursor_listing=True) == 80


def test_a_split_a_cursor_platform_cannot_read_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="pages with cursors.*leave out --split 10"):
        split_for(50, 10, cursor_listing=True)
    with pytest.raises(InvalidArgument, match="1 or more"):
        split_for(50, 0, cursor_listing=False)
