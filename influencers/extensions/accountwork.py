"""Account switches and hand-backs of task runs: their database work, and the gate others wait on.

While a run's account changes (a switch away from a banned, capped or captcha'd account, or the
hand-back of a read-out task's account to the pool), the run's requests and its end wait for the
run's gate here: both change the claim they use. The run's `TaskRun` has already said the work
may begin (`begin_switch`, `begin_hand_back`) and is told how it ended; what is left to do — a
stop to order, a lost claim — goes back to the ingestion service as the return value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import IgnoreRequest

from influencers.core.errors import ClaimLost, DatabaseUnavailable
from influencers.extensions.runs import Gate
from influencers.ingest.run import Stop, StopAction

if TYPE_CHECKING:
    from influencers.extensions.taskdb import TaskDatabase
    from influencers.ingest.run import TaskRun

logger = logging.getLogger(__name__)


class AccountWork:
    def __init__(self, tasks: TaskDatabase, stats: Any) -> None:
        self.tasks = tasks
        self.stats = stats
        self._gates: dict[TaskRun, Gate] = {}

    def busy(self, run: TaskRun) -> Gate | None:
        """The gate of account work under way for the run, if any."""
        return self._gates.get(run)

    def begin(self, run: TaskRun) -> None:
        """Account work for the run starts now (synchronously, so that nothing slips in before
        the database work is scheduled)."""
        self._gates[run] = Gate()

    async def idle(self, run: TaskRun) -> None:
        while (gate := self._gates.get(run)) is not None:
            await gate.wait()

    async def current_account(self, runs: Mapping[int, TaskRun], task_id: int) -> int:
        """The account the task's requests use now (after account work under way)."""
        while True:
            run = runs.get(task_id)
            if run is None or run.stopping:
                raise IgnoreRequest(f"task {task_id} is stopping")
            gate = self._gates.get(run)
            if gate is None:
                if run.claim.account_id is None:
                    raise IgnoreRequest(f"task {task_id} has no account")
                return run.claim.account_id
            await gate.wait()

    async def retire(self, run: TaskRun, account_id: int, action: str, reason: str, seconds: float) -> Stop | None:
        """Retire the account (``disable``, or ``cool_down`` for ``seconds``) and move the run to
        another idle account, unless the run already did or may not (`TaskRun.begin_switch`).
        Returns the stop to order: a pause when no account is left, a release when the database
        failed, lost when the claim is someone else's; None when the run goes on."""
        if run.retired(account_id):
            return None
        busy = self._gates.get(run)
        if busy is not None:
            await busy.wait()
        if not run.begin_switch(account_id):
            return None
        self.begin(run)
        return await self._switch(run, account_id, action, reason, seconds)

    def _end(self, run: TaskRun) -> None:
        self._gates.pop(run).open()

    async def _switch(self, run: TaskRun, account_id: int, action: str, reason: str, seconds: float) -> Stop | None:
        task_id = run.task_id
        extra = {"task_id": task_id, "account_id": account_id}
        stop: Stop | None = None
        try:
            seconds = await self.tasks.retire(account_id, action, reason, seconds, task_id=task_id)
            if action == "disable":
                self.stats.inc_value("accounts/disabled")
                logger.warning("account %s disabled: %s", account_id, reason, extra=extra)
            else:
                self.stats.inc_value("accounts/cooled_down")
                logger.warning("account %s cooling down for %.0fs: %s", account_id, seconds, reason, extra=extra)
            claim = await self.tasks.switch_account(run.claim, reason)
            if claim is not None:
                run.switched(claim)
                self.stats.inc_value("accounts/switched")
                logger.info("task %s now uses account %s", task_id, claim.account_id,
                            extra={"task_id": task_id, "account_id": claim.account_id})
            else:
                wait = await self.tasks.next_available_in()
                self.stats.inc_value("accounts/exhausted")
                run.switched(replace(run.claim, account_id=None))
                stop = Stop(StopAction.PAUSE, f"no idle account left to continue ({reason})",
                            None if wait is None else max(1.0, wait))
        except ClaimLost as exc:
            stop = Stop(StopAction.LOST, str(exc))
        except Exception as exc:  # noqa: BLE001 - the database hiccuped: release, a retry resumes
            logger.error("task %s: could not switch accounts: %s", task_id, exc, extra={"task_id": task_id})
            stop = Stop(StopAction.RELEASE, f"account switch failed: {exc}")
        finally:
            run.end_switch()
            self._end(run)
        return stop

    async def hand_back(self, run: TaskRun) -> Stop | None:
        """Return the run's account to the pool while its last pages commit (`begin` was
        called). Returns a lost stop when the claim is someone else's; a database failure only
        keeps the account with the run, which frees it when it ends."""
        account_id = run.claim.account_id
        extra = {"task_id": run.task_id, "account_id": account_id}
        try:
            run.handed_back(await self.tasks.hand_back(run.claim))
        except ClaimLost as exc:
            run.hand_back_failed()
            return Stop(StopAction.LOST, str(exc))
        except Exception as exc:  # noqa: BLE001 - harmless: the task frees its account when it ends
            level = logging.DEBUG if isinstance(exc, DatabaseUnavailable) else logging.WARNING  # said once
            logger.log(level, "task %s: could not hand its account back early: %s", run.task_id, exc, extra=extra)
            run.hand_back_failed()
        else:
            self.stats.inc_value("ingest/accounts_handed_back")
            logger.info("task %s: all pages fetched; account %s goes back to the pool while the last pages commit",
                        run.task_id, account_id, extra=extra)
        finally:
            self._end(run)
        return None
