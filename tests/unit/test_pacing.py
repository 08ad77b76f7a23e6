"""Each account's pace against a simulated per-account token bucket (no network, a fake clock)."""

from __future__ import annotations

import random

import pytest

from influencers.middlewares.pacing import HEADROOM, AccountPacing, Hints, rate_limit_hints


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenBucket:
    """The reference platform's limit: ``rate`` tokens a second, ``capacity`` at most; a request
    without a token is answered 429 with Retry-After."""

    def __init__(self, rate: float, capacity: float = 1.0, retry_after: float = 1.0) -> None:
        self.rate, self.capacity, self.retry_after = rate, capacity, retry_after
        self.tokens, self.last = capacity, None

    def admit(self, now: float) -> bool:
        if self.last is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def crawl(pacing: AccountPacing, clock: Clock, buckets: dict[int, TokenBucket], requests: int, *,
          jitter: float = 0.0, seed: int = 1, headers: dict[int, dict[str, str]] | None = None,
          ) -> tuple[int, int, float]:
    """Send ``requests`` requests round the accounts, each at its account's turn (arriving up to
    ``jitter`` seconds late); (ok, rate limited, seconds taken)."""
    rng = random.Random(seed)
    ok = limited = 0
    start = clock.now
    for _ in range(requests):
        account = min(buckets, key=pacing.due_in)
        clock.now += pacing.due_in(account)
        pacing.reserve(account)
        pacing.sent(account)
        bucket = buckets[account]
        if bucket.admit(clock.now + rng.uniform(0, jitter)):
            ok += 1
            pacing.on_success(account, (headers or {}).get(account))
        else:
            limited += 1
            pacing.on_rate_limited(account, bucket.retry_after, (headers or {}).get(account))
    return ok, limited, clock.now - start


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pacing(clock: Clock) -> AccountPacing:
    return AccountPacing(interval=0.25, max_interval=30, margin=0.2, clock=clock)


def test_a_429_on_an_accounts_first_request_teaches_nothing(pacing: AccountPacing, clock: Clock) -> None:
    pacing.sent(2)
    pacing.on_rate_limited(2, 1.0)
    assert pacing.pace(2).limit is None and pacing.interval(2) == 2.0  # where it started
    assert pacing.pace(2).blocked_until == pytest.approx(clock.now + 1.2)


def test_a_429_blocks_the_account_for_retry_after_and_halves_its_rate(pacing: AccountPacing, clock: Clock) -> None:
    assert pacing.interval(7) == 2.0  # nothing learned: a slow start ...
    for _ in range(10):
        pacing.on_success(7)
    assert pacing.interval(7) == 0.25  # ... then as fast as ACCOUNTS_REQUEST_INTERVAL lets it
    pacing.sent(7)
    clock.now += 0.25
    turn, _ = pacing.reserve(7)
    pacing.sent(7)
    pacing.on_rate_limited(7, 2.0)
    assert pacing.due_in(7) == pytest.approx(2.2)
    assert pacing.interval(7) == pytest.approx(0.5)  # sent at 4/s, which the platform refused: 2/s now
    assert not pacing.holds(7, turn)  # a turn reserved before the 429 waits for the block to end
    assert pacing.pace(7).limit == pytest.approx(4.0)
    clock.now += 3
    assert pacing.holds(7, pacing.reserve(7)[0])


def test_rates_climb_back_to_just_under_the_limit_and_stay_there(pacing: AccountPacing, clock: Clock) -> None:
    pacing.sent(3)
    clock.now += 0.25
    pacing.sent(3)
    pacing.on_rate_limited(3, 1.0)  # at 4/s
    rates = []
    for _ in range(40):
        pacing.on_success(3)
        rates.append(1 / pacing.interval(3))
    assert rates == sorted(rates)  # additive increase
    assert rates[-1] == pytest.approx(HEADROOM * 4.0, rel=0.01)


@pytest.mark.parametrize("rate", [0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("jitter", [0.0, 0.02])
def test_an_account_learns_an_unknown_limit_and_reaches_90_percent_of_it_with_under_1_percent_429s(
        pacing: AccountPacing, clock: Clock, rate: float, jitter: float) -> None:
    buckets = {1: TokenBucket(rate)}
    crawl(pacing, clock, buckets, 50, jitter=jitter)  # learning
    ok, limited, seconds = crawl(pacing, clock, buckets, 3000, jitter=jitter)
    assert limited / (ok + limited) < 0.01
    assert ok / seconds >= 0.9 * rate


def test_a_limit_the_platform_raises_is_found(pacing: AccountPacing, clock: Clock) -> None:
    bucket = TokenBucket(1.0)
    crawl(pacing, clock, {1: bucket}, 500)
    bucket.rate = 2.0
    crawl(pacing, clock, {1: bucket}, 20_000)
    ok, _, seconds = crawl(pacing, clock, {1: bucket}, 2000)
    assert ok / seconds >= 0.9 * 2.0


def test_accounts_of_one_platform_share_what_one_learned(pacing: AccountPacing, clock: Clock) -> None:
    crawl(pacing, clock, {1: TokenBucket(1.0)}, 100)
    assert pacing.limit is not None and pacing.limit < 1.1
    ok, limited, _ = crawl(pacing, clock, {2: TokenBucket(1.0)}, 100)  # a new account: no 429 to learn it
    assert limited == 0 and ok == 100


def test_many_accounts_starting_together_draw_few_429s(pacing: AccountPacing, clock: Clock) -> None:
    buckets = {account: TokenBucket(1.0) for account in range(128)}
    ok, limited, _ = crawl(pacing, clock, buckets, 128 * 60, jitter=0.01)
    assert limited / (ok + limited) < 0.01
    ok, limited, seconds = crawl(pacing, clock, buckets, 128 * 60, jitter=0.01)
    assert ok / seconds >= 0.9 * 128


def test_a_platform_that_says_its_limit_is_paced_at_it_without_a_429(pacing: AccountPacing, clock: Clock) -> None:
    headers = {1: {"RateLimit-Policy": "3;w=2", "RateLimit-Remaining": "0", "RateLimit-Reset": "1"}}
    ok, limited, seconds = crawl(pacing, clock, {1: TokenBucket(1.5)}, 500, headers=headers)
    assert limited == 0
    assert ok / seconds == pytest.approx(HEADROOM * 1.5, rel=0.02)


def test_a_pool_starting_together_learns_the_limit_with_few_429s(pacing: AccountPacing, clock: Clock) -> None:
    """All accounts start at once and each response comes back 20 ms later, so an account does
    not know what the others are learning until it has sent again: the slow start and the
    shared limit keep the 429s of the whole run, learning included, near 2%."""
    rng = random.Random(7)
    buckets = {account: TokenBucket(1.0) for account in range(32)}
    events = [(clock.now + rng.uniform(0, 0.05), 0, account) for account in buckets]
    admitted: dict[int, bool] = {}
    ok = limited = 0
    end = clock.now + 55
    while events:
        events.sort()
        at, response, account = events.pop(0)
        if at > end:
            break
        clock.now = at
        if response:
            ok += admitted[account]
            limited += not admitted[account]
            if admitted[account]:
                pacing.on_success(account)
            else:
                pacing.on_rate_limited(account, 1.0)
            events.append((at, 0, account))
        elif (wait := pacing.due_in(account)) > 1e-9:
            events.append((at + wait, 0, account))
        else:
            pacing.reserve(account)
            pacing.sent(account)
            admitted[account] = buckets[account].admit(at + rng.uniform(0, 0.01))
            events.append((at + 0.02, 1, account))
    assert limited / (ok + limited) < 0.03
    assert ok / 55 >= 0.85 * 32


def test_the_rate_never_exceeds_the_floor_and_the_interval_is_capped(pacing: AccountPacing, clock: Clock) -> None:
    for _ in range(1000):
        pacing.on_success(5, {"RateLimit-Policy": "100;w=1"})
    assert pacing.interval(5) == 0.25  # the platform allows 100/s; ACCOUNTS_REQUEST_INTERVAL does not
    for _ in range(30):
        clock.now += pacing.due_in(6) + 0.001
        pacing.sent(6)
        pacing.on_rate_limited(6, 0.0)
    assert pacing.interval(6) == 30


@pytest.mark.parametrize(("headers", "hints"), [
    ({}, Hints()),
    ({"RateLimit-Policy": "10;w=1"}, Hints(rate=10.0)),
    ({"RateLimit-Policy": '100;w=60;comment="x", 5;w=1'}, Hints(rate=100 / 60)),
    ({"RateLimit-Remaining": "0", "RateLimit-Reset": "3"}, Hints(wait=3.0)),
    ({"RateLimit-Remaining": "4", "RateLimit-Reset": "3"}, Hints()),
    ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000005"}, Hints(wait=5.0)),
    ({"RateLimit-Policy": "ten;w=x", "RateLimit-Remaining": "nan", "RateLimit-Reset": "-1"}, Hints()),
    ({"RateLimit-Policy": "0;w=0"}, Hints()),
])
def test_rate_limit_headers(headers: dict[str, str], hints: Hints) -> None:
    assert rate_limit_hints(headers, now=1_700_000_000) == hints


def test_once_an_account_went_at_full_speed_without_a_429_later_accounts_start_there(pacing: AccountPacing) -> None:
    assert pacing.interval(1) == 2.0  # a slow start: the platform's limit is not known
    for _ in range(20):
        pacing.on_success(1)
    assert pacing.interval(1) == 0.25
    assert pacing.interval(2) == 0.25  # the platform took the floor's pace: no slow start for the next


def test_an_unpaced_account_rate_limited_on_its_first_request_is_described_not_divided(clock: Clock) -> None:
    unpaced = AccountPacing(interval=0, max_interval=30, margin=0.2, clock=clock)
    unpaced.on_rate_limited(3, 1.0)  # ACCOUNTS_REQUEST_INTERVAL=0: nothing sent, nothing learned yet
    assert unpaced.interval(3) == 0
    assert unpaced.pace_text(3) == "no pause between requests"
    assert AccountPacing(interval=0.25, max_interval=30, margin=0.2, clock=clock).pace_text(3) == "0.50 requests/s"
