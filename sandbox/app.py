"""Routes of the reference platform (aiohttp): login, the three listing forms, the JS shell.

``Site`` owns the mutable state (sessions, limits, shifts, linked identities, counters) and the
handlers; the admin routes live in ``sandbox.admin`` and, with ``--api token-cursor``, the
token/cursor API in ``sandbox.api_v2``. Listing requests go through one path for JSON and
HTML: session → account linking (``Site.link``) → domain/page validation → shift counter →
limits (``Guard.admit``) → random fate (``Guard.roll``) → captcha challenge (``Site.captcha``,
``sandbox.captcha``) → cached body, every answer from the limits on with the bucket's
``RateLimit-*`` headers when ``rate_limit_headers`` is on (``Guard.limit_headers``);
``POST /captcha`` answers a challenge. Every other request with a session, and every
successful login, passes the linking check too. Everything runs on one event loop, so no locks
are needed.
"""
from __future__ import annotations

import asyncio
import logging
import random
from urllib.parse import quote

from aiohttp import web

from sandbox import render
from sandbox.admin import add_admin_routes
from sandbox.api_v2 import add_v2_routes
from sandbox.auth import CSRF_COOKIE, SESSION_COOKIE, Auth, csrf_ok, new_csrf_token
from sandbox.captcha import Challenge, Challenges, parse_answer
from sandbox.config import Knobs, SiteSettings
from sandbox.linking import REASON as LINK_REASON
from sandbox.linking import Linker
from sandbox.listing import Listing
from sandbox.misbehaviour import Guard, Outcome, Verdict
from sandbox.stats import AccountStats, Stats

log = logging.getLogger(__name__)

JSON = "application/json"
HTML = "text/html"
MAX_PAGE = 10_000_000
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


class Site:
    """The platform's state and request handlers."""

    def __init__(self, settings: SiteSettings, knobs: Knobs) -> None:
        settings.check_knobs(knobs)
        self.settings = settings
        self.initial_knobs = knobs
        self.auth = Auth(settings.accounts, knobs.session_ttl)
        self.guard = Guard(knobs, settings.seed)
        self.listing = Listing(settings.seed, settings.domains, settings.pages,
                               settings.page_size, knobs.shift_every)
        self.renderer = render.Renderer(self.listing)
        self.stats = Stats([a.username for a in settings.accounts])
        self.linker = Linker()
        self.challenges = Challenges(settings.seed)

    @property
    def knobs(self) -> Knobs:
        return self.guard.knobs

    def apply_knobs(self, knobs: Knobs) -> None:
        self.settings.check_knobs(knobs)
        self.guard.knobs = knobs
        self.auth.session_ttl = knobs.session_ttl
        self.listing.shift_every = knobs.shift_every
        if not knobs.captcha_solvable:
            self.challenges.release_all()
        log.info("knobs now %s", knobs.to_json())

    def reset(self) -> None:
        """Back to the state right after start: knobs, sessions, bans, limits, shifts, linked
        identities, captcha challenges, stats."""
        self.auth.reset()
        self.guard.reset()
        self.challenges.reset()
        self.listing.reset()
        self.linker.reset()
        self.stats.reset()
        self.apply_knobs(self.initial_knobs)

    # -- login ---------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
        body = render.login_page(token, next_path=_safe_next(request.query.get("next")))
        resp = web.Response(body=body, content_type=HTML, charset="utf-8")
        resp.set_cookie(CSRF_COOKIE, token, path="/")
        return resp

    async def login_submit(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
        username = str(form.get("username", ""))
        next_path = _safe_next(str(form.get("next", "")))

        def refuse(status: int, code: str) -> web.Response:
            resp = web.Response(status=status, content_type=HTML, charset="utf-8",
                                body=render.login_page(token, code, next_path))
            resp.set_cookie(CSRF_COOKIE, token, path="/")
            return resp

        if not csrf_ok(str(form.get("csrf_token", "")), request.cookies.get(CSRF_COOKIE)):
            self.stats.csrf_failures += 1
            return refuse(403, "E_CSRF")
        if not self.auth.check_password(username, str(form.get("password", ""))):
            self.stats.login_failures += 1
            return refuse(401, "E_BAD_CREDENTIALS")
        if self.auth.is_banned(username) or self.link(request, username):
            return refuse(403, "E_BANNED")
        sid = self.auth.open_session(username)
        self.stats.account(username).logins += 1
        resp = _redirect(next_path or "/square")
        resp.set_cookie(SESSION_COOKIE, sid, httponly=True, path="/")
        return resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.auth.close_session(request.cookies.get(SESSION_COOKIE))
        resp = _redirect("/login")
        resp.del_cookie(SESSION_COOKIE, path="/")
        return resp

    # -- pages ---------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        return _redirect("/square")

    async def square(self, request: web.Request) -> web.StreamResponse:
        if "domain" in request.query:
            return await self._listing(request, html=True)
        user = self._session(request, html=True)
        if not isinstance(user, str):
            return user
        return web.Response(body=render.domain_index(self.settings.domains, user),
                            content_type=HTML, charset="utf-8")

    async def api_influencers(self, request: web.Request) -> web.StreamResponse:
        return await self._listing(request, html=False)

    async def api_domains(self, request: web.Request) -> web.StreamResponse:
        user = self._session(request, html=False)
        if not isinstance(user, str):
            return user
        listing = self.listing
        domains = [{"domain": d, "total": listing.total(d, listing.version(d)),
                    "total_pages": listing.total_pages(d, listing.version(d))}
                   for d in self.settings.domains]
        return web.Response(body=render.json_bytes({"domains": domains}),
                            content_type=JSON, charset="utf-8")

    async def app_square(self, request: web.Request) -> web.StreamResponse:
        user = self._session(request, html=True)
        if not isinstance(user, str):
            return user
        return web.Response(body=render.app_shell(user), content_type=HTML, charset="utf-8")

    # -- the listing path ----------------------------------------------------------------

    async def _listing(self, request: web.Request, html: bool) -> web.StreamResponse:
        user = self._session(request, html)
        if not isinstance(user, str):
            return user
        domain = request.query.get("domain", "")
        if domain not in self.listing.domains:
            return _error(404, "E_UNKNOWN_DOMAIN", html, user)
        page_no = _parse_page(request.query.get("page", "1"))
        if page_no is None:
            return _error(400, "E_BAD_PAGE", html, user)
        stats, verdict = self.admit(user, domain)
        limits = self.guard.limit_headers(user)  # the bucket as admit() left it
        response = await self._answer(user, domain, page_no, html, stats, verdict)
        response.headers.update(limits)
        return response

    async def _answer(self, user: str, domain: str, page_no: int, html: bool,
                      stats: AccountStats, verdict: Verdict) -> web.Response:
        """The answer to a listing request the guard has judged: its refusal, or the page
        as its fate has it."""
        if verdict.outcome is Outcome.BANNED:
            return _error(403, "E_BANNED", html, user)
        if verdict.outcome is Outcome.RATE_LIMITED:
            stats.rate_limited += 1
            return _error(429, "E_RATE_LIMITED", html, user,
                          headers={"Retry-After": str(verdict.retry_after)})
        if verdict.outcome is Outcome.DAILY_CAP:
            stats.daily_cap += 1
            return _error(403, "E_DAILY_CAP", html, user)

        fate = self.guard.roll(user)
        if fate.delay:
            stats.slow += 1
            await asyncio.sleep(fate.delay)
        captcha, challenge = self.captcha(user, fate.captcha)
        if captcha:
            stats.captchas += 1
            if html:
                return web.Response(body=render.captcha_page(user, challenge), content_type=HTML,
                                    charset="utf-8")
            extra = {"challenge": challenge.to_json()} if challenge else {}
            return web.Response(body=render.json_error("E_CAPTCHA", captcha=True, **extra),
                                content_type=JSON, charset="utf-8")
        if fate.error_status:
            stats.errors += 1
            return _error(fate.error_status, "E_SERVER", html, user)

        version, day = self.listing.version(domain), self.knobs.growth_day
        if html:
            body, footer_at = self.renderer.html_listing(domain, page_no, version, day).body(
                self.renderer.user_header(user))
            cut_limit = footer_at
        else:
            body = self.renderer.json_listing(domain, page_no, version, day)
            cut_limit = len(body)
        if fate.cut_fraction is not None:
            stats.malformed += 1
            body = body[: 1 + int(fate.cut_fraction * (cut_limit - 1))]
        else:
            stats.pages += 1
        return web.Response(body=body, content_type=HTML if html else JSON, charset="utf-8")

    async def captcha_submit(self, request: web.Request) -> web.StreamResponse:
        """``POST /captcha``, form fields ``challenge_id`` and ``answer``, with the session
        cookie: 200 ``{"ok": true}`` when right, else 403 ``E_CAPTCHA_WRONG`` (JSON)."""
        user = self._session(request, html=False)
        if not isinstance(user, str):
            return user
        form = await request.post()
        if not self.solve_captcha(user, form.get("challenge_id"), form.get("answer")):
            return _error(403, "E_CAPTCHA_WRONG", False, user)
        return web.Response(body=render.json_bytes({"ok": True}), content_type=JSON,
                            charset="utf-8")

    # -- helpers -------------------------------------------------------------------------

    def captcha(self, user: str, rolled: bool) -> tuple[bool, Challenge | None]:
        """Whether an admitted listing request of ``user`` (either API style), whose fate
        ``rolled`` a captcha or not, is answered with the captcha; and the challenge it carries.
        With ``captcha_solvable`` off that is the fate alone and there is no challenge; with it
        on, a captcha fate challenges the account and a challenged account always gets one."""
        if not self.knobs.captcha_solvable:
            return rolled, None
        if rolled or self.challenges.is_challenged(user):
            return True, self.challenges.show(user)
        return False, None

    def solve_captcha(self, user: str, challenge_id: object, answer: object) -> bool:
        """An answer of ``user`` to its challenge (either API style), counted in its stats;
        True when right, which lifts the challenge."""
        stats = self.stats.account(user)
        if self.challenges.solve(user, challenge_id, parse_answer(answer)):
            stats.captchas_solved += 1
            log.info("account %s solved its captcha", user)
            return True
        stats.captchas_failed += 1
        return False

    def admit(self, user: str, domain: str) -> tuple[AccountStats, Verdict]:
        """Count a listing request (either API style) and ask the guard about it; a ban the guard
        decides now is applied here. Returns the account's stats and the guard's verdict."""
        stats = self.stats.account(user)
        stats.requests += 1
        self.listing.count_request(domain)
        verdict = self.guard.admit(user)
        if verdict.outcome is Outcome.BANNED and verdict.ban_reason:
            self.ban(user, verdict.ban_reason)
        return stats, verdict

    def link(self, request: web.Request, user: str) -> bool:
        """The ``link_accounts`` check of a request of ``user`` (either API style; see
        ``sandbox.linking``): True when it links the account to another one, which bans it."""
        knobs = self.knobs
        if not knobs.link_accounts:
            return False
        # request.remote is the socket's peer: no forwarded-header middleware is installed
        found = self.linker.observe(user, request.remote, request.headers.get("User-Agent"),
                                    knobs.link_window)
        if found is None:
            return False
        log.warning("account %s shares its %s with %s", user, " and ".join(found.shared),
                    ", ".join(found.accounts))
        stats = self.stats.account(user)
        stats.linked_to, stats.linked_on = list(found.accounts), list(found.shared)
        for other in found.accounts:
            self.stats.account(other).linked_from.append(user)
        self.ban(user, LINK_REASON)
        return True

    def ban(self, user: str, reason: str) -> None:
        """Ban ``user`` for good (until reset): its sessions are dropped, later logins refused."""
        log.warning("banning account %s: %s", user, reason)
        self.auth.ban(user, reason)
        stats = self.stats.account(user)
        stats.banned, stats.ban_reason = True, reason

    def _session(self, request: web.Request, html: bool) -> str | web.StreamResponse:
        """The account of the request's session cookie; or the answer when there is none (login
        required) or when this request links the account to another one (banned)."""
        user = self.auth.session_user(request.cookies.get(SESSION_COOKIE))
        if user is None:
            return self._login_required(request, html)
        if self.link(request, user):
            return _error(403, "E_BANNED", html, user)
        return user

    def _login_required(self, request: web.Request, html: bool) -> web.StreamResponse:
        self.stats.login_required += 1
        if html:
            return _redirect("/login?next=" + quote(request.raw_path, safe=""))
        return web.Response(status=401, body=render.json_error("E_LOGIN_REQUIRED"),
                            content_type=JSON, charset="utf-8")


def _maintenance(site: Site):  # noqa: ANN202 - an aiohttp middleware
    """The ``maintenance`` knob: a share of every request (all of them at 1.0) gets a 503, as a
    platform being upgraded or failing over answers; the admin routes stay up for the tests."""

    @web.middleware
    async def middleware(request: web.Request, handler):  # noqa: ANN001, ANN202
        share = site.knobs.maintenance
        if share and not request.path.startswith("/__admin") and random.random() < share:
            return web.Response(status=503, text="系统维护中 / under maintenance", headers={"Retry-After": "30"})
        return await handler(request)

    return middleware


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def _error(status: int, code: str, html: bool, user: str | None,
           headers: dict[str, str] | None = None) -> web.Response:
    body = render.error_page(code, user) if html else render.json_error(code)
    return web.Response(status=status, body=body, headers=headers,
                        content_type=HTML if html else JSON, charset="utf-8")


def _parse_page(raw: str) -> int | None:
    if not raw.isascii() or not raw.isdigit():
        return None
    page_no = int(raw)
    return page_no if 1 <= page_no <= MAX_PAGE else None


def _safe_next(raw: str | None) -> str | None:
    """Only same-site absolute paths may be redirected to after login (non-ASCII %-encoded)."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return quote(raw, safe=_URL_SAFE)
    return None


def build_app(site: Site) -> web.Application:
    app = web.Application(middlewares=[_maintenance(site)])
    app.router.add_get("/", site.index)
    app.router.add_get("/login", site.login_form)
    app.router.add_post("/login", site.login_submit)
    app.router.add_get("/logout", site.logout)
    app.router.add_post("/logout", site.logout)
    app.router.add_get("/square", site.square)
    app.router.add_get("/app/square", site.app_square)
    app.router.add_get("/api/v1/influencers", site.api_influencers)
    app.router.add_get("/api/v1/domains", site.api_domains)
    app.router.add_post("/captcha", site.captcha_submit)
    if site.settings.api == "token-cursor":
        add_v2_routes(app, site)
    add_admin_routes(app, site)
    return app
