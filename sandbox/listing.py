"""The live listing of each domain: the seeded rows plus the rows inserted by shifts.

With ``shift_every = N`` every N-th listing request of a domain inserts one new influencer
(uid ``new-…``) at the top, so the listing grows while a crawl runs and original rows only
ever move down. A listing with ``k`` insertions is a pure function of ``k`` (its *version*)
and of the growth day (``Knobs.growth_day``, 0 when fans do not grow; see
``sandbox.data.grown``), which is what lets the renderer cache pages by
``(domain, page, version, day)``.

The token-cursor API pages by *rank* instead, a stable sort key: original row ``i`` has rank
``i`` and the ``n``-th inserted row rank ``-n``, so the listing is always in ascending rank
order, newest first, and a row's rank never changes. A cursor holds the rank of the last row a
client saw and ``after()`` continues from the next one (keyset pagination), so a shift neither
hides nor repeats a row; rows inserted after the first page are simply newer than the walk.
"""
from __future__ import annotations

from typing import Any

from sandbox.data import grown, inserted_row, make_row


class Listing:
    def __init__(self, seed: int, domains: tuple[str, ...], pages: int, page_size: int,
                 shift_every: int) -> None:
        self.seed = seed
        self.domains = domains
        self.page_size = page_size
        self.base_total = pages * page_size
        self.shift_every = shift_every
        self._new: dict[str, list[dict[str, Any]]] = {d: [] for d in domains}
        self._requests: dict[str, int] = dict.fromkeys(domains, 0)

    def reset(self) -> None:
        self._new = {d: [] for d in self.domains}
        self._requests = dict.fromkeys(self.domains, 0)

    def count_request(self, domain: str) -> None:
        """Record one listing request; every ``shift_every``-th inserts a row at the top."""
        self._requests[domain] += 1
        if self.shift_every and self._requests[domain] % self.shift_every == 0:
            new = self._new[domain]
            new.append(inserted_row(self.seed, domain, len(new) + 1))

    def version(self, domain: str) -> int:
        return len(self._new[domain])

    def total(self, domain: str, version: int) -> int:
        return self.base_total + version

    def total_pages(self, domain: str, version: int) -> int:
        return -(-self.total(domain, version) // self.page_size)

    def rows(self, domain: str, page: int, version: int, day: int = 0) -> list[dict[str, Any]]:
        """Rows of ``page`` (1-based) when ``version`` rows have been inserted, with the fans
        of growth ``day``."""
        start = (page - 1) * self.page_size
        stop = min(start + self.page_size, self.total(domain, version))
        new = self._new[domain]
        return self._on_day([
            new[version - 1 - pos] if pos < version else make_row(self.seed, domain, pos - version)
            for pos in range(start, stop)
        ], day)

    def span(self, domain: str, last_rank: int | None, size: int) -> tuple[int, int]:
        """Ranks ``[start, stop)`` of the (up to) ``size`` rows after ``last_rank`` (None: from
        the top); rows follow them while ``stop < base_total``.

        A rank before today's top row (a cursor from before ``reset()``) starts at the top.
        """
        top = -len(self._new[domain])
        start = top if last_rank is None else max(last_rank + 1, top)
        return start, max(start, min(start + size, self.base_total))

    def ranked_rows(self, domain: str, start: int, stop: int,
                    day: int = 0) -> list[dict[str, Any]]:
        """Rows of ranks ``[start, stop)`` with the fans of growth ``day``; a pure function of
        its arguments (and the seed)."""
        new = self._new[domain]
        return self._on_day([new[-rank - 1] if rank < 0 else make_row(self.seed, domain, rank)
                             for rank in range(start, stop)], day)

    def _on_day(self, rows: list[dict[str, Any]], day: int) -> list[dict[str, Any]]:
        return [grown(row, self.seed, day) for row in rows] if day else rows

    def inserted_uids(self) -> dict[str, list[str]]:
        """Inserted uids per domain, oldest first."""
        return {d: [r["uid"] for r in rows] for d, rows in self._new.items()}

    def requests(self) -> dict[str, int]:
        return dict(self._requests)
