"""MySQL item pipeline: buffers rows per page and commits whole pages in batches, off the reactor.

`InfluencerItem`s are buffered under their (task, page); the spider's `PageDone` closes a page
(once as many rows as it announced have arrived). Ready pages are written by `store.write_batch`
in ONE transaction per batch on the pipeline's own database thread: ingestion log rows, the
upsert by uid, and the task's progress marker moved to the contiguous committed prefix behind
the claim's fence. A batch is written when ``MYSQL_BATCH_ITEMS`` rows are ready, every
``MYSQL_FLUSH_INTERVAL`` seconds, when a task has read all its pages, and at close; with more
than ``MYSQL_MAX_PENDING_ITEMS`` rows waiting, the spider is held back until a batch is in.

Values longer than their column are cut (nickname, uid, source_page: 255 characters; the full
row stays in raw_data); an item without a uid is dropped with a logged reason and the stats
counter ``pipeline/dropped/missing_uid``.

Settings: MYSQL_BATCH_ITEMS (2000), MYSQL_FLUSH_INTERVAL (1.0), MYSQL_MAX_PENDING_ITEMS (20000).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import _schedule_coro

from influencers.extensions.dbthread import DatabaseThread
from influencers.extensions.ingestion import IngestionService
from influencers.extensions.runs import Gate
from influencers.items import InfluencerItem, PageDone
from influencers.pipelines.store import (
    DOMAIN_MAX,
    NICKNAME_MAX,
    SOURCE_PAGE_MAX,
    UID_MAX,
    PageBatch,
    TaskBatch,
    write_batch,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


@dataclass
class _OpenPage:
    rows: list[tuple[str, str | None, str, str | None, dict[str, Any]]] = field(default_factory=list)
    received: int = 0
    done: PageDone | None = None


class MySQLPipeline:
    def __init__(self, service: IngestionService, stats: Any, *, batch_items: int, flush_interval: float,
                 max_pending: int) -> None:
        self.service = service
        self.stats = stats
        self.batch_items = max(1, batch_items)
        self.flush_interval = flush_interval
        self.max_pending = max(self.batch_items, max_pending)
        self.db: DatabaseThread | None = None
        self._open: dict[tuple[int, int], _OpenPage] = {}
        self._ready: list[PageBatch] = []
        self._ready_rows = 0
        self._flushing = False
        self._idle = Gate()
        self._idle.open()
        self._loop: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MySQLPipeline:
        settings = crawler.settings
        return cls(
            IngestionService.of(crawler),
            crawler.stats,
            batch_items=settings.getint("MYSQL_BATCH_ITEMS", 2000),
            flush_interval=settings.getfloat("MYSQL_FLUSH_INTERVAL", 1.0),
            max_pending=settings.getint("MYSQL_MAX_PENDING_ITEMS", 20000),
        )

    def open_spider(self) -> None:
        self.service.sink = self
        if self.service.config is not None:
            self.db = DatabaseThread(self.service.config.mysql, "ingest-pipeline")
        self._loop = create_looping_call(self.flush_soon)
        self._loop.start(self.flush_interval, now=False)

    async def close_spider(self) -> None:
        if self._loop is not None and getattr(self._loop, "running", False):
            self._loop.stop()
        await self.flush()
        if self._ready:
            numbers = [(p.task_id, p.page_number) for p in self._ready]
            logger.error("%d page(s) could not be committed before close (they will be read again): %s",
                         len(numbers), numbers[:20])
            for task_id, page in numbers:
                self.service.pages_discarded(task_id, [page], "not committed at close")
            self._ready.clear()
        if self._open:
            partial = sorted(self._open)
            logger.warning("%d page(s) were not complete at close and are not committed "
                           "(they will be read again): %s", len(partial), partial[:20])
            for task_id, page in partial:
                self.service.pages_discarded(task_id, [page], "incomplete at close")
            self._open.clear()
        if self.db is not None:
            self.db.close()

    # -- items --------------------------------------------------------------------------------

    def process_item(self, item: Any) -> Any:
        if isinstance(item, InfluencerItem):
            self._add_row(item)
        elif isinstance(item, PageDone):
            self._close_page(item)
        else:
            return item
        if self._ready_rows >= self.batch_items:
            self.flush_soon()
        if self._ready_rows >= self.max_pending:
            return self._held_back(item)
        return item

    async def _held_back(self, item: Any) -> Any:
        self.stats.inc_value("pipeline/backpressure")
        while self._ready_rows >= self.max_pending and self.db is not None:
            self.flush_soon()
            await self._idle.wait()
        return item

    def _add_row(self, item: InfluencerItem) -> None:
        key = (item.task_id, item.page_number)
        page = self._open.get(key)
        if page is None:
            page = self._open[key] = _OpenPage()
        page.received += 1
        uid = item.uid.strip() if isinstance(item.uid, str) else (str(item.uid) if item.uid is not None else "")
        if not uid:
            self.stats.inc_value("pipeline/dropped/missing_uid")
            self._maybe_ready(key, page)
            raise DropItem(f"missing uid (task {item.task_id}, page {item.page_number}, "
                           f"nickname {str(item.nickname)[:40]!r})")
        nickname = item.nickname if isinstance(item.nickname, str) or item.nickname is None else str(item.nickname)
        if len(uid) > UID_MAX:
            self.stats.inc_value("pipeline/truncated/uid")
            uid = uid[:UID_MAX]
        if nickname is not None and len(nickname) > NICKNAME_MAX:
            self.stats.inc_value("pipeline/truncated/nickname")
            nickname = nickname[:NICKNAME_MAX]
        source_page = item.source_page[:SOURCE_PAGE_MAX] if item.source_page else None
        page.rows.append((uid, nickname, item.domain[:DOMAIN_MAX], source_page, item.raw_data))
        self._maybe_ready(key, page)

    def _close_page(self, done: PageDone) -> None:
        key = (done.task_id, done.page_number)
        page = self._open.get(key)
        if page is None:
            page = self._open[key] = _OpenPage()
        page.done = done
        self._maybe_ready(key, page)

    def _maybe_ready(self, key: tuple[int, int], page: _OpenPage) -> None:
        done = page.done
        if done is None or page.received < done.row_count:
            return
        del self._open[key]
        self._ready.append(PageBatch(
            task_id=done.task_id, page_number=done.page_number, domain=done.domain, account_id=done.account_id,
            source_url=done.source_url, started_at=done.started_at, finished_at=done.finished_at, rows=page.rows,
        ))
        self._ready_rows += max(1, len(page.rows))

    # -- flushing -----------------------------------------------------------------------------

    def flush_soon(self) -> None:
        """Start writing ready pages unless a write is under way (it picks them up)."""
        if self._ready and not self._flushing and self.db is not None:
            self._flushing = True
            self._idle = Gate()
            _schedule_coro(self._flush_loop())

    def flush(self) -> Awaitable[None]:
        """Write everything ready now; completes when it is in (or could not be written)."""
        self.flush_soon()
        return self._idle.wait()

    async def _flush_loop(self) -> None:
        try:
            while self._ready and self.db is not None:
                if not await self._write_some():
                    break
        finally:
            self._flushing = False
            self._idle.open()

    def _take(self) -> list[PageBatch]:
        taken, rows = [], 0
        while self._ready and (not taken or rows + len(self._ready[0].rows) <= self.batch_items):
            page = self._ready.pop(0)
            taken.append(page)
            rows += len(page.rows)
        self._ready_rows = sum(max(1, len(p.rows)) for p in self._ready)
        return taken

    async def _write_some(self) -> bool:
        pages = self._take()
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
            work.append(TaskBatch(claim, task_pages, self.service.marker_for(task_id, numbers),
                                  self.service.marker_for(task_id, [])))
        if not work:
            return True
        try:
            committed, lost = await self.db.run(write_batch, work)
        except Exception as exc:  # noqa: BLE001 - keep the pages and try again at the next flush
            self.stats.inc_value("pipeline/batch_errors")
            logger.error("could not commit %d page(s) (will retry): %s", len(pages), exc)
            self._ready[:0] = pages
            self._ready_rows = sum(max(1, len(p.rows)) for p in self._ready)
            return False
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
        return True
