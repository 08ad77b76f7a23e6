"""Counters behind ``GET /__admin/stats``: what each account did and what it was served.

Tests and benchmarks read these to prove that a misbehaviour fired (or never did) and that a
crawler backed off; nothing in the request path depends on them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class AccountStats:
    requests: int = 0  # authenticated listing requests (JSON and HTML)
    logins: int = 0  # successful logins
    pages: int = 0  # listing pages served intact with their rows
    rate_limited: int = 0  # 429 responses
    daily_cap: int = 0  # E_DAILY_CAP responses
    captchas: int = 0  # listing requests answered with the captcha
    captchas_solved: int = 0  # right answers (captcha_solvable; sandbox.captcha)
    captchas_failed: int = 0  # wrong answers and unknown or old challenge ids
    errors: int = 0  # 5xx responses
    malformed: int = 0  # truncated bodies
    slow: int = 0  # delayed responses
    banned: bool = False
    ban_reason: str | None = None
    # account linking (sandbox.linking): whom this account was banned for sharing a client
    # with and what they shared ("address", "user_agent"); who was banned for sharing with it
    linked_to: list[str] = field(default_factory=list)
    linked_on: list[str] = field(default_factory=list)
    linked_from: list[str] = field(default_factory=list)


class Stats:
    """Per-account counters plus the few events that belong to no account."""

    def __init__(self, usernames: list[str]) -> None:
        self._usernames = list(usernames)
        self.reset()

    def reset(self) -> None:
        self.accounts: dict[str, AccountStats] = {u: AccountStats() for u in self._usernames}
        self.login_failures = 0  # wrong password or unknown user
        self.csrf_failures = 0
        self.login_required = 0  # listing requests without a valid session (or token)
        self.cursor_expired = 0  # token-cursor API: cursors refused as expired
        self.bad_cursors = 0  # token-cursor API: cursors refused as forged, edited or garbled

    def account(self, username: str) -> AccountStats:
        return self.accounts[username]

    def to_json(self) -> dict[str, Any]:
        return {
            "accounts": {u: dataclasses.asdict(s) for u, s in self.accounts.items()},
            "login_failures": self.login_failures,
            "csrf_failures": self.csrf_failures,
            "login_required": self.login_required,
            "cursor_expired": self.cursor_expired,
            "bad_cursors": self.bad_cursors,
        }
