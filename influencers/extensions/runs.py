"""The state the ingestion service keeps per claimed task, its settings, and shared meta keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

from influencers.core.tasks import Claim
from influencers.spiders.plan import PagePlan

# Request.meta keys shared by the spider, the middleware and the pipeline.
META_TASK = "influencers_task"
META_PAGE = "influencers_page"
META_STARTED = "influencers_started"
META_ACCOUNT = "influencers_account"
META_LOGIN = "influencers_login"

#: A stat the crawl sets to the exit status `scrapy crawl` should return (influencers/commands).
EXIT_STATUS_STAT = "influencers/exit_status"
EXIT_CONFIGURATION = 2  # as `python -m exporter run`: an argument, a setting, the key or MySQL


class Gate:
    """Something others wait for until it opens (a login, an account switch)."""

    def __init__(self) -> None:
        self._waiters: list[Deferred[None]] = []
        self.is_open = False

    async def wait(self) -> None:
        if self.is_open:
            return
        deferred: Deferred[None] = Deferred()
        self._waiters.append(deferred)
        await maybe_deferred_to_future(deferred)

    def open(self) -> None:
        self.is_open = True
        waiters, self._waiters = self._waiters, []
        for deferred in waiters:
            deferred.callback(None)


@dataclass(eq=False)
class TaskRun:
    """One claimed task being crawled by this process."""

    claim: Claim
    plan: PagePlan
    render: str
    stop: tuple[str, str] | None = None  # (pause|release|fail|lost, reason)
    resume_after: float | None = 0.0  # for a pause: seconds until claimable again (None: operator)
    switching: Gate | None = None
    retired: set[int] = field(default_factory=set)
    finishing: bool = False
    done: Gate = field(default_factory=Gate)
    outcome: str | None = None
    handing_back: bool = False  # its account is on its way back to the pool
    handed_back: bool = False  # its account went back to the pool: it only waits for its last writes

    @property
    def holds_slot(self) -> bool:
        """Counts against INGEST_MAX_TASKS: a slot is an account reading pages."""
        return not self.handed_back

    @property
    def reading(self) -> bool:
        """Still fetching pages with its account (not stopping, not all read)."""
        return self.stop is None and not self.plan.all_fetched

    @property
    def task_id(self) -> int:
        return self.claim.task_id

    @property
    def domain(self) -> str:
        return self.claim.task.domain


@dataclass(frozen=True)
class IngestSettings:
    lease_seconds: float
    heartbeat_interval: float
    poll_interval: float
    max_tasks: int
    pages_in_flight: int
    claim_wait: float
    failed_pages_retry_after: float
    adapter_path: str
    site_url: str | None
    render: str | None

    @classmethod
    def from_settings(cls, settings: Any) -> IngestSettings:
        lease = settings.getfloat("INGEST_LEASE_SECONDS", 60.0)
        return cls(
            lease_seconds=lease,
            heartbeat_interval=settings.getfloat("INGEST_HEARTBEAT_INTERVAL", 0.0) or lease / 3,
            poll_interval=settings.getfloat("INGEST_POLL_INTERVAL", 5.0),
            max_tasks=max(1, settings.getint("INGEST_MAX_TASKS", 2)),
            pages_in_flight=max(1, settings.getint("INGEST_PAGES_IN_FLIGHT", 1)),
            claim_wait=settings.getfloat("INGEST_CLAIM_WAIT", 60.0),
            failed_pages_retry_after=settings.getfloat("INGEST_FAILED_PAGES_RETRY_AFTER", 300.0),
            adapter_path=settings.get("SITE_ADAPTER", "influencers.sites.sandbox.SandboxAdapter"),
            site_url=settings.get("SITE_URL") or None,
            render=settings.get("SITE_RENDER") or None,
        )
