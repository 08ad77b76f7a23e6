"""Identity store: each account's own proxy, user agent and extra headers, so a platform cannot
link the accounts of one pool by where their requests come from or what they look like; and the
health of each account's proxy as the crawl saw it.

The owner of the ``account_identities`` table. The proxy URL may carry the proxy's
``user:password@``: it is validated here (`parse_proxy_url`), stored as a Fernet token with the
deployment's credential key like an account's password, decrypted only for the crawl (`get`) and
never shown: listings get ``scheme://host:port`` (`display`), events and errors name the host
only. The user agent and the headers are validated here too (`parse_user_agent`,
`parse_headers`, `check_headers`), so the CLI, the API and the store refuse the same input with
the same words; no message repeats a proxy URL or a header value.

The crawl reports its proxy's failures (`proxy_failed`, which answers how long to back off) and
its recovery (`proxy_ok`); the first failure of a run and the recovery are account events.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pymysql.connections import Connection

from influencers.core.account_model import Identity, IdentityView
from influencers.core.accounts import AccountManager
from influencers.core.credentials import CredentialCipher, UnreadableProxy
from influencers.core.db import run_transaction
from influencers.core.errors import AccountNotFound, InvalidArgument, SecretKeyError
from influencers.core.events import record_event

logger = logging.getLogger(__name__)

#: A proxy URL longer than this is not one (its token must also fit the TEXT column easily).
MAX_PROXY_URL_LENGTH = 2048
#: ``https://`` + host + ``:65535`` fits `proxy_host` (VARCHAR(255)).
MAX_PROXY_HOST_LENGTH = 240
DEFAULT_PORTS = {"http": 80, "https": 443}
SOCKS_SCHEMES = frozenset({"socks4", "socks4a", "socks5", "socks5h"})
MAX_USER_AGENT_LENGTH = 512  # `user_agent` is VARCHAR(512)
MAX_HEADERS = 20
MAX_HEADER_NAME_LENGTH = 100
MAX_HEADER_VALUE_LENGTH = 1024
#: Headers that belong to the session (cookies, the platform's auth) or to the transport.
RESERVED_HEADERS = frozenset({"host", "cookie", "proxy-authorization", "authorization", "content-length"})
#: The back-off after a proxy's first consecutive failure; it doubles with each one, up to the cap.
PROXY_BACKOFF_FIRST = 30.0
PROXY_BACKOFF_MAX = 30 * 60.0
#: Failures counted beyond this change nothing (the back-off is capped long before): no overflow.
MAX_COUNTED_FAILURES = 1_000_000

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]*")
_TEXT_ASCII = re.compile(r"[\x20-\x7e]*")  # visible ASCII and the space
_USERINFO = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})+")
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 7230 field-name
_PROXY_FORM = "http://host:port or http://user:password@host:port"
#: `scheme://userinfo@` in a failure's text: the whole userinfo is masked, the proxy's user too
#: (a proxy provider's user often names the customer, which links the accounts of a pool).
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@]*@")


class Keep(enum.Enum):
    """`IdentityStore.set`'s default: leave the field as it is (None clears it)."""

    KEEP = "keep"


KEEP = Keep.KEEP


# -- validation (pure) ------------------------------------------------------------------------


def parse_proxy_url(text: str) -> tuple[str, str]:
    """(the proxy URL to use, ``scheme://host:port`` to show) for an HTTP(S) proxy URL.

    ``http://`` or ``https://``, an optional ``user:password@`` (percent-encoded), a host name or
    an IP address (IPv6 in brackets) and a port (80 or 443 filled in when missing); nothing
    after it but an optional ``/``. Raises InvalidArgument with a message that never repeats the
    URL: it may hold a password.
    """
    if not isinstance(text, str) or not text:
        raise InvalidArgument(f"proxy: empty; give a URL like {_PROXY_FORM}")
    if len(text) > MAX_PROXY_URL_LENGTH:
        raise InvalidArgument(f"proxy: longer than {MAX_PROXY_URL_LENGTH} characters")
    if not _VISIBLE_ASCII.fullmatch(text):
        raise InvalidArgument("proxy: a URL is printable ASCII with no spaces or control characters"
                              " (percent-encode other characters of the user or password)")
    scheme, separator, rest = text.partition("://")
    scheme = scheme.lower()
    if not separator:
        raise InvalidArgument(f"proxy: not a URL like {_PROXY_FORM}")
    if scheme in SOCKS_SCHEMES:
        raise InvalidArgument("proxy: SOCKS proxies are not supported (Scrapy's HTTP downloader can only use HTTP"
                              f" and HTTPS proxies): give {_PROXY_FORM}")
    if scheme not in DEFAULT_PORTS:
        raise InvalidArgument(f"proxy: the scheme must be http:// or https:// ({_PROXY_FORM})")
    authority, tail = re.match(r"([^/?#]*)(.*)", rest, re.DOTALL).groups()
    if tail not in ("", "/"):
        raise InvalidArgument("proxy: a proxy URL has no path, query or fragment after host:port")
    userinfo, at, host_port = authority.rpartition("@")
    if at and (not userinfo or userinfo.startswith(":")):
        raise InvalidArgument("proxy: the user before '@' is empty")
    if at and not _USERINFO.fullmatch(userinfo):
        raise InvalidArgument("proxy: the user and password may hold letters, digits and -._~!$&'()*+,;=: only;"
                              " percent-encode the rest ('@' is %40, '/' is %2F)")
    host, port = _host_and_port(host_port, DEFAULT_PORTS[scheme])
    shown = f"{scheme}://{host}:{port}"
    return (f"{scheme}://{userinfo}@{host}:{port}" if at else shown), shown


def _host_and_port(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):
        inside, bracket, after = text[1:].partition("]")
        try:
            if not bracket or "%" in inside:
                raise ValueError
            host = f"[{ipaddress.IPv6Address(inside).compressed}]"
        except ValueError:
            raise InvalidArgument("proxy: not an IPv6 address inside [ ]") from None
        if after and not after.startswith(":"):
            raise InvalidArgument("proxy: the host is followed by something other than ':port'")
        port_text = after[1:] if after else None
    else:
        name, colon, port_text = text.partition(":")
        port_text = port_text if colon else None
        host = _host_name(name.lower())
    if port_text is None:
        return host, default_port
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise InvalidArgument("proxy: the port must be a number from 1 to 65535")
    return host, int(port_text)


def _host_name(name: str) -> str:
    if not name:
        raise InvalidArgument(f"proxy: no host ({_PROXY_FORM})")
    if len(name) > MAX_PROXY_HOST_LENGTH:
        raise InvalidArgument(f"proxy: the host name is longer than {MAX_PROXY_HOST_LENGTH} characters")
    labels = name.split(".")
    if all(label.isdigit() for label in labels):
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise InvalidArgument("proxy: not an IPv4 address") from None
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise InvalidArgument("proxy: not a host name (letters, digits and '-' between dots) or an IP address")
    return name


def parse_user_agent(text: str) -> str:
    """A user agent: 1 to 512 printable ASCII characters (surrounding spaces dropped)."""
    if not isinstance(text, str) or not _TEXT_ASCII.fullmatch(text):
        raise InvalidArgument("user agent: printable ASCII only (no line breaks, control characters or"
                              " non-ASCII text)")
    text = text.strip(" ")
    if not 1 <= len(text) <= MAX_USER_AGENT_LENGTH:
        raise InvalidArgument(f"user agent: must be 1 to {MAX_USER_AGENT_LENGTH} characters")
    return text


def parse_headers(lines: Iterable[str]) -> dict[str, str]:
    """Extra headers from ``Name: value`` lines (the CLI's ``--header``); see `check_headers`."""
    pairs = []
    for position, line in enumerate(lines, start=1):
        name, colon, value = line.strip(" ").partition(":") if isinstance(line, str) else ("", "", "")
        if not colon:
            raise InvalidArgument(f"header {position}: write it as 'Name: value'")
        pairs.append((name, value))
    return check_headers(pairs)


def check_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Extra headers, validated: each name an RFC 7230 token and not one the session or the
    transport sets (Host, Cookie, Authorization, Proxy-Authorization, Content-Length) nor
    User-Agent (it has its own field); each value printable ASCII, not empty; no name twice;
    at most 20. Messages name a header by its position and (valid) name, never its value."""
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for position, (name, value) in enumerate(pairs, start=1):
        if position > MAX_HEADERS:
            raise InvalidArgument(f"headers: at most {MAX_HEADERS}")
        if not isinstance(name, str) or not _TOKEN.fullmatch(name) or len(name) > MAX_HEADER_NAME_LENGTH:
            raise InvalidArgument(f"header {position}: the name must be 1 to {MAX_HEADER_NAME_LENGTH} letters, digits"
                                  " or !#$%&'*+-.^_`|~ (an HTTP header name)")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS:
            raise InvalidArgument(f"header {position}: {name} is set by the session or the transport, not by an"
                                  " identity")
        if lowered == "user-agent":
            raise InvalidArgument(f"header {position}: User-Agent has its own setting (user agent)")
        if lowered in seen:
            raise InvalidArgument(f"header {position}: {name} is given twice")
        if not isinstance(value, str) or not _TEXT_ASCII.fullmatch(value):
            raise InvalidArgument(f"header {position} ({name}): the value must be printable ASCII (no line breaks"
                                  " or control characters)")
        value = value.strip(" ")
        if not 1 <= len(value) <= MAX_HEADER_VALUE_LENGTH:
            raise InvalidArgument(f"header {position} ({name}): the value must be 1 to {MAX_HEADER_VALUE_LENGTH}"
                                  " characters")
        seen.add(lowered)
        headers[name] = value
    return headers


def proxy_backoff(failures: int) -> float:
    """Seconds to keep off a proxy after its `failures`-th consecutive failure: 30 s, doubling
    with each one, at most 30 minutes."""
    if failures < 1:
        return 0.0
    return min(PROXY_BACKOFF_MAX, PROXY_BACKOFF_FIRST * 2 ** min(failures - 1, 32))


# -- the table --------------------------------------------------------------------------------


class IdentityStore:
    def __init__(self, conn: Connection, *, cipher: CredentialCipher | None = None) -> None:
        self.conn = conn
        self._cipher = cipher
        self._key_checked = False

    def set(self, account_id: int, *, proxy_url: str | None | Keep = KEEP, user_agent: str | None | Keep = KEEP,
            headers: Mapping[str, str] | None | Keep = KEEP, cursor: Any = None) -> str:
        """Change an account's identity: each field given is replaced (None clears it), the
        others are kept. A proxy given, or cleared, starts its health afresh. Everything is
        validated before anything is written; the change is an event naming the proxy's host.
        Returns what changed, as the event says it (``proxy http://h:3128; user agent set``)."""
        columns: dict[str, Any] = {}
        changes: list[str] = []
        if proxy_url is not KEEP:
            url, shown = parse_proxy_url(proxy_url) if proxy_url is not None else (None, None)
            columns.update(proxy_url=url, proxy_host=shown, proxy_failures=0, proxy_error=None, proxy_failed_at=None)
            changes.append(f"proxy {shown}" if shown else "proxy removed")
        if user_agent is not KEEP:
            columns["user_agent"] = None if user_agent is None else parse_user_agent(user_agent)
            changes.append("user agent removed" if user_agent is None else "user agent set")
        if headers is not KEEP:
            checked = check_headers(headers.items()) if headers else {}
            columns["headers"] = json.dumps(checked, ensure_ascii=False) if checked else None
            changes.append(f"headers {', '.join(checked)}" if checked else "headers removed")
        if not changes:
            raise InvalidArgument("nothing to change: give a proxy, a user agent or headers")
        if columns.get("proxy_url") is not None:  # all is valid: only now ask for the key
            columns["proxy_url"] = self._checked_cipher().encrypt(columns["proxy_url"])
        names = list(columns)  # column names from the code above only, never from input

        def write(cursor: Any) -> None:
            cursor.execute("SELECT id FROM accounts WHERE id = %s", (account_id,))
            if cursor.fetchone() is None:
                raise AccountNotFound(f"no account with id {account_id}")
            cursor.execute(
                f"INSERT INTO account_identities (account_id, {', '.join(names)}, updated_at)"
                f" VALUES (%s, {', '.join(['%s'] * len(names))}, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE"
                f" {', '.join(f'{name} = VALUES({name})' for name in names)}, updated_at = VALUES(updated_at)",
                (account_id, *columns.values()),
            )
            record_event(cursor, "account", account_id, "identity_changed", account_id=account_id,
                         reason="; ".join(changes))

        self._in_transaction(write, cursor)
        return "; ".join(changes)

    def get(self, account_id: int) -> Identity:
        """The account's identity with the proxy URL decrypted (for the crawl; never log it);
        an empty one for an account that has none.

        Raises KeyMismatch when this process's key is not the deployment's, and UnreadableProxy
        when it is but this account's proxy URL was stored with another key.
        """
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT proxy_url, proxy_host, user_agent, headers FROM account_identities"
                           " WHERE account_id = %s", (account_id,))
            row = cursor.fetchone()
        self.conn.commit()
        if row is None:
            return Identity()
        proxy_url = None
        if row["proxy_url"] is not None:
            cipher = self._checked_cipher()
            try:
                proxy_url = cipher.decrypt(row["proxy_url"])
            except SecretKeyError:
                raise UnreadableProxy(account_id) from None
        return Identity(proxy_url=proxy_url, user_agent=row["user_agent"],
                        headers=_stored_headers(row["headers"], account_id), proxy_host=row["proxy_host"])

    def display(self, account_ids: Iterable[int] | None = None) -> dict[int, IdentityView]:
        """What listings show of the given accounts' identities (every account's with a row
        when None): the proxy's host, the user agent, the proxy's health; never credentials.
        A given account without an identity has an empty view."""
        wanted = None if account_ids is None else [int(account_id) for account_id in account_ids]
        if wanted == []:
            return {}
        sql = ("SELECT account_id, proxy_host, user_agent, proxy_failures, proxy_error, proxy_failed_at"
               " FROM account_identities")
        if wanted is not None:
            sql += f" WHERE account_id IN ({', '.join(['%s'] * len(wanted))})"
        with self.conn.cursor() as cursor:
            cursor.execute(sql, wanted or ())
            rows = cursor.fetchall()
        self.conn.commit()
        views = {row["account_id"]: IdentityView(
            proxy_host=row["proxy_host"], user_agent=row["user_agent"], proxy_failures=row["proxy_failures"],
            proxy_error=row["proxy_error"], proxy_failed_at=row["proxy_failed_at"],
        ) for row in rows}
        return views if wanted is None else {account_id: views.get(account_id, IdentityView()) for account_id in wanted}

    def proxy_failed(self, account_id: int, reason: str, *, cursor: Any = None) -> float:
        """Record that the account's proxy failed (one more consecutive failure, the reason with
        the user and password of any URL in it masked, the time) and return how many seconds to keep off it now
        (`proxy_backoff`). The first failure after a success is an account event."""
        error = " ".join(_USERINFO_IN_TEXT.sub(r"\g<scheme>***@", str(reason)).split())[:255] or "unknown error"

        def record(cur: Any) -> int:
            cur.execute(
                "INSERT INTO account_identities (account_id, proxy_failures, proxy_error, proxy_failed_at)"
                " VALUES (%s, 1, %s, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE"
                " proxy_failures = LEAST(proxy_failures, %s) + 1, proxy_error = VALUES(proxy_error),"
                " proxy_failed_at = VALUES(proxy_failed_at)",
                (account_id, error, MAX_COUNTED_FAILURES),
            )
            cur.execute("SELECT proxy_failures, proxy_host FROM account_identities WHERE account_id = %s",
                        (account_id,))
            row = cur.fetchone()
            if row["proxy_failures"] == 1:
                record_event(cur, "account", account_id, "proxy_failed", account_id=account_id,
                             reason=f"{row['proxy_host'] or 'no proxy'}: {error}")
            return int(row["proxy_failures"])

        failures = self._in_transaction(record, cursor)
        return proxy_backoff(failures)

    def proxy_ok(self, account_id: int, *, cursor: Any = None) -> None:
        """The account's proxy worked: clear its failures (one statement that matches nothing
        when there are none, so the crawl may call this after every login)."""

        def clear(cur: Any) -> None:
            cur.execute("UPDATE account_identities SET proxy_failures = 0, proxy_error = NULL, proxy_failed_at = NULL"
                        " WHERE account_id = %s AND proxy_failures > 0", (account_id,))
            if cur.rowcount:
                record_event(cur, "account", account_id, "proxy_ok", account_id=account_id,
                             reason="the proxy works again")

        self._in_transaction(clear, cursor)

    def check_key(self) -> None:
        """Refuse a key that is not the deployment's now, before a transaction that will
        encrypt (the check runs in a transaction of its own)."""
        self._checked_cipher()

    # -- helpers ------------------------------------------------------------------------------

    def _checked_cipher(self) -> CredentialCipher:
        """The cipher, once its key is known to be the deployment's: the account manager, which
        owns the stored passwords, decides that (and records the key on first use)."""
        if self._cipher is None:
            raise InvalidArgument("this IdentityStore was built without a credential cipher")
        if not self._key_checked:
            AccountManager(self.conn, cipher=self._cipher).check_key()
            self._key_checked = True
        return self._cipher

    def _in_transaction(self, work: Any, cursor: Any) -> Any:
        return work(cursor) if cursor is not None else run_transaction(self.conn, work)


def _stored_headers(text: str | None, account_id: int) -> dict[str, str]:
    if not text:
        return {}
    try:
        headers = json.loads(text)
    except ValueError:
        headers = None
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        logger.warning("account %s: its stored extra headers are not a JSON object of strings; ignored", account_id,
                       extra={"account_id": account_id})
        return {}
    return headers
