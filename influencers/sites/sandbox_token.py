"""The reference platform's token-cursor API (``python -m sandbox --api token-cursor``).

Login: ``POST /api/v2/login`` with the JSON body ``{"username", "password"}`` answers
``{"code": 0, "data": {"token", "expires_in"}}``; the token goes in the ``X-Auth-Token`` header
of every later request. Listings: ``GET /api/v2/influencers?domain=&size=&cursor=`` answers
``{"code": 0, "data": {"items", "next_cursor", "has_more"}}``; no cursor is the first page, and
each page's ``next_cursor`` (opaque, signed, bound to the domain, expiring) fetches the next. The
items are the rows ``/api/v1`` serves for the same seed, and without ``size`` a page holds the
platform's page size, so page *n* here is page *n* there.

Refusals are HTTP 200 with a numeric ``code`` and a ``msg``: 40010 cursor expired and 40011 bad
cursor (read the listing from its start), 40100 bad credentials, 40101 token expired, 40300 banned
(with a ``reason``), 40302 captcha (with a ``verify_url``), 40400 unknown domain, 42900 rate
limited (with ``retry_after`` seconds), 42901 daily cap, 40000 bad request. Trouble comes as it
does on ``/api/v1``: a real 500/502/503 (``code`` 50000), a 503 text page during maintenance, and
HTTP 200 bodies cut short.

Setting: ``SANDBOX_TOKEN_PAGE_SIZE``, rows per page (the platform takes 1..100, or up to its
own page size if that is larger). Unset, the platform's page size is used; set, page *n* no
longer holds the rows of ``/api/v1``'s page *n*.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from scrapy import Request
from scrapy.http import JsonRequest, Response

from influencers.core.errors import ConfigError
from influencers.sites.base import (
    ListingPage,
    MalformedPage,
    Outcome,
    Session,
    SiteAdapter,
    Verdict,
    parse_retry_after,
)
from influencers.sites.jsonbody import json_body

TOKEN_HEADER = "X-Auth-Token"
PAGE_SIZE_SETTING = "SANDBOX_TOKEN_PAGE_SIZE"
_CODE_OUTCOMES = {
    40010: Outcome.CURSOR_EXPIRED,  # cursor expired
    40011: Outcome.CURSOR_EXPIRED,  # bad cursor: ours were all genuine, so it is dead too
    40100: Outcome.BAD_CREDENTIALS,
    40101: Outcome.LOGIN_REQUIRED,  # token expired, unknown or dropped by a ban
    40300: Outcome.BANNED,
    40302: Outcome.CAPTCHA,
    40400: Outcome.UNKNOWN_DOMAIN,
    42900: Outcome.RATE_LIMITED,
    42901: Outcome.DAILY_CAP,
}


class SandboxTokenAdapter(SiteAdapter):
    name = "sandbox-token"
    render_modes = ("json",)
    default_render = "json"
    pagination = "cursor"

    def __init__(self, base_url: str, page_size: int | None = None) -> None:
        super().__init__(base_url)
        if page_size is not None and page_size < 1:
            raise ValueError(f"page_size must be at least 1 row, not {page_size!r}")
        self.page_size = page_size  # None: the platform's own, which is also /api/v1's

    @classmethod
    def from_crawler(cls, crawler: Any, base_url: str) -> SandboxTokenAdapter:
        raw = crawler.settings.get(PAGE_SIZE_SETTING)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return cls(base_url)
        try:
            page_size = int(str(raw).strip())  # "7" or 7, not 7.5 or True
        except ValueError:
            raise ConfigError(PAGE_SIZE_SETTING, f"must be a whole number of rows, not {raw!r}") from None
        if page_size < 1:
            raise ConfigError(PAGE_SIZE_SETTING, f"must be at least 1, not {raw!r}")
        return cls(base_url, page_size)

    # -- login --------------------------------------------------------------------------------

    def login_form_request(self) -> None:
        return None

    def login_submit_request(self, username: str, password: str, form: Response | None) -> Request:
        return JsonRequest(self.url("/api/v2/login"), data={"username": username, "password": password},
                           dont_filter=True)

    def check_login(self, response: Response) -> Verdict:
        verdict = self.classify(response)
        if verdict.ok and _token(response) is None:
            return Verdict(Outcome.MALFORMED, message="the login answer has no token")
        return verdict

    def open_session(self, response: Response) -> Session:
        token = _token(response)
        if token is None:
            raise MalformedPage("the login answer has no token")
        return Session(headers={TOKEN_HEADER: token})

    # -- listings -----------------------------------------------------------------------------

    def listing_request(self, domain: str, page: int, render: str, cursor: str | None = None) -> Request:
        self.check_render(render)
        if page > 1 and not cursor:
            raise ValueError(f"page {page} of a cursor listing needs the cursor page {page - 1} gave")
        if page <= 1 and cursor:
            raise ValueError("page 1 of a cursor listing is read without a cursor")
        query: dict[str, str | int] = {"domain": domain}
        if self.page_size is not None:
            query["size"] = self.page_size
        if cursor:
            query["cursor"] = cursor
        return Request(self.url(f"/api/v2/influencers?{urlencode(query)}"), headers={"Accept": "application/json"})

    def classify(self, response: Response) -> Verdict:
        """The verdict on the answer's status and ``code``; a whole answer with code 0 is OK
        (whether the listing inside is whole is `parse_listing`'s to say)."""
        status = response.status
        if status >= 500:
            code, message = _refusal(response)
            return Verdict(Outcome.SERVER_ERROR, code, message or f"HTTP {status}")
        if status == 429:  # not the platform's own way, but a gateway's in front of it
            retry_after = parse_retry_after(response.headers.get(b"Retry-After"), default=1.0)
            return Verdict(Outcome.RATE_LIMITED, message=f"HTTP {status}", retry_after=retry_after)
        if status != 200:
            return Verdict(Outcome.SERVER_ERROR, message=f"unexpected HTTP {status}")
        try:
            data = json_body(response)
        except ValueError:
            return Verdict(Outcome.MALFORMED, message="the answer is not whole JSON")
        code = data.get("code") if isinstance(data, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            return Verdict(Outcome.MALFORMED, message="the answer has no code")
        if code == 0:
            if not isinstance(data.get("data"), dict):
                return Verdict(Outcome.MALFORMED, message="the answer has no data")
            return Verdict(Outcome.OK)
        return self._refused(response, data, code)

    def parse_listing(self, response: Response, page: int) -> ListingPage:
        try:
            data = json_body(response)
        except ValueError as exc:
            raise MalformedPage(f"not JSON: {exc}") from None
        body = data.get("data") if isinstance(data, dict) and data.get("code") == 0 else None
        if not isinstance(body, dict):
            raise MalformedPage("not a listing answer (code 0 with data)")
        items, has_more, next_cursor = body.get("items"), body.get("has_more"), body.get("next_cursor")
        if not isinstance(items, list):
            raise MalformedPage("no items list")
        for position, item in enumerate(items):
            uid = item.get("uid") if isinstance(item, dict) else None
            if uid is None or uid == "" or (isinstance(uid, str) and not uid.strip()):
                raise MalformedPage(f"item {position} has no uid")
        if not isinstance(has_more, bool):
            raise MalformedPage("has_more is not true or false")
        if has_more and not (isinstance(next_cursor, str) and next_cursor):
            raise MalformedPage("has_more without a next_cursor")
        return ListingPage(page=page, rows=items, has_more=has_more,
                           next_cursor=next_cursor if has_more else None)

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _refused(response: Response, data: dict[str, Any], code: int) -> Verdict:
        """The verdict on a refusal: HTTP 200 with a non-zero ``code``."""
        message = _text(data.get("msg"))
        outcome = _CODE_OUTCOMES.get(code)
        if outcome is None:  # 40000 bad request (with a detail), or a code this adapter does not know
            detail = _text(data.get("detail"))
            message = f"{message} ({detail})" if detail else message or f"unknown code {code}"
            return Verdict(Outcome.SERVER_ERROR, str(code), message[:200])
        if outcome is Outcome.BANNED and _text(data.get("reason")):
            message = f"{message} ({_text(data['reason'])})"
        retry_after = None
        if outcome is Outcome.RATE_LIMITED:
            retry_after = _seconds(data.get("retry_after"))
            if retry_after is None:
                retry_after = parse_retry_after(response.headers.get(b"Retry-After"), default=1.0)
        return Verdict(outcome, str(code), message[:200], retry_after)


def _refusal(response: Response) -> tuple[str | None, str]:
    """The code and ``msg`` of a JSON error body (a 5xx's), if it is one."""
    try:
        data = json_body(response)
    except ValueError:
        return None, ""
    if not isinstance(data, dict) or not isinstance(data.get("code"), int) or isinstance(data["code"], bool):
        return None, ""
    return str(data["code"]), _text(data.get("msg"))[:200]


def _token(response: Response) -> str | None:
    """The token of a successful login answer."""
    try:
        data = json_body(response)
    except ValueError:
        return None
    body = data.get("data") if isinstance(data, dict) and data.get("code") == 0 else None
    token = body.get("token") if isinstance(body, dict) else None
    return token if isinstance(token, str) and token else None


def _seconds(value: Any) -> float | None:
    """A ``retry_after`` from a body: a number of seconds (a numeric string too), else None."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
