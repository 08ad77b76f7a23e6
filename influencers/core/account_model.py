"""What the account manager hands out: an account as operators see it, and an export's grant.

Plain values, no SQL: `influencers.core.accounts` owns the table and builds these from its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
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
