"""Per-account limits and seeded misbehaviour of listing requests.

Two steps per listing request:

``admit()`` applies the limits, in this order: ``--ban-accounts`` (ban at first listing), the
"you were told to wait" window, the daily page cap, the token bucket. A 429 opens a window of
``retry_after`` seconds; the first daily-cap 403 blocks the account for the rest of the (UTC+8)
day. A request that arrives inside a window gets the same limit response again and is a
*strike*; a request that arrives outside one clears the strikes. With ``ban_after = N``, an
account that has received N limit responses without backing off is banned by its next request.
So a client that honours Retry-After and rotates accounts on a daily cap is never banned, even
with a few requests still in flight when the first limit response arrives.

``roll()`` draws the random fate of an admitted request (slow, captcha, 5xx, malformed) from
the account's own generator, seeded from ``(seed, username)``. Exactly six numbers are drawn per
request whatever the knobs say, so outcomes are reproducible for a given seed and request
sequence, and switching one knob does not reshuffle the others. (With ``captcha_solvable`` a
captcha fate challenges the account, ``sandbox.captcha``; the fates of a challenged account's
requests are drawn all the same, so lifting the challenge does not shift the sequence.)

``limit_headers()`` describes the bucket after ``admit()`` in the IETF draft's ``RateLimit-*``
headers, when ``rate_limit_headers`` is on: many real platforms announce their limit this way,
and a client that reads them can pace itself without first running into 429s. It only reads
the bucket (the refill it computes is not stored), so the headers change no outcome.
"""
from __future__ import annotations

import datetime as dt
import enum
import hashlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.config import Knobs

QUOTA_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def quota_day() -> dt.date:
    """The platform's day for daily caps: the date in UTC+8."""
    return dt.datetime.now(QUOTA_TZ).date()


class Outcome(enum.Enum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    DAILY_CAP = "daily_cap"
    BANNED = "banned"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    retry_after: int | None = None  # seconds, for RATE_LIMITED
    ban_reason: str | None = None  # set when this request caused the ban


@dataclass(frozen=True)
class Fate:
    """What happens to an admitted request, drawn by ``roll()``."""

    delay: float = 0.0  # seconds to wait before answering
    captcha: bool = False
    error_status: int | None = None  # 500/502/503
    cut_fraction: float | None = None  # truncate the body at this fraction of its length


_ERROR_STATUSES = (500, 502, 503)


@dataclass
class _AccountState:
    rng: random.Random
    tokens: float = 0.0
    last_refill: float = 0.0
    blocked_until: float = 0.0  # end of the current 429 window (clock time)
    cap_day: dt.date | None = None  # day the cap counter belongs to
    pages_today: int = 0
    cap_notified_day: dt.date | None = None  # day the first E_DAILY_CAP was sent
    streak: int = 0  # limit responses received without backing off


class Guard:
    """Decides, per account, whether a listing request is served and how badly."""

    def __init__(
        self,
        knobs: Knobs,
        seed: int,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], dt.date] = quota_day,
    ) -> None:
        self._knobs = knobs
        self._seed = seed
        self._clock = clock
        self._today = today
        self._accounts: dict[str, _AccountState] = {}

    @property
    def knobs(self) -> Knobs:
        return self._knobs

    @knobs.setter
    def knobs(self, knobs: Knobs) -> None:
        """New knobs refill the token buckets and close open windows; counters are kept."""
        self._knobs = knobs
        for state in self._accounts.values():
            state.tokens = self._capacity()
            state.blocked_until = 0.0
            state.streak = 0

    def reset(self) -> None:
        """Forget everything, including the random generators: behave like a fresh start."""
        self._accounts.clear()

    def pages_today(self, username: str) -> int:
        state = self._accounts.get(username)
        if state is None or state.cap_day != self._today():
            return 0
        return state.pages_today

    def admit(self, username: str) -> Verdict:
        knobs = self._knobs
        if username in knobs.ban_accounts:
            return Verdict(Outcome.BANNED, ban_reason="listed in ban_accounts")
        state = self._state(username)
        now = self._clock()
        today = self._today()
        if state.cap_day != today:
            state.cap_day, state.pages_today = today, 0
        in_window = now < state.blocked_until
        capped_today = state.cap_notified_day == today
        if in_window or capped_today:
            if knobs.ban_after and state.streak >= knobs.ban_after:
                return Verdict(
                    Outcome.BANNED,
                    ban_reason=f"ignored {state.streak} limit responses in a row",
                )
            state.streak += 1
            if in_window:
                return Verdict(Outcome.RATE_LIMITED, max(1, math.ceil(state.blocked_until - now)))
            return Verdict(Outcome.DAILY_CAP)
        state.streak = 0
        if knobs.daily_page_cap and state.pages_today >= knobs.daily_page_cap:
            state.cap_notified_day = today
            state.streak = 1
            return Verdict(Outcome.DAILY_CAP)
        if knobs.rate_limit:
            state.tokens = min(
                self._capacity(), state.tokens + (now - state.last_refill) * knobs.rate_limit
            )
            state.last_refill = now
            if state.tokens < 1.0:
                state.blocked_until = now + knobs.retry_after
                state.streak = 1
                return Verdict(Outcome.RATE_LIMITED, knobs.retry_after)
            state.tokens -= 1.0
        state.pages_today += 1
        return Verdict(Outcome.OK)

    def limit_headers(self, username: str) -> dict[str, str]:
        """The ``RateLimit-*`` headers of ``username``'s bucket as it stands now; none while
        ``rate_limit_headers`` or ``rate_limit`` is off.

        ``Limit``: the whole tokens the bucket holds when full; ``Remaining``: whole tokens left
        (0 inside a 429 window, where nothing is admitted whatever the bucket holds); ``Reset``:
        seconds, rounded up, until a request would be admitted again (0 while tokens remain);
        ``Policy``: ``<limit>;w=<seconds the bucket takes to refill that many>``, so that
        limit / w is exactly the rate even when it is not a whole number of requests a second
        (w is then written with up to three decimals instead of the draft's integer).
        """
        knobs = self._knobs
        if not (knobs.rate_limit_headers and knobs.rate_limit):
            return {}
        state = self._state(username)
        now = self._clock()
        rate, capacity = knobs.rate_limit, self._capacity()
        tokens = min(capacity, state.tokens + (now - state.last_refill) * rate)
        window = state.blocked_until - now
        remaining = 0 if window > 0 else math.floor(tokens)
        reset = 0 if remaining else math.ceil(max(window, (1.0 - tokens) / rate))
        limit = math.floor(capacity)
        return {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{limit};w={_seconds(limit / rate)}",
        }

    def roll(self, username: str) -> Fate:
        knobs = self._knobs
        rng = self._state(username).rng
        u_slow, u_captcha, u_error, u_kind, u_malformed, u_cut = (rng.random() for _ in range(6))
        delay = knobs.slow_ms / 1000.0 if u_slow < knobs.slow_rate else 0.0
        if u_captcha < knobs.captcha_rate:
            return Fate(delay=delay, captcha=True)
        if u_error < knobs.error_rate:
            return Fate(delay=delay, error_status=_ERROR_STATUSES[int(u_kind * 3)])
        if u_malformed < knobs.malformed_rate:
            return Fate(delay=delay, cut_fraction=u_cut)
        return Fate(delay=delay)

    def _capacity(self) -> float:
        return max(1.0, self._knobs.rate_limit)

    def _state(self, username: str) -> _AccountState:
        state = self._accounts.get(username)
        if state is None:
            digest = hashlib.sha256(f"misbehaviour\x1f{self._seed}\x1f{username}".encode()).digest()
            state = _AccountState(
                rng=random.Random(int.from_bytes(digest[:8], "big")),
                tokens=self._capacity(),
                last_refill=self._clock(),
            )
            self._accounts[username] = state
        return state


def _seconds(value: float) -> str:
    """``2.0`` -> ``"2"``, ``3.3333`` -> ``"3.333"``: a whole number as the draft writes it."""
    return f"{value:.3f}".rstrip("0").rstrip(".")
