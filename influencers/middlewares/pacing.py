"""Each account's pace: as fast as the platform lets one account go, and no faster.

A platform limits each account to some rate R it rarely publishes. Pacing at a fixed interval
either wastes the account (slower than R) or draws 429s (faster, or at exactly R with network
jitter); so each account's rate is learned, additive increase / multiplicative decrease:

* an account starts slowly (``START``) and speeds up by half per good response until a 429
  (later accounts start at full speed once one has gone at it without a 429);
* a 429 marks the rate it was sent at as the account's *limit*, halves its rate and blocks it
  until ``Retry-After`` has passed;
* each good response adds ``STEP`` of the limit back, up to ``HEADROOM`` of it, where it stays;
  there the limit creeps up by ``PROBE`` per good response, faster the longer it goes without a
  429, so a limit the platform raised (or one learned too low) is found again, at one 429 per
  few hundred pages;
* a 429 to a request sent faster than the limit the account has learned since (it was in
  flight) teaches nothing;
* ``RateLimit-Policy`` / ``RateLimit-*`` / ``X-RateLimit-*`` headers, when the platform sends
  them, say the limit outright (`rate_limit_hints`): no probing then;
* accounts of one platform share its rules, so an account that has not settled at a pace yet
  follows a lower limit another one learned (`AccountPacing.limit`) instead of drawing its own
  429s to learn it; a settled account keeps its own (one account's bad luck does not slow all).

The rate never goes above the account's floor: ``ACCOUNTS_REQUEST_INTERVAL``, or its
requests-a-minute budget (`influencers.core.budgets`). The ingestion service asks
`AccountPacing.due_in` before it schedules a task's next page and `reserve`s the account's turn
when it is nearly due, so a request waiting for its account's turn is not in the downloader,
holding a slot other accounts could use; the account middleware sends it at the turn's time
(`take`), or, if a 429 voided it or the task moved to another account, at that account's next.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scrapy.utils.asyncio import sleep

#: The share of the learned limit an account is paced at: under it, so jitter rarely draws a 429.
HEADROOM = 0.95
#: A good response adds this share of the limit to the rate (the additive increase).
STEP = 0.1
#: A 429 multiplies the rate by this (the multiplicative decrease).
DECREASE = 0.5
#: At its headroom, the limit grows by this share per good response (more the longer it goes
#: without a 429): a raised limit, or one learned too low, is found.
PROBE = 0.0001
#: A 429 after this many good responses in a row at the account's headroom is taken for jitter
#: (a request that arrived late, the next one early), not for a lower limit: the limit shrinks
#: by ``NUDGE`` and the rate stays, instead of halving.
CALM = 50
#: An account whose limit nothing has taught yet starts at this share of its floor's rate and
#: speeds up by ``GROWTH`` per good response (slow start): a pool that starts together at full
#: speed draws a 429 per account per round until the limit is learned. Once an account has had
#: ``FULL_SPEED`` good responses in a row at its floor's rate, the platform evidently takes it,
#: and later accounts start there.
START = 1 / 8
GROWTH = 1.5
FULL_SPEED = 5
NUDGE = 0.02


@dataclass(frozen=True)
class Hints:
    """What a response's rate-limit headers say: the account's rate (requests/s), and seconds to
    wait before its next request (its quota spent); None where they say nothing."""

    rate: float | None = None
    wait: float | None = None


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name) if headers is not None else None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.strip() if value else None


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def rate_limit_hints(headers: Mapping[str, Any] | Any, now: float | None = None) -> Hints:
    """Read the limit from ``RateLimit-Policy: Q;w=W`` (Q requests per W seconds: the rate is
    Q/W), and the wait from ``RateLimit-Remaining: 0`` with ``RateLimit-Reset`` (or their
    ``X-RateLimit-`` forms; a reset larger than a day is an epoch time, as some platforms send)."""
    rate = None
    policy = _header(headers, "RateLimit-Policy")
    if policy:
        quota, _, params = policy.split(",")[0].partition(";")
        window = None
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "w":
                window = _number(value)
        requests = _number(quota)
        if requests and window:
            rate = requests / window
    wait = None
    for prefix in ("RateLimit-", "X-RateLimit-"):
        remaining = _number(_header(headers, prefix + "Remaining"))
        if remaining is None:
            continue
        reset = _number(_header(headers, prefix + "Reset"))
        if remaining < 1 and reset is not None:
            if reset > 86_400:
                reset = max(0.0, reset - (time.time() if now is None else now))
            wait = reset
        break
    return Hints(rate, wait)


@dataclass
class Pace:
    """One account's pace (times by the monotonic clock)."""

    floor: float  # the least interval between its requests
    rate: float  # requests per second now
    limit: float | None = None  # learned: the rate that drew its last 429, or what headers said
    told: bool = False  # the limit comes from the platform's headers
    blocked_until: float = 0.0  # nothing before this (Retry-After, a spent quota)
    last_turn: float = -math.inf  # when its last reserved turn is: the next is one interval after
    learned: int = 0  # the version of the shared limit it has seen
    last_sent: float = -math.inf  # when its last request left
    sent_rate: float = 0.0  # the rate its last request left at: one over the gap before it
    calm: int = 0  # good responses in a row at its headroom
    turn: int = 0  # turns reserved so far
    void_to: int = 0  # turns up to this one were reserved before a 429: void


class AccountPacing:
    """The accounts' paces in one crawl, shared by the account middleware and the ingestion service."""

    def __init__(self, *, interval: float, max_interval: float, margin: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_interval = interval
        self.max_interval = max(max_interval, interval)
        self.margin = margin
        self.clock = clock
        self.limit: float | None = None  # the platform's per-account limit, as last learned by any account
        self._limit_version = 0
        self._limit_told = False
        self._full_speed = False  # some account went at its floor's rate without a 429
        self._paces: dict[int, Pace] = {}

    def pace(self, account_id: int) -> Pace:
        pace = self._paces.get(account_id)
        if pace is None:
            fastest = self._fastest(self.base_interval)
            pace = self._paces[account_id] = Pace(self.base_interval, fastest if self._full_speed else START * fastest)
        if pace.learned < self._limit_version:  # another account learned the platform's limit
            pace.learned = self._limit_version
            if pace.limit is None or self._limit_told or (self.limit < pace.limit and pace.calm < CALM):
                first = pace.limit is None and not self._limit_told
                pace.limit, pace.told = self.limit, self._limit_told
                pace.rate = min(pace.rate, (DECREASE if first else HEADROOM) * self.limit)
        return pace

    def _learn(self, pace: Pace, limit: float, *, told: bool, shared: bool = True) -> None:
        pace.limit, pace.told = limit, told
        if shared:
            self.limit, self._limit_told = limit, told
            self._limit_version += 1
        pace.learned = self._limit_version

    def _fastest(self, floor: float) -> float:
        return 1.0 / floor if floor > 0 else math.inf

    def interval(self, account_id: int) -> float:
        pace = self.pace(account_id)
        return max(pace.floor, min(self.max_interval, 1.0 / pace.rate if pace.rate > 0 else math.inf))

    def pace_text(self, account_id: int) -> str:
        """The account's pace for a log line: requests a second, or none with no pause to keep."""
        interval = self.interval(account_id)
        return f"{1.0 / interval:.2f} requests/s" if interval > 0 else "no pause between requests"

    def keep_to(self, account_id: int, requests_per_minute: int | None) -> None:
        """Never faster than the account's requests-a-minute budget (nor ACCOUNTS_REQUEST_INTERVAL)."""
        pace = self.pace(account_id)
        pace.floor = max(self.base_interval, 60.0 / requests_per_minute) if requests_per_minute else self.base_interval
        pace.rate = min(pace.rate, self._fastest(pace.floor))

    # -- turns --------------------------------------------------------------------------------

    def due_in(self, account_id: int) -> float:
        """Seconds until the account's next turn (0: now)."""
        pace = self.pace(account_id)
        now = self.clock()
        return max(0.0, pace.blocked_until - now, pace.last_turn + self.interval(account_id) - now)

    def reserve(self, account_id: int) -> tuple[int, float]:
        """Take the account's next turn: its number (for `holds`) and when it is (now, if due)."""
        pace = self.pace(account_id)
        pace.last_turn = max(self.clock(), pace.last_turn + self.interval(account_id), pace.blocked_until)
        pace.turn += 1
        return pace.turn, pace.last_turn

    def sent(self, account_id: int) -> None:
        """A request of the account leaves now (each one says so, once): its next turn is one
        interval after this, not after when the turn was reserved (the platform counts when
        requests arrive), and a 429 to it teaches the rate it left at."""
        pace = self.pace(account_id)
        pace.last_turn = max(pace.last_turn, self.clock())
        self._left(pace, pace.last_turn)

    @staticmethod
    def _left(pace: Pace, at: float) -> None:
        if at > pace.last_sent:
            pace.sent_rate = 1.0 / (at - pace.last_sent)
            pace.last_sent = at

    def holds(self, account_id: int, turn: int | None) -> bool:
        """The turn reserved for a request still stands: no 429 since, and the account is not blocked."""
        pace = self.pace(account_id)
        return turn is not None and turn > pace.void_to and pace.blocked_until <= self.clock()

    async def take(self, account_id: int, reserved: tuple[int, int, float] | None) -> None:
        """Wait for the turn ``reserved`` (account, turn, when) for a request if it still stands
        for this account, else for the account's next turn."""
        if reserved is not None and reserved[0] == account_id and self.holds(account_id, reserved[1]):
            if reserved[2] > self.clock():
                await sleep(reserved[2] - self.clock())
            if self.pace(account_id).blocked_until <= self.clock():
                return
        await self.wait_turn(account_id)

    async def wait_turn(self, account_id: int) -> None:
        """Wait for the account's next turn (after any block) and take it."""
        pace = self.pace(account_id)
        while True:
            now = self.clock()
            if pace.blocked_until > now:
                await sleep(pace.blocked_until - now)
                continue
            self.reserve(account_id)
            at = pace.last_turn
            if at > now:
                await sleep(at - now)
            if pace.blocked_until <= self.clock():
                return

    # -- what responses say -------------------------------------------------------------------

    def on_success(self, account_id: int, headers: Any = None) -> None:
        """A good response: pace up towards the limit (additive increase)."""
        pace = self.pace(account_id)
        self._heed(pace, rate_limit_hints(headers))
        if pace.limit is None:
            fastest = self._fastest(pace.floor)
            pace.calm = pace.calm + 1 if pace.rate >= fastest else 0
            self._full_speed = self._full_speed or pace.calm >= FULL_SPEED
            pace.rate = min(pace.rate * GROWTH, fastest)
            return
        target = HEADROOM * pace.limit
        if pace.rate < target:
            pace.rate = min(target, pace.rate + STEP * pace.limit)
            pace.calm = 0
        else:
            pace.calm += 1
            if not pace.told:  # faster the longer it went without a 429: a limit learned too low recovers
                pace.limit *= 1.0 + PROBE * (1 + pace.calm / 100)
                pace.rate = HEADROOM * pace.limit

    def on_rate_limited(self, account_id: int, retry_after: float | None, headers: Any = None) -> None:
        """A 429: the limit is the rate the request left at, or the fastest rate that worked
        since the last 429 if that was slower (the limit lies between); halve the rate
        (multiplicative decrease) and send nothing until Retry-After (plus
        ACCOUNTS_RETRY_AFTER_MARGIN) has passed."""
        pace = self.pace(account_id)
        now = self.clock()
        hints = rate_limit_hints(headers)
        sent_at = min(pace.sent_rate, self._fastest(pace.floor))
        if hints.rate is not None or sent_at <= 0 or (pace.limit is not None and sent_at > pace.limit):
            pass  # the headers say the limit; its first request; or one sent before the account learned its limit
        elif pace.calm >= CALM and pace.limit is not None and sent_at <= pace.limit:
            self._learn(pace, pace.limit * (1.0 - NUDGE), told=False, shared=False)
            pace.rate = min(pace.rate, HEADROOM * pace.limit)
        else:
            self._learn(pace, sent_at, told=False)
            pace.rate = max(min(pace.rate, sent_at * DECREASE), 1.0 / self.max_interval)
        pace.calm = 0
        self._heed(pace, hints)
        wait = retry_after if retry_after is not None else (hints.wait if hints.wait is not None else 1.0)
        pace.blocked_until = max(pace.blocked_until, now + wait + self.margin)
        pace.void_to = pace.turn  # turns reserved before the 429 wait for the block to end

    def _heed(self, pace: Pace, hints: Hints) -> None:
        if hints.rate is not None:
            if pace.limit != hints.rate or not pace.told:
                self._learn(pace, hints.rate, told=True)
            pace.rate = min(HEADROOM * hints.rate, self._fastest(pace.floor))
        elif hints.wait is not None and not pace.told:
            pace.blocked_until = max(pace.blocked_until, self.clock() + hints.wait)
