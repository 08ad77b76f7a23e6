"""Guard: token bucket, Retry-After windows, daily caps, bans and seeded fates (fake clock)."""
from __future__ import annotations

import datetime as dt

from sandbox.config import Knobs
from sandbox.misbehaviour import Fate, Guard, Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.day = dt.date(2026, 1, 1)

    def __call__(self) -> float:
        return self.now

    def today(self) -> dt.date:
        return self.day


def guard(clock: Clock, **knobs) -> Guard:
    return Guard(Knobs(**knobs), seed=42, clock=clock, today=clock.today)


def outcomes(g: Guard, n: int, user: str = "demo1") -> list[Outcome]:
    return [g.admit(user).outcome for _ in range(n)]


def test_everything_off_admits_everything():
    g = guard(Clock())
    assert set(outcomes(g, 500)) == {Outcome.OK}
    assert {g.roll("demo1") for _ in range(500)} == {Fate()}


def test_token_bucket_429_with_retry_after_then_recovers():
    clock = Clock()
    g = guard(clock, rate_limit=5, retry_after=3)
    assert outcomes(g, 5) == [Outcome.OK] * 5
    verdict = g.admit("demo1")
    assert verdict.outcome is Outcome.RATE_LIMITED
    assert verdict.retry_after == 3
    assert g.admit("demo2").outcome is Outcome.OK  # per account
    clock.now += 1.5
    assert g.admit("demo1").retry_after == 2  # still inside the window: the rest of it
    clock.now += 1.5
    assert outcomes(g, 5) == [Outcome.OK] * 5


def test_ignoring_limits_gets_banned_after_n_limit_responses():
    clock = Clock()
    g = guard(clock, rate_limit=1, retry_after=5, ban_after=3)
    assert outcomes(g, 4) == [Outcome.OK] + [Outcome.RATE_LIMITED] * 3
    verdict = g.admit("demo1")
    assert verdict.outcome is Outcome.BANNED
    assert "3 limit responses" in verdict.ban_reason


def test_a_client_that_backs_off_is_never_banned():
    clock = Clock()
    g = guard(clock, rate_limit=2, retry_after=1, ban_after=2)
    for _ in range(50):
        verdict = g.admit("demo1")
        assert verdict.outcome is not Outcome.BANNED
        # one straggler already in flight when the 429 came back: still fine
        if verdict.outcome is Outcome.RATE_LIMITED:
            assert g.admit("demo1").outcome is Outcome.RATE_LIMITED
            clock.now += verdict.retry_after
        else:
            clock.now += 0.1


def test_daily_cap_per_account_and_day_then_strikes():
    clock = Clock()
    g = guard(clock, daily_page_cap=3, ban_after=2)
    assert outcomes(g, 5) == [Outcome.OK] * 3 + [Outcome.DAILY_CAP] * 2
    assert g.pages_today("demo1") == 3
    assert g.admit("demo2").outcome is Outcome.OK
    assert g.admit("demo1").outcome is Outcome.BANNED  # kept asking after the cap
    clock.day += dt.timedelta(days=1)
    assert outcomes(g, 3, "demo2") == [Outcome.OK] * 3


def test_ban_accounts_are_banned_at_first_listing():
    g = guard(Clock(), ban_accounts=frozenset({"demo3"}))
    assert g.admit("demo3").outcome is Outcome.BANNED
    assert g.admit("demo1").outcome is Outcome.OK


def test_fates_follow_the_rates_and_the_seed():
    g = guard(Clock(), captcha_rate=1.0)
    assert all(g.roll("demo1").captcha for _ in range(50))
    g = guard(Clock(), error_rate=1.0, slow_rate=1.0, slow_ms=250)
    fates = [g.roll("demo1") for _ in range(100)]
    assert {f.error_status for f in fates} == {500, 502, 503}
    assert {f.delay for f in fates} == {0.25}
    g = guard(Clock(), malformed_rate=1.0)
    assert all(0 <= g.roll("demo1").cut_fraction < 1 for _ in range(50))

    knobs = {"captcha_rate": 0.2, "error_rate": 0.2, "malformed_rate": 0.2, "slow_rate": 0.2,
             "slow_ms": 10}
    a, b = guard(Clock(), **knobs), guard(Clock(), **knobs)
    seq_a = [a.roll("demo1") for _ in range(200)]
    assert seq_a == [b.roll("demo1") for _ in range(200)]
    assert seq_a != [a.roll("demo2") for _ in range(200)]  # each account has its own stream
    # switching one knob off leaves the others' draws where they were
    c = guard(Clock(), **{**knobs, "slow_rate": 0.0})
    assert [f.captcha for f in seq_a] == [c.roll("demo1").captcha for _ in range(200)]
