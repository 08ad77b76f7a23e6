"""Account manager: the pool of platform accounts, their status and their daily export quota.

The owner of the ``accounts`` table: every statement that reads or changes it, and every status
word, is here. Who may be handed out (`READY`), who may free an account (`release`: only the task
holding it) and what an export may count (`lock_for_export`) are each written once.

Every change is one SQL statement or one short transaction over locked rows; nothing is read
into Python, changed and written back, so any number of processes can share the pool. The quota
day is the local date by the database clock (`INFLUENCERS_TZ`, Asia/Shanghai by default) stored
next to the count: the first update on a new day starts from zero inside the same locked
statement, so quotas reset at local midnight with no cron job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from pymysql.connections import Connection

from influencers.core.account_model import Account, ExportGrant, account_from_row
from influencers.core.config import DEFAULT_TZ
from influencers.core.credentials import CredentialCipher, UnreadablePassword, check_key
from influencers.core.db import run_transaction
from influencers.core.errors import (
    AccountNotFound,
    DuplicateAccount,
    DuplicateKey,
    InvalidArgument,
    QuotaExceeded,
    SecretKeyError,
)
from influencers.core.events import record_event
from influencers.core.quotaday import TODAY_SQL, QuotaDay

logger = logging.getLogger(__name__)

STATUSES = ("idle", "ingesting", "exporting", "disabled")
PURPOSES = ("ingesting", "exporting")
#: An account that may be handed out now: idle and not cooling down.
READY = "status = 'idle' AND (cooldown_until IS NULL OR cooldown_until <= UTC_TIMESTAMP(6))"
#: A Fernet token of 127 bytes of plaintext is 248 characters: the most `accounts.password` (VARCHAR(255)) holds.
MAX_PASSWORD_BYTES = 127
#: Stored passwords a deployment from before the key check tries a key on before recording it.
KEY_CHECK_SAMPLE = 1000
# Today's count, or zero when the stored count belongs to an earlier quota day.
# Takes `QuotaDay.today_params()` (three parameters) where it appears.
_USED_TODAY = f"IF(quota_date <=> {TODAY_SQL}, today_export_count, 0)"
_DEFAULT_QUOTA_DAY = QuotaDay(ZoneInfo(DEFAULT_TZ))
_COLUMNS = (
    "id, username, status, daily_export_limit, today_export_count, quota_date, last_used_at,"
    " cooldown_until, status_reason, created_at"
)


def count_ready(cursor: Any) -> int:
    """Accounts that could be handed out now (the dispatcher's budget of jobs)."""
    cursor.execute(f"SELECT COUNT(*) AS n FROM accounts WHERE {READY}")
    return int(cursor.fetchone()["n"])


def export_quota_left(cursor: Any, quota_day: QuotaDay) -> int:
    """Rows the accounts not disabled may still export today, together (the alerter's "every
    quota spent")."""
    cursor.execute(f"SELECT COALESCE(SUM(GREATEST(0, daily_export_limit - {_USED_TODAY})), 0) AS n"
                   " FROM accounts WHERE status <> 'disabled'", quota_day.today_params())
    return int(cursor.fetchone()["n"])


def usernames(cursor: Any, account_ids: Iterable[int]) -> dict[int, str]:
    """Account id → username, for messages that name accounts."""
    ids = sorted({int(account_id) for account_id in account_ids})
    if not ids:
        return {}
    cursor.execute(f"SELECT id, username FROM accounts WHERE id IN ({', '.join(['%s'] * len(ids))})", ids)
    return {int(row["id"]): row["username"] for row in cursor.fetchall()}


class AccountManager:
    def __init__(self, conn: Connection, *, quota_day: QuotaDay = _DEFAULT_QUOTA_DAY,
                 cipher: CredentialCipher | None = None):
        self.conn = conn
        self.quota_day = quota_day
        self._cipher = cipher
        self._key_checked = False

    # -- the pool -----------------------------------------------------------------------------

    def add(self, username: str, password: str, daily_export_limit: int = 4000, *, cursor: Any = None) -> int:
        """A new idle account, in the caller's transaction when given ``cursor`` (a bulk import
        adds all its accounts or none)."""
        username = username.strip()
        if not username or len(username) > 255:
            raise InvalidArgument("username must be 1 to 255 characters")
        if not password:
            raise InvalidArgument("password must not be empty")
        if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
            raise InvalidArgument(f"password must be at most {MAX_PASSWORD_BYTES} bytes (its encrypted form must fit the column)")
        if daily_export_limit < 0:
            raise InvalidArgument("daily export limit must be 0 or more")
        token = self._checked_cipher().encrypt(password)

        def insert(cursor: Any) -> int:
            cursor.execute(
                "INSERT INTO accounts (username, password, status, daily_export_limit, today_export_count)"
                " VALUES (%s, %s, 'idle', %s, 0)",
                (username, token, daily_export_limit),
            )
            account_id = cursor.lastrowid
            record_event(cursor, "account", account_id, "created", to_status="idle", account_id=account_id)
            return account_id

        try:
            return self._in_transaction(insert, cursor)
        except DuplicateKey:
            raise DuplicateAccount(f"account {username!r} already exists") from None

    def get(self, account_id: int) -> Account:
        accounts = self._select("WHERE id = %s", (account_id,))
        if not accounts:
            raise AccountNotFound(f"no account with id {account_id}")
        return accounts[0]

    def find(self, username: str) -> Account:
        accounts = self._select("WHERE username = %s", (username,))
        if not accounts:
            raise AccountNotFound(f"no account named {username!r}")
        return accounts[0]

    def list(self) -> list[Account]:
        return self._select("ORDER BY id", ())

    def credentials(self, account_id: int) -> tuple[str, str]:
        """(username, plaintext password) for logging in. Never log the result.

        Raises KeyMismatch when this process's key is not the deployment's, and
        UnreadablePassword when it is but this account's password was stored with another key.
        """
        cipher = self._checked_cipher()
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT username, password FROM accounts WHERE id = %s", (account_id,))
            row = cursor.fetchone()
        self.conn.commit()
        if row is None:
            raise AccountNotFound(f"no account with id {account_id}")
        try:
            return row["username"], cipher.decrypt(row["password"])
        except SecretKeyError:
            raise UnreadablePassword(account_id, row["username"]) from None

    def check_key(self, *, record: bool = True) -> None:
        """Refuse (KeyMismatch) a key that is not the deployment's; the first process to ask
        records its key (`credentials.check_key`). Once per manager. ``record=False``: only
        compare with a key already recorded (a crawl's start, which may never need the key)."""
        if self._key_checked:
            return
        cipher = self._require_cipher()

        def check(cursor: Any) -> bool:
            if not record:
                return check_key(cursor, cipher, None)
            cursor.execute(f"SELECT password FROM accounts ORDER BY id LIMIT {KEY_CHECK_SAMPLE}")
            return check_key(cursor, cipher, [row["password"] for row in cursor.fetchall()])

        self._key_checked = run_transaction(self.conn, check)

    # -- the seed's interfaces ----------------------------------------------------------------

    def get_idle_account(
        self, purpose: str = "ingesting", *, need_quota: bool = False, exclude: Iterable[int] = (),
        task_id: int | None = None, worker: str | None = None,
    ) -> Account | None:
        """Take the least recently used idle account for `purpose`; None if there is none.

        The account's status becomes `purpose` in the same transaction that found it idle
        (`FOR UPDATE SKIP LOCKED`), so two processes never take the same account.
        """
        return run_transaction(
            self.conn,
            lambda cursor: self.take_idle_account(
                cursor, purpose, need_quota=need_quota, exclude=exclude, task_id=task_id, worker=worker
            ),
        )

    def take_idle_account(
        self, cursor: Any, purpose: str, *, need_quota: bool = False, exclude: Iterable[int] = (),
        task_id: int | None = None, worker: str | None = None,
    ) -> Account | None:
        """`get_idle_account` inside the caller's transaction (the task scheduler's claim)."""
        if purpose not in PURPOSES:
            raise InvalidArgument(f"an account is taken for 'ingesting' or 'exporting', not {purpose!r}")
        conditions = [READY]
        params: list[Any] = []
        if need_quota:
            conditions.append(f"{_USED_TODAY} < daily_export_limit")
            params.extend(self.quota_day.today_params())
        excluded = [int(account_id) for account_id in exclude]
        if excluded:
            conditions.append(f"id NOT IN ({', '.join(['%s'] * len(excluded))})")
            params.extend(excluded)
        cursor.execute(
            f"SELECT id FROM accounts WHERE {' AND '.join(conditions)}"
            " ORDER BY last_used_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",  # NULLs (never used) sort first
            params,
        )
        row = cursor.fetchone()
        if row is None:
            return None
        account_id = row["id"]
        cursor.execute(
            "UPDATE accounts SET status = %s, status_reason = NULL, cooldown_until = NULL,"
            " last_used_at = UTC_TIMESTAMP(), held_by_task_id = %s WHERE id = %s",
            (purpose, task_id, account_id),
        )
        record_event(cursor, "account", account_id, "taken", from_status="idle", to_status=purpose,
                     task_id=task_id, account_id=account_id, worker=worker)
        return self._select("WHERE id = %s", (account_id,), cursor=cursor)[0]

    def set_account_status(
        self, account_id: int, status: str, reason: str | None = None, *, cursor: Any = None,
        task_id: int | None = None, worker: str | None = None,
    ) -> None:
        if status not in STATUSES:
            raise InvalidArgument(f"status must be one of {', '.join(STATUSES)}")

        def update(cur: Any) -> None:
            cur.execute("SELECT status FROM accounts WHERE id = %s FOR UPDATE", (account_id,))
            row = cur.fetchone()
            if row is None:
                raise AccountNotFound(f"no account with id {account_id}")
            cur.execute(
                "UPDATE accounts SET status = %s, status_reason = %s WHERE id = %s",
                (status, reason[:255] if reason else None, account_id),
            )
            if row["status"] != status or reason:
                record_event(cur, "account", account_id, "status", from_status=row["status"], to_status=status,
                             task_id=task_id, account_id=account_id, worker=worker, reason=reason)

        self._in_transaction(update, cursor)

    def get_remaining_quota(self, account_id: int) -> int:
        with self.conn.cursor() as cursor:
            cursor.execute(
                f"SELECT GREATEST(daily_export_limit - {_USED_TODAY}, 0) AS remaining FROM accounts WHERE id = %s",
                (*self.quota_day.today_params(), account_id),
            )
            row = cursor.fetchone()
        self.conn.commit()
        if row is None:
            raise AccountNotFound(f"no account with id {account_id}")
        return int(row["remaining"])

    def update_export_count(self, account_id: int, count: int, *, cursor: Any = None) -> int:
        """Count `count` exported rows against today's quota; returns what is left today."""
        return self._in_transaction(lambda cur: self.count_export(cur, account_id, count)[0], cursor)

    def count_export(self, cursor: Any, account_id: int, count: int) -> tuple[int, date]:
        """`update_export_count` inside the caller's transaction; returns what is left and the
        quota day the rows were counted on (the day their batch belongs to, even at midnight).

        One conditional UPDATE: the row lock makes concurrent callers queue, the condition makes
        the quota impossible to overshoot, and a new quota day starts from zero in the same
        statement. Raises QuotaExceeded (and changes nothing) if the rows do not fit.
        """
        if count < 0:
            raise InvalidArgument("an export count cannot be negative")

        def update(cur: Any) -> tuple[int, date]:
            today = self.quota_day.today_params()
            cur.execute(
                f"UPDATE accounts SET today_export_count = {_USED_TODAY} + %s, quota_date = {TODAY_SQL}"
                f" WHERE id = %s AND {_USED_TODAY} + %s <= daily_export_limit",
                (*today, count, *today, account_id, *today, count),
            )
            if cur.rowcount != 1:
                cur.execute("SELECT id FROM accounts WHERE id = %s", (account_id,))
                if cur.fetchone() is None:
                    raise AccountNotFound(f"no account with id {account_id}")
                raise QuotaExceeded(f"account {account_id} has less than {count} exports left today")
            cur.execute("SELECT daily_export_limit - today_export_count AS remaining, quota_date FROM accounts"
                        " WHERE id = %s", (account_id,))
            row = cur.fetchone()
            return int(row["remaining"]), row["quota_date"]

        return update(cursor)

    def lock_for_export(self, cursor: Any, account_id: int) -> ExportGrant:
        """Lock the account row inside the caller's transaction: its status and the quota left
        today, together.

        Until the caller commits, no other process can count exports against this account, so
        a batch sized by this number cannot overshoot the limit, and an operator's disable
        cannot slip in between the check and the count.
        """
        today = self.quota_day.today_params()
        cursor.execute(
            f"SELECT status, GREATEST(daily_export_limit - {_USED_TODAY}, 0) AS remaining"
            " FROM accounts WHERE id = %s FOR UPDATE",
            (*today, account_id),
        )
        row = cursor.fetchone()
        if row is None:
            raise AccountNotFound(f"no account with id {account_id}")
        return ExportGrant(row["status"], int(row["remaining"]))

    def release(self, cursor: Any, account_id: int | None, task_id: int, worker: str | None) -> None:
        """Back to `idle` inside the caller's transaction, unless it was disabled or cooled down
        meanwhile (then it stays so), or another task holds it now: a task may hand its account
        back before it ends, and a recovery or an operator's pause names the task's last account,
        so only the holder's release counts (NULL: taken outside a task)."""
        if account_id is None:
            return
        cursor.execute(
            "UPDATE accounts SET status = 'idle', held_by_task_id = NULL WHERE id = %s"
            " AND status IN ('ingesting', 'exporting') AND (held_by_task_id IS NULL OR held_by_task_id = %s)",
            (account_id, task_id),
        )
        if cursor.rowcount:
            record_event(cursor, "account", account_id, "freed", to_status="idle", task_id=task_id,
                         account_id=account_id, worker=worker)


    def next_available_in(self, *, cursor: Any = None) -> float | None:
        """Seconds until some account may be handed out: 0 if one is idle now, the end of the
        earliest cool-down, a poll interval (30) if all usable ones are busy; None if every
        account is disabled or there is none."""
        sql = (
            f"SELECT SUM({READY}) AS ready,"
            " MIN(IF(status = 'idle' AND cooldown_until > UTC_TIMESTAMP(6),"
            "        TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), cooldown_until), NULL)) AS cooling_us,"
            " SUM(status IN ('ingesting', 'exporting')) AS busy FROM accounts"
        )
        if cursor is not None:
            cursor.execute(sql)
            row = cursor.fetchone()
        else:
            with self.conn.cursor() as own:
                own.execute(sql)
                row = own.fetchone()
            self.conn.commit()
        if row["ready"]:
            return 0.0
        if row["cooling_us"] is not None:
            return float(row["cooling_us"]) / 1_000_000
        return 30.0 if row["busy"] else None

    # -- operator actions ---------------------------------------------------------------------

    def cool_down(self, account_id: int, seconds: float, reason: str, *, cursor: Any = None,
                  task_id: int | None = None, worker: str | None = None) -> None:
        """Back to the pool, but not handed out again for `seconds`."""

        def update(cur: Any) -> None:
            cur.execute("SELECT status FROM accounts WHERE id = %s FOR UPDATE", (account_id,))
            row = cur.fetchone()
            if row is None:
                raise AccountNotFound(f"no account with id {account_id}")
            if row["status"] == "disabled":
                return
            cur.execute(
                "UPDATE accounts SET status = 'idle', status_reason = %s,"
                " cooldown_until = UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND WHERE id = %s",
                (reason[:255], int(seconds * 1_000_000), account_id),
            )
            record_event(cur, "account", account_id, "cooled_down", from_status=row["status"], to_status="idle",
                         task_id=task_id, account_id=account_id, worker=worker,
                         reason=f"{reason} (for {seconds:.0f}s)")

        self._in_transaction(update, cursor)

    def disable(self, account_id: int, reason: str, *, cursor: Any = None,
                task_id: int | None = None, worker: str | None = None) -> None:
        if not reason or not reason.strip():
            raise InvalidArgument("disabling an account needs a reason")
        self.set_account_status(account_id, "disabled", reason.strip(), cursor=cursor, task_id=task_id, worker=worker)

    def enable(self, account_id: int, reason: str | None = None) -> None:
        def update(cur: Any) -> None:
            cur.execute("SELECT status FROM accounts WHERE id = %s FOR UPDATE", (account_id,))
            row = cur.fetchone()
            if row is None:
                raise AccountNotFound(f"no account with id {account_id}")
            cur.execute(
                "UPDATE accounts SET status = 'idle', status_reason = NULL, cooldown_until = NULL WHERE id = %s",
                (account_id,),
            )
            record_event(cur, "account", account_id, "enabled", from_status=row["status"], to_status="idle",
                         account_id=account_id, reason=reason or "enabled by operator")

        run_transaction(self.conn, update)

    def reset_quotas(self) -> int:
        """Start today's quota from zero for every account (for operators who want a cron job)."""

        def reset(cur: Any) -> int:
            cur.execute(
                f"UPDATE accounts SET today_export_count = 0, quota_date = {TODAY_SQL}", self.quota_day.today_params()
            )
            return cur.rowcount

        return run_transaction(self.conn, reset)

    # -- helpers ------------------------------------------------------------------------------

    def _require_cipher(self) -> CredentialCipher:
        if self._cipher is None:
            raise InvalidArgument("this AccountManager was built without a credential cipher")
        return self._cipher

    def _checked_cipher(self) -> CredentialCipher:
        self.check_key()
        return self._require_cipher()

    def _in_transaction(self, work: Any, cursor: Any) -> Any:
        return work(cursor) if cursor is not None else run_transaction(self.conn, work)

    def _select(self, clause: str, params: tuple, *, cursor: Any = None) -> list[Account]:
        sql = (
            f"SELECT {_COLUMNS}, GREATEST(daily_export_limit - {_USED_TODAY}, 0) AS remaining_quota,"
            f" {_USED_TODAY} AS used_today FROM accounts {clause}"
        )
        today = self.quota_day.today_params()
        args = (*today, *today, *params)
        if cursor is not None:
            cursor.execute(sql, args)
            rows = cursor.fetchall()
        else:
            with self.conn.cursor() as own:
                own.execute(sql, args)
                rows = own.fetchall()
            self.conn.commit()
        return [account_from_row(row) for row in rows]
