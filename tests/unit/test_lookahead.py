"""`made_ahead` keeps the order, makes each item on its helper thread one step ahead of the
caller, raises a failure where the item is used, and leaves no thread behind when closed early."""
from __future__ import annotations

import contextlib
import threading
import time

import pytest

from influencers.core.lookahead import made_ahead


def test_items_come_in_order_made_on_the_helper_one_step_ahead():
    caller = threading.get_ident()
    made: list[tuple[int, int]] = []  # (item, thread)
    used: list[int] = []

    def source():
        for number in range(5):
            made.append((number, threading.get_ident()))
            yield number

    for item in made_ahead(source()):
        assert len(made) <= item + 2  # while the caller holds item n, at most n+1 is made
        used.append(item)
        if item < 4:  # ... and n+1 is made without the caller asking for it
            deadline = time.monotonic() + 5
            while len(made) < item + 2 and time.monotonic() < deadline:
                time.sleep(0.001)
            assert len(made) == item + 2
    assert used == [0, 1, 2, 3, 4]
    assert all(thread != caller for _, thread in made)


def test_a_failure_making_an_item_is_raised_where_it_is_used():
    def source():
        yield "first"
        raise ValueError("bad row")

    items = made_ahead(source())
    assert next(items) == "first"
    with pytest.raises(ValueError, match="bad row"):
        next(items)


def test_closing_early_stops_the_helper_thread():
    before = {thread.ident for thread in threading.enumerate()}
    with contextlib.closing(made_ahead(iter(range(100)), "lookahead-test")) as items:
        assert next(items) == 0
    left = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("lookahead-test")]
    assert left == []
