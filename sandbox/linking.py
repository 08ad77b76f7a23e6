"""Account linking (账号关联): the ``link_accounts`` and ``link_window`` knobs.

A real platform's risk control bans accounts that it sees sharing a client. With
``link_accounts`` on, the platform remembers, per account, the client addresses and
``User-Agent`` strings of its requests: a successful login (form or ``/api/v2/login``) and
every request made with a session or token (``/square``, ``/app/square`` and the API calls its
script makes, ``/api/v1/*``, ``/api/v2/influencers``). The address is the TCP peer of the
connection, never a header such as ``X-Forwarded-For``. An entry is forgotten ``link_window``
seconds after its last use; an absent or empty ``User-Agent`` is no identity (plain HTTP
clients send none).

The rule, decided per request and so by the order of requests alone: when a request of
account B comes from an address, or carries a ``User-Agent``, that another account A used
within the window, B — the later one — is linked. B is banned with the reason ``账号关联``
exactly as any other ban (its sessions dropped, the request and later logins refused as banned
in its API style), and the request is not recorded. B's ``linked_to`` (admin stats) names every
account it shared with, ``linked_on`` what it shared (``address``, ``user_agent``). A is only
flagged (B goes into its ``linked_from``), never banned: a platform keeps the established
account and bans the newcomer, and a crawler whose identities are kept apart keeps every account
it has. An account's entries outlive its logout and its ban: an address that served a banned
account stays tainted for the window.

``Linker`` is the pure part (clock injectable); ``Site.link`` applies its verdict.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

REASON = "账号关联"
MAX_ENTRIES = 256  # addresses (and as many User-Agents) kept per account; the oldest go first
MAX_USER_AGENT = 512  # characters of a User-Agent compared and kept


@dataclass(frozen=True)
class Link:
    """Why a request links its account: who else used the identity, and which part of it."""

    accounts: tuple[str, ...]  # the other accounts, sorted
    shared: tuple[str, ...]  # "address" and/or "user_agent"


@dataclass
class _Seen:
    # value -> time of last use; insertion order is the order of last use (oldest first)
    addresses: dict[str, float] = field(default_factory=dict)
    user_agents: dict[str, float] = field(default_factory=dict)


class Linker:
    """Per-account addresses and User-Agents within a time window, and the linking rule."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def observe(self, account: str, address: str | None, user_agent: str | None,
                window: float) -> Link | None:
        """One request of ``account``: the link it makes (nothing is recorded then), or None
        once its address and User-Agent are recorded."""
        now = self._clock()
        user_agent = (user_agent or "")[:MAX_USER_AGENT]
        others: set[str] = set()
        shared: set[str] = set()
        for other, seen in self._seen.items():
            if other == account:
                continue
            for kind, entries, value in (("address", seen.addresses, address),
                                         ("user_agent", seen.user_agents, user_agent)):
                if value and _recent(entries, value, now, window):
                    others.add(other)
                    shared.add(kind)
        if others:
            return Link(tuple(sorted(others)), tuple(sorted(shared)))
        seen = self._seen.setdefault(account, _Seen())
        for entries, value in ((seen.addresses, address), (seen.user_agents, user_agent)):
            if value:
                entries.pop(value, None)
                entries[value] = now
            _prune(entries, now, window)
        return None

    def seen(self, account: str, window: float) -> dict[str, list[str]]:
        """The addresses and User-Agents ``account`` used within the window, oldest first."""
        now = self._clock()
        seen = self._seen.get(account, _Seen())
        return {
            "addresses": [a for a, t in seen.addresses.items() if now - t < window],
            "user_agents": [u for u, t in seen.user_agents.items() if now - t < window],
        }

    def reset(self) -> None:
        self._seen.clear()


def _recent(entries: dict[str, float], value: str, now: float, window: float) -> bool:
    last_used = entries.get(value)
    return last_used is not None and now - last_used < window


def _prune(entries: dict[str, float], now: float, window: float) -> None:
    """Drop entries last used a window ago or more, and the oldest beyond MAX_ENTRIES."""
    while entries:
        oldest, last_used = next(iter(entries.items()))
        if now - last_used < window and len(entries) <= MAX_ENTRIES:
            return
        del entries[oldest]
