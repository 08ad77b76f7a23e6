"""How a long-running process tells an outage: one line when it starts, one when it ends.

A database restart or fail-over can last a second or an hour; a service rides it out, and its
log should say so twice (gone, back after how long), not once per retry. The delays between
retries grow from ``first`` and double up to ``cap``, so a short blip costs little and a long
outage does not hammer the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class Outage:
    def __init__(self, what: str, log: logging.Logger, *, first: float = 0.5, cap: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.log = log
        self.first = first
        self.cap = cap
        self.clock = clock
        self.since: float | None = None
        self.failures = 0

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, error: object) -> float:
        """Note a failure; returns the seconds to wait before the next try."""
        if self.since is None:
            self.since = self.clock()
            self.log.warning("%s unreachable (%s); retrying with back-off up to %.0fs", self.what, error, self.cap)
        else:
            self.log.debug("%s still unreachable (%s)", self.what, error)
        delay = min(self.cap, self.first * 2 ** self.failures)
        self.failures += 1
        return delay

    def recovered(self) -> None:
        """Note a success; ends an outage, if one was going on."""
        if self.since is None:
            return
        self.log.info("%s reachable again after %.1fs", self.what, self.clock() - self.since)
        self.since = None
        self.failures = 0


class SharedOutage:
    """One `Outage` for several threads that use the same server, which also spaces their tries.

    Each of a crawl's database threads would otherwise find the outage by itself, log it, and
    try to reconnect as often as its own work comes round (a pipeline flushes every second, a
    slot polls, heartbeats beat). Here the first failure starts the outage and sets when the next
    try is due; until then `wait_left` is positive and callers fail fast without touching the
    network; a try that fails pushes the next one out (capped exponential back-off), and the
    first call that reaches the server ends the outage for all of them.
    """

    def __init__(self, outage: Outage) -> None:
        self.outage = outage
        self._lock = threading.Lock()
        self._next_try = 0.0

    @property
    def ongoing(self) -> bool:
        return self.outage.ongoing

    def wait_left(self) -> float:
        """Seconds until the next try is due (0 when a try may be made now)."""
        with self._lock:
            if not self.outage.ongoing:
                return 0.0
            return max(0.0, self._next_try - self.outage.clock())

    def failed(self, error: object) -> float:
        """A try failed; returns the seconds until the next one is due."""
        with self._lock:
            delay = self.outage.failed(error)
            self._next_try = self.outage.clock() + delay
            return delay

    def recovered(self) -> None:
        if not self.outage.ongoing:  # the common case, without the lock
            return
        with self._lock:
            self.outage.recovered()
