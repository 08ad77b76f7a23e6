"""Account manager against the real database: quota day, status, secrets."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from influencers.core.accounts import AccountManager
from influencers.core.credentials import CredentialCipher
from influencers.core.errors import DuplicateAccount, InvalidArgument, QuotaExceeded, SecretKeyError

SHANGHAI_2359 = "2026-11-27 15:59:59"  # UTC, i.e. 23:59:59 in Asia/Shanghai
SHANGHAI_0000 = "2026-11-27 16:00:00"  # UTC, i.e. 00:00:00 the next day in Asia/Shanghai


def set_db_clock(conn, utc: str | None) -> None:
    """Inject the database clock for this session (NOW(), UTC_TIMESTAMP() follow it)."""
    with conn.cursor() as cursor:
        if utc is None:
            cursor.execute("SET @@session.timestamp = DEFAULT")
        else:
            cursor.execute("SET @@session.timestamp = UNIX_TIMESTAMP(%s)", (utc,))


def test_password_encrypted_at_rest(accounts: AccountManager, db):
    account_id = accounts.add("demo1", "sandbox-demo1", 4000)
    with db.cursor() as cursor:
        cursor.execute("SELECT password FROM accounts WHERE id = %s", (account_id,))
        stored = cursor.fetchone()["password"]
    assert "sandbox-demo1" not in stored
    assert accounts.credentials(account_id) == ("demo1", "sandbox-demo1")
    assert "sandbox-demo1" not in repr(accounts.get(account_id))


def test_wrong_key_cannot_read_passwords(accounts: AccountManager, db):
    account_id = accounts.add("demo1", "sandbox-demo1")
    stranger = AccountManager(db, cipher=CredentialCipher(Fernet.generate_key()))
    with pytest.raises(SecretKeyError):
        stranger.credentials(account_id)


def test_duplicate_and_bad_accounts(accounts: AccountManager):
    accounts.add("demo1", "pw")
    with pytest.raises(DuplicateAccount):
        accounts.add("demo1", "pw")
    with pytest.raises(InvalidArgument):
        accounts.add("", "pw")
    with pytest.raises(InvalidArgument):
        accounts.add("x", "")


def test_quota_cannot_be_overshot(accounts: AccountManager):
    account_id = accounts.add("demo1", "pw", daily_export_limit=100)
    assert accounts.get_remaining_quota(account_id) == 100
    assert accounts.update_export_count(account_id, 60) == 40
    with pytest.raises(QuotaExceeded):
        accounts.update_export_count(account_id, 41)
    assert accounts.get_remaining_quota(account_id) == 40
    assert accounts.update_export_count(account_id, 40) == 0
    with pytest.raises(QuotaExceeded):
        accounts.update_export_count(account_id, 1)


def test_quota_day_turns_at_local_midnight_without_reset(accounts: AccountManager, db):
    account_id = accounts.add("demo1", "pw", daily_export_limit=100)
    set_db_clock(db, SHANGHAI_2359)
    accounts.update_export_count(account_id, 100)
    assert accounts.get_remaining_quota(account_id) == 0
    assert accounts.get(account_id).today_export_count == 100
    with pytest.raises(QuotaExceeded):
        accounts.update_export_count(account_id, 1)
    set_db_clock(db, SHANGHAI_0000)
    assert accounts.get_remaining_quota(account_id) == 100  # a new day, no reset command ran
    assert accounts.get(account_id).today_export_count == 0
    assert accounts.update_export_count(account_id, 30) == 70
    assert str(accounts.get(account_id).quota_date) == "2026-11-28"
    set_db_clock(db, None)


def test_idle_account_excludes_exhausted_cooled_and_disabled(accounts: AccountManager):
    full = accounts.add("full", "pw", daily_export_limit=10)
    cooled = accounts.add("cooled", "pw")
    disabled = accounts.add("disabled", "pw")
    fresh = accounts.add("fresh", "pw")
    accounts.update_export_count(full, 10)
    accounts.cool_down(cooled, 600, "captcha")
    accounts.disable(disabled, "banned by platform")
    taken = accounts.get_idle_account("exporting", need_quota=True)
    assert taken is not None and taken.id == fresh and taken.status == "exporting"
    assert accounts.get_idle_account("exporting", need_quota=True) is None
    assert accounts.get(disabled).status_reason == "banned by platform"
    accounts.enable(disabled)
    assert accounts.get(disabled).status == "idle"


def test_reset_quotas_command_path(accounts: AccountManager):
    account_id = accounts.add("demo1", "pw", daily_export_limit=10)
    accounts.update_export_count(account_id, 10)
    assert accounts.reset_quotas() == 1
    assert accounts.get_remaining_quota(account_id) == 10


def test_set_account_status_validates(accounts: AccountManager):
    account_id = accounts.add("demo1", "pw")
    accounts.set_account_status(account_id, "ingesting")
    assert accounts.get(account_id).status == "ingesting"
    with pytest.raises(InvalidArgument):
        accounts.set_account_status(account_id, "sleeping")


def test_overlong_password_is_refused_before_the_database(accounts: AccountManager):
    accounts.add("ok", "密" * 42)  # 126 bytes
    with pytest.raises(InvalidArgument, match="at most 127 bytes"):
        accounts.add("long", "x" * 128)
