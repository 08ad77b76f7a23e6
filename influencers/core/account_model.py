"""What the account manager hands out: an account as operators see it, and an export's grant;
and what the identity store hands out: an account's identity for the crawl, and for display.

Plain values, no SQL: `influencers.core.accounts` and `influencers.core.identities` own the
tables and build these from their rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class ExportGrant:
    """What an export batch may count against an account, read under its row lock."""

    status: str
    remaining: int  # exports left today


@dataclass(frozen=True)
class Account:
    """An account as operators see it: never the password."""

    id: int
    username: str
    status: str
    daily_export_limit: int
    today_export_count: int
    quota_date: date | None
    last_used_at: datetime | None
    cooldown_until: datetime | None
    status_reason: str | None
    created_at: datetime | None = None
    remaining_quota: int | None = None


def account_from_row(row: dict[str, Any]) -> Account:
    """An `Account` from a row of `AccountManager`'s select (``used_today``, ``remaining_quota``)."""
    return Account(
        id=row["id"],
        username=row["username"],
        status=row["status"],
        daily_export_limit=row["daily_export_limit"],
        today_export_count=int(row["used_today"]),
        quota_date=row["quota_date"],
        last_used_at=row["last_used_at"],
        cooldown_until=row["cooldown_until"],
        status_reason=row["status_reason"],
        created_at=row["created_at"],
        remaining_quota=int(row["remaining_quota"]),
    )


@dataclass(frozen=True)
class Identity:
    """What an account looks like to the platform: the proxy it goes through, its user agent and
    extra headers. Empty (all None) for an account without one: the crawl's defaults apply."""

    proxy_url: str | None = field(default=None, repr=False)  # decrypted, may hold credentials: never logged
    user_agent: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    proxy_host: str | None = None  # scheme://host:port, for display


@dataclass(frozen=True)
class IdentityView:
    """An account's identity as operators see it in a listing: never the proxy's credentials."""

    proxy_host: str | None = None
    user_agent: str | None = None
    proxy_failures: int = 0  # consecutive failures through the proxy
    proxy_error: str | None = None
    proxy_failed_at: datetime | None = None  # UTC

    @property
    def proxy_health(self) -> str | None:
        """``ok``, ``failed N×: reason``, or None for an account without a proxy."""
        if self.proxy_failures:
            return f"failed {self.proxy_failures}×: {self.proxy_error or 'unknown error'}"
        return "ok" if self.proxy_host else None
