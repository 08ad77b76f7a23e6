"""What the Scrapy side of ingestion shares at run time: Request.meta keys, the exit status,
`Gate`, `every`.

The meta keys are how a listing request carries its task and page from the spider through the
account middleware and back; ``META_VERDICT`` carries the middleware's classification of the
response to the spider, so each response is classified once. The run state itself lives in
`influencers.ingest.run.TaskRun`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import _schedule_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

# Request.meta keys shared by the spider, the middleware and the pipeline.
META_TASK = "influencers_task"  # the task id a listing request belongs to
META_PAGE = "influencers_page"  # its page number
META_STARTED = "influencers_started"  # when the spider built it (UTC, naive)
META_ACCOUNT = "influencers_account"  # the account the middleware sent it as
META_LOGIN = "influencers_login"  # a login request of that account (the middleware leaves it alone)
META_TURN = "influencers_turn"  # (account id, turn, when) the service reserved when it scheduled the request
#: The adapter's `Verdict` on the response, set by the account middleware for the response it lets
#: through; the spider takes it (and classifies the response itself when a response comes without
#: one, e.g. with ACCOUNTS_ENABLED off).
META_VERDICT = "influencers_verdict"

#: A stat the crawl sets to the exit status `scrapy crawl` should return (influencers/commands).
EXIT_STATUS_STAT = "influencers/exit_status"
EXIT_CONFIGURATION = 2  # as `python -m exporter run`: an argument, a setting, the key or MySQL
EXIT_UNEXPECTED = 1  # as `python -m exporter run`: anything else


class Gate:
    """Something others wait for until it opens (a login, an account switch, a run's end)."""

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


def every(interval: float, tick: Callable[[], Coroutine[Any, Any, None]]) -> Any:
    """A running looping call that starts ``tick()`` as a task of its own every ``interval`` s."""
    loop = create_looping_call(lambda: _schedule_coro(tick()))
    loop.start(interval, now=False)
    return loop
