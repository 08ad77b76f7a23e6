"""Account downloader middleware: every listing request goes out as one of our accounts.

For a request of a claimed task (``meta["influencers_task"]``) it

* takes the task's current account from the ingestion service and logs it in if it has no
  session yet (`influencers.middlewares.logins`);
* gives each account its own cookie session (``meta["cookiejar"]``), its own download slot and,
  for browser-rendered pages, its own Playwright context with the session cookies; and sends
  every request of the account through its identity — proxy, user agent, headers
  (`influencers.middlewares.identity`), never another account's;
* paces the account: at least ``ACCOUNTS_REQUEST_INTERVAL`` seconds (or its requests-a-minute
  budget's) between its requests, and after a 429 nothing at all until Retry-After has passed
  (other accounts go on); an account whose pages-a-day budget (`influencers.core.budgets`) is
  spent rests until local midnight, as after the platform's daily cap, before meeting it;

and for each response, by the adapter's verdict:

* expired session → log in again and retry, ``ACCOUNTS_RELOGIN_ATTEMPTS`` times per request;
  then the account cools down, unless no session has worked in this crawl yet: a platform that
  refuses every session it just opened points at the adapter (`SessionRefused`), and the task
  pauses with that reason instead of cooling down account after account;
* 429 → back off that account (Retry-After, a growing interval) and retry the same request;
* captcha → the adapter may answer it (`SiteAdapter.captcha_solution`, up to
  ``CAPTCHA_SOLVE_TRIES`` captchas in a row): solved, the same request goes again with the same
  account;
* captcha / daily cap → cool the account down (``ACCOUNTS_CAPTCHA_FIRST_COOLDOWN`` after a
  first captcha, doubling on repeats without a good page between, up to
  ``ACCOUNTS_CAPTCHA_COOLDOWN``; daily cap until
  the next local midnight unless ``ACCOUNTS_DAILY_CAP_COOLDOWN``), ban / refused credentials / a
  stored password the deployment's key cannot decrypt → disable it, with the reason; then move
  the task to another idle account and retry the same page. With no account left the service
  pauses the task at its marker;
* its proxy failed it (refused, 407, a broken tunnel, a timeout) → the account rests for the
  proxy's back-off (`IdentityStore.proxy_failed`), neither banned nor counted as a platform
  outage, and the task moves to another account.

Each response of a task's request is classified here, once: the verdict goes on to the spider in
``meta[META_VERDICT]`` with the response it lets through. The ingestion service is reached
through its `AccountDesk` side (`influencers.extensions.interface`).

Stats: ``accounts/<reason>`` per verdict, ``accounts/login``, ``accounts/switched`` …; each
such verdict is also sent with its account as the `account_verdict` signal (the tallies of 429s and
captchas per account, `influencers.extensions.tallying`, listen to it).
Settings (`config.AccountsSettings`; defaults in influencers/settings.py): ACCOUNTS_ENABLED,
ACCOUNTS_REQUEST_INTERVAL, ACCOUNTS_MAX_INTERVAL, ACCOUNTS_RELOGIN_ATTEMPTS, ACCOUNTS_LOGIN_ATTEMPTS,
ACCOUNTS_CAPTCHA_COOLDOWN, ACCOUNTS_DAILY_CAP_COOLDOWN (None: until the next local midnight),
ACCOUNTS_LOGIN_FAILURE_COOLDOWN, ACCOUNTS_RETRY_AFTER_MARGIN.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response

from influencers.core.errors import ConfigError
from influencers.extensions.config import AccountsSettings, transport_errors
from influencers.extensions.ingestion import IngestionService
from influencers.extensions.interface import account_verdict
from influencers.extensions.runs import META_ACCOUNT, META_LOGIN, META_TASK, META_TURN, META_VERDICT
from influencers.middlewares.identity import dress, proxy_fault, undress
from influencers.middlewares.logins import AccountLogin, AccountState, AccountUnusable, ProxyFailed
from influencers.middlewares.pacing import AccountPacing
from influencers.sites.base import (
    ACCOUNT_OUTCOMES,
    Outcome,
    SessionRefused,
    Verdict,
    adapter_code,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from influencers.extensions.interface import AccountDesk

logger = logging.getLogger(__name__)


def _offline_public_suffixes() -> None:
    """Scrapy's CookiesMiddleware asks tldextract for the public suffix list, which fetches it
    from GitHub on first use (and logs a traceback when offline). The copy bundled with
    tldextract is enough for cookies; use it and never go to the network for it."""
    from scrapy.downloadermiddlewares import cookies
    from tldextract import TLDExtract

    if hasattr(cookies, "_split_domain"):
        cookies._split_domain = TLDExtract(suffix_list_urls=(), include_psl_private_domains=True)


_offline_public_suffixes()

META_SESSION = "influencers_session"
META_RELOGINS = "influencers_relogins"
META_BROWSER_COOKIES = "influencers_browser_cookies"
META_BROWSER_HEADERS = "influencers_browser_headers"
_STAMPS = (META_ACCOUNT, META_SESSION, META_VERDICT, META_TURN, "cookiejar", "download_slot", "playwright_context",
           META_BROWSER_COOKIES, META_BROWSER_HEADERS)  # and `identity.undress` takes off the identity
_ACCOUNT_TRIES = 20
#: Captchas in a row (no good page between) the adapter may try to solve before the account rests.
CAPTCHA_SOLVE_TRIES = 3


async def add_session_cookies(page: Any, request: Request) -> None:
    """scrapy-playwright page init callback: the account's session cookies into its context, and
    its session headers onto the page (a browser-rendered page's own requests carry them too)."""
    cookies = request.meta.get(META_BROWSER_COOKIES)
    if cookies:
        await page.context.add_cookies(cookies)
    headers = request.meta.get(META_BROWSER_HEADERS)
    if headers:
        await page.set_extra_http_headers(headers)


class AccountsMiddleware:
    def __init__(self, crawler: Crawler, service: AccountDesk, *, interval: float, max_interval: float,
                 relogin_attempts: int, login_attempts: int, captcha_cooldown: float,
                 captcha_first_cooldown: float | None = None,
                 daily_cap_cooldown: float | None, login_failure_cooldown: float, margin: float,
                 transport_errors: tuple[type[BaseException], ...] = ()) -> None:
        self.crawler = crawler
        self.service = service
        self.stats = crawler.stats
        self.relogin_attempts = relogin_attempts
        self.login_attempts = login_attempts
        self.captcha_cooldown = captcha_cooldown
        self.captcha_first_cooldown = captcha_cooldown if captcha_first_cooldown is None else captcha_first_cooldown
        self.daily_cap_cooldown = daily_cap_cooldown
        self.login_failure_cooldown = login_failure_cooldown
        self.accounts: dict[int, AccountState] = {}
        self.transport_errors = transport_errors  # a listing or login request that got no answer
        self.pacing = AccountPacing(interval=interval, max_interval=max_interval, margin=margin)
        self.logins = AccountLogin(crawler, service, self.pacing, login_attempts=login_attempts,
                                   transport_errors=transport_errors)
        #: Some session was accepted in this crawl: one refused at once after its login is then
        #: the account's problem; before any has worked, it is the adapter's (`SessionRefused`).
        self.session_worked = False
        self._authorized: set[Request] = set()  # new requests `authorize` returned, not yet back here

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AccountsMiddleware:
        service = IngestionService.of(crawler)
        try:
            options = AccountsSettings.from_settings(crawler.settings)
        except ConfigError as exc:
            service.startup_failed(exc)  # one line when the spider starts, not a traceback now
            raise NotConfigured from None
        if not options.enabled:
            raise NotConfigured("ACCOUNTS_ENABLED is off")
        middleware = cls(
            crawler,
            service,
            interval=options.request_interval,
            max_interval=options.max_interval,
            relogin_attempts=options.relogin_attempts,
            login_attempts=options.login_attempts,
            captcha_cooldown=options.captcha_cooldown,
            captcha_first_cooldown=options.captcha_first_cooldown,
            daily_cap_cooldown=options.daily_cap_cooldown,
            login_failure_cooldown=options.login_failure_cooldown,
            margin=options.retry_after_margin,
            transport_errors=transport_errors(crawler.settings),
        )
        service.pace_with(middleware.pacing)  # it schedules a task's next page when its account is due
        return middleware

    def state(self, account_id: int) -> AccountState:
        state = self.accounts.get(account_id)
        if state is None:
            state = self.accounts[account_id] = AccountState(account_id)
        return state

    # -- requests -----------------------------------------------------------------------------

    async def process_request(self, request: Request) -> Request | None:
        meta = request.meta
        task_id = meta.get(META_TASK)
        if task_id is None or meta.get(META_LOGIN) is not None:
            return None
        if request in self._authorized:  # the adapter's new request for one stamped here: it goes on
            self._authorized.discard(request)
            return None
        meta.pop(META_VERDICT, None)  # a copy's (Scrapy's retries copy the meta): this response gets its own
        reserved = meta.pop(META_TURN, None)  # the turn the service took when it scheduled the request
        for _ in range(_ACCOUNT_TRIES):
            account_id = await self.service.current_account(task_id)  # IgnoreRequest if stopping
            state = self.state(account_id)
            try:
                await self.logins.ensure_session(state)
            except AccountUnusable as exc:
                await self._retire(task_id, account_id, exc.verdict)
                continue
            except ProxyFailed as exc:
                await self._proxy_failed(task_id, state, str(exc))
                continue
            if state.budget_spent:  # before the platform's cap: rest until local midnight
                await self._retire(task_id, account_id, Verdict(
                    Outcome.DAILY_CAP, "BUDGET", f"its budget of {state.page_budget} pages a day is spent"))
                continue
            await self.pacing.take(account_id, reserved)  # or the next turn: a retry, a moved task, a 429
            reserved = None
            if await self.service.current_account(task_id) != account_id or not state.logged_in:
                continue  # switched or logged out while we waited
            state.pages_used += 1  # counted when sent: pages in flight cannot overshoot the budget
            self.pacing.sent(account_id)
            self._stamp(request, state)
            return self._authorize(request, state)
        raise IgnoreRequest(f"task {task_id}: no usable account after {_ACCOUNT_TRIES} tries")

    def _stamp(self, request: Request, state: AccountState) -> None:
        meta = request.meta
        meta[META_ACCOUNT] = state.id
        meta[META_SESSION] = state.generation
        meta["cookiejar"] = state.jar
        meta["download_slot"] = state.jar
        if meta.get("playwright"):
            adapter = self.service.adapter
            meta["playwright_context"] = state.jar
            meta["playwright_page_init_callback"] = "influencers.middlewares.accounts.add_session_cookies"
            meta[META_BROWSER_COOKIES] = [
                {"name": name, "value": value, "url": adapter.base_url}
                for name, value in state.session.cookies.items()
            ]
            meta[META_BROWSER_HEADERS] = dict(state.session.headers)
        dress(request, state.identity, state.session.headers)  # recorded, so a move to another account drops them

    def _authorize(self, request: Request, state: AccountState) -> Request | None:
        """The adapter's `authorize` for the stamped request: None when it changed the request in
        place (it goes on), else its new request (Scrapy sends that one instead, through here)."""
        with adapter_code("authorize"):
            authorized = self.service.adapter.authorize(request, state.session)
        if authorized is request:
            return None
        self._authorized.add(authorized)
        return authorized

    # -- responses ----------------------------------------------------------------------------

    async def process_response(self, request: Request, response: Response) -> Response | Request:
        meta = request.meta
        task_id = meta.get(META_TASK)
        account_id = meta.get(META_ACCOUNT)
        if task_id is None or account_id is None or meta.get(META_LOGIN) is not None:
            return response
        state = self.state(account_id)
        fault = proxy_fault(request, response=response)
        if fault is not None:
            await self._proxy_failed(task_id, state, fault)
            return self._again(request)
        with adapter_code("classify"):
            verdict = meta[META_VERDICT] = self.service.adapter.classify(response)
        outcome = verdict.outcome
        if outcome is Outcome.OK:
            self.session_worked = True
            state.captchas = 0
            self.pacing.on_success(account_id, response.headers)
            return response
        if outcome not in ACCOUNT_OUTCOMES and outcome not in (Outcome.RATE_LIMITED, Outcome.LOGIN_REQUIRED):
            return response  # the page's problem (5xx, cut short, unknown domain): the spider decides
        self.stats.inc_value(f"accounts/{outcome.value}")
        self.crawler.signals.send_catch_log(account_verdict, outcome=outcome, account_id=account_id)
        extra = {"task_id": task_id, "account_id": account_id}
        if outcome is Outcome.RATE_LIMITED:
            self.pacing.on_rate_limited(account_id, verdict.retry_after, response.headers)
            logger.info("account %s rate limited: waiting %.1fs (Retry-After) before its next request, then %s",
                        account_id, self.pacing.due_in(account_id), self.pacing.pace_text(account_id), extra=extra)
            return self._again(request)
        if outcome is Outcome.LOGIN_REQUIRED:
            if state.generation == meta.get(META_SESSION):
                state.logged_in = False
            relogins = meta.get(META_RELOGINS, 0)
            if relogins < self.relogin_attempts:
                logger.info("account %s: session expired, logging in again", account_id, extra=extra)
                return self._again(request, **{META_RELOGINS: relogins + 1})
            if not self.session_worked:
                raise SessionRefused("open_session/authorize", (
                    f"{relogins + 1} logins succeeded, yet the platform refused each new session on the next"
                    f" request ({verdict.reason}) and no session has worked in this crawl: does open_session()"
                    " keep what the login gave, and authorize() send it?"))
            verdict = Verdict(Outcome.LOGIN_REQUIRED, verdict.code, "the session keeps expiring after login")
        if outcome is Outcome.CAPTCHA:
            state.captchas += 1
            if state.captchas <= CAPTCHA_SOLVE_TRIES and await self.logins.solve_captcha(state, response):
                self.stats.inc_value("accounts/captcha_solved")
                logger.info("account %s: captcha solved", account_id, extra=extra)
                return self._again(request)
        logger.warning("account %s: %s on %s", account_id, verdict.reason, request.url, extra=extra)
        await self._retire(task_id, account_id, verdict)
        return self._again(request)

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        """A listing request its account's proxy failed: the account rests, the task moves on."""
        meta = request.meta
        task_id, account_id = meta.get(META_TASK), meta.get(META_ACCOUNT)
        if task_id is None or account_id is None or meta.get(META_LOGIN) is not None:
            return None
        fault = proxy_fault(request, exception=exception, transport_errors=self.transport_errors)
        if fault is None:
            return None
        await self._proxy_failed(task_id, self.state(account_id), fault)
        return self._again(request)

    async def _proxy_failed(self, task_id: int, state: AccountState, fault: str) -> None:
        """Its proxy failed the account: out of rotation for the proxy's back-off (not banned,
        not the platform's outage), its session dropped (opened from the proxy's address)."""
        self.stats.inc_value("accounts/proxy_failed")
        state.logged_in = False
        reason = f"proxy {state.identity.proxy_host or '?'} failed: {fault}"
        logger.warning("account %s: %s", state.id, reason, extra={"task_id": task_id, "account_id": state.id})
        await self.service.retire_account(task_id, state.id, "proxy", reason)

    async def _retire(self, task_id: int, account_id: int, verdict: Verdict) -> None:
        if verdict.outcome not in (Outcome.CAPTCHA, Outcome.DAILY_CAP):
            self.state(account_id).logged_in = False  # its session is no good any more
        reason = verdict.reason
        if verdict.outcome in (Outcome.BANNED, Outcome.BAD_CREDENTIALS):
            await self.service.retire_account(task_id, account_id, "disable", reason)
        elif verdict.outcome is Outcome.DAILY_CAP:
            await self.service.retire_account(task_id, account_id, "cool_down", reason, self._daily_cap_seconds())
        elif verdict.outcome is Outcome.CAPTCHA:
            await self.service.retire_account(task_id, account_id, "cool_down", reason,
                                              self.captcha_rest(self.state(account_id)))
        else:
            await self.service.retire_account(task_id, account_id, "cool_down", reason, self.login_failure_cooldown)

    def captcha_rest(self, state: AccountState) -> float:
        """How long the account rests after its captchas: short after the first (a platform's
        captcha is often a one-off and the account's yield matters), doubling on each captcha it
        met again without a good page between, up to ACCOUNTS_CAPTCHA_COOLDOWN."""
        return min(self.captcha_cooldown, self.captcha_first_cooldown * 2 ** (max(1, state.captchas) - 1))

    def _daily_cap_seconds(self) -> float:
        """Until a minute after the next local midnight (DST-aware), when the platform's daily cap resets.

        By this process's clock (`quota_day.clock`), not the database's: this runs on the reactor
        thread, where a query would block, and what ends is the platform's day, which neither
        clock knows better; the extra minute absorbs skew. `cool_down` counts it from the database clock.
        """
        if self.daily_cap_cooldown is not None:
            return self.daily_cap_cooldown
        quota_day = self.service.config.quota_day
        return max(60.0, quota_day.seconds_until_midnight(quota_day.clock()) + 60)

    @staticmethod
    def _again(request: Request, **meta: Any) -> Request:
        """The same request again, to be stamped afresh with the task's account (no retry counted)."""
        fresh = {key: value for key, value in request.meta.items() if key not in _STAMPS}
        headers = request.headers.copy()
        undress(fresh, headers)
        fresh.update(meta)
        return request.replace(meta=fresh, headers=headers, dont_filter=True, priority=request.priority + 1)
