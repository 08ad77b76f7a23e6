"""Opaque listing cursors of the token-cursor API: signed, bound to a domain, expiring.

Real platforms hand out cursors a client can only give back, never make or edit, and that stop
working after a while; a crawler has to cope with both. A cursor here is the URL-safe base64
(no padding) of::

    version (1 byte) | rank (int64) | issued (uint64, ms since the epoch) | mac (16 bytes)

``rank`` is the position of the last row the client has seen on the listing's stable sort key
(see ``sandbox.listing``); ``mac`` is HMAC-SHA256 over the first 17 bytes and the domain, under a
secret derived from ``--seed``, truncated to 16 bytes. So a cursor cannot be forged, edited or
replayed on another domain (``BadCursor``), and it is refused ``ttl`` seconds after it was issued
(``ExpiredCursor``). Issue times are wall-clock, so a cursor stays valid across a restart with
the same seed, as a real platform's would across a deploy. Pure: no I/O, clock injectable.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import time
from collections.abc import Callable

_VERSION = 1
_BODY = struct.Struct(">BqQ")
_MAC_LEN = 16
_LENGTH = _BODY.size + _MAC_LEN
MAX_CURSOR_CHARS = 64  # longer input is refused before decoding


class CursorError(ValueError):
    """The cursor cannot be used."""


class BadCursor(CursorError):
    """bad cursor"""


class ExpiredCursor(CursorError):
    """cursor expired"""


def secret_for_seed(seed: int) -> bytes:
    """The server's cursor secret: fixed per seed, so cursors survive a restart."""
    return hashlib.sha256(f"sandbox cursor secret\x1f{seed}".encode()).digest()


class CursorCodec:
    """Encodes and checks cursors under one secret."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    def encode(self, domain: str, rank: int) -> str:
        body = _BODY.pack(_VERSION, rank, int(self._clock() * 1000))
        raw = body + self._mac(body, domain)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, domain: str, cursor: str, ttl: float) -> int:
        """The rank inside ``cursor``; raises BadCursor or ExpiredCursor."""
        if not cursor or len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
            raise BadCursor
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise BadCursor from None
        if len(raw) != _LENGTH:
            raise BadCursor
        body, mac = raw[: _BODY.size], raw[_BODY.size:]
        if not hmac.compare_digest(mac, self._mac(body, domain)):
            raise BadCursor
        version, rank, issued_ms = _BODY.unpack(body)
        if version != _VERSION:
            raise BadCursor
        if self._clock() * 1000 - issued_ms >= ttl * 1000:
            raise ExpiredCursor
        return rank

    def _mac(self, body: bytes, domain: str) -> bytes:
        message = body + b"\x1f" + domain.encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_LEN]
