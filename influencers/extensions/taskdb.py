"""The ingestion service's database side: its worker identity, and what it asks of the core.

Everything here runs on one of two `DatabaseThread`s, never on the reactor: claims, heartbeats
and account work on the first; a task's end (complete, pause, release, fail) on a second, so a
slot waiting for its next claim does not queue behind another task's end. The worker holds
``GET_LOCK(<worker id>)`` on a connection of its own (`influencers.core.workers`), so a killed
process loses its claims at once. Nothing here decides anything: `IngestionService` and
`TaskRun` do.

A database outage is waited out here where the caller cannot simply try again later: opening,
the task lookups at start, a login's credentials, account switches and a run's end retry (as
`SharedOutage` spaces the tries) until the server is back; once the crawl is closing they give
up after ``CLOSE_PATIENCE`` seconds, and the lease or the worker lock hands the task on. Claims
and heartbeats are not retried here: the next poll or beat is the retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from scrapy.utils.asyncio import sleep

from influencers.core.account_model import Identity
from influencers.core.accounts import AccountManager
from influencers.core.budgets import Budget, BudgetStore
from influencers.core.config import Config
from influencers.core.credentials import CredentialCipher
from influencers.core.errors import ClaimLost, DatabaseUnavailable
from influencers.core.identities import IdentityStore
from influencers.core.outage import SharedOutage
from influencers.core.store import committed_pages
from influencers.core.tasks import Claim, TaskScheduler, pause_window
from influencers.core.workers import Worker
from influencers.extensions.dbthread import DatabaseThread
from influencers.ingest.reasons import Unclaimable, pause_or_account_unclaimable, task_unclaimable
from influencers.ingest.run import Ending, RunOutcome

logger = logging.getLogger(__name__)

#: Seconds a crawl trusts its last recovery scan and worker-lock check between claims: with
#: subtasks of a few pages a slot claims many times a second, and each check is a round trip the
#: slot would wait for with nothing in flight.
LIVENESS_CHECK_EVERY = 1.0
#: Seconds a closing crawl still waits for an unreachable database to record its runs' ends.
CLOSE_PATIENCE = 10.0
#: The shortest pause between two tries of a waiting call (the outage spaces the real tries).
MIN_RETRY_PAUSE = 0.1

T = TypeVar("T")


class TaskDatabase:
    def __init__(self, config: Config, *, lease_seconds: float, outage: SharedOutage) -> None:
        self.config = config
        self.lease_seconds = lease_seconds
        self.outage = outage
        self.db = DatabaseThread(config.mysql, "ingest-db", outage=outage)
        self.finish_db = DatabaseThread(config.mysql, "ingest-finish", outage=outage)
        self.worker: Worker | None = None
        self.scheduler: TaskScheduler | None = None
        self.identities: IdentityStore | None = None
        self.budgets: BudgetStore | None = None
        self.finisher: TaskScheduler | None = None
        self._give_up_at: float | None = None  # set when the crawl starts closing

    async def open(self) -> None:
        await self._patiently(self.db, self._open)
        await self._patiently(self.finish_db, self._open_finisher)

    def closing(self) -> None:
        """The crawl is closing: waiting calls give up ``CLOSE_PATIENCE`` seconds from now."""
        if self._give_up_at is None:
            self._give_up_at = time.monotonic() + CLOSE_PATIENCE

    async def _patiently(self, db: DatabaseThread, fn: Callable[..., T], *args: Any) -> T:
        """``db.run(fn, *args)``, tried again while the database is unreachable (see the module)."""
        while True:
            try:
                return await db.run(fn, *args)
            except DatabaseUnavailable as exc:
                if not exc.transient or (self._give_up_at is not None and time.monotonic() >= self._give_up_at):
                    raise
            await sleep(max(MIN_RETRY_PAUSE, self.outage.wait_left()))

    def _open(self, conn: Any) -> None:
        if self.worker is not None:  # a try that failed after the worker lock was taken
            self.worker.close()
        # The key first: a key file that cannot be read, or a key that is not the one the
        # deployment recorded, stops the crawl at start (one line) before it takes a worker lock.
        accounts = AccountManager(conn, quota_day=self.config.quota_day,
                                  cipher=CredentialCipher.from_config(self.config))
        accounts.check_key(record=False)
        self.worker = Worker.start(self.config.mysql, "ingest", check_every=LIVENESS_CHECK_EVERY)
        self.scheduler = TaskScheduler(conn, self.worker, accounts, lease_seconds=self.lease_seconds,
                                       recover_every=LIVENESS_CHECK_EVERY)
        self.identities = IdentityStore(conn, cipher=CredentialCipher.from_config(self.config))
        self.budgets = BudgetStore(conn, quota_day=self.config.quota_day)

    def _open_finisher(self, conn: Any) -> None:
        self.finisher = TaskScheduler(conn, self.worker, AccountManager(conn, quota_day=self.config.quota_day),
                                      lease_seconds=self.lease_seconds)

    @property
    def worker_id(self) -> str | None:
        return self.worker.worker_id if self.worker else None

    async def close(self) -> None:
        self.finish_db.close()
        self.db.close()
        if self.worker is not None:
            self.worker.close()  # its own connection, which no thread uses any more

    # -- tasks --------------------------------------------------------------------------------

    async def check_task(self, task_id: int) -> None:
        """TaskNotFound unless the task exists."""
        await self._patiently(self.db, lambda conn: self.scheduler.get(task_id))

    async def domain_task(self, domain: str, pages: int | None) -> int:
        return await self._patiently(self.db, lambda conn: self.scheduler.find_or_create_domain_task(domain, pages))

    async def claim(self, task_id: int | None) -> tuple[Claim | None, set[int]]:
        """A claim (of ``task_id``, or of any claimable ingestion task) and the pages its task has
        committed before, in one trip to the database thread: a slot has nothing in flight until
        both are in."""
        def claim(conn: Any) -> tuple[Claim | None, set[int]]:
            got = self.scheduler.claim("ingestion", task_id=task_id)
            return got, (committed_pages(conn, got.task_id) if got is not None else set())

        return await self.db.run(claim)

    async def release(self, claim: Claim, reason: str) -> None:
        await self.db.run(lambda conn: self.scheduler.release(claim, reason))

    async def pause(self, claim: Claim, reason: str, *, resume_after: float, count_attempt: bool) -> None:
        """Pause the task at its marker (a run that never began: nothing of it to record)."""
        await self._patiently(self.finish_db, lambda conn: self.finisher.pause(
            claim, None, reason, resume_after=resume_after, count_attempt=count_attempt))

    async def note(self, claim: Claim, event: str, reason: str) -> None:
        """An event in the task's history (on the second thread; a failure is logged, not raised:
        the history line is not worth holding the crawl up)."""
        try:
            await self._patiently(self.finish_db, lambda conn: self.finisher.note(claim, event, reason))
        except Exception as exc:  # noqa: BLE001
            logger.warning("task %s: could not record %s: %s", claim.task_id, event, exc,
                           extra={"task_id": claim.task_id})

    async def heartbeat(self, claim: Claim) -> bool:
        return await self.db.run(lambda conn: self.scheduler.heartbeat(claim))

    async def why_unclaimable(self, task_id: int) -> Unclaimable:
        return await self._patiently(self.db, self._why_unclaimable, task_id)

    def _why_unclaimable(self, conn: Any, task_id: int) -> Unclaimable:
        task = self.scheduler.get(task_id)
        settled = task_unclaimable(task)
        if settled is not None:
            return settled
        with conn.cursor() as cursor:
            later, manual = pause_window(cursor, task_id)
            wait = self.scheduler.accounts.next_available_in(cursor=cursor)
        conn.commit()
        return pause_or_account_unclaimable(task, paused_until_later=later, paused_by_operator=manual,
                                            account_wait=wait)

    async def record_end(self, claim: Claim, ending: Ending) -> RunOutcome:
        """Record a run's end as `TaskRun.ending` decided it (on the second thread). Returns the
        outcome: the one decided, LOST when the claim turns out to be lost, ERROR when the end
        could not be recorded (the lease then expires and the task is recovered)."""
        outcome, finisher, task_id = ending.outcome, self.finisher, claim.task_id
        extra = {"task_id": task_id}
        try:
            if outcome is RunOutcome.LOST:
                logger.warning("task %s: claim lost: %s", task_id, ending.reason, extra=extra)
            elif outcome is RunOutcome.FAILED:
                await self._patiently(self.finish_db, lambda conn: finisher.fail(claim, ending.reason))
            elif outcome is RunOutcome.COMPLETED:
                await self._patiently(self.finish_db, lambda conn: finisher.complete(claim, ending.reason))
            elif outcome in (RunOutcome.PAGES_FAILED, RunOutcome.PAUSED):
                await self._patiently(self.finish_db, lambda conn: finisher.pause(
                    claim, ending.marker, ending.reason, resume_after=ending.resume_after,
                    count_attempt=ending.count_attempt))  # the scheduler says paused or failed, the stop why
            else:
                await self._patiently(self.finish_db, lambda conn: finisher.release(claim, ending.reason))
        except ClaimLost as exc:
            logger.warning("task %s: %s", task_id, exc, extra=extra)
            return RunOutcome.LOST
        except Exception as exc:  # noqa: BLE001 - the lease will expire and the task be recovered
            logger.error("task %s: could not record its end: %s", task_id, exc, extra=extra)
            return RunOutcome.ERROR
        return outcome

    # -- accounts -----------------------------------------------------------------------------

    async def login_details(self, account_id: int) -> tuple[str, str, Identity, Budget]:
        """(username, password, identity, budget): what the account logs in with (never logged)
        and what it may still do today."""
        def read(conn: Any) -> tuple[str, str, Identity, Budget]:
            username, password = self.scheduler.accounts.credentials(account_id)
            return username, password, self.identities.get(account_id), self.budgets.get(account_id)

        return await self._patiently(self.db, read)

    async def proxy_ok(self, account_id: int) -> None:
        try:
            await self.db.run(lambda conn: self.identities.proxy_ok(account_id))
        except Exception as exc:  # noqa: BLE001 - only the health shown to operators lags
            logger.debug("account %s: could not record its proxy as healthy: %s", account_id, exc)

    async def retire(self, account_id: int, action: str, reason: str, seconds: float, *, task_id: int) -> float:
        """``disable`` the account, ``cool_down`` for ``seconds``, or cool it down for its
        proxy's back-off (``proxy``: the failure recorded with the proxy). Returns the seconds
        it rests."""
        accounts, identities, worker_id = self.scheduler.accounts, self.identities, self.worker_id
        if action == "disable":
            await self._patiently(self.db, lambda conn: accounts.disable(account_id, reason, task_id=task_id,
                                                                         worker=worker_id))
            return 0.0
        if action == "proxy":
            def proxy_failed(conn: Any) -> float:
                rest = identities.proxy_failed(account_id, reason)
                accounts.cool_down(account_id, rest, reason, task_id=task_id, worker=worker_id)
                return rest

            return await self._patiently(self.db, proxy_failed)
        await self._patiently(self.db, lambda conn: accounts.cool_down(account_id, seconds, reason,
                                                                       task_id=task_id, worker=worker_id))
        return seconds

    async def switch_account(self, claim: Claim, reason: str) -> Claim | None:
        return await self._patiently(self.db, lambda conn: self.scheduler.switch_account(claim, reason))

    async def next_available_in(self) -> float | None:
        return await self._patiently(self.db, lambda conn: self.scheduler.accounts.next_available_in())

    async def hand_back(self, claim: Claim) -> Claim:
        return await self.db.run(lambda conn: self.scheduler.hand_back_account(claim))

