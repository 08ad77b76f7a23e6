"""Fans growth of the sandbox's data set: seeded daily amounts, applied per day, off by default."""
from __future__ import annotations

import pytest

from sandbox.cli import parse_args
from sandbox.config import ConfigError, Knobs
from sandbox.data import DEFAULT_DOMAINS, daily_fans_growth, expected_rows, grown, inserted_row
from sandbox.listing import Listing

ROWS = [row for domain in DEFAULT_DOMAINS for row in expected_rows(domain)]
AMOUNTS = {row["uid"]: daily_fans_growth(42, row["uid"], row["fans"]) for row in ROWS}


def test_amounts_are_deterministic_and_depend_on_the_seed():
    again = {row["uid"]: daily_fans_growth(42, row["uid"], row["fans"]) for row in ROWS}
    assert again == AMOUNTS
    other_seed = {row["uid"]: daily_fans_growth(7, row["uid"], row["fans"]) for row in ROWS}
    assert other_seed != AMOUNTS


def test_about_a_fifth_never_change_some_lose_and_amounts_stay_small():
    amounts = list(AMOUNTS.values())
    zero = sum(a == 0 for a in amounts) / len(amounts)
    negative = sum(a < 0 for a in amounts) / len(amounts)
    assert 0.17 < zero < 0.23
    assert 0.07 < negative < 0.13
    for row in ROWS:
        amount = AMOUNTS[row["uid"]]
        assert amount == 0 or 1 <= abs(amount) <= max(1, row["fans"] * 0.02)


def test_grown_adds_day_amounts_and_never_goes_below_zero():
    row = ROWS[0]
    assert grown(row, 42, 0) == row
    assert grown(row, 42, 8)["fans"] == row["fans"] + 8 * AMOUNTS[row["uid"]]
    assert {k: v for k, v in grown(row, 42, 8).items() if k != "fans"} == \
        {k: v for k, v in row.items() if k != "fans"}
    loser = next(r for r in ROWS if AMOUNTS[r["uid"]] < 0)
    assert grown(loser, 42, 10**9)["fans"] == 0
    assert row == expected_rows(DEFAULT_DOMAINS[0], 1, 1)[0]  # the base row is not touched


def test_expected_rows_grow_only_with_the_switch_on_and_a_day_past_zero():
    base = expected_rows("美食", 2, 3)
    assert expected_rows("美食", 2, 3, fans_growth=True) == base
    assert expected_rows("美食", 2, 3, day=8) == base
    day8 = expected_rows("美食", 2, 3, fans_growth=True, day=8)
    assert [r["uid"] for r in day8] == [r["uid"] for r in base]
    assert [r["fans"] for r in day8] == \
        [max(0, r["fans"] + 8 * AMOUNTS[r["uid"]]) for r in base]
    assert any(a["fans"] != b["fans"] for a, b in zip(day8, base, strict=True))
    with pytest.raises(ValueError, match="day must be"):
        expected_rows("美食", fans_growth=True, day=-1)


def test_listing_rows_grow_with_the_day_inserted_rows_too():
    listing = Listing(42, ("美妆",), pages=3, page_size=5, shift_every=1)
    listing.count_request("美妆")
    new = inserted_row(42, "美妆", 1)
    assert listing.rows("美妆", 1, 1) == [new, *expected_rows("美妆", 1, 1, pages=3, page_size=5)[:4]]
    assert listing.rows("美妆", 1, 1, 3) == [grown(r, 42, 3) for r in listing.rows("美妆", 1, 1)]
    assert listing.ranked_rows("美妆", -1, 4, 3) == listing.rows("美妆", 1, 1, 3)


def test_knobs_flags_and_runtime_updates():
    assert Knobs().growth_day == 0
    assert Knobs(day=5).growth_day == 0
    assert Knobs(fans_growth=True, day=5).growth_day == 5
    on = parse_args(["--fans-growth", "--day", "3"]).knobs
    assert (on.fans_growth, on.day) == (True, 3)
    assert parse_args([]).knobs == Knobs()
    assert Knobs().updated({"day": 8, "fans_growth": True}) == Knobs(fans_growth=True, day=8)
    assert Knobs().to_json()["fans_growth"] is False
    assert Knobs().to_json()["day"] == 0
    for bad in ({"day": -1}, {"day": 1.5}, {"day": True}, {"fans_growth": 1},
                {"fans_growth": "yes"}):
        with pytest.raises(ConfigError):
            Knobs().updated(bad)
