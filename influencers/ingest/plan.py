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

On a platform that pages with opaque cursors (``cursors=True``) page *n* can only be asked for
with the cursor page *n - 1* returned: one page is in flight at a time, a page is open only once
its cursor is known, and the plan says which cursor resumes after the marker (`position`). Pages
committed beyond the marker by an earlier run count for nothing there: they were read along
another chain of cursors. When a cursor expires the listing is read again from its first page
(`on_cursor_expired`), once the pages waiting for the pipeline are in; the upserts are
idempotent, so nothing doubles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

#: A cursor listing's position after a marker on its last page: nothing follows.
END_OF_LISTING = ""


class PagePlan:
    def __init__(
        self,
        page_from: int,
        page_to: int | None,
        *,
        marker: int = 0,
        committed: Iterable[int] = (),
        window: int = 1,
        cursors: bool = False,
        position: str | None = None,
    ) -> None:
        if page_from < 1:
            raise ValueError("page_from must be >= 1")
        if page_to is not None and page_to < page_from:
            raise ValueError("page_to must be >= page_from")
        if cursors and page_from != 1:
            raise ValueError(f"a cursor listing is read from page 1, not from page {page_from}")
        self.page_from = page_from
        self.page_to = page_to
        self.window = 1 if cursors else max(1, window)
        #: Cursor listings: the cursor of each page not yet committed whose cursor is known.
        self.cursors: dict[int, str | None] | None = None
        self.restarts = 0  # times a cursor listing was read again from its first page
        self._restart_pending = False
        self._reachable = 0  # cursor listings: the furthest page whose cursor was ever known
        if cursors:
            committed = ()
            if marker and position is None:
                marker = 0  # no position stored for the marker (another adapter wrote it): from page 1
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
        if cursors:
            self.cursors = {}
            if marker and position == END_OF_LISTING:
                self.end_page = marker
            else:
                self._known(marker + 1, position)

    # -- questions ----------------------------------------------------------------------------

    @property
    def last_page(self) -> int | None:
        """The last page this task must read, when known."""
        bounds = [b for b in (self.page_to, self.end_page) if b is not None]
        return min(bounds) if bounds else None

    def next_pages(self, limit: int | None = None) -> list[int]:
        """Pages to request now, ``limit`` at most (marks them in flight)."""
        pages: list[int] = []
        for page in self._open_pages():
            if len(self.in_flight) >= self.window or len(pages) == limit:
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
        last = self.last_page
        return self.finished and not self.failed and last is not None and self.marker() >= last

    @property
    def all_fetched(self) -> bool:
        """Nothing left to request or in flight (pages may still wait for the pipeline)."""
        return not self.in_flight and not self._any_open()

    def cursor_for(self, page: int) -> str | None:
        """The cursor that fetches ``page`` on a cursor listing (None: its first page)."""
        return self.cursors.get(page) if self.cursors is not None else None

    def position(self, marker: int) -> str | None:
        """What a cursor listing resumes from after ``marker``: the next page's cursor, or
        `END_OF_LISTING` when the marker is its last page. None on a page listing, or when the
        marker stands before the first page."""
        if self.cursors is None or marker < self.page_from:
            return None
        if self.end_page is not None and marker >= self.end_page:
            return END_OF_LISTING
        return self.cursors.get(marker + 1)

    def marker(self, extra: Iterable[int] = ()) -> int:
        """The contiguous committed prefix: all pages up to it are committed (with ``extra``)."""
        extra = set(extra)
        page = self._first_open() - 1
        while page + 1 in extra or page + 1 in self.committed:
            page += 1
        return page

    # -- events -------------------------------------------------------------------------------

    def on_fetched(self, page: int, *, has_more: bool, total_pages: int | None = None,
                   next_cursor: str | None = None) -> None:
        self.in_flight.discard(page)
        self.fetched.add(page)
        if self.cursors is not None and has_more:
            self._known(page + 1, next_cursor)
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

    def on_committed(self, pages: Iterable[int]) -> bool:
        """True: a cursor listing waiting to restart did (it has pages to request again)."""
        for page in pages:
            self.fetched.discard(page)
            self.in_flight.discard(page)
            self._returned.discard(page)
            if self._restart_pending:
                continue  # read along the dead chain of cursors: the restart reads it again
            self.committed.add(page)
            if self.cursors is not None:
                self.cursors.pop(page, None)
        return self._restart_when_written()

    def on_uncommitted(self, pages: Iterable[int]) -> bool:
        """The pipeline could not commit these pages: read them again. True as `on_committed`."""
        for page in pages:
            self.fetched.discard(page)
            self._want_again(page)
        return self._restart_when_written()

    def on_cursor_expired(self, page: int) -> bool:
        """The cursor of ``page`` is dead: read the listing again from its first page, as soon as
        the pages waiting for the pipeline are in (their marker must not pass pages the restart
        has not read yet). True: restarted now."""
        self.in_flight.discard(page)
        self._restart_pending = True
        return self._restart_when_written()

    def _restart_when_written(self) -> bool:
        if not self._restart_pending or self.fetched or self.in_flight:
            return False
        self._restart_pending = False
        self.restarts += 1
        self.committed.clear()
        self.failed.clear()
        self._returned.clear()
        self.end_page = None
        self._prefix_end = self.page_from - 1
        self._cursor = self.page_from
        assert self.cursors is not None
        self.cursors.clear()
        self._reachable = 0
        self._known(self.page_from, None)
        return True

    # -- helpers ------------------------------------------------------------------------------

    def _known(self, page: int, cursor: str | None) -> None:
        assert self.cursors is not None
        self.cursors[page] = cursor
        self._reachable = max(self._reachable, page)

    def _busy(self, page: int) -> bool:
        return page in self.committed or page in self.in_flight or page in self.fetched or page in self.failed

    def _want_again(self, page: int) -> None:
        if not self._busy(page) and page < self._cursor:
            self._returned.add(page)

    def _open_pages(self) -> Iterator[int]:
        """Pages not yet read, in order, up to what is known of the end. Lazy: the caller may
        mark each page busy before asking for the next."""
        if self._restart_pending:
            return
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
        return self._restart_pending or next(self._open_pages(), None) is not None

    def _first_open(self) -> int:
        """The first page that is not committed (the committed prefix only grows)."""
        while self._prefix_end + 1 in self.committed:
            self._prefix_end += 1
        return self._prefix_end + 1

    def _limit(self) -> int:
        last = self.last_page
        if last is None:
            last = max(self._horizon, self._first_open())
        if self.cursors is not None:
            return min(last, self._reachable)  # a page without its cursor cannot be asked for
        return last
