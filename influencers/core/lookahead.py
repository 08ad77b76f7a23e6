"""Make the next item of an iterator on a helper thread while the caller uses the current one.

The pipeline's upsert alternates Python work (the next statement's VALUES text) with a wait for
the server (which releases the GIL). Made one step ahead, the two overlap instead of adding up.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def made_ahead(items: Iterator[T], name: str = "made-ahead") -> Iterator[T]:
    """``items`` in order, each made on a helper thread while the caller works on the one before.
    ``None`` ends them (an iterator of optional values does not suit). Close the result (or use
    it to the end) so the helper thread stops; an error making an item is raised where it is used."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as helper:
        upcoming = helper.submit(next, items, None)
        while (item := upcoming.result()) is not None:
            upcoming = helper.submit(next, items, None)
            yield item
