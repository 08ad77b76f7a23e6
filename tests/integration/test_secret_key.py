"""One credential key per deployment (issue 18, item 3), against the real database: the check value
recorded by the first process, a key that differs refused, an account whose password another key
stored named and kept apart; the key file's problems as one `ConfigError`; the default key path."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from influencers.core.accounts import AccountManager
from influencers.core.config import Config
from influencers.core.credentials import (
    CredentialCipher,
    KeyMismatch,
    KeySource,
    UnreadablePassword,
    load_or_create_key_file,
)
from influencers.core.db import connect
from influencers.core.errors import ConfigError, SecretKeyError
from influencers.core.schema import SCHEMA_PATH, apply_schema, split_sql


def clear_key_check(settings) -> None:
    conn = connect(settings, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute("DELETE FROM secret_key_check")
    finally:
        conn.close()


@pytest.fixture
def fresh(db, mysql_settings) -> Iterator:
    """The test database with no account and no recorded key, and none left behind (the other
    tests share one key for the whole session)."""
    clear_key_check(mysql_settings)
    yield db
    clear_key_check(mysql_settings)


def manager(conn, key: bytes | None = None, source: KeySource | None = None) -> AccountManager:
    cipher = CredentialCipher(key or Fernet.generate_key(), *([source] if source else []))
    return AccountManager(conn, cipher=cipher)


def recorded(conn) -> list[dict]:
    with conn.cursor() as cursor:
        cursor.execute("SELECT * FROM secret_key_check")
        rows = list(cursor.fetchall())
    conn.commit()
    return rows


def test_the_first_process_records_a_check_value_never_the_key(fresh):
    key = Fernet.generate_key()
    account_id = manager(fresh, key, KeySource("INFLUENCERS_KEY_FILE", Path("/srv/secret.key"))).add("a", "pw-a")
    (row,) = recorded(fresh)
    assert row["id"] == 1 and row["check_value"].startswith("hmac-sha256:")
    assert key.decode() not in str(row) and base64.urlsafe_b64decode(key).hex() not in str(row)
    assert "/srv/secret.key" in row["recorded_by"]
    assert manager(fresh, key).credentials(account_id) == ("a", "pw-a")  # the same key, from elsewhere
    assert len(recorded(fresh)) == 1


def test_another_key_may_neither_add_nor_decrypt(fresh):
    good = manager(fresh)
    account_id = good.add("a", "pw-a")
    other_key = Fernet.generate_key()
    from_file = manager(fresh, other_key, KeySource("INFLUENCERS_KEY_FILE", Path("/tmp/elsewhere/secret.key")))
    with pytest.raises(KeyMismatch) as error:
        from_file.add("b", "pw-b")
    assert str(error.value).startswith("INFLUENCERS_KEY_FILE: the key file /tmp/elsewhere/secret.key is not this"
                                       " deployment's key")
    assert "\n" not in str(error.value)
    with pytest.raises(KeyMismatch) as error:
        manager(fresh, other_key).credentials(account_id)
    assert str(error.value).startswith("INFLUENCERS_SECRET_KEY: ")
    assert isinstance(error.value, SecretKeyError) and isinstance(error.value, ConfigError)
    assert [a.username for a in good.list()] == ["a"]
    with pytest.raises(KeyMismatch):  # a crawl's start compares too
        manager(fresh, other_key).check_key(record=False)


def test_a_start_check_records_nothing(fresh):
    manager(fresh).check_key(record=False)
    assert recorded(fresh) == []


def test_an_account_stored_with_another_key_is_named_not_the_key(fresh):
    good_key, stray_key = Fernet.generate_key(), Fernet.generate_key()
    good = manager(fresh, good_key)
    ids = [good.add(name, f"pw-{name}") for name in ("a", "b", "c")]
    with fresh.cursor() as cursor:  # what an `accounts add` run with a key file of its own left behind
        cursor.execute("INSERT INTO accounts (username, password) VALUES ('stray', %s)",
                       (CredentialCipher(stray_key).encrypt("pw-stray"),))
        stray = cursor.lastrowid
    fresh.commit()
    with pytest.raises(UnreadablePassword) as error:
        manager(fresh, good_key).credentials(stray)
    assert str(error.value).startswith(f"account 'stray' (id {stray}): its stored password cannot be decrypted")
    assert not isinstance(error.value, SecretKeyError)  # not a reason to stop the crawl
    assert [manager(fresh, good_key).credentials(i)[1] for i in ids] == ["pw-a", "pw-b", "pw-c"]


def test_a_deployment_from_before_the_check_records_only_the_key_of_most_passwords(fresh):
    good_key, stray_key = Fernet.generate_key(), Fernet.generate_key()
    with fresh.cursor() as cursor:
        for name, key in (("a", good_key), ("b", good_key), ("c", good_key), ("stray", stray_key)):
            cursor.execute("INSERT INTO accounts (username, password) VALUES (%s, %s)",
                           (name, CredentialCipher(key).encrypt(f"pw-{name}")))
    fresh.commit()
    with pytest.raises(KeyMismatch) as error:
        manager(fresh, stray_key).add("d", "pw-d")
    assert "decrypts 1 of the 4 stored passwords" in str(error.value)
    assert recorded(fresh) == []
    manager(fresh, good_key).add("d", "pw-d")
    assert len(recorded(fresh)) == 1
    with pytest.raises(KeyMismatch):
        manager(fresh, stray_key).check_key()


# -- the key file -----------------------------------------------------------------------------


def test_key_file_problems_are_one_config_error_naming_it(tmp_path):
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "garbage.key").write_text("not a key\n")
    (tmp_path / "empty.key").write_text("")
    os.mkfifo(tmp_path / "a-fifo")
    cases = {
        tmp_path / "a-directory": "is a directory",
        tmp_path / "a-file" / "secret.key": "Not a directory",  # ENOTDIR
        Path("/proc/no-such-dir/secret.key"): "cannot create the key file",  # uncreatable, even for root
        tmp_path / "garbage.key": "does not hold a Fernet key",
        tmp_path / "empty.key": "does not hold a Fernet key",
        tmp_path / "a-fifo": "is not a regular file",
    }
    for path, fragment in cases.items():
        with pytest.raises(ConfigError) as error:
            CredentialCipher.from_config(Config.from_env({"INFLUENCERS_KEY_FILE": str(path)}))
        message = str(error.value)
        assert message.startswith("INFLUENCERS_KEY_FILE: ") and str(path) in message, message
        assert fragment in message and "\n" not in message, message


def test_a_key_file_open_to_others_is_used_with_one_warning(tmp_path, caplog):
    path = tmp_path / "secret.key"
    key = load_or_create_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o640)
    caplog.set_level(logging.WARNING)
    assert load_or_create_key_file(path) == key
    assert load_or_create_key_file(path) == key
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0] and "0640" in warnings[0]


def test_the_default_key_file_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    monkeypatch.chdir(tmp_path)
    assert Config.from_env({"HOME": str(home)}).key_file == home / ".config" / "influencers" / "secret.key"
    assert Config.from_env({"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}).key_file == (
        xdg / "influencers" / "secret.key")
    # a relative XDG_CONFIG_HOME is ignored (the XDG spec); a relative INFLUENCERS_KEY_FILE is made absolute
    assert Config.from_env({"HOME": str(home), "XDG_CONFIG_HOME": "rel"}).key_file.is_relative_to(home)
    assert Config.from_env({"INFLUENCERS_KEY_FILE": "k/secret.key"}).key_file == tmp_path / "k" / "secret.key"
    assert Config.from_env({}).key_file.is_absolute()


# -- the schema -------------------------------------------------------------------------------


def test_migration_0004_builds_the_table_schema_sql_describes(mysql_settings):
    migrated = replace(mysql_settings, database=f"{mysql_settings.database}_k{secrets.token_hex(3)}")
    described = replace(mysql_settings, database=f"{mysql_settings.database}_k{secrets.token_hex(3)}")
    server = connect(mysql_settings, database=False, autocommit=True)
    try:
        apply_schema(migrated)
        with server.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{described.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            cursor.execute(f"USE `{described.database}`")
            for statement in split_sql(SCHEMA_PATH.read_text(encoding="utf-8")):
                cursor.execute(statement)
            shown = []
            for database in (migrated.database, described.database):
                cursor.execute(f"SHOW CREATE TABLE `{database}`.secret_key_check")
                shown.append(cursor.fetchone()["Create Table"])
        assert shown[0] == shown[1]
        assert "check_value" in shown[0]
    finally:
        with server.cursor() as cursor:
            for settings in (migrated, described):
                cursor.execute(f"DROP DATABASE IF EXISTS `{settings.database}`")
        server.close()
