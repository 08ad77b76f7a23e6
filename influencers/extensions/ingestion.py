"""The ingestion service behind the `influencers` spider: claims, leases, accounts, task runs.

One instance per crawler (``IngestionService.of(crawler)``), shared by the spider, the account
middleware and the MySQL pipeline. It owns the worker identity (a GET_LOCK connection, so a
killed process loses its claims at once), the claims the process holds, and a `PagePlan` per
claimed task. All its database work runs on its own `DatabaseThread`, never on the reactor.

Modes (set by the spider's arguments):

* domain mode (``-a domain=X`` or ``-a task_id=N``): claim that one task, crawl it, then close;
  if it cannot be claimed now (no idle account yet, paused until later) keep trying for
  ``INGEST_CLAIM_WAIT`` seconds.
* service mode (no arguments): keep up to ``INGEST_MAX_TASKS`` claims, poll for more every
  ``INGEST_POLL_INTERVAL`` seconds; ``-a once=1`` closes when nothing is left to claim.

On close (finished, SIGTERM/SIGINT, error) the pipeline has already committed what it had; the
service then completes, pauses or releases every claim it still holds.

Settings: INGEST_LEASE_SECONDS (60), INGEST_HEARTBEAT_INTERVAL (lease/3), INGEST_POLL_INTERVAL
(5), INGEST_MAX_TASKS (2), INGEST_PAGES_IN_FLIGHT (1), INGEST_CLAIM_WAIT (60),
INGEST_FAILED_PAGES_RETRY_AFTER (300), SITE_ADAPTER, SITE_URL (default: INFLUENCERS_SITE_URL),
SITE_RENDER (default: the adapter's).
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, IgnoreRequest
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import _schedule_coro

from influencers.core.accounts import AccountManager
from influencers.core.config import Config, get_config
from influencers.core.credentials import CredentialCipher
from influencers.core.errors import ClaimLost, InfluencersError
from influencers.core.store import committed_pages
from influencers.core.tasks import Claim, TaskScheduler
from influencers.core.workers import Worker
from influencers.extensions.dbthread import DatabaseThread
from influencers.extensions.runs import (
    EXIT_CONFIGURATION,
    EXIT_STATUS_STAT,
    Gate,
    IngestSettings,
    TaskRun,
)
from influencers.sites.base import SiteAdapter, load_adapter
from influencers.spiders.plan import PagePlan

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

#: Seconds a crawl trusts its last recovery scan and worker-lock check between claims: with
#: subtasks of a few pages a slot claims many times a second, and each check is a round trip
#: the slot waits for with nothing in flight (bench/README.md, crawl).
LIVENESS_CHECK_EVERY = 1.0

_SERVICES: weakref.WeakKeyDictionary[Any, IngestionService] = weakref.WeakKeyDictionary()


class IngestionService:
    def __init__(self, crawler: Crawler, settings: IngestSettings) -> None:
        self.crawler = crawler
        self.settings = settings
        self.config: Config | None = None
        self.adapter: SiteAdapter | None = None
        self.startup_error: Exception | None = None
        self.runs: dict[int, TaskRun] = {}
        self.sink: Any = None  # the pipeline, which registers itself
        self.spider: Any = None
        self.db: DatabaseThread | None = None
        self.scheduler: TaskScheduler | None = None
        # A task's end (complete, pause, release, fail) goes through a connection of its own:
        # with subtasks of a few pages the claims' thread was busy most of the crawl, and a slot
        # waiting for its next claim queued behind the other task's completion (bench/README.md).
        self.finish_db: DatabaseThread | None = None
        self.finisher: TaskScheduler | None = None
        self.worker: Worker | None = None
        self._target_task: int | None = None  # domain mode: the one task to crawl
        self._once = False
        self._filling = False
        self._filled: Gate | None = None
        self._beating = False
        self._close_reason: str | None = None
        self._waiting_since: float | None = None
        self._loops: list[Any] = []
        self._closed = False
        try:
            self.config = get_config()
            self.adapter = load_adapter(settings.adapter_path, settings.site_url or self.config.site_url)
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
            service = cls(crawler, IngestSettings.from_settings(crawler.settings))
            _SERVICES[crawler] = service
        return service

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IngestionService:
        return cls.of(crawler)

    # -- start --------------------------------------------------------------------------------

    async def start(self, spider: Any, *, domain: str | None, pages: int | None, task_id: int | None,
                    once: bool) -> None:
        """Open the database side and claim the first task(s). Raises InfluencersError."""
        if self.startup_error is not None:
            raise self.startup_error
        assert self.config is not None
        self.spider = spider
        self._once = once
        self.db = DatabaseThread(self.config.mysql, "ingest-db")
        await self.db.run(self._open)
        self.finish_db = DatabaseThread(self.config.mysql, "ingest-finish")
        await self.finish_db.run(self._open_finisher)
        if task_id is not None:
            self._target_task = task_id
            await self.db.run(lambda conn: self.scheduler.get(task_id))  # TaskNotFound early
        elif domain is not None:
            self._target_task = await self.db.run(
                lambda conn: self.scheduler.find_or_create_domain_task(domain, pages))
        for interval, tick in ((self.settings.heartbeat_interval, self._heartbeat_tick),
                               (self.settings.poll_interval if self._target_task is None
                                else min(self.settings.poll_interval, 1.0), self._poll_tick)):
            loop = create_looping_call(lambda tick=tick: _schedule_coro(tick()))
            loop.start(interval, now=False)
            self._loops.append(loop)
        # Its own task, not part of Spider.start(): a shutdown cancels start(), and a claim
        # being made must still be begun or released, never dropped on the floor.
        _schedule_coro(self._fill())

    def _open(self, conn: Any) -> None:
        assert self.config is not None
        self.worker = Worker.start(self.config.mysql, "ingest", check_every=LIVENESS_CHECK_EVERY)
        accounts = AccountManager(conn, utc_offset=self.config.utc_offset,
                                  cipher=CredentialCipher.from_config(self.config))
        self.scheduler = TaskScheduler(conn, self.worker, accounts, lease_seconds=self.settings.lease_seconds,
                                       recover_every=LIVENESS_CHECK_EVERY)
        logger.info("ingestion worker %s started (site %s, adapter %s)", self.worker.worker_id,
                    self.adapter.base_url if self.adapter else "?", self.settings.adapter_path)

    def _open_finisher(self, conn: Any) -> None:
        assert self.config is not None
        self.finisher = TaskScheduler(conn, self.worker, AccountManager(conn, utc_offset=self.config.utc_offset),
                                      lease_seconds=self.settings.lease_seconds)

    @property
    def accounts(self) -> AccountManager:
        assert self.scheduler is not None
        return self.scheduler.accounts

    # -- claiming -----------------------------------------------------------------------------

    def _accepting(self) -> bool:
        return self.crawler.crawling and self._close_reason is None and not self._closed

    async def _fill(self) -> None:
        if self._filling or not self._accepting():
            return
        self._filling = True
        filled = self._filled = Gate()
        try:
            limit = 1 if self._target_task is not None else self.settings.max_tasks
            while sum(run.holds_slot for run in self.runs.values()) < limit and self._accepting():
                claim, committed = await self.db.run(self._claim_next)
                if claim is None:
                    await self._nothing_claimed()
                    break
                if not self._accepting():  # a stop arrived while we were claiming
                    await self.db.run(lambda conn, claim=claim: self.scheduler.release(claim, "worker stopping"))
                    break
                self._waiting_since = None
                try:
                    self._begin(claim, committed)
                except Exception:
                    self.runs.pop(claim.task_id, None)
                    await self.db.run(lambda conn, claim=claim: self.scheduler.release(claim, "could not start"))
                    raise
        except Exception as exc:  # noqa: BLE001 - the database hiccuped: the next poll tries again
            logger.error("claiming failed: %s", exc)
        finally:
            self._filling = False
            filled.open()

    async def _nothing_claimed(self) -> None:
        if self.sink is not None and not any(run.reading for run in self.runs.values()):
            self.sink.flush_soon()  # the handed-back tasks' last pages wait for nobody else now
        if self.runs:
            return
        if self._target_task is None:
            if self._once:
                logger.info("no claimable ingestion task left; stopping (once=1)")
                self._close("queue_empty")
            return
        why, can_wait = await self.db.run(self._why_unclaimable, self._target_task)
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
            logger.info("task %s cannot be claimed now: %s", self._target_task, why,
                        extra={"task_id": self._target_task})
        if not can_wait:
            self._close(why.split(":")[0].replace(" ", "_"))
        elif now - self._waiting_since >= self.settings.claim_wait:
            logger.warning("task %s: gave up after waiting %.0fs: %s", self._target_task,
                           self.settings.claim_wait, why, extra={"task_id": self._target_task})
            self._close("not_claimable")

    def _why_unclaimable(self, conn: Any, task_id: int) -> tuple[str, bool]:
        task = self.scheduler.get(task_id)
        if task.status == "completed":
            return "task completed: nothing left to crawl", False
        if task.status == "failed":
            return f"task failed: {task.last_error or 'see its events'}", False
        if task.status == "in_progress":
            return f"task busy: held by worker {task.claimed_by}", False
        with conn.cursor() as cursor:
            cursor.execute("SELECT not_before > UTC_TIMESTAMP(6) AS later, not_before IS NULL AS manual"
                           " FROM tasks WHERE id = %s", (task_id,))
            row = cursor.fetchone()
            wait = self.accounts.next_available_in(cursor=cursor)
        conn.commit()
        if task.status == "paused" and row["manual"]:
            return f"task paused: {task.last_error or 'by an operator'} (resume it first)", False
        if task.status == "paused" and row["later"]:
            return f"task paused until later: {task.last_error}", True
        if wait is None:
            return "no usable account: none exists or all are disabled (add or enable one)", False
        return f"no idle account yet (one may be free in {wait:.0f}s)", True

    def _claim_next(self, conn: Any) -> tuple[Claim | None, set[int]]:
        """A claim and the pages its task has committed before, in one trip to the database
        thread: a slot has nothing in flight until both are in."""
        claim = self.scheduler.claim("ingestion", task_id=self._target_task)
        return claim, (committed_pages(conn, claim.task_id) if claim is not None else set())

    def _begin(self, claim: Claim, committed: set[int]) -> None:
        task = claim.task
        plan = PagePlan(task.page_from or 1, task.page_to, marker=task.marker_value, committed=committed,
                        window=self.settings.pages_in_flight)
        assert self.adapter is not None
        render = getattr(self.spider, "render", None) or self.settings.render  # -a render= wins
        run = TaskRun(claim=claim, plan=plan, render=self.adapter.check_render(render))
        self.runs[task.id] = run
        self.stats.inc_value("ingest/tasks_claimed")
        span = f"{plan.page_from}-{plan.page_to}" if plan.page_to else f"{plan.page_from}-end"
        logger.info("task %s: crawling %s pages %s as %s with account %s (%d pages already committed, marker %s)",
                    task.id, task.domain, span, run.render, claim.account_id, len(plan.committed),
                    task.progress_marker, extra={"task_id": task.id, "account_id": claim.account_id})
        self._pump(run)
        self._check_finish(run)

    # -- pages --------------------------------------------------------------------------------

    def _pump(self, run: TaskRun) -> None:
        if run.stop or run.finishing or self.crawler.engine is None or not self._accepting():
            return
        for page in run.plan.next_pages():
            self.crawler.engine.crawl(self.spider.page_request(run, page))
        if self.sink is not None and self.draining(run.task_id):
            self.sink.flush_soon()

    def run_for(self, task_id: int) -> TaskRun | None:
        return self.runs.get(task_id)

    def page_fetched(self, task_id: int, page: int, *, has_more: bool, total_pages: int | None) -> None:
        run = self.runs.get(task_id)
        if run is None:
            return
        run.plan.on_fetched(page, has_more=has_more, total_pages=total_pages)
        if run.plan.all_fetched and self._may_hand_back(run):
            run.handing_back = True  # before _pump: its last pages need not be written at once
            _schedule_coro(self._hand_back(run))
        self._pump(run)
        self._check_finish(run)

    def _may_hand_back(self, run: TaskRun) -> bool:
        return not (run.handing_back or run.handed_back or run.stop or run.finishing or self._target_task is not None
                    or run.switching is not None or run.claim.account_id is None
                    # a crawl that outruns its writes would only pile up pages (bench/README.md)
                    or (self.sink is not None and not self.sink.keeping_up()))

    async def _hand_back(self, run: TaskRun) -> None:
        """All pages are read, the last ones wait for the pipeline: let the account (and this
        run's slot) take the next task meanwhile. Ending the task frees nothing then."""
        if run.stop or run.finishing or run.switching is not None:
            run.handing_back = False
            if self.sink is not None:
                self.sink.flush_soon()
            return
        gate = run.switching = Gate()  # the task's end and account switches wait for it
        lost: ClaimLost | None = None
        account_id = run.claim.account_id
        try:
            run.claim = await self.db.run(lambda conn: self.scheduler.hand_back_account(run.claim))
            run.handed_back = True
            self.stats.inc_value("ingest/accounts_handed_back")
            logger.info("task %s: all pages fetched; account %s goes back to the pool while the last pages commit",
                        run.task_id, account_id, extra={"task_id": run.task_id, "account_id": account_id})
        except ClaimLost as exc:
            lost = exc
        except Exception as exc:  # noqa: BLE001 - harmless: the task frees its account when it ends
            logger.warning("task %s: could not hand its account back early: %s", run.task_id, exc,
                           extra={"task_id": run.task_id})
        finally:
            run.handing_back = False
            run.switching = None
            gate.open()
        if lost is not None:
            self.claim_lost(run.task_id, str(lost))
            return
        if not run.handed_back and self.sink is not None:
            self.sink.flush_soon()  # it keeps its account until its pages are in: write them now
        self._check_finish(run)  # a stop that arrived meanwhile waited for the gate
        if run.handed_back:
            _schedule_coro(self._fill())

    def page_failed(self, task_id: int, page: int, reason: str) -> None:
        run = self.runs.get(task_id)
        if run is None:
            return
        if run.stop:
            run.plan.on_dropped(page)
        else:
            run.plan.on_failed(page, reason)
            self.stats.inc_value("ingest/pages_failed")
            logger.error("task %s: page %s failed: %s", task_id, page, reason,
                         extra={"task_id": task_id, "account_id": run.claim.account_id})
            self._pump(run)
        self._check_finish(run)

    def page_dropped(self, task_id: int, page: int, reason: str) -> None:
        """A request was not completed; fine while the task stops, a failure otherwise."""
        run = self.runs.get(task_id)
        if run is None:
            return
        if run.stop:
            run.plan.on_dropped(page)
            self._check_finish(run)
        else:
            self.page_failed(task_id, page, reason)

    def stop_task(self, task_id: int, action: str, reason: str, *, resume_after: float | None = 0.0) -> None:
        run = self.runs.get(task_id)
        if run is None or run.stop:
            return
        run.stop = (action, reason)
        run.resume_after = resume_after
        logger.log(logging.INFO if action == "release" else logging.WARNING, "task %s: stopping (%s): %s",
                   task_id, action, reason, extra={"task_id": task_id})
        if self.sink is not None:
            self.sink.flush_soon()
        self._check_finish(run)

    # -- the pipeline's side ------------------------------------------------------------------

    def claim_for(self, task_id: int) -> Claim | None:
        run = self.runs.get(task_id)
        if run is None or (run.stop and run.stop[0] == "lost"):
            return None
        return run.claim

    def draining(self, task_id: int) -> bool:
        """True when what the task has waiting for the pipeline should be written now, not with
        the next full batch or flush interval: it reads no more pages (all fetched, or stopping)
        and something waits for its end, its account or, when no other task is reading, the
        crawl itself. A task that handed its account back holds nothing up while others read;
        its pages go with theirs, in fewer and larger transactions (bench/README.md, crawl)."""
        run = self.runs.get(task_id)
        if run is None or run.reading:
            return False
        if run.stop is not None or not (run.handing_back or run.handed_back):
            return True
        return not any(other.reading for other in self.runs.values())

    def marker_for(self, task_id: int, pages: list[int]) -> int:
        run = self.runs[task_id]
        return run.plan.marker(pages)

    def pages_committed(self, task_id: int, pages: list[int]) -> None:
        run = self.runs.get(task_id)
        if run is None:
            return
        run.plan.on_committed(pages)
        self._check_finish(run)

    def pages_discarded(self, task_id: int, pages: list[int], reason: str) -> None:
        run = self.runs.get(task_id)
        if run is None:
            return
        run.plan.on_uncommitted(pages)
        if not run.stop:
            for page in pages:
                self.page_failed(task_id, page, reason)
        self._check_finish(run)

    def claim_lost(self, task_id: int, reason: str) -> None:
        self.stats.inc_value("ingest/claims_lost")
        self.stop_task(task_id, "lost", reason)

    # -- accounts (the middleware's side) -----------------------------------------------------

    async def current_account(self, task_id: int) -> int:
        """The account the task's requests use now (waits for a switch in progress)."""
        while True:
            run = self.runs.get(task_id)
            if run is None or run.stop:
                raise IgnoreRequest(f"task {task_id} is stopping")
            if run.switching is None:
                if run.claim.account_id is None:
                    raise IgnoreRequest(f"task {task_id} has no account")
                return run.claim.account_id
            await run.switching.wait()

    async def credentials(self, account_id: int) -> tuple[str, str]:
        return await self.db.run(lambda conn: self.accounts.credentials(account_id))

    async def retire_account(self, task_id: int, account_id: int, action: str, reason: str,
                             seconds: float = 0.0) -> None:
        """Take the account out of rotation (``disable`` or ``cool_down``) and move the task to
        another idle account; with none left, pause the task."""
        run = self.runs.get(task_id)
        if run is None or account_id in run.retired:
            return
        if run.switching is not None:
            await run.switching.wait()
        if run.claim.account_id != account_id or run.stop:
            return
        run.retired.add(account_id)
        gate = run.switching = Gate()
        worker_id = self.worker.worker_id if self.worker else None
        try:
            if action == "disable":
                await self.db.run(lambda conn: self.accounts.disable(
                    account_id, reason, task_id=task_id, worker=worker_id))
                self.stats.inc_value("accounts/disabled")
                logger.warning("account %s disabled: %s", account_id, reason,
                               extra={"task_id": task_id, "account_id": account_id})
            else:
                await self.db.run(lambda conn: self.accounts.cool_down(
                    account_id, seconds, reason, task_id=task_id, worker=worker_id))
                self.stats.inc_value("accounts/cooled_down")
                logger.warning("account %s cooling down for %.0fs: %s", account_id, seconds, reason,
                               extra={"task_id": task_id, "account_id": account_id})
            claim = await self.db.run(lambda conn: self.scheduler.switch_account(run.claim, reason))
            if claim is not None:
                run.claim = claim
                self.stats.inc_value("accounts/switched")
                logger.info("task %s now uses account %s", task_id, claim.account_id,
                            extra={"task_id": task_id, "account_id": claim.account_id})
            else:
                wait = await self.db.run(lambda conn: self.accounts.next_available_in())
                self.stats.inc_value("accounts/exhausted")
                run.claim = _without_account(run.claim)
                self.stop_task(task_id, "pause", f"no idle account left to continue ({reason})",
                               resume_after=None if wait is None else max(1.0, wait))
        except ClaimLost as exc:
            self.claim_lost(task_id, str(exc))
        except Exception as exc:  # noqa: BLE001 - the database hiccuped: release, a retry resumes
            logger.error("task %s: could not switch accounts: %s", task_id, exc, extra={"task_id": task_id})
            self.stop_task(task_id, "release", f"account switch failed: {exc}")
        finally:
            run.switching = None
            gate.open()

    # -- finishing ----------------------------------------------------------------------------

    def _check_finish(self, run: TaskRun) -> None:
        if run.finishing or self.runs.get(run.task_id) is not run:
            return
        plan = run.plan
        if run.stop:
            if plan.in_flight or run.switching is not None:
                return
            if plan.fetched:
                if self.sink is not None:
                    self.sink.flush_soon()
                return
        elif not plan.finished:
            return
        run.finishing = True
        _schedule_coro(self._finalize(run))

    async def _finalize(self, run: TaskRun) -> None:
        while run.switching is not None:  # an account switch or hand-back changes run.claim
            await run.switching.wait()
        plan = run.plan
        action, reason = run.stop or ("", "")
        marker_page = plan.marker()
        marker = f"page={marker_page}" if marker_page >= plan.page_from else None
        claim = run.claim
        try:
            if action == "lost":
                run.outcome = "lost"
                logger.warning("task %s: claim lost: %s", run.task_id, reason, extra={"task_id": run.task_id})
            elif action == "fail":
                run.outcome = "failed"
                await self.finish_db.run(lambda conn: self.finisher.fail(claim, reason))
            elif plan.succeeded and action != "pause":
                run.outcome = "completed"
                await self.finish_db.run(lambda conn: self.finisher.complete(
                    claim, f"{len(plan.committed)} pages committed, last page {plan.last_page}"))
                self.stats.inc_value("ingest/tasks_completed")
            elif plan.failed and plan.finished:
                run.outcome = "pages_failed"
                failed = "; ".join(f"page {p}: {why}" for p, why in sorted(plan.failed.items()))
                retry_after = self.settings.failed_pages_retry_after
                await self.finish_db.run(lambda conn: self.finisher.pause(
                    claim, marker, f"{len(plan.failed)} page(s) failed, retried in {retry_after:.0f}s: {failed}"[:1000],
                    resume_after=retry_after, count_attempt=True))
            elif action == "pause":
                run.outcome = "paused"
                await self.finish_db.run(lambda conn: self.finisher.pause(claim, marker, reason,
                                                                    resume_after=run.resume_after))
                logger.warning("task %s paused at %s: %s", run.task_id, marker, reason,
                               extra={"task_id": run.task_id})
            else:
                run.outcome = "released"
                await self.finish_db.run(lambda conn: self.finisher.release(claim, reason or "worker stopping"))
        except ClaimLost as exc:
            run.outcome = "lost"
            logger.warning("task %s: %s", run.task_id, exc, extra={"task_id": run.task_id})
        except Exception as exc:  # noqa: BLE001 - the lease will expire and the task be recovered
            run.outcome = "error"
            logger.error("task %s: could not record its end: %s", run.task_id, exc, extra={"task_id": run.task_id})
        finally:
            self.runs.pop(run.task_id, None)
            run.done.open()
        self._after(run)

    def _after(self, run: TaskRun) -> None:
        if self._closed:
            return
        if self._target_task is not None:
            if run.outcome == "paused" and run.resume_after is not None \
                    and run.resume_after <= self.settings.claim_wait and self._accepting():
                self._waiting_since = time.monotonic()
                logger.info("task %s: waiting up to %.0fs for an account to come back", run.task_id,
                            self.settings.claim_wait)
                return  # the poll loop claims it again when it is claimable
            self._close({"completed": "finished", "lost": "claim_lost"}.get(run.outcome or "", run.outcome or "finished"))
            return
        _schedule_coro(self._fill())

    def stop_for_configuration(self, reason: str, message: str) -> None:
        """Stop the crawl on a setting no retry can fix (e.g. a key that cannot decrypt the
        passwords): one error line, claims released by the normal shutdown."""
        if self._close_reason is None:
            logger.error("stopping the crawl: %s", message)
            self.stats.set_value(EXIT_STATUS_STAT, EXIT_CONFIGURATION)
        self._close(reason)

    def _close(self, reason: str) -> None:
        if self._close_reason is not None:
            return
        self._close_reason = reason
        if self.crawler.engine is not None and self.crawler.crawling:
            _schedule_coro(self.crawler.engine.close_spider_async(reason=reason))

    # -- loops and signals --------------------------------------------------------------------

    async def _heartbeat_tick(self) -> None:
        if self._beating:
            return
        self._beating = True
        try:
            await self._beat()
        finally:
            self._beating = False

    async def _beat(self) -> None:
        for run in list(self.runs.values()):
            if run.finishing or (run.stop and run.stop[0] == "lost"):
                continue
            claim = run.claim
            try:
                alive = await self.db.run(lambda conn, claim=claim: self.scheduler.heartbeat(claim))
            except Exception as exc:  # noqa: BLE001 - try again at the next beat
                logger.warning("heartbeat for task %s failed: %s", run.task_id, exc)
                continue
            if not alive:
                self.claim_lost(run.task_id, "the lease was lost (expired or taken over)")

    async def _poll_tick(self) -> None:
        if not self._accepting():
            return
        await self._fill()

    def _spider_idle(self) -> None:
        if self._close_reason is not None:
            raise CloseSpider(self._close_reason)
        if self.startup_error is not None or self.db is None:
            return
        raise DontCloseSpider

    async def _spider_closed(self, spider: Any, reason: str) -> None:
        for loop in self._loops:
            if getattr(loop, "running", False):
                loop.stop()
        self._loops.clear()
        if self._filled is not None:
            await self._filled.wait()  # a claim under way is begun or released first
        for run in list(self.runs.values()):
            if run.finishing:
                await run.done.wait()
                continue
            run.plan.in_flight.clear()
            if not run.stop:
                run.stop = ("release", f"spider closed ({reason})")
            run.finishing = True
            await self._finalize(run)
        self._closed = True
        if self.finish_db is not None:
            self.finish_db.close()
        db, worker = self.db, self.worker
        if db is not None:
            if worker is not None:
                await db.run(lambda conn: worker.close())
            db.close()


def _without_account(claim: Claim) -> Claim:
    from dataclasses import replace

    return replace(claim, account_id=None)
