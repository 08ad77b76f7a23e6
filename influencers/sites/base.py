"""Site adapters: everything that is specific to one platform, behind one small interface.

The spider, the account middleware and the pipeline never build a platform URL or look inside a
platform's page themselves; they ask the adapter named by the ``SITE_ADAPTER`` setting:

* how to log in (``login_form_request`` then ``login_submit_request``; ``check_login``), what a
  login gives the account (``open_session``: cookies, headers, a token) and how each request of
  that account carries it (``authorize``: a header, a query token, a signature),
* which request fetches page *n* of a domain's listing, in a render mode
  (``json`` API, server-rendered ``html``, or ``js`` rendered through a browser); on a platform
  that pages with opaque cursors (``pagination = "cursor"``) the request for page *n* also gets
  the cursor page *n - 1* gave (None for the first page),
* what a response means (``classify``: ok, login required, rate limited, daily cap, banned,
  captcha, malformed, server error, unknown domain, cursor expired),
* the rows of a good listing page (``parse_listing``), with whether the listing goes on and,
  for cursor platforms, the cursor of the next page,
* and what the system understands of a row (``profile``: fans, region, tags, contact, profile
  URL; typed, indexed columns beside the row's raw data).

An exception an adapter method raises (other than `MalformedPage`) is an adapter error: the
crawl does not blame the page or the account for it; the task pauses with the error as its
reason, an attempt counted, and fails once its attempts are spent.

Adapters speak HTTP only. To crawl another platform, subclass :class:`SiteAdapter` in a module
of your own and point ``SITE_ADAPTER`` at it (see the README).
"""

from __future__ import annotations

import email.utils
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

from scrapy import Request
from scrapy.http import Response
from scrapy.utils.misc import load_object

from influencers.core.budgets import Budget
from influencers.core.errors import ConfigError
from influencers.core.profile import Profile, default_profile

RENDER_MODES = ("json", "html", "js")
PAGINATIONS = ("page", "cursor")


class Outcome(str, Enum):
    """What a platform response means for the crawl."""

    OK = "ok"
    LOGIN_REQUIRED = "login_required"  # the session expired or never existed: log in again
    BAD_CREDENTIALS = "bad_credentials"  # the platform refused the username/password
    RATE_LIMITED = "rate_limited"  # slow this account down (Retry-After)
    DAILY_CAP = "daily_cap"  # this account may not read more pages today
    BANNED = "banned"  # this account is blocked for good
    CAPTCHA = "captcha"  # an interstitial instead of data; the account needs a rest
    MALFORMED = "malformed"  # truncated or unparseable body: fetch the page again
    SERVER_ERROR = "server_error"  # 5xx or an unexpected status: fetch the page again
    UNKNOWN_DOMAIN = "unknown_domain"  # the platform has no such listing: the task cannot succeed
    CURSOR_EXPIRED = "cursor_expired"  # the page's cursor is dead or refused: read the listing from its start


#: Outcomes that are the account's problem: the task moves to another account.
ACCOUNT_OUTCOMES = frozenset({Outcome.BANNED, Outcome.DAILY_CAP, Outcome.CAPTCHA, Outcome.BAD_CREDENTIALS})
#: Outcomes that are the page's problem: the same account fetches it again.
PAGE_OUTCOMES = frozenset({Outcome.MALFORMED, Outcome.SERVER_ERROR})


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    code: str | None = None  # the platform's own error code, e.g. E_DAILY_CAP
    message: str = ""  # the platform's message, for the account's status_reason
    retry_after: float | None = None  # seconds, for RATE_LIMITED

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def reason(self) -> str:
        """A short line for logs, stats keys and an account's status_reason."""
        parts = [self.outcome.value]
        if self.code:
            parts.append(self.code)
        if self.message:
            parts.append(self.message)
        return ": ".join(parts)[:255]


@dataclass(frozen=True)
class ListingPage:
    """One good listing page: its rows (platform dicts, each with at least ``uid``), whether the
    listing goes on after it, and on a cursor platform the opaque cursor that fetches the next
    page (a page that says more follows but gives no cursor is malformed)."""

    page: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    has_more: bool = False
    total_pages: int | None = None
    next_cursor: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Session:
    """What a login gave one account: its cookies (kept in the account's cookie jar as well, and
    handed to its browser pages), headers for every later request (``X-Auth-Token: …``), and any
    other values the adapter's `SiteAdapter.authorize` needs (a token to sign with). Its repr shows
    no value: a session is a credential and is never logged."""

    cookies: dict[str, str] = field(default_factory=dict, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    values: dict[str, Any] = field(default_factory=dict, repr=False)


class MalformedPage(ValueError):
    """The page is incomplete or cannot be parsed."""


class AdapterError(Exception):
    """A site adapter method raised: a bug in the adapter (or a platform change it does not
    know), not the page's or the account's fault. Carries the method and where it raised."""

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method


class SessionRefused(AdapterError):
    """Every login succeeded, yet the platform refused the session on the request right after
    it: the adapter does not carry the session (`SiteAdapter.open_session`, `authorize`)."""


@contextmanager
def adapter_code(method: str) -> Iterator[None]:
    """Run adapter code: an exception other than `MalformedPage` comes out as an `AdapterError`
    naming the method and the adapter's line that raised."""
    try:
        yield
    except (MalformedPage, AdapterError):
        raise
    except Exception as exc:  # noqa: BLE001 - any exception of the adapter's is its error
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        raise AdapterError(method, f"{type(exc).__name__}: {exc}{where}"[:400]) from exc


class SiteAdapter(ABC):
    """One platform. Subclasses set ``name`` and implement the abstract methods."""

    name: ClassVar[str] = "abstract"
    render_modes: ClassVar[tuple[str, ...]] = ("json",)
    default_render: ClassVar[str] = "json"
    #: ``page``: page *n* can be asked for directly (tasks may cover page ranges, pages may be
    #: read several at a time). ``cursor``: page *n* is reached only through the cursor page
    #: *n - 1* returned; the crawl reads one page at a time per task, stores the cursor with its
    #: progress marker to resume from, and a task always starts at page 1.
    pagination: ClassVar[str] = "page"
    #: What the platform allows one account, where known (pages a day, requests a minute): the
    #: pool keeps each account under it unless an operator set the account's own (`accounts
    #: set-budget`).
    budgets: ClassVar[Budget] = Budget()
    #: Downloader middlewares the platform needs besides the project's ({dotted path: order}),
    #: merged into DOWNLOADER_MIDDLEWARES when the crawl starts (a request signer, say).
    downloader_middlewares: ClassVar[dict[str, int]] = {}

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    @classmethod
    def from_crawler(cls, crawler: Any, base_url: str) -> SiteAdapter:
        """The adapter for a crawl: override to read settings of your own (an app key, a page
        size), under a prefix of the adapter's, from ``crawler.settings``."""
        return cls(base_url)

    def url(self, path: str) -> str:
        return self.base_url + path

    def check_render(self, render: str | None) -> str:
        render = render or self.default_render
        if render not in self.render_modes:
            raise ValueError(
                f"{self.name} pages can be read as {', '.join(self.render_modes)}, not {render!r}"
            )
        return render

    # -- login --------------------------------------------------------------------------------

    @abstractmethod
    def login_form_request(self) -> Request | None:
        """The request that fetches the login form (CSRF token, cookies), or None if not needed."""

    @abstractmethod
    def login_submit_request(self, username: str, password: str, form: Response | None) -> Request:
        """The request that logs in. Its body carries the password: never log it."""

    @abstractmethod
    def check_login(self, response: Response) -> Verdict:
        """OK if the login response means a session was opened, else why not."""

    def open_session(self, response: Response) -> Session:
        """The session a successful login response opened (``check_login`` said OK). The default
        keeps the cookies it set; a token platform returns ``Session(headers={"X-Auth-Token": …})``
        or keeps the token in ``values`` for `authorize`."""
        return Session(cookies=self.session_cookies(response))

    def authorize(self, request: Request, session: Session) -> Request:
        """``request`` as the account whose ``session`` this is sends it: called for every listing
        request after the account middleware chose the account (and again when the account or its
        session changes, so set values, do not append them). The default sets the session's
        headers on the request itself; return ``request.replace(url=…)`` for a query token or a
        signature over the URL."""
        for name, value in session.headers.items():
            request.headers[name] = value
        return request

    def session_cookies(self, response: Response) -> dict[str, str]:
        """Cookies set by a successful login (for browser-rendered pages)."""
        cookies: dict[str, str] = {}
        for header in response.headers.getlist(b"Set-Cookie"):
            pair = header.decode("latin-1").split(";", 1)[0]
            name, _, value = pair.partition("=")
            if name.strip():
                cookies[name.strip()] = value.strip()
        return cookies

    # -- captchas -----------------------------------------------------------------------------

    def captcha_solution(self, response: Response, session: Session) -> Request | None:
        """The request that answers the captcha ``response`` shows (``classify`` said CAPTCHA),
        for the account whose ``session`` this is; None (the default): not solved here, the
        account rests and the task moves on. The place for a solving service an operator has:
        the answer request goes through the account's proxy, cookies and `authorize`."""
        return None

    def captcha_solved(self, response: Response) -> bool:
        """Whether the platform accepted the answer `captcha_solution` sent."""
        return 200 <= response.status < 300

    # -- listings -----------------------------------------------------------------------------

    @abstractmethod
    def listing_request(self, domain: str, page: int, render: str, cursor: str | None = None) -> Request:
        """The request for page ``page`` (1-based) of ``domain``'s listing in ``render`` mode. A
        cursor platform gets ``cursor``, the `ListingPage.next_cursor` of page ``page - 1`` (None
        for page 1); a page platform is called without it."""

    @abstractmethod
    def classify(self, response: Response) -> Verdict:
        """What this response means (see :class:`Outcome`)."""

    @abstractmethod
    def parse_listing(self, response: Response, page: int) -> ListingPage:
        """The rows of a page ``classify`` found OK; raises MalformedPage if it is not whole."""

    def profile(self, row: dict[str, Any]) -> Profile:
        """The typed fields of one row `parse_listing` gave, for search and history. The default
        reads the names common platforms use (`default_profile`); override it for a platform that
        names them otherwise. It should not raise: a row it raises on is stored with no typed
        fields (one line logged per page), its raw data whole. Also run by `db init` over rows
        stored before, so it must depend on the row alone."""
        return default_profile(row)


def adapter_class(path: str) -> type[SiteAdapter]:
    """The adapter class named by a dotted path (``SITE_ADAPTER``)."""
    cls = load_object(path)
    if not (isinstance(cls, type) and issubclass(cls, SiteAdapter)):
        raise TypeError(f"SITE_ADAPTER {path!r} is not a SiteAdapter subclass")
    if cls.pagination not in PAGINATIONS:
        raise TypeError(f"SITE_ADAPTER {path!r}: pagination must be one of {', '.join(PAGINATIONS)},"
                        f" not {cls.pagination!r}")
    return cls


def pages_with_cursors(path: str) -> bool:
    """Whether the platform of the adapter at ``path`` pages with cursors (a crawl then cannot be
    split into page ranges). ConfigError, naming INFLUENCERS_SITE_ADAPTER, if it cannot be loaded."""
    try:
        return adapter_class(path).pagination == "cursor"
    except (ImportError, AttributeError, NameError, TypeError, ValueError) as exc:
        raise ConfigError("INFLUENCERS_SITE_ADAPTER", f"cannot load {path!r}: {exc}") from None


def configured_adapter(path: str, base_url: str) -> SiteAdapter:
    """The adapter at ``path`` outside a crawl (`db init` maps stored rows with its `profile`).
    ConfigError, naming INFLUENCERS_SITE_ADAPTER, if it cannot be loaded."""
    try:
        return load_adapter(path, base_url)
    except (ImportError, AttributeError, NameError, TypeError, ValueError) as exc:
        raise ConfigError("INFLUENCERS_SITE_ADAPTER", f"cannot load {path!r}: {exc}") from None


def load_adapter(path: str, base_url: str, crawler: Any = None) -> SiteAdapter:
    """The adapter named by a dotted path, built for ``base_url`` (through its `from_crawler`
    when there is a crawler)."""
    cls = adapter_class(path)
    return cls(base_url) if crawler is None else cls.from_crawler(crawler, base_url)


def parse_retry_after(value: bytes | str | None, default: float = 1.0, *, now: float | None = None) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if value is None:
        return default
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return default
    return max(0.0, when - (time.time() if now is None else now))
