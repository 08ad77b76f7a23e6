"""Guard.limit_headers: the RateLimit-* headers describe the token bucket exactly (fake clock)."""
from __future__ import annotations

import datetime as dt

import pytest

from sandbox.cli import parse_args
from sandbox.config import ConfigError, Knobs
from sandbox.misbehaviour import Guard, Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def today(self) -> dt.date:
        return dt.date(2026, 1, 1)


def guard(clock: Clock, **knobs) -> Guard:
    return Guard(Knobs(**knobs), seed=42, clock=clock, today=clock.today)


def triple(headers: dict[str, str]) -> tuple[int, int, int]:
    return (int(headers["RateLimit-Limit"]), int(headers["RateLimit-Remaining"]),
            int(headers["RateLimit-Reset"]))


def test_off_by_default_and_without_a_rate_limit():
    clock = Clock()
    assert guard(clock, rate_limit=5).limit_headers("demo1") == {}
    assert guard(clock, rate_limit_headers=True).limit_headers("demo1") == {}  # no bucket to describe


def test_remaining_counts_down_then_reset_says_when_a_token_is_back():
    clock = Clock()
    g = guard(clock, rate_limit=3, retry_after=2, rate_limit_headers=True)
    seen = []
    for _ in range(3):
        assert g.admit("demo1").outcome is Outcome.OK
        seen.append(triple(g.limit_headers("demo1")))
    assert seen == [(3, 2, 0), (3, 1, 0), (3, 0, 1)]
    assert g.limit_headers("demo1")["RateLimit-Policy"] == "3;w=1"
    assert g.admit("demo1").outcome is Outcome.RATE_LIMITED
    assert triple(g.limit_headers("demo1")) == (3, 0, 2)  # the 429 window, not the token
    clock.now += 1.5  # the bucket holds 4.5 tokens' worth, capped at 3, but the window is open
    assert triple(g.limit_headers("demo1")) == (3, 0, 1)
    clock.now += 0.5
    assert triple(g.limit_headers("demo1")) == (3, 3, 0)
    assert triple(guard(clock, rate_limit=3, rate_limit_headers=True).limit_headers("demo2")) == (3, 3, 0)


def test_reading_the_headers_changes_no_outcome():
    clock = Clock()
    plain, told = guard(clock, rate_limit=2), guard(clock, rate_limit=2, rate_limit_headers=True)
    for step in range(40):
        clock.now += 0.1 * (step % 7)
        assert plain.admit("demo1") == told.admit("demo1")
        told.limit_headers("demo1")
        told.limit_headers("demo1")


@pytest.mark.parametrize(("rate", "policy", "reset_after_one"), [
    (0.5, "1;w=2", 2),  # a bucket of one token, refilled in 2 s
    (1, "1;w=1", 1),
    (2.5, "2;w=0.8", 1),  # two whole tokens, refilled in 0.8 s: 2 / 0.8 is the rate exactly
    (0.3, "1;w=3.333", 4),
])
def test_policy_gives_the_rate_as_limit_over_window(rate, policy, reset_after_one):
    clock = Clock()
    g = guard(clock, rate_limit=rate, rate_limit_headers=True)
    assert g.admit("demo1").outcome is Outcome.OK
    headers = g.limit_headers("demo1")
    assert headers["RateLimit-Policy"] == policy
    quota, window = policy.split(";w=")
    assert int(quota) / float(window) == pytest.approx(rate, rel=1e-3)
    if int(quota) == 1:
        assert triple(headers) == (1, 0, reset_after_one)


def test_the_knob_from_the_command_line_and_at_runtime():
    assert parse_args([]).knobs.rate_limit_headers is False
    assert parse_args(["--rate-limit", "1", "--rate-limit-headers"]).knobs.rate_limit_headers is True
    assert parse_args(["--profile", "hostile"]).knobs.rate_limit_headers is False
    assert Knobs().updated({"rate_limit_headers": True}).rate_limit_headers is True
    assert Knobs().to_json()["rate_limit_headers"] is False
    with pytest.raises(ConfigError, match="rate_limit_headers"):
        Knobs().updated({"rate_limit_headers": "yes"})
