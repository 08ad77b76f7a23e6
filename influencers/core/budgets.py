"""Per-account budgets: the owner of the ``account_budgets`` table.

Where a platform's limits are known (so many listing pages a day, so many requests a minute) the
pool should stop using an account before the platform's cap, not discover the cap as a 403 that
cools the account down or worse. An operator sets an account's budget here (`BudgetStore.set`);
a site adapter may declare defaults (`SiteAdapter.budgets`), which apply where the operator set
none. The crawl paces an account to its requests a minute and retires it until local midnight
once its pages today reach its pages a day (`influencers.middlewares.accounts`).

``pages_today`` counts the listing pages an account read, in the pipeline's batch transaction
with the pages themselves (`count_pages`, from `influencers.core.store`), so it is exact across
crashes and processes. Days are local days in ``INFLUENCERS_TZ`` by the database clock
(`quotaday.TODAY_SQL`), as the export quota's are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pymysql.connections import Connection

from influencers.core.db import run_transaction
from influencers.core.errors import AccountNotFound, InvalidArgument
from influencers.core.events import record_event
from influencers.core.identities import KEEP, Keep
from influencers.core.quotaday import TODAY_SQL, QuotaDay

#: The most a budget may say (a day has 86,400 seconds; no platform allows more than this).
MAX_BUDGET = 1_000_000
_PAGES_TODAY = f"IF(pages_date <=> {TODAY_SQL}, pages_today, 0)"


@dataclass(frozen=True)
class Budget:
    """An account's budgets (None: none set) and the listing pages it read today."""

    pages_per_day: int | None = None
    requests_per_minute: int | None = None
    pages_today: int = 0

    def over(self, defaults: Budget) -> Budget:
        """This budget, with ``defaults`` (the adapter's) where it sets none."""
        return Budget(self.pages_per_day if self.pages_per_day is not None else defaults.pages_per_day,
                      self.requests_per_minute if self.requests_per_minute is not None
                      else defaults.requests_per_minute,
                      self.pages_today)


def check_budget(name: str, value: int | None) -> int | None:
    """A budget value: a whole number from 1 to `MAX_BUDGET`, or None for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BUDGET:
        raise InvalidArgument(f"{name} must be a whole number from 1 to {MAX_BUDGET}, not {value!r}")
    return value


def count_pages(cursor: Any, pages: Mapping[int, int], quota_day: QuotaDay) -> None:
    """Add ``pages`` ({account id: listing pages}) to each account's pages today, in the caller's
    transaction (the one that commits those pages). Accounts in id order: two writers lock the
    same rows in the same order."""
    today = quota_day.today_params()
    for account_id in sorted(pages):
        cursor.execute(
            "INSERT INTO account_budgets (account_id, pages_today, pages_date)"
            f" VALUES (%s, %s, {TODAY_SQL}) ON DUPLICATE KEY UPDATE"
            f" pages_today = IF(pages_date <=> VALUES(pages_date), pages_today, 0) + VALUES(pages_today),"
            " pages_date = VALUES(pages_date)",
            (account_id, pages[account_id], *today),
        )


class BudgetStore:
    def __init__(self, conn: Connection, *, quota_day: QuotaDay) -> None:
        self.conn = conn
        self.quota_day = quota_day

    def set(self, account_id: int, *, pages_per_day: int | None | Keep = KEEP,
            requests_per_minute: int | None | Keep = KEEP) -> str:
        """Change an account's budgets (None removes one; KEEP leaves it); an account event says
        what changed. Returns that text."""
        columns: dict[str, int | None] = {}
        if pages_per_day is not KEEP:
            columns["pages_per_day"] = check_budget("pages per day", pages_per_day)
        if requests_per_minute is not KEEP:
            columns["requests_per_minute"] = check_budget("requests per minute", requests_per_minute)
        if not columns:
            raise InvalidArgument("nothing to change: give pages per day or requests per minute")
        said = "; ".join(f"{name.replace('_', ' ')} {'none' if value is None else value}"
                         for name, value in columns.items())
        names = list(columns)  # column names from the code above only, never from input

        def write(cursor: Any) -> None:
            cursor.execute("SELECT id FROM accounts WHERE id = %s", (account_id,))
            if cursor.fetchone() is None:
                raise AccountNotFound(f"no account with id {account_id}")
            cursor.execute(
                f"INSERT INTO account_budgets (account_id, {', '.join(names)})"
                f" VALUES (%s, {', '.join(['%s'] * len(names))}) ON DUPLICATE KEY UPDATE"
                f" {', '.join(f'{name} = VALUES({name})' for name in names)}",
                (account_id, *columns.values()),
            )
            record_event(cursor, "account", account_id, "budget_changed", account_id=account_id, reason=said)

        run_transaction(self.conn, write)
        return said

    def get(self, account_id: int) -> Budget:
        return self.display([account_id])[account_id]

    def display(self, account_ids: Iterable[int]) -> dict[int, Budget]:
        """The budgets and today's pages of the given accounts (an empty budget for one without)."""
        wanted = [int(account_id) for account_id in account_ids]
        if not wanted:
            return {}
        with self.conn.cursor() as cursor:
            cursor.execute(
                f"SELECT account_id, pages_per_day, requests_per_minute, {_PAGES_TODAY} AS pages_today"
                f" FROM account_budgets WHERE account_id IN ({', '.join(['%s'] * len(wanted))})",
                (*self.quota_day.today_params(), *wanted),
            )
            rows = {row["account_id"]: row for row in cursor.fetchall()}
        self.conn.commit()
        return {account_id: Budget(rows[account_id]["pages_per_day"], rows[account_id]["requests_per_minute"],
                                   int(rows[account_id]["pages_today"])) if account_id in rows else Budget()
                for account_id in wanted}
