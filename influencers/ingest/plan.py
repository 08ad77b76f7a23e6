"""Which pages of a task to read next, and when the task is done (pure logic, no I/O).

A task covers pages ``page_from..page_to`` of one domain's listing (``page_to`` None: until the
listing ends). Pages already committed (at or below the progress marker, or with an
``ingestion_logs`` row) are skipped. Pages are read in increasing order with at most ``window``
in flight: with ``window=1`` a listing that shifts down while it is read (new rows inserted at
the top) cannot hide a row, because every row only ever moves to a page not yet read.

A page moves through: wanted → in flight → fetched (rows handed to the pipeline) → committed,
or → failed (with a reason) once its retries are spent. The task is finished when every page up
to the end is committed or failed and nothing is in flight or waiting for the pipeline.

Every question and event costs time in the pages it touches, not in the task's length: a cursor
stands on the first page never handed out and one on the end of the committed prefix, and both
only move forward, so a long task never rescans its range on every page (this runs on the
reactor thread, once per page).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class PagePlan:
    def __init__(
        self,
        page_from: int,
        page_to: int | None,
        *,
        marker: int = 0,
        committed: Iterable[int] = (),
        window: int = 1,
    ) -> None:
        if page_from < 1:
            raise ValueError("page_from must be >= 1")
        if page_to is not None and page_to < page_from:
            raise ValueError("page_to must be >= page_from")
        self.page_from = page_from
        self.page_to = page_to
        self.window = max(1, window)
        self.committed: set[int] = {p for p in committed if p >= page_from}
        self.committed.update(range(page_from, marker + 1))
        self.in_flight: set[int] = set()
        self.fetched: set[int] = set()
        self.failed: dict[int, str] = {}
        self.end_page: int | None = None  # the last page of the listing, once seen
        self._prefix_end = page_from - 1  # every page up to it is committed
        self._cursor = page_from  # every page below it was committed or handed out at least once
        self._returned: set[int] = set()  # pages below the cursor that are wanted again
        # Without page_to, read one page past what we know until the listing tells its length.
        self._horizon = page_to if page_to is not None else self._first_open()

    # -- questions ----------------------------------------------------------------------------

    @property
    def last_page(self) -> int | None:
        """The last page this task must read, when known."""
        bounds = [b for b in (self.page_to, self.end_page) if b is not None]
        return min(bounds) if bounds else None

    def next_pages(self) -> list[int]:
        """Pages to request now (marks them in flight)."""
        pages: list[int] = []
        for page in self._open_pages():
            if len(self.in_flight) >= self.window:
                break
            self.in_flight.add(page)
            self._returned.discard(page)
            pages.append(page)
        return pages

    @property
    def finished(self) -> bool:
        """Nothing in flight, nothing waiting for the pipeline, nothing left to request."""
        return not self.in_flight and not self.fetched and not self._any_open()

    @property
    def succeeded(self) -> bool:
        """Finished, with every page up to the end of the range or listing committed."""
        return self.finished and not self.failed and self.last_page is not None

    @property
    def all_fetched(self) -> bool:
        """Nothing left to request or in flight (pages may still wait for the pipeline)."""
        return not self.in_flight and not self._any_open()

    def marker(self, extra: Iterable[int] = ()) -> int:
        """The contiguous committed prefix: all pages up to it are committed (with ``extra``)."""
        extra = set(extra)
        page = self._first_open() - 1
        while page + 1 in extra or page + 1 in self.committed:
            page += 1
        return page

    # -- events -------------------------------------------------------------------------------

    def on_fetched(self, page: int, *, has_more: bool, total_pages: int | None = None) -> None:
        self.in_flight.discard(page)
        self.fetched.add(page)
        if not has_more:
            self.end_page = page if self.end_page is None else min(self.end_page, page)
        elif self.end_page is not None and page >= self.end_page:
            self.end_page = None  # the listing grew past where it ended before
        if self.page_to is None:
            if total_pages:
                self._horizon = max(self._horizon, total_pages)
            if has_more:
                self._horizon = max(self._horizon, page + 1)

    def on_failed(self, page: int, reason: str) -> None:
        self.in_flight.discard(page)
        self.fetched.discard(page)
        self.failed[page] = reason

    def on_dropped(self, page: int) -> None:
        """The page was not read (task stopping); it stays wanted for the next run."""
        self.in_flight.discard(page)
        self._want_again(page)

    def on_committed(self, pages: Iterable[int]) -> None:
        for page in pages:
            self.fetched.discard(page)
            self.in_flight.discard(page)
            self._returned.discard(page)
            self.committed.add(page)

    def on_uncommitted(self, pages: Iterable[int]) -> None:
        """The pipeline could not commit these pages: read them again."""
        for page in pages:
            self.fetched.discard(page)
            self._want_again(page)

    # -- helpers ------------------------------------------------------------------------------

    def _busy(self, page: int) -> bool:
        return page in self.committed or page in self.in_flight or page in self.fetched or page in self.failed

    def _want_again(self, page: int) -> None:
        if not self._busy(page) and page < self._cursor:
            self._returned.add(page)

    def _open_pages(self) -> Iterator[int]:
        """Pages not yet read, in order, up to what is known of the end. Lazy: the caller may
        mark each page busy before asking for the next."""
        limit = self._limit()
        for page in sorted(self._returned):
            if page <= limit and not self._busy(page):
                yield page
        while self._cursor <= limit:
            if self._busy(self._cursor):
                self._cursor += 1
            else:
                yield self._cursor
                if not self._busy(self._cursor):
                    return  # the caller did not take it: it stays open

    def _any_open(self) -> bool:
        return next(self._open_pages(), None) is not None

    def _first_open(self) -> int:
        """The first page that is not committed (the committed prefix only grows)."""
        while self._prefix_end + 1 in self.committed:
            self._prefix_end += 1
        return self._prefix_end + 1

    def _limit(self) -> int:
        last = self.last_page
        if last is not None:
            return last
        return max(self._horizon, self._first_open())
