"""How the ingestion components talk: one service, three narrow views of it, one signal back.

The `IngestionService` is the only holder of run state (claims, `TaskRun`s). The spider, the
account middleware and the MySQL pipeline each get it once (``IngestionService.of(crawler)``),
keep it typed as the protocol of their own side below — questions that need an answer at once,
events they report — and hold nothing of each other. The service in turn calls none of them:

* pages to write now: it sends the `flush_requested` signal, which the pipeline connects to in
  ``from_crawler`` (as Scrapy's own extensions listen, e.g. ``scrapy/extensions/closespider.py``);
  that happens a few times per task (its last page, a stop, a hand-back that failed), where a
  signal's dispatch costs nothing that matters;
* pages to read: it calls the `PageRequests` function the spider hands it at start (a plain call,
  since this happens once per page, and a signal's dispatch would be on that hot path);
* whether the writes keep up with the crawl (the hand-back rule in `TaskRun`): the pipeline
  reports it through `PageLedger.writes_keeping_up` when it changes, so the service never asks.

Beside the service, the account middleware announces each response that is an account's problem
with the `account_verdict` signal, for listeners that count them (`extensions.tallying`).

Why protocols and not signals both ways: the pipeline's questions (the claim to write under, the
marker, whether a task is draining) need an answer synchronously, once per page or batch; signals
return a list of (receiver, result) pairs and cost a dispatch per send. Each protocol can be
replaced by a small fake in a unit test (``tests/unit/test_ingest_pipeline.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from scrapy import Request

    from influencers.core.account_model import Identity
    from influencers.core.budgets import Budget
    from influencers.core.config import Config
    from influencers.core.tasks import Claim
    from influencers.ingest.reasons import CloseReason
    from influencers.ingest.run import StopAction, TaskRun
    from influencers.sites.base import AdapterError, SiteAdapter

#: Sent (no arguments) by the ingestion service when pages waiting for the pipeline should be
#: written now rather than with the next full batch or flush interval: a task waits for them to
#: end, to free its account, or the crawl for its close.
flush_requested = object()

#: Sent by the account middleware for each listing response that is its account's problem
#: (rate limited, captcha, login required, banned, daily cap …; never for a good page, so never on
#: the hot path), with ``outcome`` (`influencers.sites.base.Outcome`) and ``account_id``.
account_verdict = object()

#: Builds the request for page ``page`` of a run; the spider gives it to the service at start.
PageRequests = Callable[["TaskRun", int], "Request"]


class PageLedger(Protocol):
    """The pipeline's side: what to write under which claim, and what became of it."""

    config: Config | None

    def draining(self, task_id: int) -> bool:
        """The task's pages waiting for the pipeline should be written now."""

    def claim_for(self, task_id: int) -> Claim | None:
        """The claim to write the task's pages under; None: not ours (any more)."""

    def marker_for(self, task_id: int, pages: list[int]) -> int:
        """The task's committed prefix once ``pages`` are committed too."""

    def position_for(self, task_id: int, marker: int) -> str | None:
        """A cursor platform's position to store with ``marker`` (None on a page platform)."""

    def pages_committed(self, task_id: int, pages: list[int]) -> None: ...

    def pages_discarded(self, task_id: int, pages: list[int], reason: str) -> None:
        """The pages could not be committed and will not be (read again by a later run)."""

    def claim_lost(self, task_id: int, reason: str) -> None: ...

    def writes_keeping_up(self, keeping_up: bool) -> None:
        """At most one batch waits to be written (True), or more (False); sent on changes."""

    def startup_failed(self, error: Exception) -> None:
        """A setting of the pipeline is bad: the crawl must not start (reported once, at start)."""


class Turns(Protocol):
    """The accounts' turns (`influencers.middlewares.pacing.AccountPacing`): the service
    schedules a task's next page when its account's turn is due, not before."""

    def due_in(self, account_id: int) -> float:
        """Seconds until the account's next turn (0: now)."""

    def reserve(self, account_id: int) -> tuple[int, float]:
        """Take the account's next turn: its number and time go with the request (``META_TURN``)."""


class AccountDesk(Protocol):
    """The account middleware's side: the account a task uses, its password, its retirement."""

    adapter: SiteAdapter | None
    config: Config | None

    def pace_with(self, turns: Turns) -> None:
        """Schedule pages by these accounts' turns."""

    def current_account(self, task_id: int) -> Awaitable[int]:
        """Waits for an account switch under way; IgnoreRequest when the task stops."""

    async def login_details(self, account_id: int) -> tuple[str, str, Identity, Budget]:
        """(username, password, identity, budget) to log the account in with; never logged."""

    def proxy_ok(self, account_id: int) -> None:
        """A login through the account's proxy worked: its proxy is healthy again."""

    async def retire_account(self, task_id: int, account_id: int, action: str, reason: str,
                             seconds: float = 0.0) -> None:
        """``disable`` or ``cool_down`` the account (``proxy``: for its proxy's back-off) and move
        the task to another one."""

    def stop_for_configuration(self, reason: CloseReason, message: str) -> None: ...

    def startup_failed(self, error: Exception) -> None: ...


class PageDesk(Protocol):
    """The spider's side: start the service, and report what became of each page."""

    adapter: SiteAdapter | None

    async def start(self, requests: PageRequests, *, domain: str | None, pages: int | None,
                    task_id: int | None, once: bool, render: str | None) -> None: ...

    def run_for(self, task_id: int) -> TaskRun | None: ...

    def page_fetched(self, task_id: int, page: int, *, has_more: bool, total_pages: int | None,
                     next_cursor: str | None = None) -> None: ...

    def page_failed(self, task_id: int, page: int, reason: str) -> None: ...

    def cursor_expired(self, task_id: int, page: int, reason: str) -> None:
        """The page's cursor is dead: the task reads its listing again from the first page."""

    def adapter_failed(self, task_id: int, page: int | None, error: AdapterError) -> None:
        """The site adapter raised: the task pauses, an attempt counted (never the page's or
        the account's failure)."""

    def page_dropped(self, task_id: int, page: int, reason: str) -> None: ...

    def stop_task(self, task_id: int, action: StopAction | str, reason: str, *,
                  resume_after: float | None = 0.0) -> None: ...

