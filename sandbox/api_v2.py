"""The token-cursor API (``--api token-cursor``): the listing as most real platforms serve it.

Real listing APIs rarely look like the form login and page numbers of ``/api/v1``: they take a
JSON login that returns a token sent in a header, page with opaque expiring cursors, and report
every refusal as HTTP 200 with a JSON code. This module serves the same accounts, data and
misbehaviour knobs in that shape, so a site adapter for such a platform can be tested for real:

- ``POST /api/v2/login`` ``{"username", "password"}`` → ``{"code": 0, "data": {"token",
  "expires_in"}}``; the token goes in ``X-Auth-Token`` and lives ``session_ttl`` seconds.
- ``GET /api/v2/influencers?domain=&cursor=&size=`` → ``{"code": 0, "data": {"items",
  "next_cursor", "has_more"}}``; no (or an empty) cursor is the first page. Items are the rows
  of ``/api/v1`` for the same seed (and growth day). Cursors are keyset positions (``sandbox.listing``), signed
  and expiring (``sandbox.cursors``, ``cursor_ttl``).
- Refusals: HTTP 200 and a ``Code`` with its ``msg`` (plus ``retry_after``, ``reason`` or
  ``verify_url``; with ``captcha_solvable`` also ``challenge``: ``{"id", "question"}``, see
  ``sandbox.captcha``). The 5xx error rate answers a real 500/502/503, the malformed rate a
  body cut short, the maintenance knob a 503, exactly as ``/api/v1`` does.
- ``POST /api/v2/verify`` ``{"challenge_id", "answer"}`` with the token answers a challenge:
  ``{"code": 0}`` when right, code 40303 when wrong or for an unknown or old id.

Requests run the same path as ``Site._listing``: token → account linking (``Site.link``) →
validation → shift counter → ``Guard.admit`` → ``Guard.roll`` → ``Site.captcha`` → body, carry
the same ``RateLimit-*`` headers from the limits on (``rate_limit_headers``; a 42900 is an HTTP
200 with them), and count in the same per-account stats. A successful login passes the linking
check too.
"""
from __future__ import annotations

import asyncio
import enum
import functools
import math
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox import render
from sandbox.cursors import BadCursor, CursorCodec, ExpiredCursor, secret_for_seed
from sandbox.misbehaviour import Outcome, Verdict

if TYPE_CHECKING:
    from sandbox.app import Site
    from sandbox.stats import AccountStats


TOKEN_HEADER = "X-Auth-Token"
TOKEN_KIND = "token"  # the Auth session kind of API tokens
MAX_SIZE = 100  # rows per page at most (or the site's page size, if larger)


class Code(enum.IntEnum):
    """The API's ``code`` values; ``MESSAGES`` holds the ``msg`` sent with each."""

    OK = 0
    BAD_REQUEST = 40000
    CURSOR_EXPIRED = 40010
    BAD_CURSOR = 40011
    BAD_CREDENTIALS = 40100
    TOKEN_EXPIRED = 40101
    BANNED = 40300
    CAPTCHA = 40302
    CAPTCHA_WRONG = 40303
    UNKNOWN_DOMAIN = 40400
    RATE_LIMITED = 42900
    DAILY_CAP = 42901
    SERVER = 50000


MESSAGES = {
    Code.BAD_REQUEST: "参数错误",
    Code.CURSOR_EXPIRED: "cursor expired",
    Code.BAD_CURSOR: "bad cursor",
    Code.BAD_CREDENTIALS: "用户名或密码错误",
    Code.TOKEN_EXPIRED: "token expired",
    Code.BANNED: "账号已封禁",
    Code.CAPTCHA: "请完成安全验证",
    Code.CAPTCHA_WRONG: "captcha answer wrong",
    Code.UNKNOWN_DOMAIN: "未知的领域",
    Code.RATE_LIMITED: "操作太频繁",
    Code.DAILY_CAP: "今日访问次数已达上限",
    Code.SERVER: "服务器繁忙，请稍后再试",
}


def refusal(code: Code, status: int = 200, **extra: Any) -> web.Response:
    body = render.json_bytes({"code": int(code), "msg": MESSAGES[code], **extra})
    return web.Response(status=status, body=body, content_type="application/json",
                        charset="utf-8")


def parse_size(raw: str | None, default: int, largest: int) -> int | None:
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        return None
    size = int(raw)
    return size if 1 <= size <= largest else None


class ApiV2:
    """Handlers of ``/api/v2``; all state (sessions, limits, listing, stats) is the ``Site``'s."""

    def __init__(self, site: Site) -> None:
        self._site = site
        self._cursors = CursorCodec(secret_for_seed(site.settings.seed))
        self._largest = max(MAX_SIZE, site.settings.page_size)
        # rows of ranks [start, stop) on a growth day never change (sandbox.listing), so their
        # JSON is cached by (domain, start, stop, day)
        self._items = functools.lru_cache(maxsize=4096)(self._items_json)

    async def login(self, request: web.Request) -> web.Response:
        site = self._site
        try:
            payload = await request.json()
        except ValueError:  # JSON and UTF-8 errors alike
            return refusal(Code.BAD_REQUEST)
        if not isinstance(payload, dict):
            return refusal(Code.BAD_REQUEST)
        username, password = payload.get("username"), payload.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return refusal(Code.BAD_REQUEST)
        if not site.auth.check_password(username, password):
            site.stats.login_failures += 1
            return refusal(Code.BAD_CREDENTIALS)
        if site.auth.is_banned(username) or site.link(request, username):
            return refusal(Code.BANNED, reason=site.auth.bans[username])
        token = site.auth.open_session(username, TOKEN_KIND)
        site.stats.account(username).logins += 1
        expires_in = math.ceil(min(site.knobs.session_ttl, 10**9))
        return _ok({"token": token, "expires_in": expires_in})

    async def influencers(self, request: web.Request) -> web.StreamResponse:
        site = self._site
        user, refused = self._token_user(request)
        if refused is not None:
            return refused
        domain = request.query.get("domain", "")
        if domain not in site.listing.domains:
            return refusal(Code.UNKNOWN_DOMAIN)
        size = parse_size(request.query.get("size"), site.settings.page_size, self._largest)
        if size is None:
            return refusal(Code.BAD_REQUEST, detail=f"size must be 1..{self._largest}")
        last_rank = None
        if request.query.get("cursor"):
            try:
                last_rank = self._cursors.decode(domain, request.query["cursor"],
                                                 site.knobs.cursor_ttl)
            except ExpiredCursor:
                site.stats.cursor_expired += 1
                return refusal(Code.CURSOR_EXPIRED)
            except BadCursor:
                site.stats.bad_cursors += 1
                return refusal(Code.BAD_CURSOR)
        stats, verdict = site.admit(user, domain)
        limits = site.guard.limit_headers(user)  # the bucket as admit() left it
        response = await self._answer(request, user, domain, last_rank, size, stats, verdict)
        response.headers.update(limits)
        return response

    async def _answer(self, request: web.Request, user: str, domain: str, last_rank: int | None,
                      size: int, stats: AccountStats, verdict: Verdict) -> web.Response:
        """The answer to a listing request the guard has judged: its refusal (a code), or the
        page as its fate has it."""
        site = self._site
        if verdict.outcome is Outcome.BANNED:
            return refusal(Code.BANNED, reason=site.auth.bans.get(user, verdict.ban_reason))
        if verdict.outcome is Outcome.RATE_LIMITED:
            stats.rate_limited += 1
            return refusal(Code.RATE_LIMITED, retry_after=verdict.retry_after)
        if verdict.outcome is Outcome.DAILY_CAP:
            stats.daily_cap += 1
            return refusal(Code.DAILY_CAP)

        fate = site.guard.roll(user)
        if fate.delay:
            stats.slow += 1
            await asyncio.sleep(fate.delay)
        captcha, challenge = site.captcha(user, fate.captcha)
        if captcha:
            stats.captchas += 1
            verify = request.url.join(request.app.router["v2_verify"].url_for()).with_query(
                ticket=secrets.token_urlsafe(12))
            extra = {"challenge": challenge.to_json()} if challenge else {}
            return refusal(Code.CAPTCHA, verify_url=str(verify), **extra)
        if fate.error_status:
            stats.errors += 1
            return refusal(Code.SERVER, status=fate.error_status)

        start, stop = site.listing.span(domain, last_rank, size)
        has_more = stop < site.listing.base_total
        next_cursor = self._cursors.encode(domain, stop - 1) if has_more else None
        items = self._items(domain, start, stop, site.knobs.growth_day)
        body = b"".join((b'{"code":0,"data":{"items":', items,
                         b',"next_cursor":', render.json_bytes(next_cursor),
                         b',"has_more":', b"true" if has_more else b"false", b"}}"))
        if fate.cut_fraction is not None:
            stats.malformed += 1
            body = body[: 1 + int(fate.cut_fraction * (len(body) - 1))]
        else:
            stats.pages += 1
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    def _token_user(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        """The account whose token the request carries, or the refusal: token expired, or
        banned as linked to another account."""
        site = self._site
        user = site.auth.session_user(request.headers.get(TOKEN_HEADER), TOKEN_KIND)
        if user is None:
            site.stats.login_required += 1
            return None, refusal(Code.TOKEN_EXPIRED)
        if site.link(request, user):
            return None, refusal(Code.BANNED, reason=site.auth.bans[user])
        return user, None

    async def verify(self, request: web.Request) -> web.Response:
        """Where ``verify_url`` points: the captcha interstitial, which no crawler can solve
        (with ``captcha_solvable``, the 40302 body's challenge is answered by ``solve``)."""
        return web.Response(body=render.captcha_page(None), content_type="text/html",
                            charset="utf-8")

    async def solve(self, request: web.Request) -> web.Response:
        """``POST /api/v2/verify`` ``{"challenge_id", "answer"}`` with the account's token."""
        site = self._site
        user, refused = self._token_user(request)
        if refused is not None:
            return refused
        try:
            payload = await request.json()
        except ValueError:  # JSON and UTF-8 errors alike
            return refusal(Code.BAD_REQUEST)
        if not isinstance(payload, dict):
            return refusal(Code.BAD_REQUEST)
        if not site.solve_captcha(user, payload.get("challenge_id"), payload.get("answer")):
            return refusal(Code.CAPTCHA_WRONG)
        return web.Response(body=render.json_bytes({"code": 0}),
                            content_type="application/json", charset="utf-8")

    def _items_json(self, domain: str, start: int, stop: int, day: int) -> bytes:
        return render.json_bytes(self._site.listing.ranked_rows(domain, start, stop, day))


def _ok(data: dict[str, Any]) -> web.Response:
    return web.Response(body=render.json_bytes({"code": 0, "data": data}),
                        content_type="application/json", charset="utf-8")


def add_v2_routes(app: web.Application, site: Site) -> None:
    api = ApiV2(site)
    app.router.add_post("/api/v2/login", api.login)
    app.router.add_get("/api/v2/influencers", api.influencers)
    app.router.add_get("/api/v2/verify", api.verify, name="v2_verify")
    app.router.add_post("/api/v2/verify", api.solve)
