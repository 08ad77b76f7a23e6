"""How the API rides out a MySQL outage: quick 503s while it lasts, two log lines in all.

Every request opens a connection of its own (`deps.py`) and closes it at its end, so there is
no pool to repair: once MySQL is back the next connection simply works, without a restart. What
needs care is the time in between. A request that finds MySQL gone logs one WARNING for the
whole outage (`influencers.core.outage`) and starts a back-off (capped, exponential); until it
runs out, requests answer 503 at once, with Retry-After, instead of each waiting for a connect
timeout against a server that is not there. The first request that connects again logs one INFO
with the outage's length.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from fastapi import FastAPI

from influencers.core.errors import DatabaseError, DatabaseUnavailable
from influencers.core.outage import Outage, SharedOutage

logger = logging.getLogger(__name__)

BACKOFF_CAP = 5.0  # seconds at most between connection attempts while MySQL is away


class DatabaseBackingOff(DatabaseUnavailable):
    """MySQL was unreachable a moment ago; the API tries again after a short back-off."""

    def __init__(self, message: str = "") -> None:
        self.host, self.port = "", 0
        DatabaseError.__init__(self, message)


class DatabaseGate:
    """Shared by all requests (they run on FastAPI's thread pool: `SharedOutage` locks)."""

    def __init__(self, log: logging.Logger = logger, *, cap: float = BACKOFF_CAP,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._outage = SharedOutage(Outage("MySQL", log, cap=cap, clock=clock))
        self._last_error = ""

    def check(self) -> None:
        """Before connecting: raise `DatabaseBackingOff` while the back-off after a failure lasts."""
        wait = self._outage.wait_left()
        if wait > 0:
            raise DatabaseBackingOff(f"{self._last_error} (next attempt in {wait:.1f}s)")

    def failed(self, error: DatabaseUnavailable) -> None:
        """A connection could not be made or broke: the outage starts (or goes on); back off."""
        if isinstance(error, DatabaseBackingOff):
            return
        self._last_error = str(error)
        self._outage.failed(error)

    def reached(self) -> None:
        """A connection was made: the outage, if there was one, is over."""
        self._outage.recovered()

    def retry_after(self) -> int:
        """Whole seconds until the next attempt (at least 1), for the Retry-After header."""
        return max(1, math.ceil(self._outage.wait_left()))


def database_gate(app: FastAPI) -> DatabaseGate:
    """The application's gate (`create_app` makes it; an app built without it gets one here)."""
    gate = getattr(app.state, "database_gate", None)
    if gate is None:
        gate = app.state.database_gate = DatabaseGate()
    return gate
