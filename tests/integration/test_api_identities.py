"""Account identities over HTTP: a proxy URL goes in once, encrypted, and only its
scheme://host:port comes back out — not its credentials, in a response, an error or the log."""

from __future__ import annotations

import pytest

from influencers.core.identities import IdentityStore

PASSWORD = "S3cret-账号-a81c"
PROXY_PASSWORD = "ProxyPw-4b2d"
PROXY = f"http://proxyuser:{PROXY_PASSWORD}@proxy.example:3128"
SHOWN = "http://proxy.example:3128"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"

pytestmark = pytest.mark.usefixtures("db")


def stored(db) -> str:
    db.commit()
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM account_identities")
        identities = list(cursor.fetchall())
        cursor.execute("SELECT * FROM events")
        return repr((identities, list(cursor.fetchall())))


def test_add_with_an_identity_and_list_show_the_proxy_host_only(api_server, db, config):
    added = api_server.post("/api/v1/accounts", {"username": "账号一", "password": PASSWORD, "proxy": PROXY,
                                                 "user_agent": UA, "headers": {"Accept-Language": "zh-CN"}})
    assert added.status == 201, added.text
    account = added.json()
    assert (account["proxy"], account["user_agent"], account["proxy_health"]) == (SHOWN, UA, "ok")

    listing = api_server.get("/api/v1/accounts").json()
    assert [(a["username"], a["proxy"], a["user_agent"], a["proxy_health"]) for a in listing] == [
        ("账号一", SHOWN, UA, "ok")]
    status = api_server.get("/api/v1/status").json()
    assert [(a["proxy"], a["proxy_health"]) for a in status["accounts"]] == [(SHOWN, "ok")]

    from influencers.core.credentials import CredentialCipher
    identity = IdentityStore(db, cipher=CredentialCipher.from_config(config)).get(account["id"])
    assert (identity.proxy_url, identity.headers) == (PROXY, {"Accept-Language": "zh-CN"})
    assert PROXY_PASSWORD not in stored(db) and "proxyuser" not in stored(db)


def test_an_account_without_an_identity(api_server):
    account = api_server.post("/api/v1/accounts", {"username": "plain", "password": PASSWORD,
                                                   "proxy": None, "headers": {}}).json()
    assert (account["proxy"], account["user_agent"], account["proxy_health"]) == (None, None, None)


@pytest.mark.parametrize(("identity", "fragment"), [
    ({"proxy": f"socks5://u:{PROXY_PASSWORD}@h:1080"}, "SOCKS proxies are not supported"),
    ({"proxy": f"http://u:{PROXY_PASSWORD}@h:3128/path"}, "no path"),
    ({"proxy": f"http://u:{PROXY_PASSWORD}@h:3128\r\nX: 1"}, "printable ASCII"),
    ({"user_agent": "ua\r\nX-Injected: 1"}, "user agent"),
    ({"headers": {"Cookie": f"s={PROXY_PASSWORD}"}}, "set by the session"),
    ({"headers": {"X-A": f"{PROXY_PASSWORD}\n"}}, "printable ASCII"),
    ({"headers": {"X A": "1"}}, "HTTP header name"),
])
def test_a_bad_identity_is_a_400_and_nothing_is_added(api_server, db, identity, fragment):
    reply = api_server.post("/api/v1/accounts", {"username": "u", "password": PASSWORD, **identity})
    assert reply.status == 400, reply.text
    assert reply.error["code"] == "invalid_argument" and fragment in reply.error["message"]
    assert PROXY_PASSWORD not in reply.text and PASSWORD not in reply.text
    assert api_server.get("/api/v1/accounts").json() == []


@pytest.mark.parametrize(("identity", "fragment"), [
    ({"proxy": ""}, "body.proxy"),
    ({"proxy": "h" * 2049}, "body.proxy"),
    ({"user_agent": "x" * 513}, "body.user_agent"),
    ({"headers": {f"X-{n}": "v" for n in range(21)}}, "body.headers"),
    ({"headers": ["X-A: 1"]}, "body.headers"),
])
def test_an_identity_out_of_the_documents_bounds_is_a_422(api_server, identity, fragment):
    reply = api_server.post("/api/v1/accounts", {"username": "u", "password": PASSWORD, **identity})
    assert reply.status == 422, reply.text
    assert fragment in reply.error["message"]


def test_put_identity_changes_what_is_given_and_keeps_the_rest(api_server, db):
    account_id = api_server.post("/api/v1/accounts", {"username": "a", "password": PASSWORD, "proxy": PROXY,
                                                      "user_agent": UA}).json()["id"]
    path = f"/api/v1/accounts/{account_id}/identity"

    changed = api_server.request("PUT", path, json_body={"user_agent": "ua-2", "headers": {"X-A": "1"}})
    assert changed.status == 200, changed.text
    assert (changed.json()["proxy"], changed.json()["user_agent"]) == (SHOWN, "ua-2")

    removed = api_server.request("PUT", path, json_body={"proxy": None})
    assert removed.status == 200, removed.text
    assert (removed.json()["proxy"], removed.json()["user_agent"], removed.json()["proxy_health"]) == (
        None, "ua-2", None)

    again = api_server.request("PUT", path, json_body={"proxy": "https://p2.example"}).json()
    assert (again["proxy"], again["proxy_health"]) == ("https://p2.example:443", "ok")

    db.commit()
    with db.cursor() as cursor:
        cursor.execute("SELECT reason FROM events WHERE event = 'identity_changed' ORDER BY id")
        reasons = [row["reason"] for row in cursor.fetchall()]
    assert reasons == [f"proxy {SHOWN}; user agent set", "user agent set; headers X-A", "proxy removed",
                       "proxy https://p2.example:443"]


@pytest.mark.parametrize(("account", "body", "status", "code"), [
    ("4242", {"user_agent": "ua"}, 404, "account_not_found"),
    ("{id}", {}, 400, "invalid_argument"),
    ("{id}", {"proxy": "socks5://h:1"}, 400, "invalid_argument"),
    ("{id}", {"cookie": "x"}, 422, "invalid_request"),
    ("0", {"user_agent": "ua"}, 422, "invalid_request"),
])
def test_put_identity_errors(api_server, account, body, status, code):
    account_id = api_server.post("/api/v1/accounts", {"username": "one", "password": PASSWORD}).json()["id"]
    reply = api_server.request("PUT", f"/api/v1/accounts/{account.format(id=account_id)}/identity", json_body=body)
    assert reply.status == status, reply.text
    assert reply.error["code"] == code


def test_put_identity_needs_json(api_server):
    account_id = api_server.post("/api/v1/accounts", {"username": "one", "password": PASSWORD}).json()["id"]
    reply = api_server.request("PUT", f"/api/v1/accounts/{account_id}/identity", raw_body=b"user_agent=x",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 415


def test_proxy_health_shows_the_failures(api_server, db):
    account_id = api_server.post("/api/v1/accounts", {"username": "a", "password": PASSWORD, "proxy": PROXY}
                                 ).json()["id"]
    IdentityStore(db).proxy_failed(account_id, f"connect to {PROXY} refused")
    (account,) = api_server.get("/api/v1/accounts").json()
    assert account["proxy_health"] == "failed 1×: connect to http://***@proxy.example:3128 refused"


def test_the_proxy_credentials_never_reach_a_response_or_the_log(api_server):
    """Every reply this session's server sent so far, and everything it logged."""
    api_server.post("/api/v1/accounts", {"username": "leak-1", "password": PASSWORD, "proxy": PROXY})
    api_server.post("/api/v1/accounts", {"username": "leak-1", "password": PASSWORD, "proxy": PROXY})  # 409
    api_server.post("/api/v1/accounts", {"username": "leak-2", "password": PASSWORD,
                                         "proxy": PROXY.replace("http", "socks5")})  # 400
    api_server.get("/api/v1/accounts")
    for reply in api_server.replies:
        assert PROXY_PASSWORD.encode() not in reply.body
    assert PROXY_PASSWORD not in api_server.log()
