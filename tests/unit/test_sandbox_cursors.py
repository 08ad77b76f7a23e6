"""Cursors of the token-cursor API: round trip, signature, domain binding, expiry (pure)."""
from __future__ import annotations

import base64

import pytest

from sandbox.cursors import (
    MAX_CURSOR_CHARS,
    BadCursor,
    CursorCodec,
    CursorError,
    ExpiredCursor,
    secret_for_seed,
)
from sandbox.listing import Listing


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def codec(clock: Clock) -> CursorCodec:
    return CursorCodec(secret_for_seed(42), clock=clock)


def _raw(cursor: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("rank", [0, 19, 999, -1, -250, 2**40])
def test_round_trip(codec, rank):
    cursor = codec.encode("美妆", rank)
    assert cursor.isascii() and "=" not in cursor and len(cursor) <= MAX_CURSOR_CHARS
    assert codec.decode("美妆", cursor, ttl=600) == rank


def test_cursors_are_opaque_and_salted_by_time(codec, clock):
    first = codec.encode("美妆", 19)
    clock.now += 1
    assert codec.encode("美妆", 19) != first
    assert "19" not in first


def test_another_domain_is_refused(codec):
    with pytest.raises(BadCursor):
        codec.decode("游戏", codec.encode("美妆", 19), ttl=600)


def test_another_seed_is_refused(codec, clock):
    other = CursorCodec(secret_for_seed(43), clock=clock)
    with pytest.raises(BadCursor):
        codec.decode("美妆", other.encode("美妆", 19), ttl=600)


def test_the_same_seed_accepts_after_a_restart(codec, clock):
    restarted = CursorCodec(secret_for_seed(42), clock=clock)
    assert restarted.decode("美妆", codec.encode("美妆", 19), ttl=600) == 19


@pytest.mark.parametrize("offset", range(33))
def test_any_edited_byte_is_refused(codec, offset):
    raw = _raw(codec.encode("美妆", 19))
    raw[offset] ^= 0x01
    with pytest.raises(BadCursor):
        codec.decode("美妆", _text(raw), ttl=600)


def test_a_forged_position_is_refused(codec):
    raw = _raw(codec.encode("美妆", 19))
    raw[1:9] = (999).to_bytes(8, "big", signed=True)
    with pytest.raises(BadCursor):
        codec.decode("美妆", _text(raw), ttl=600)


@pytest.mark.parametrize("garbage", [
    "", "x", "not a cursor", "%%%%", "AAAA", "é" * 10, "A" * (MAX_CURSOR_CHARS + 4),
    _text(b"\x01" + b"\x00" * 31),  # one byte short
])
def test_garbage_is_refused(codec, garbage):
    with pytest.raises(BadCursor):
        codec.decode("美妆", garbage, ttl=600)


def test_expiry(codec, clock):
    cursor = codec.encode("美妆", 19)
    clock.now += 599.9
    assert codec.decode("美妆", cursor, ttl=600) == 19
    clock.now += 0.1
    with pytest.raises(ExpiredCursor):
        codec.decode("美妆", cursor, ttl=600)
    assert codec.decode("美妆", cursor, ttl=3600) == 19  # the TTL in force when it comes back


def test_a_forged_cursor_is_bad_even_when_old(codec, clock):
    raw = _raw(codec.encode("美妆", 19))
    raw[-1] ^= 0x01
    clock.now += 10_000
    with pytest.raises(BadCursor):
        codec.decode("美妆", _text(raw), ttl=600)


def test_errors_carry_the_api_message():
    assert issubclass(BadCursor, CursorError) and issubclass(ExpiredCursor, CursorError)
    assert BadCursor.__doc__ == "bad cursor"
    assert ExpiredCursor.__doc__ == "cursor expired"


# -- keyset positions (sandbox.listing) --------------------------------------------------------


def _walk(listing: Listing, domain: str, size: int, shift_between_pages: bool) -> list[str]:
    uids, last = [], None
    while True:
        if shift_between_pages:
            listing.count_request(domain)
        start, stop = listing.span(domain, last, size)
        uids += [r["uid"] for r in listing.ranked_rows(domain, start, stop)]
        if stop >= listing.base_total:
            return uids
        last = stop - 1


@pytest.mark.parametrize("size", [1, 7, 20, 100])
def test_walking_ranks_gives_the_listing_in_order(size):
    listing = Listing(42, ("美妆",), pages=5, page_size=20, shift_every=0)
    expected = [r["uid"] for p in range(1, 6) for r in listing.rows("美妆", p, 0)]
    assert _walk(listing, "美妆", size, shift_between_pages=False) == expected


def test_shifts_neither_hide_nor_repeat_rows():
    listing = Listing(42, ("美妆",), pages=5, page_size=20, shift_every=1)
    for _ in range(3):  # three rows inserted before the walk starts
        listing.count_request("美妆")
    uids = _walk(listing, "美妆", 20, shift_between_pages=True)
    original = [f"mz-{i:06d}" for i in range(1, 101)]
    # the first page shows the four rows inserted by then, newest first; later ones are newer
    # than the walk and never show up; every original row comes exactly once, in order
    assert uids == ["new-mz-000004", "new-mz-000003", "new-mz-000002", "new-mz-000001",
                    *original]


def test_a_rank_from_before_a_reset_starts_at_the_top():
    listing = Listing(42, ("美妆",), pages=1, page_size=20, shift_every=1)
    for _ in range(5):
        listing.count_request("美妆")
    listing.reset()
    assert listing.span("美妆", -4, 20) == (0, 20)
    assert listing.span("美妆", 25, 20) == (26, 26)  # past the end: an empty last page
