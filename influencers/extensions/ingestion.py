"""The ingestion service behind the `influencers` spider: claims, leases, accounts, task runs.

One instance per crawler (``IngestionService.of(crawler)``), shared by the spider, the account
middleware and the MySQL pipeline, each through its side of `influencers.extensions.interface`;
it calls none of them back (a signal to the pipeline, the spider's request function). Each
claimed task is a `TaskRun` state machine (`influencers.ingest.run`) that decides what happens
next; the service does the I/O it asks for, off the reactor: claims and heartbeats
(`claiming.Claiming`, which also knows the domain and service modes), account switches and
hand-backs (`accountwork.AccountWork`), a task's end (`taskdb.TaskDatabase`).

On close (finished, SIGTERM/SIGINT, error) the pipeline has already committed what it had; the
service then completes, pauses or releases every claim it still holds.

A database outage, at start or at any later moment, is ridden out: every database thread of the
crawl (the service's and the pipeline's) shares one `SharedOutage`, which logs one WARNING when
the server goes, one INFO when it is back, and spaces the tries up to INGEST_DB_RETRY_MAX seconds
apart; claims are fenced, so a claim that was lost meanwhile is found out at its next write.

Settings (`config.IngestSettings`; defaults in influencers/settings.py): INGEST_LEASE_SECONDS,
INGEST_HEARTBEAT_INTERVAL (0: a third of the lease), INGEST_POLL_INTERVAL, INGEST_MAX_TASKS,
INGEST_PAGES_IN_FLIGHT, INGEST_CLAIM_WAIT, INGEST_FAILED_PAGES_RETRY_AFTER, INGEST_DB_RETRY_MAX, SITE_ADAPTER,
SITE_URL (None: INFLUENCERS_SITE_URL), SITE_RENDER (None: the adapter's).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider
from scrapy.utils.defer import _schedule_coro

from influencers.core.account_model import Identity
from influencers.core.budgets import Budget
from influencers.core.config import Config, get_config
from influencers.core.errors import InfluencersError
from influencers.core.outage import Outage, SharedOutage
from influencers.core.redact import redact_url
from influencers.extensions.accountwork import AccountWork
from influencers.extensions.claiming import Claiming, Step
from influencers.extensions.config import IngestSettings
from influencers.extensions.feed import PageFeed
from influencers.extensions.interface import PageRequests, Turns, flush_requested
from influencers.extensions.runs import EXIT_CONFIGURATION, EXIT_STATUS_STAT, Gate, every
from influencers.extensions.taskdb import TaskDatabase
from influencers.ingest.reasons import CloseReason
from influencers.ingest.run import Readiness, RunOutcome, Stop, StopAction, TaskRun
from influencers.sites.base import AdapterError, SiteAdapter, load_adapter

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from influencers.core.tasks import Claim

logger = logging.getLogger(__name__)

_SERVICES: weakref.WeakKeyDictionary[Any, IngestionService] = weakref.WeakKeyDictionary()


class IngestionService:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.settings: IngestSettings | None = None
        self.config: Config | None = None
        self.adapter: SiteAdapter | None = None
        self.adapter_path: str | None = None
        self.startup_error: Exception | None = None
        self.runs: dict[int, TaskRun] = {}
        self.tasks: TaskDatabase | None = None
        self._requests: PageRequests | None = None
        self._render: str | None = None  # -a render=, over SITE_RENDER
        self.claiming: Claiming | None = None
        self.accounts: AccountWork | None = None
        self._writes_keeping_up = True  # as the pipeline last reported
        self._ended: dict[TaskRun, Gate] = {}  # runs whose end is being recorded
        self._close_reason: CloseReason | None = None
        self._loops: list[Any] = []
        self._closed = False
        self._start_failed = False
        self.db_outage: SharedOutage | None = None  # shared by every database thread of the crawl
        self.feed = PageFeed(crawler)
        try:
            self.settings = IngestSettings.from_settings(crawler.settings)
            self.config = get_config()
            self.adapter_path = self.settings.adapter_path or self.config.site_adapter
            self.adapter = load_adapter(self.adapter_path, self.settings.site_url or self.config.site_url,
                                        crawler)
            self.db_outage = SharedOutage(Outage("MySQL", logger, cap=self.settings.db_retry_max))
        except (InfluencersError, ImportError, TypeError, ValueError, NameError) as exc:
            self.startup_error = exc
        crawler.signals.connect(self._spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    @classmethod
    def of(cls, crawler: Crawler) -> IngestionService:
        service = _SERVICES.get(crawler)
        if service is None:
            service = _SERVICES[crawler] = cls(crawler)
        return service

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IngestionService:
        return cls.of(crawler)

    def startup_failed(self, error: Exception) -> None:
        """A component's setting is bad: `start` raises it (the first one), so the crawl stops
        with one line."""
        if self.startup_error is None:
            self.startup_error = error

    # -- start --------------------------------------------------------------------------------

    async def start(self, requests: PageRequests, *, domain: str | None, pages: int | None, task_id: int | None,
                    once: bool, render: str | None) -> None:
        """Open the database side and claim the first task(s). Raises InfluencersError (and lets
        the crawl close on any error: an idle spider is otherwise kept open for the service)."""
        try:
            await self._start(requests, domain=domain, pages=pages, task_id=task_id, once=once, render=render)
        except BaseException:
            self._start_failed = True
            raise

    async def _start(self, requests: PageRequests, *, domain: str | None, pages: int | None, task_id: int | None,
                     once: bool, render: str | None) -> None:
        if self.startup_error is not None:
            raise self.startup_error
        assert self.config is not None and self.settings is not None and self.adapter is not None
        self._requests, self._render = requests, render
        self.tasks = TaskDatabase(self.config, lease_seconds=self.settings.lease_seconds, outage=self.db_outage)
        await self.tasks.open()
        self.accounts = AccountWork(self.tasks, self.stats)
        logger.info("ingestion worker %s started (site %s, adapter %s)", self.tasks.worker_id,
                    redact_url(self.adapter.base_url), self.adapter_path)
        if task_id is not None:
            await self.tasks.check_task(task_id)  # TaskNotFound early
        elif domain is not None:
            task_id = await self.tasks.domain_task(domain, pages)
        self.claiming = Claiming(self.tasks, target_task=task_id, once=once, max_tasks=self.settings.max_tasks,
                                 claim_wait=self.settings.claim_wait,
                                 retry_after=self.settings.failed_pages_retry_after)
        poll = self.settings.poll_interval
        self._loops = [every(self.settings.heartbeat_interval, self._heartbeat_tick),
                       every(min(poll, 1.0) if self.claiming.domain_mode else poll, self._poll_tick)]
        # Its own task, not part of Spider.start(): a shutdown cancels start(), and a claim
        # being made must still be begun or released, never dropped on the floor.
        _schedule_coro(self._fill())

    # -- claiming -----------------------------------------------------------------------------

    def _accepting(self) -> bool:
        return self.crawler.crawling and self._close_reason is None and not self._closed

    async def _fill(self) -> None:
        self._follow(await self.claiming.fill(self.runs, self._accepting, self._begin))

    def _follow(self, step: Step) -> None:
        if step.nothing_claimable and not self._anyone_reading():
            self._flush()  # the handed-back tasks' last pages wait for nobody else now
        if step.close is not None:
            self._close(step.close)
        if step.refill:
            _schedule_coro(self._fill())

    def _begin(self, claim: Claim, committed: set[int]) -> None:
        task = claim.task
        render = self.adapter.check_render(self._render or self.settings.render)
        run = self.runs[task.id] = TaskRun.from_claim(claim, committed, window=self.settings.pages_in_flight,
                                                      render=render, may_hand_back=not self.claiming.domain_mode,
                                                      cursors=self.adapter.pagination == "cursor")
        plan = run.plan
        run.start()
        self.feed.fit(len(self.runs), self.settings.pages_in_flight)
        self.stats.inc_value("ingest/tasks_claimed")
        span = f"{plan.page_from}-{plan.page_to}" if plan.page_to else f"{plan.page_from}-end"
        logger.info("task %s: crawling %s pages %s as %s with account %s (%d pages already committed, marker %s)",
                    task.id, task.domain, span, run.render, claim.account_id, len(plan.committed),
                    task.progress_marker, extra={"task_id": task.id, "account_id": claim.account_id})
        self._pump(run)
        self._check_finish(run)

    # -- pages (the spider's side) ------------------------------------------------------------

    def pace_with(self, turns: Turns) -> None:
        self.feed.turns = turns

    def _pump(self, run: TaskRun) -> None:
        if self.crawler.engine is None or not self._accepting():
            return
        if self.feed.feed(run, self._requests, self._adapter_failed, self._due) and run.draining(self._anyone_reading):
            self._flush()

    def _due(self, run: TaskRun) -> None:
        if self.runs.get(run.task_id) is run:
            self._pump(run)

    def _adapter_failed(self, run: TaskRun, page: int, error: AdapterError) -> None:
        self.adapter_failed(run.task_id, page, error)

    def _anyone_reading(self) -> bool:
        return any(run.reading for run in self.runs.values())

    def _flush(self) -> None:
        self.crawler.signals.send_catch_log(signal=flush_requested)

    def run_for(self, task_id: int) -> TaskRun | None:
        return self.runs.get(task_id)

    def page_fetched(self, task_id: int, page: int, *, has_more: bool, total_pages: int | None,
                     next_cursor: str | None = None) -> None:
        run = self.runs.get(task_id)
        if run is None:
            return
        if run.page_fetched(page, has_more=has_more, total_pages=total_pages, next_cursor=next_cursor,
                            writes_keeping_up=self._writes_keeping_up):
            self.accounts.begin(run)  # at once: the end and account switches wait for it
            _schedule_coro(self._hand_back(run))
        self._pump(run)
        self._check_finish(run)

    def page_failed(self, task_id: int, page: int, reason: str) -> None:
        """The page's retries are spent, or its request was not completed: a failure, unless the
        task is stopping (then the next run reads the page)."""
        run = self.runs.get(task_id)
        if run is None:
            return
        if run.page_failed(page, reason):
            self.stats.inc_value("ingest/pages_failed")
            logger.error("task %s: page %s failed: %s", task_id, page, reason,
                         extra={"task_id": task_id, "account_id": run.claim.account_id})
            self._pump(run)
        self._check_finish(run)

    page_dropped = page_failed  # the spider's word for a request that never completed

    def cursor_expired(self, task_id: int, page: int, reason: str) -> None:
        """Read the listing again from its first page (an event records it), at most
        ``INGEST_CURSOR_RESTARTS`` times per run; after that the page fails as any other."""
        run = self.runs.get(task_id)
        if run is None:
            return
        extra = {"task_id": task_id, "account_id": run.claim.account_id}
        if run.stopping:
            run.cursor_expired(page)
        elif run.plan.restarts >= self.settings.cursor_restarts:
            self.page_failed(task_id, page, f"{reason}; the listing was restarted {run.plan.restarts} time(s)"
                                            " in this run already")
            return
        else:
            self.stats.inc_value("ingest/cursor_restarts")
            logger.warning("task %s: the cursor of page %s is no good (%s); reading the listing again from"
                           " page 1", task_id, page, reason, extra=extra)
            _schedule_coro(self.tasks.note(run.claim, "cursor_expired",
                                           f"page {page}: {reason}; listing restarted from page 1"))
            if run.cursor_expired(page):
                self._pump(run)
            else:
                self._flush()  # the restart waits for the pages already fetched
        self._check_finish(run)

    def adapter_failed(self, task_id: int, page: int | None, error: AdapterError) -> None:
        """Pause the task for INGEST_FAILED_PAGES_RETRY_AFTER, an attempt counted (it fails once
        they are spent): an adapter's exception is neither the page's nor the account's fault,
        and retrying at once would only raise it again."""
        run = self.runs.get(task_id)
        if run is None:
            return
        if page is not None:
            run.plan.on_dropped(page)  # wanted again by the next run
        self.stats.inc_value("ingest/adapter_errors")
        retry = self.settings.failed_pages_retry_after
        self.stop_task(task_id, StopAction.PAUSE, f"adapter error in {error}"[:1000], resume_after=retry,
                       count_attempt=True)

    def stop_task(self, task_id: int, action: StopAction | str, reason: str, *,
                  resume_after: float | None = 0.0, count_attempt: bool = False) -> None:
        run = self.runs.get(task_id)
        if run is None or not run.order_stop(action, reason, resume_after=resume_after,
                                             count_attempt=count_attempt):
            return
        level = logging.INFO if action == StopAction.RELEASE else logging.WARNING
        logger.log(level, "task %s: stopping (%s): %s", task_id, run.stop.action, reason, extra={"task_id": task_id})
        self._flush()
        self._check_finish(run)

    # -- the pipeline's side ------------------------------------------------------------------

    def claim_for(self, task_id: int) -> Claim | None:
        run = self.runs.get(task_id)
        return run.claim if run is not None and run.holds_claim else None

    def draining(self, task_id: int) -> bool:
        run = self.runs.get(task_id)
        return run is not None and run.draining(self._anyone_reading)

    def marker_for(self, task_id: int, pages: list[int]) -> int:
        return self.runs[task_id].marker(pages)

    def position_for(self, task_id: int, marker: int) -> str | None:
        return self.runs[task_id].position(marker)

    def pages_committed(self, task_id: int, pages: list[int]) -> None:
        run = self.runs.get(task_id)
        if run is None:
            return
        if run.pages_committed(pages):
            self._pump(run)  # a cursor listing restarts from its first page
        self._check_finish(run)

    def pages_discarded(self, task_id: int, pages: list[int], reason: str) -> None:
        run = self.runs.get(task_id)
        if run is None:
            return
        if run.pages_uncommitted(pages):
            for page in pages:
                self.page_failed(task_id, page, reason)
        self._check_finish(run)

    def claim_lost(self, task_id: int, reason: str) -> None:
        self.stats.inc_value("ingest/claims_lost")
        self.stop_task(task_id, StopAction.LOST, reason)

    def writes_keeping_up(self, keeping_up: bool) -> None:
        self._writes_keeping_up = keeping_up

    # -- accounts (the middleware's side) -----------------------------------------------------

    def current_account(self, task_id: int) -> Coroutine[Any, Any, int]:
        """The account the task's requests use now (waits for a switch in progress). Twice per
        request: the coroutine is AccountWork's own, without a frame of this one around it."""
        return self.accounts.current_account(self.runs, task_id)

    async def login_details(self, account_id: int) -> tuple[str, str, Identity, Budget]:
        return await self.tasks.login_details(account_id)

    def proxy_ok(self, account_id: int) -> None:
        _schedule_coro(self.tasks.proxy_ok(account_id))

    async def retire_account(self, task_id: int, account_id: int, action: str, reason: str,
                             seconds: float = 0.0) -> None:
        """Take the account out of rotation (``disable`` or ``cool_down``) and move the task to
        another idle account; with none left, pause the task."""
        run = self.runs.get(task_id)
        if run is not None:
            self._order(run, await self.accounts.retire(run, account_id, action, reason, seconds))

    async def _hand_back(self, run: TaskRun) -> None:
        lost = await self.accounts.hand_back(run)
        if lost is not None:
            self._order(run, lost)
            return
        if not run.account_returned:
            self._flush()  # it keeps its account until its pages are in: write them now
        self._check_finish(run)
        if run.account_returned:
            _schedule_coro(self._fill())  # its slot is free

    def _order(self, run: TaskRun, stop: Stop | None) -> None:
        if stop is not None and stop.action is StopAction.LOST:
            self.claim_lost(run.task_id, stop.reason)
        elif stop is not None:
            self.stop_task(run.task_id, stop.action, stop.reason, resume_after=stop.resume_after)

    # -- finishing ----------------------------------------------------------------------------

    def _check_finish(self, run: TaskRun) -> None:
        if self.runs.get(run.task_id) is not run:
            return
        readiness = run.begin_finish()
        if readiness is Readiness.WRITE_FIRST:
            self._flush()
        elif readiness is Readiness.FINISH:
            self._ended[run] = Gate()
            _schedule_coro(self._finalize(run))

    async def _finalize(self, run: TaskRun) -> None:
        await self.accounts.idle(run)  # a run shut down during account work
        ending = run.ending(self.settings.failed_pages_retry_after)
        outcome = ending.outcome
        try:
            outcome = await self.tasks.record_end(run.claim, ending)
            if outcome is RunOutcome.COMPLETED:
                self.stats.inc_value("ingest/tasks_completed")
        finally:
            self.runs.pop(run.task_id, None)
            self.feed.fit(len(self.runs), self.settings.pages_in_flight)
            run.ended(outcome)
            self._ended.pop(run).open()
        if not self._closed:
            self._follow(self.claiming.after_run(run, ending.resume_after, self._accepting()))

    def stop_for_configuration(self, reason: CloseReason, message: str) -> None:
        """Stop the crawl on a setting no retry can fix (e.g. a key that cannot decrypt the
        passwords): one error line, claims released by the normal shutdown."""
        if self._close_reason is None:
            logger.error("stopping the crawl: %s", message)
            self.stats.set_value(EXIT_STATUS_STAT, EXIT_CONFIGURATION)
        self._close(reason)

    def _close(self, reason: CloseReason) -> None:
        if self._close_reason is not None:
            return
        self._close_reason = reason = CloseReason(reason)
        if self.crawler.engine is not None and self.crawler.crawling:
            _schedule_coro(self.crawler.engine.close_spider_async(reason=reason.value))

    # -- loops and signals --------------------------------------------------------------------

    async def _heartbeat_tick(self) -> None:
        await self.claiming.beat(self.runs, self.claim_lost)

    async def _poll_tick(self) -> None:
        if self._accepting():
            await self._fill()

    def _spider_idle(self) -> None:
        if self._close_reason is not None:
            raise CloseSpider(self._close_reason.value)
        if self.startup_error is not None or self.tasks is None or self._start_failed:
            return
        raise DontCloseSpider

    async def _spider_closed(self, spider: Any, reason: str) -> None:
        if self.tasks is not None:
            self.tasks.closing()
        for loop in self._loops:
            if getattr(loop, "running", False):
                loop.stop()
        self._loops.clear()
        self.feed.stop()
        if self.claiming is not None and self.claiming.filled is not None:
            await self.claiming.filled.wait()  # a claim under way is begun or released first
        for run in list(self.runs.values()):
            if run.outcome is not None:
                continue  # ended while an earlier one was being finished
            if run.finishing:
                await self._ended[run].wait()
                continue
            run.shut_down(reason)
            self._ended[run] = Gate()
            await self._finalize(run)
        self._closed = True
        if self.tasks is not None:
            await self.tasks.close()
