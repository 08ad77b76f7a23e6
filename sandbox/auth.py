"""Accounts, login sessions, bans and CSRF tokens.

Sessions live in memory and expire ``session_ttl`` seconds after login (measured against the
TTL in force at lookup time, so changing it through the admin endpoint takes effect at once).
A ban is permanent until ``/__admin/reset``: it drops every session of the account and refuses
later logins, which is what a crawler's ban detection has to cope with.

The token-cursor API's tokens are sessions of another *kind*: same TTL, same ban, but a cookie
``sid`` is not a token and a token is not a ``sid``, so each API style only accepts its own.
"""
from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterable

from sandbox.config import Account

SESSION_COOKIE = "sid"
CSRF_COOKIE = "csrftoken"


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(form_token: str | None, cookie_token: str | None) -> bool:
    """Double-submit check: the form's token must equal the cookie's."""
    if not form_token or not cookie_token:
        return False
    return hmac.compare_digest(form_token.encode(), cookie_token.encode())


class Auth:
    """Credentials, sessions and bans of the configured accounts."""

    def __init__(
        self,
        accounts: Iterable[Account],
        session_ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._passwords = {a.username: a.password for a in accounts}
        self.session_ttl = session_ttl
        self._clock = clock
        self._sessions: dict[str, tuple[str, float, str]] = {}  # sid -> (username, created, kind)
        self.bans: dict[str, str] = {}  # username -> reason

    def check_password(self, username: str, password: str) -> bool:
        expected = self._passwords.get(username)
        if expected is None:
            return False
        return hmac.compare_digest(expected.encode(), password.encode())

    def is_banned(self, username: str) -> bool:
        return username in self.bans

    def ban(self, username: str, reason: str) -> None:
        self.bans.setdefault(username, reason)
        for sid in [s for s, (user, _, _) in self._sessions.items() if user == username]:
            del self._sessions[sid]

    def open_session(self, username: str, kind: str = SESSION_COOKIE) -> str:
        if len(self._sessions) > 10_000:
            self._purge_expired()
        sid = secrets.token_urlsafe(24)
        self._sessions[sid] = (username, self._clock(), kind)
        return sid

    def session_user(self, sid: str | None, kind: str = SESSION_COOKIE) -> str | None:
        """The account behind ``sid``, or None when it is unknown, of another kind, expired or
        invalidated."""
        if not sid:
            return None
        entry = self._sessions.get(sid)
        if entry is None or entry[2] != kind:
            return None
        username, created, _ = entry
        if self._clock() - created >= self.session_ttl:
            del self._sessions[sid]
            return None
        return username

    def close_session(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(sid, None)

    def reset(self) -> None:
        self._sessions.clear()
        self.bans.clear()

    def _purge_expired(self) -> None:
        now = self._clock()
        for sid in [s for s, (_, c, _) in self._sessions.items() if now - c >= self.session_ttl]:
            del self._sessions[sid]
