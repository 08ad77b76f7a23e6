"""The identity store against the real database: the proxy URL encrypted at rest and shown as
its host only, the deployment's key required, the proxy's failures backed off and cleared, every
change an account event that names the host and never the credentials."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet

from influencers.core.account_model import Identity, IdentityView
from influencers.core.credentials import CredentialCipher, KeyMismatch, UnreadableProxy, UnreadableSecret
from influencers.core.errors import AccountNotFound, InvalidArgument, SecretKeyError
from influencers.core.identities import KEEP, PROXY_BACKOFF_MAX, IdentityStore

PROXY_PASSWORD = "ProxyPw-9c1e-密"
PROXY_USER = "proxyuser-71"
PROXY = f"http://{PROXY_USER}:{PROXY_PASSWORD.replace('密', '%E5%AF%86')}@proxy.example:3128"
SHOWN = "http://proxy.example:3128"


@pytest.fixture
def identities(db, config) -> IdentityStore:
    return IdentityStore(db, cipher=CredentialCipher.from_config(config))


def raw_rows(db, table: str) -> str:
    """Every value of every row of `table`, as the database holds it."""
    db.commit()
    with db.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return repr(list(cursor.fetchall()))


def account_events(db, account_id: int) -> list[tuple[str, str]]:
    db.commit()
    with db.cursor() as cursor:
        cursor.execute("SELECT event, reason FROM events WHERE entity = 'account' AND entity_id = %s ORDER BY id",
                       (account_id,))
        return [(row["event"], row["reason"]) for row in cursor.fetchall()]


def test_the_proxy_url_is_encrypted_at_rest_and_round_trips(accounts, identities, db):
    account_id = accounts.add("账号一", "account-pw-5d")
    changed = identities.set(account_id, proxy_url=PROXY, user_agent="Mozilla/5.0 (X11)",
                             headers={"Accept-Language": "zh-CN", "X-Client": "a1"})

    assert changed == f"proxy {SHOWN}; user agent set; headers Accept-Language, X-Client"
    stored = raw_rows(db, "account_identities")
    for secret in (PROXY_PASSWORD, PROXY_USER, "%E5%AF%86", "proxy.example:3128@", "account-pw-5d"):
        assert secret not in stored
    with db.cursor() as cursor:
        cursor.execute("SELECT proxy_url, proxy_host FROM account_identities WHERE account_id = %s", (account_id,))
        row = cursor.fetchone()
    assert row["proxy_host"] == SHOWN and row["proxy_url"].startswith("gAAAA")
    assert identities.get(account_id) == Identity(proxy_url=PROXY, user_agent="Mozilla/5.0 (X11)",
                                                  headers={"Accept-Language": "zh-CN", "X-Client": "a1"},
                                                  proxy_host=SHOWN)
    assert PROXY_PASSWORD not in repr(identities.get(account_id))


def test_an_account_without_an_identity_has_an_empty_one(accounts, identities):
    account_id = accounts.add("plain", "pw")
    assert identities.get(account_id) == Identity()
    assert identities.get(4242) == Identity()
    assert identities.display([account_id]) == {account_id: IdentityView()}
    assert identities.display([]) == {}
    assert identities.display() == {}


def test_a_store_without_the_cipher_reads_everything_but_the_proxy(accounts, identities, db):
    account_id = accounts.add("a", "pw")
    identities.set(account_id, user_agent="ua")
    plain = IdentityStore(db)
    assert plain.get(account_id) == Identity(user_agent="ua")
    plain.set(account_id, headers={"X-A": "1"})  # no proxy: no key needed
    identities.set(account_id, proxy_url=PROXY)
    with pytest.raises(InvalidArgument, match="without a credential cipher"):
        plain.get(account_id)
    assert plain.display([account_id])[account_id].proxy_host == SHOWN


def test_a_key_that_is_not_the_deployments_is_refused(accounts, identities, db):
    account_id = accounts.add("a", "pw")  # records the deployment's key
    identities.set(account_id, proxy_url=PROXY)
    stranger = IdentityStore(db, cipher=CredentialCipher(Fernet.generate_key()))
    with pytest.raises(KeyMismatch) as error:
        stranger.get(account_id)
    assert PROXY_PASSWORD not in str(error.value)
    with pytest.raises(KeyMismatch):
        stranger.set(account_id, proxy_url="http://other.example:1")
    assert identities.get(account_id).proxy_url == PROXY  # nothing changed


def test_a_proxy_stored_with_another_key_makes_the_account_unusable_not_the_process(accounts, identities, db):
    account_id = accounts.add("stray", "pw")
    identities.set(account_id, proxy_url=PROXY)
    with db.cursor() as cursor:  # what a process with a key of its own left behind
        cursor.execute("UPDATE account_identities SET proxy_url = %s WHERE account_id = %s",
                       (CredentialCipher(Fernet.generate_key()).encrypt(PROXY), account_id))
    db.commit()
    with pytest.raises(UnreadableProxy) as error:
        identities.get(account_id)
    assert isinstance(error.value, UnreadableSecret) and not isinstance(error.value, SecretKeyError)
    assert error.value.account_id == account_id
    assert str(error.value).startswith(f"account id {account_id}: its stored proxy URL cannot be decrypted")
    assert PROXY_PASSWORD not in str(error.value)


def test_set_keeps_what_is_not_given_and_none_clears(accounts, identities):
    account_id = accounts.add("a", "pw")
    identities.set(account_id, proxy_url=PROXY, user_agent="ua-1", headers={"X-A": "1"})
    identities.set(account_id, user_agent="ua-2")
    assert identities.get(account_id) == Identity(proxy_url=PROXY, user_agent="ua-2", headers={"X-A": "1"},
                                                  proxy_host=SHOWN)
    identities.set(account_id, proxy_url=None, headers=None, user_agent=KEEP)
    assert identities.get(account_id) == Identity(user_agent="ua-2")
    identities.set(account_id, user_agent=None, headers={})
    assert identities.get(account_id) == Identity()


def test_bad_input_writes_nothing(accounts, identities, db):
    account_id = accounts.add("a", "pw")
    with pytest.raises(InvalidArgument, match="SOCKS"):
        identities.set(account_id, proxy_url="socks5://h:1080", user_agent="fine")
    with pytest.raises(InvalidArgument, match="user agent"):
        identities.set(account_id, proxy_url=PROXY, user_agent="bad\r\nX-Injected: 1")
    with pytest.raises(InvalidArgument, match="header 1"):
        identities.set(account_id, proxy_url=PROXY, headers={"Cookie": "session=x"})
    with pytest.raises(InvalidArgument, match="nothing to change"):
        identities.set(account_id)
    with pytest.raises(AccountNotFound):
        identities.set(4242, proxy_url=PROXY)
    assert raw_rows(db, "account_identities") == "[]"
    assert [event for event, _ in account_events(db, account_id)] == ["created"]
    assert account_events(db, 4242) == []


def test_changes_are_events_that_name_the_host_only(accounts, identities, db):
    account_id = accounts.add("a", "pw")
    identities.set(account_id, proxy_url=PROXY, user_agent="ua")
    identities.set(account_id, headers={"X-Client": "secret-header-value"})
    identities.set(account_id, proxy_url=None, user_agent=None, headers=None)
    assert account_events(db, account_id)[1:] == [
        ("identity_changed", f"proxy {SHOWN}; user agent set"),
        ("identity_changed", "headers X-Client"),
        ("identity_changed", "proxy removed; user agent removed; headers removed"),
    ]
    assert PROXY_PASSWORD not in raw_rows(db, "events") and PROXY_USER not in raw_rows(db, "events")
    assert "secret-header-value" not in raw_rows(db, "events")


def test_proxy_failures_back_off_longer_up_to_the_cap_and_ok_clears_them(accounts, identities, db):
    account_id = accounts.add("a", "pw")
    identities.set(account_id, proxy_url=PROXY)
    waits = [identities.proxy_failed(account_id, f"connect to {PROXY} refused") for _ in range(8)]
    assert waits == [30, 60, 120, 240, 480, 960, PROXY_BACKOFF_MAX, PROXY_BACKOFF_MAX]

    view = identities.display([account_id])[account_id]
    assert (view.proxy_host, view.proxy_failures) == (SHOWN, 8)
    assert view.proxy_error == "connect to http://***@proxy.example:3128 refused"
    assert view.proxy_failed_at is not None
    assert view.proxy_health == f"failed 8×: {view.proxy_error}"
    assert PROXY_PASSWORD not in raw_rows(db, "account_identities")

    identities.proxy_ok(account_id)
    identities.proxy_ok(account_id)  # nothing to clear: no second event
    view = identities.display([account_id])[account_id]
    assert (view.proxy_failures, view.proxy_error, view.proxy_failed_at, view.proxy_health) == (0, None, None, "ok")
    assert identities.proxy_failed(account_id, "timeout") == 30  # the count starts again
    events = account_events(db, account_id)
    assert [event for event, _ in events] == ["created", "identity_changed", "proxy_failed", "proxy_ok",
                                              "proxy_failed"]
    assert events[2][1] == f"{SHOWN}: connect to http://***@proxy.example:3128 refused"
    assert PROXY_PASSWORD not in raw_rows(db, "events")


def test_a_new_proxy_forgets_the_old_ones_failures(accounts, identities):
    account_id = accounts.add("a", "pw")
    identities.set(account_id, proxy_url=PROXY)
    identities.proxy_failed(account_id, "timeout")
    identities.set(account_id, user_agent="ua")  # the proxy is kept, and so are its failures
    assert identities.display([account_id])[account_id].proxy_failures == 1
    identities.set(account_id, proxy_url="https://other.example:8443")
    view = identities.display([account_id])[account_id]
    assert (view.proxy_host, view.proxy_failures, view.proxy_error) == ("https://other.example:8443", 0, None)


def test_a_failure_reason_is_kept_to_one_line_of_255(accounts, identities):
    account_id = accounts.add("a", "pw")
    identities.proxy_failed(account_id, "line one\r\nline two\x1b[2J " + "x" * 400)
    error = identities.display([account_id])[account_id].proxy_error
    assert error.startswith("line one line two\x1b[2J x") and len(error) == 255
    identities.proxy_failed(account_id, "   ")
    assert identities.display([account_id])[account_id].proxy_error == "unknown error"


def test_failures_recorded_in_the_callers_transaction(accounts, identities, db):
    account_id = accounts.add("a", "pw")
    identities.set(account_id, proxy_url=PROXY)
    db.begin()
    with db.cursor() as cursor:
        assert identities.proxy_failed(account_id, "timeout", cursor=cursor) == 30
    db.rollback()
    assert identities.display([account_id])[account_id].proxy_failures == 0


def test_stored_headers_that_are_not_an_object_are_ignored_with_a_warning(accounts, identities, db, caplog):
    account_id = accounts.add("a", "pw")
    identities.set(account_id, headers={"X-A": "1"})
    with db.cursor() as cursor:
        cursor.execute("UPDATE account_identities SET headers = '[1, 2]' WHERE account_id = %s", (account_id,))
    db.commit()
    with caplog.at_level(logging.WARNING, logger="influencers.core.identities"):
        assert identities.get(account_id).headers == {}
    assert "not a JSON object" in caplog.text
