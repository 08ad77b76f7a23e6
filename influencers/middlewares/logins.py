"""Logging an account in: one login at a time per account, through the account's identity.

The account middleware (`influencers.middlewares.accounts`) asks `AccountLogin.ensure_session`
before it sends a request of an account; the first request of an account without a session logs
it in through the site adapter (the password lives only in the login request's body and is never
logged), the others wait for that login. A login that meets a platform outage
(`influencers.middlewares.platform`) waits for the platform and tries again, no attempt counted;
one its proxy fails raises `ProxyFailed` (the account rests, it is not the account's standing);
one the platform refuses raises `AccountUnusable` with the verdict.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from influencers.core.account_model import Identity
from influencers.core.budgets import Budget
from influencers.core.credentials import UnreadableSecret
from influencers.core.errors import SecretKeyError
from influencers.extensions.runs import META_LOGIN, Gate
from influencers.ingest.reasons import CloseReason
from influencers.middlewares.identity import dress, proxy_fault
from influencers.middlewares.pacing import AccountPacing
from influencers.middlewares.platform import PlatformUnavailable
from influencers.sites.base import AdapterError, MalformedPage, Outcome, Session, Verdict, adapter_code

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from influencers.extensions.interface import AccountDesk

logger = logging.getLogger(__name__)


class ProxyFailed(Exception):
    """The account's proxy failed its request (the message says how; no credentials in it)."""


class AccountUnusable(Exception):
    """The account cannot log in (refused, banned, or the login keeps failing)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


@dataclass
class AccountState:
    """What this process knows about one account's session and pages today (its pace:
    `influencers.middlewares.pacing`)."""

    id: int
    logged_in: bool = False
    generation: int = 0
    login: Gate | None = None
    login_error: AccountUnusable | None = None
    session: Session = field(default_factory=Session)
    identity: Identity = field(default_factory=Identity)
    page_budget: int | None = None  # listing pages it may read today (None: no budget)
    pages_used: int = 0  # listing pages it read today, as counted at login and since
    captchas: int = 0  # captchas met since its last good page (its next rest doubles)

    @property
    def jar(self) -> str:
        return f"account-{self.id}"

    @property
    def budget_spent(self) -> bool:
        return self.page_budget is not None and self.pages_used >= self.page_budget

    def keep_to(self, budget: Budget) -> None:
        """Stop at ``budget``'s pages a day."""
        self.page_budget, self.pages_used = budget.pages_per_day, budget.pages_today


class AccountLogin:
    """Logs accounts in for the account middleware, at each account's pace."""

    def __init__(self, crawler: Crawler, service: AccountDesk, pacing: AccountPacing, *, login_attempts: int,
                 transport_errors: tuple[type[BaseException], ...]) -> None:
        self.crawler = crawler
        self.service = service
        self.stats = crawler.stats
        self.login_attempts = login_attempts
        self.transport_errors = transport_errors
        self.pacing = pacing

    async def ensure_session(self, state: AccountState) -> None:
        if state.logged_in:
            return
        if state.login is not None:
            await state.login.wait()
            if state.logged_in:
                return
            if state.login_error is not None:
                raise state.login_error
        gate = state.login = Gate()
        state.login_error = None
        try:
            await self._login(state)
            state.logged_in = True
            state.generation += 1
        except AccountUnusable as exc:
            state.login_error = exc
            raise
        finally:
            state.login = None
            gate.open()

    async def _login(self, state: AccountState) -> None:
        adapter = self.service.adapter
        try:
            username, password, state.identity, budget = await self.service.login_details(state.id)
            budget = budget.over(adapter.budgets)
            state.keep_to(budget)
            self.pacing.keep_to(state.id, budget.requests_per_minute)
        except UnreadableSecret as exc:  # the key is the deployment's: this account's row is bad
            raise AccountUnusable(Verdict(Outcome.BAD_CREDENTIALS, message=str(exc))) from None
        except SecretKeyError as exc:  # a configuration error, not the account's or the page's
            self.service.stop_for_configuration(CloseReason.SECRET_KEY, str(exc))
            raise IgnoreRequest(str(exc)) from None
        last = Verdict(Outcome.SERVER_ERROR, message="login failed")
        attempts = 0
        while attempts < self.login_attempts:
            await self.pacing.wait_turn(state.id)
            self.pacing.sent(state.id)
            attempts += 1
            try:
                form = None
                with adapter_code("login_form_request"):
                    form_request = adapter.login_form_request()
                if form_request is not None:
                    form = await self._download_login(form_request, state)
                with adapter_code("login_submit_request"):
                    submit = adapter.login_submit_request(username, password, form)
                response = await self._download_login(submit, state)
            except (AdapterError, ProxyFailed):
                raise  # the adapter's bug, or the proxy's fault: no retry through it mends either
            except PlatformUnavailable as exc:  # the platform is down: not this account's failure
                attempts -= 1
                self.stats.inc_value("accounts/login_waited_for_platform")
                await exc.wait()
                continue
            except MalformedPage as exc:
                last = Verdict(Outcome.MALFORMED, message=f"login form: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - network trouble: try again
                last = Verdict(Outcome.SERVER_ERROR, message=f"login request failed: {type(exc).__name__}")
                continue
            with adapter_code("check_login"):
                verdict = adapter.check_login(response)
            if verdict.ok:
                with adapter_code("open_session"):
                    state.session = adapter.open_session(response)
                self.stats.inc_value("accounts/login")
                through = f" through proxy {state.identity.proxy_host}" if state.identity.proxy_url else ""
                logger.info("account %s logged in%s", state.id, through, extra={"account_id": state.id})
                if state.identity.proxy_url:
                    self.service.proxy_ok(state.id)
                return
            self.stats.inc_value(f"accounts/login_{verdict.outcome.value}")
            last = verdict
            if verdict.outcome in (Outcome.BAD_CREDENTIALS, Outcome.BANNED):
                break
            if verdict.outcome is Outcome.RATE_LIMITED:
                self.pacing.on_rate_limited(state.id, verdict.retry_after, response.headers)
        raise AccountUnusable(last)

    async def solve_captcha(self, state: AccountState, captcha: Response) -> bool:
        """Ask the adapter to answer ``captcha`` for the account (its `captcha_solution`, sent
        through the account's identity and session; `captcha_solved` judges the answer). False
        when the adapter cannot, or the answer did not go through or was refused."""
        adapter = self.service.adapter
        with adapter_code("captcha_solution"):
            answer = adapter.captcha_solution(captcha, state.session)
        if answer is None:
            return False
        answer = self.login_request(answer, state)
        dress(answer, Identity(), state.session.headers)
        with adapter_code("authorize"):
            answer = adapter.authorize(answer, state.session)
        try:
            response = await self.crawler.engine.download_async(answer)
        except Exception as exc:  # noqa: BLE001 - not answered: the account rests as without a solver
            logger.info("account %s: the captcha answer did not go through: %s", state.id, type(exc).__name__,
                        extra={"account_id": state.id})
            return False
        with adapter_code("captcha_solved"):
            return adapter.captcha_solved(response)

    async def _download_login(self, request: Request, state: AccountState) -> Response:
        """A login request of the account, sent through its identity; ProxyFailed when its proxy
        fails it (refused, 407, a broken tunnel, a timeout)."""
        login = self.login_request(request, state)
        try:
            response = await self.crawler.engine.download_async(login)
        except PlatformUnavailable:
            raise
        except Exception as exc:
            fault = proxy_fault(login, exception=exc, transport_errors=self.transport_errors)
            if fault is not None:
                raise ProxyFailed(fault) from None
            raise
        fault = proxy_fault(login, response=response)
        if fault is not None:
            raise ProxyFailed(fault)
        return response

    @staticmethod
    def login_request(request: Request, state: AccountState) -> Request:
        meta = {**request.meta, META_LOGIN: state.id, "cookiejar": state.jar, "download_slot": state.jar,
                "dont_redirect": True, "handle_httpstatus_all": True, "dont_retry": False}
        login = request.replace(meta=meta, dont_filter=True)
        dress(login, state.identity)
        return login
