"""Accounts over HTTP: the password goes in once, encrypted, and never comes back out —
not in a response, not in an error, not in the server's log."""

from __future__ import annotations

import pytest

#: A body-less POST still says JSON: the API refuses (415) what a cross-site form could send.
EMPTY_JSON = {"Content-Type": "application/json"}

pytestmark = pytest.mark.usefixtures("db")

PASSWORD = "S3cret-密码-🔐-unique-4f1c"
ACCOUNT_FIELDS = {"id", "username", "status", "status_reason", "daily_export_limit", "today_export_count",
                  "remaining_quota", "quota_date", "cooldown_until", "last_used_at", "created_at",
                  "proxy", "user_agent", "proxy_health", "pages_today", "pages_per_day", "requests_per_minute"}


def test_add_list_disable_enable(api_server, db, accounts):
    added = api_server.post("/api/v1/accounts", {"username": "账号一", "password": PASSWORD,
                                                 "daily_export_limit": 4000})
    assert added.status == 201, added.text
    account = added.json()
    assert set(account) == ACCOUNT_FIELDS
    assert (account["username"], account["status"], account["remaining_quota"]) == ("账号一", "idle", 4000)
    assert added.headers["Location"] == f"/api/v1/accounts/{account['id']}"
    assert accounts.credentials(account["id"]) == ("账号一", PASSWORD)  # stored, encrypted, and decryptable
    with db.cursor() as cursor:
        cursor.execute("SELECT password FROM accounts")
        assert PASSWORD not in cursor.fetchone()["password"]

    disabled = api_server.post(f"/api/v1/accounts/{account['id']}/disable", {"reason": "平台封禁"})
    assert disabled.status == 200, disabled.text
    assert (disabled.json()["status"], disabled.json()["status_reason"]) == ("disabled", "平台封禁")

    listing = api_server.get("/api/v1/accounts").json()
    assert [(a["username"], a["status"], a["status_reason"]) for a in listing] == [("账号一", "disabled", "平台封禁")]
    assert all(set(a) == ACCOUNT_FIELDS for a in listing)

    enabled = api_server.post(f"/api/v1/accounts/{account['id']}/enable", {"reason": "解封"})
    assert enabled.status == 200 and enabled.json()["status"] == "idle" and enabled.json()["status_reason"] is None
    no_body = api_server.post(f"/api/v1/accounts/{account['id']}/enable", headers=EMPTY_JSON)
    assert no_body.status == 200  # no body: fine too

    db.commit()  # a fresh snapshot: the server wrote these on its own connections
    with db.cursor() as cursor:
        cursor.execute("SELECT event, reason FROM events WHERE entity = 'account' ORDER BY id")
        history = [(row["event"], row["reason"]) for row in cursor.fetchall()]
    assert ("status", "平台封禁") in history and ("enabled", "解封") in history


def test_duplicate_account_conflicts(api_server):
    assert api_server.post("/api/v1/accounts", {"username": "dup", "password": PASSWORD}).status == 201
    again = api_server.post("/api/v1/accounts", {"username": " dup ", "password": "other"})
    assert again.status == 409 and again.error["code"] == "duplicate_account"
    assert "dup" in again.error["message"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"username": "u", "password": ""}, 422, "body.password"),
        ({"username": "u"}, 422, "body.password: Field required"),
        ({"username": "   ", "password": PASSWORD}, 400, "username"),
        ({"username": "u", "password": PASSWORD, "daily_export_limit": -1}, 422, "body.daily_export_limit"),
        ({"username": "u", "password": "长" * 60}, 422, "at most 127 bytes"),
        ({"username": "u", "password": 12345678}, 422, "body.password"),
        ({"username": "u", "password": PASSWORD, "cookie": "x"}, 422, "body.cookie"),
    ],
)
def test_bad_account_input(api_server, body, status, fragment):
    reply = api_server.post("/api/v1/accounts", body)
    assert reply.status == status, reply.text
    assert fragment in reply.error["message"]
    assert PASSWORD not in reply.text and "长长长" not in reply.text and "12345678" not in reply.text


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/v1/accounts/4242/disable", {"reason": "x"}, 404, "account_not_found"),
        ("/api/v1/accounts/4242/enable", None, 404, "account_not_found"),
        ("/api/v1/accounts/1/disable", {}, 422, "invalid_request"),
        ("/api/v1/accounts/1/disable", {"reason": "   "}, 400, "invalid_argument"),
        ("/api/v1/accounts/-3/disable", {"reason": "x"}, 422, "invalid_request"),
    ],
)
def test_disable_enable_errors(api_server, path, body, status, code):
    api_server.post("/api/v1/accounts", {"username": "one", "password": PASSWORD})
    reply = api_server.post(path, body) if body is not None else api_server.post(path, headers=EMPTY_JSON)
    assert reply.status == status, reply.text
    assert reply.error["code"] == code


def test_password_never_reaches_a_response_or_the_log(api_server):
    """Every reply this session's server sent so far, and everything it logged, lacks the passwords."""
    for username in ("leak-check-1", "leak-check-2"):
        api_server.post("/api/v1/accounts", {"username": username, "password": PASSWORD})
    api_server.post("/api/v1/accounts", {"username": "leak-check-1", "password": PASSWORD})  # 409
    api_server.post("/api/v1/accounts", {"username": "x" * 300, "password": PASSWORD})  # 422
    api_server.get("/api/v1/accounts")
    api_server.get("/api/v1/status")
    for reply in api_server.replies:
        assert PASSWORD.encode() not in reply.body
        if reply.headers.get("Content-Type", "").startswith("application/json"):
            assert not keys(reply.json()) & {"password", "cookie", "cookies", "session"}
    log = api_server.log()
    assert PASSWORD not in log
    assert api_server.token not in log


def keys(document) -> set[str]:
    """Every object key anywhere in a JSON document."""
    if isinstance(document, dict):
        return set(document).union(*(keys(value) for value in document.values()))
    if isinstance(document, list):
        return set().union(*(keys(value) for value in document))
    return set()


def test_an_accounts_budget_and_pages_today_are_shown(api_server, db, accounts, mysql_settings):
    from zoneinfo import ZoneInfo

    from influencers.core.budgets import BudgetStore, count_pages
    from influencers.core.config import DEFAULT_TZ
    from influencers.core.quotaday import QuotaDay

    account_id = accounts.add("账号二", PASSWORD)
    day = QuotaDay(ZoneInfo(DEFAULT_TZ))
    BudgetStore(db, quota_day=day).set(account_id, pages_per_day=200)
    with db.cursor() as cursor:
        count_pages(cursor, {account_id: 7}, day)
    db.commit()
    (shown,) = [a for a in api_server.get("/api/v1/accounts").json() if a["id"] == account_id]
    assert (shown["pages_today"], shown["pages_per_day"], shown["requests_per_minute"]) == (7, 200, None)
    (in_status,) = [a for a in api_server.get("/api/v1/status").json()["accounts"] if a["id"] == account_id]
    assert in_status["pages_today"] == 7
