"""MySQL item pipeline: commits whole pages in batches, off the reactor.

Each `InfluencerPage` item is one listing page. Its rows are checked and cut to their columns
here, on the reactor thread (cheap), and the page waits in memory until a batch is written by
`store.write_batch` in ONE transaction on one of the pipeline's own database threads: ingestion
log rows, the upsert by uid, and the task's progress marker moved to the contiguous committed
prefix behind the claim's fence. Up to ``MYSQL_WRITERS`` threads write at once, each its own
tasks' pages: a task's pages are never in two batches in flight, so they commit in page order and
its marker only moves over committed pages, exactly as with one writer. A second writer joins
only when the writes fall behind (a full batch of other tasks waits): it overlaps the time a
write waits on the server, while for a crawl the writes keep up with, more and smaller
transactions would only cost the reactor CPU. A batch is written when ``MYSQL_BATCH_ITEMS`` rows
are ready, every ``MYSQL_FLUSH_INTERVAL`` seconds, when the ingestion service asks for it (the
`flush_requested` signal: a task waits for its pages to end or to free its account), when a page
arrives for a task that is draining, and at close; with more than ``MYSQL_MAX_PENDING_ITEMS``
rows waiting, the spider is held back until a batch is in.

The service is reached through its `PageLedger` side (`influencers.extensions.interface`): which
claim to write under, the marker, what was committed or lost, and whether the writes keep up with
the crawl (reported when that changes: the service hands a read-out task's account back early
only while they do).

A batch that cannot be written keeps its pages, which are tried again later: while MySQL is
unreachable, when the crawl's `SharedOutage` (`IngestionService.db_outage`) says the next try is
due (the outage itself is logged once, by it); after any other error, ``MYSQL_FLUSH_INTERVAL``
later, with one line per failed try. Nothing is retried in a tight loop, and the spider stays held
back while too many rows wait.

Values longer than their column are cut (nickname, uid, source_page: 255 characters; the full
row stays in raw_data); a row without a uid is left out of its page with one logged line per
page and the stats counter ``pipeline/dropped/missing_uid``; the page still commits.

When the server's buffer pool is smaller than the table's indexes, the crawl says so once at start
(`influencers.core.sizing`): every new row then waits for index pages read from disk.

Settings (`config.WriterSettings`; defaults in influencers/settings.py): MYSQL_BATCH_ITEMS,
MYSQL_FLUSH_INTERVAL, MYSQL_MAX_PENDING_ITEMS, MYSQL_WRITERS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call, sleep
from scrapy.utils.defer import _schedule_coro

from influencers.core.errors import ConfigError, DatabaseUnavailable
from influencers.core.profile import default_profile
from influencers.core.sizing import warn_if_outgrown
from influencers.core.store import (
    DOMAIN_MAX,
    NICKNAME_MAX,
    SOURCE_PAGE_MAX,
    UID_MAX,
    PageBatch,
    Row,
    TaskBatch,
    write_batch,
)
from influencers.extensions.config import WriterSettings
from influencers.extensions.dbthread import DatabaseThread
from influencers.extensions.ingestion import IngestionService
from influencers.extensions.interface import flush_requested
from influencers.extensions.runs import Gate
from influencers.items import InfluencerPage

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from influencers.extensions.interface import PageLedger

logger = logging.getLogger(__name__)


class MySQLPipeline:
    def __init__(self, service: PageLedger | None, stats: Any, *, batch_items: int, flush_interval: float,
                 max_pending: int, writers: int) -> None:
        self.service = service
        self.stats = stats
        self.batch_items = max(1, batch_items)
        self.flush_interval = flush_interval
        self.max_pending = max(self.batch_items, max_pending)
        self.writers = max(1, writers)
        self.dbs: list[Any] = []  # the DatabaseThreads that write
        self._busy: set[int] = set()  # indexes into dbs of those writing now
        self._writing: set[int] = set()  # tasks with a batch in flight
        self._ready: list[PageBatch] = []
        self._ready_rows = 0
        self._requested = False  # a flush was asked for: write what is ready, not only full batches
        self._keeping_up = True  # as last reported to the service
        self._idle = Gate()
        self._idle.open()
        self._loop: Any = None
        self._retry_at: float | None = None  # after a failed write: no write before this (monotonic)
        self._retry_call: Any = None  # the delayed call that tries again then

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MySQLPipeline:
        service = IngestionService.of(crawler)
        try:
            options = WriterSettings.from_settings(crawler.settings)
        except ConfigError as exc:
            service.startup_failed(exc)  # one line when the spider starts, not a traceback now
            raise NotConfigured from None
        pipeline = cls(service, crawler.stats, batch_items=options.batch_items, flush_interval=options.flush_interval,
                       max_pending=options.max_pending_items, writers=options.writers)
        crawler.signals.connect(pipeline.flush_soon, signal=flush_requested)
        return pipeline

    def open_spider(self) -> None:
        if self.service.config is not None:
            self.dbs = [DatabaseThread(self.service.config.mysql, f"ingest-pipeline-{n}", outage=self.service.db_outage)
                        for n in range(self.writers)]
            # One line at start when new rows will read index pages from disk (core/sizing.py);
            # a failure here is the writes' to report.
            self.dbs[0].submit(warn_if_outgrown)
        self._loop = create_looping_call(self.flush_soon)
        self._loop.start(self.flush_interval, now=False)

    async def close_spider(self) -> None:
        if self._loop is not None and getattr(self._loop, "running", False):
            self._loop.stop()
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._retry_at = None  # one last try, whatever the back-off says
        await self.flush()
        if self._ready:
            numbers = [(p.task_id, p.page_number) for p in self._ready]
            logger.error("%d page(s) could not be committed before close (they will be read again): %s",
                         len(numbers), numbers[:20])
            for task_id, page in numbers:
                self.service.pages_discarded(task_id, [page], "not committed at close")
            self._ready.clear()
        for db in self.dbs:
            db.close()

    # -- items --------------------------------------------------------------------------------

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, InfluencerPage):
            return item
        rows = self._rows_of(item)
        self._ready.append(PageBatch(
            task_id=item.task_id, page_number=item.page_number, domain=item.domain, account_id=item.account_id,
            source_url=item.source_url, started_at=item.started_at, finished_at=item.finished_at, rows=rows,
        ))
        self._ready_rows += max(1, len(rows))
        # A task's last page reaches the pipeline after the spider told the service it was fetched
        # (Scrapy runs the callback on before it processes the item), so the service's own flush
        # missed it: write it now, or the task waits up to MYSQL_FLUSH_INTERVAL to complete.
        if self._ready_rows >= self.batch_items or (self.service is not None and self.service.draining(item.task_id)):
            self.flush_soon()
        self._report_backlog()
        if self._ready_rows >= self.max_pending:
            return self._held_back(item)
        return item

    async def _held_back(self, item: Any) -> Any:
        self.stats.inc_value("pipeline/backpressure")
        while self._ready_rows >= self.max_pending and self.dbs:
            self.flush_soon()
            if self._busy:
                await self._idle.wait()
            else:  # backing off after a failed write: wait for the retry, not in a loop
                await sleep(max(0.05, self._retry_left()))
        return item

    def _rows_of(self, page: InfluencerPage) -> list[Row]:
        """The page's rows (`store.Row`), cut to their columns; typed fields as the spider's adapter
        mapped them, or by `default_profile` for an item that came without."""
        domain = page.domain[:DOMAIN_MAX]
        source_page = page.source_url[:SOURCE_PAGE_MAX] or None
        rows: list[Row] = []
        missing: list[str] = []
        profiles = page.profiles if page.profiles is not None and len(page.profiles) == len(page.rows) else None
        for index, raw in enumerate(page.rows):
            uid = raw.get("uid") if isinstance(raw, dict) else None
            uid = uid.strip() if isinstance(uid, str) else ("" if uid is None else str(uid))
            if not uid:
                missing.append(str(raw.get("nickname") if isinstance(raw, dict) else type(raw).__name__)[:40])
                continue
            nickname = raw.get("nickname")
            if nickname is not None and not isinstance(nickname, str):
                nickname = str(nickname)
            if len(uid) > UID_MAX:
                self.stats.inc_value("pipeline/truncated/uid")
                uid = uid[:UID_MAX]
            if nickname is not None and len(nickname) > NICKNAME_MAX:
                self.stats.inc_value("pipeline/truncated/nickname")
                nickname = nickname[:NICKNAME_MAX]
            rows.append((uid, nickname, domain, source_page, raw,
                         profiles[index] if profiles is not None else default_profile(raw)))
        if missing:
            self.stats.inc_value("pipeline/dropped/missing_uid", len(missing))
            logger.warning("task %s page %s: %d row(s) without a uid left out (nicknames %s)", page.task_id,
                           page.page_number, len(missing), missing[:5], extra={"task_id": page.task_id})
        return rows

    # -- flushing -----------------------------------------------------------------------------

    def _report_backlog(self) -> None:
        """Tell the service when "at most one batch waits" (the database keeps pace with the
        crawl) turns true or false. While it is false the service keeps a read-out task's account
        (and slot) until its pages are in, so the crawl does not run further ahead of the writes."""
        keeping_up = self._ready_rows <= self.batch_items
        if keeping_up is not self._keeping_up:
            self._keeping_up = keeping_up
            if self.service is not None:
                self.service.writes_keeping_up(keeping_up)

    def flush_soon(self) -> None:
        """Write every page ready now: start writes, or have those under way go on to them."""
        if not self._ready:
            return
        self._requested = True
        self._dispatch()

    def flush(self) -> Awaitable[None]:
        """Write everything ready now; completes when it is in (or could not be written)."""
        self.flush_soon()
        return self._idle.wait()

    def _retry_left(self) -> float:
        return 0.0 if self._retry_at is None else max(0.0, self._retry_at - time.monotonic())

    def _back_off(self, seconds: float) -> None:
        """No write for ``seconds``; then write what is ready."""
        self._retry_at = time.monotonic() + seconds

    def _retry_later(self, seconds: float) -> None:
        if self._retry_call is not None and self._retry_call.active():
            return
        from twisted.internet import reactor

        self._retry_call = reactor.callLater(seconds, self._retry_now)

    def _retry_now(self) -> None:
        self._retry_call = None
        self._retry_at = None
        self.flush_soon()

    def _dispatch(self) -> None:
        """Start a write on every free database thread while there is something to write: what
        was asked for, or full batches. Pages that arrive during a write wait for a full batch or
        a reason (a flush request, the interval): writing whatever trickled in during the last
        write would cut a crawl's commits into batches of a few pages. After a failed write
        nothing starts before its back-off has passed."""
        if self._ready and self._retry_left() > 0:
            self._retry_later(self._retry_left())
            return
        while self._ready and (self._requested or self._ready_rows >= self.batch_items):
            free = [n for n in range(len(self.dbs)) if n not in self._busy]
            if not free:
                return
            if self._busy and self._writable_rows() < self.batch_items:
                return  # the write under way keeps up: small batches would only cost the reactor
            pages = self._take()
            if not pages:
                return  # what is ready belongs to tasks being written: their writer goes on to it
            if self._idle.is_open:  # a gate someone may still wait on stays until it opens
                self._idle = Gate()
            self._busy.add(free[0])
            _schedule_coro(self._write(free[0], pages))

    async def _write(self, writer: int, pages: list[PageBatch]) -> None:
        try:
            await self._write_some(self.dbs[writer], pages)
        finally:
            self._writing -= {page.task_id for page in pages}
            self._busy.discard(writer)
            self._dispatch()  # after a failure: once its back-off has passed
            if not self._busy:
                self._idle.open()

    def _writable_rows(self) -> int:
        return sum(max(1, len(page.rows)) for page in self._ready if page.task_id not in self._writing)

    def _take(self) -> list[PageBatch]:
        """Up to a batch of ready pages, in order, of tasks no other write holds."""
        taken: list[PageBatch] = []
        left: list[PageBatch] = []
        rows = 0
        for index, page in enumerate(self._ready):
            if page.task_id in self._writing:
                left.append(page)
            elif taken and rows + len(page.rows) > self.batch_items:
                left.extend(self._ready[index:])
                break
            else:
                taken.append(page)
                rows += len(page.rows)
        self._ready = left
        self._writing.update(page.task_id for page in taken)
        self._ready_rows = sum(max(1, len(p.rows)) for p in self._ready)
        self._report_backlog()
        if not self._ready:
            self._requested = False  # a request made during this write sets it again
        return taken

    async def _write_some(self, db: Any, pages: list[PageBatch]) -> None:
        by_task: dict[int, list[PageBatch]] = {}
        for page in pages:
            by_task.setdefault(page.task_id, []).append(page)
        work: list[TaskBatch] = []
        for task_id, task_pages in by_task.items():
            claim = self.service.claim_for(task_id)
            numbers = [p.page_number for p in task_pages]
            if claim is None:
                self.stats.inc_value("pipeline/dropped_pages/no_claim", len(task_pages))
                logger.warning("task %s: not holding its claim any more; pages %s are not committed",
                               task_id, numbers, extra={"task_id": task_id})
                self.service.pages_discarded(task_id, numbers, "claim lost before commit")
                continue
            marker = self.service.marker_for(task_id, numbers)
            work.append(TaskBatch(claim, task_pages, marker, self.service.marker_for(task_id, []),
                                  self.service.position_for(task_id, marker)))
        if not work:
            return
        try:
            config = self.service.config
            committed, lost = await db.run(write_batch, work, config.quota_day if config is not None else None)
        except Exception as exc:  # noqa: BLE001 - keep the pages and try again later
            if isinstance(exc, DatabaseUnavailable) and exc.transient and db.outage is not None:
                self.stats.inc_value("pipeline/batch_retries")  # the outage is logged once, by itself
                self._back_off(max(db.outage.wait_left(), 0.05))
            else:
                self.stats.inc_value("pipeline/batch_errors")
                logger.error("could not commit %d page(s) (will retry in %.0fs): %s", len(pages),
                             self.flush_interval, exc)
                self._back_off(self.flush_interval)
            self._ready[:0] = pages
            self._ready_rows = sum(max(1, len(p.rows)) for p in self._ready)
            self._report_backlog()
            return
        self.stats.inc_value("pipeline/batches")
        for batch in committed:
            numbers = [p.page_number for p in batch.pages]
            self.stats.inc_value("pipeline/pages", len(numbers))
            self.stats.inc_value("pipeline/items", sum(len(p.rows) for p in batch.pages))
            self.service.pages_committed(batch.claim.task_id, numbers)
        for task_id, reason in lost.items():
            numbers = [p.page_number for p in by_task[task_id]]
            self.stats.inc_value("pipeline/dropped_pages/claim_lost", len(numbers))
            self.service.claim_lost(task_id, reason)
            self.service.pages_discarded(task_id, numbers, reason)
