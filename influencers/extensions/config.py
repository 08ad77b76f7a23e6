"""The ingestion components' settings: one frozen dataclass each, read and validated once at start.

Defaults live in one place, `influencers/settings.py`; nothing here repeats them. A crawler built
without the project's settings (a test's ``get_crawler(settings_dict=…)``) still reads them:
`with_project_defaults` puts the project module's values under every name the crawler lacks. A bad
value is one `ConfigError` naming the setting, which the ingestion service reports as one line
when the spider starts (exit status 2), never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

from scrapy.settings import BaseSettings

from influencers.core.errors import ConfigError


def with_project_defaults(settings: BaseSettings) -> BaseSettings:
    """``settings`` over the values of `influencers.settings` (each name keeps the priority it
    has; the project's fill in at the lowest)."""
    from influencers import settings as project

    merged = BaseSettings()
    merged.setmodule(project, priority="default")
    merged.update(settings)
    return merged


class _Reader:
    """Typed reads of one settings object; each bad value is a ConfigError naming the setting."""

    def __init__(self, settings: BaseSettings) -> None:
        self.settings = with_project_defaults(settings)

    def number(self, name: str, *, positive: bool = False) -> float:
        value = self.settings.get(name)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not (number > 0 if positive else number >= 0):  # NaN fails both
            raise ConfigError(name, f"must be a number {'above 0' if positive else 'of 0 or more'}, not {value!r}")
        return number

    def optional_number(self, name: str) -> float | None:
        return None if self.settings.get(name) in (None, "") else self.number(name)

    def whole(self, name: str, *, minimum: int) -> int:
        value = self.settings.get(name)
        number: int | None = None
        if isinstance(value, float):
            number = int(value) if value.is_integer() else None
        else:
            try:
                number = int(value)
            except (TypeError, ValueError):
                pass
        if number is None or number < minimum:
            raise ConfigError(name, f"must be a whole number of {minimum} or more, not {value!r}")
        return number

    def flag(self, name: str) -> bool:
        try:
            return self.settings.getbool(name)
        except ValueError:
            raise ConfigError(name, f"must be True or False, not {self.settings.get(name)!r}") from None

    def text(self, name: str) -> str | None:
        value = self.settings.get(name)
        if value is not None and not isinstance(value, str):
            raise ConfigError(name, f"must be text, not {value!r}")
        return value or None


def transport_errors(settings: BaseSettings) -> tuple[type[BaseException], ...]:
    """The exceptions RETRY_EXCEPTIONS names: a request that never got an answer (refused,
    timed out, cut off, a broken tunnel)."""
    from scrapy.utils.misc import load_object

    return tuple(load_object(name) if isinstance(name, str) else name for name in settings.getlist("RETRY_EXCEPTIONS"))


def site_adapter_path(settings: BaseSettings) -> str:
    """The adapter a crawl uses: SITE_ADAPTER, else INFLUENCERS_SITE_ADAPTER."""
    from influencers.core.config import get_config

    return _Reader(settings).text("SITE_ADAPTER") or get_config().site_adapter


ACCOUNT_MIDDLEWARE = "influencers.middlewares.accounts.AccountsMiddleware"


def _check_account_middleware(read: _Reader) -> None:
    """Without the account middleware every request would go out with no account and no login,
    and each page's "log in first" answer would be blamed on the platform: refuse to start unless
    ACCOUNTS_ENABLED says a crawl without accounts is meant."""
    if not read.flag("ACCOUNTS_ENABLED"):
        return
    # It sits in DOWNLOADER_MIDDLEWARES_BASE (influencers/settings.py), so only an explicit None
    # in DOWNLOADER_MIDDLEWARES takes it out.
    switched = read.settings.getdict("DOWNLOADER_MIDDLEWARES")
    if ACCOUNT_MIDDLEWARE in switched and switched[ACCOUNT_MIDDLEWARE] is None:
        raise ConfigError("DOWNLOADER_MIDDLEWARES", f"{ACCOUNT_MIDDLEWARE} is switched off; keep it, or set"
                                                    " ACCOUNTS_ENABLED=False to crawl without accounts")


@dataclass(frozen=True)
class IngestSettings:
    """The ingestion service's: claims, leases, pages in flight, and the platform to crawl."""

    lease_seconds: float
    heartbeat_interval: float
    poll_interval: float
    max_tasks: int
    pages_in_flight: int
    claim_wait: float
    failed_pages_retry_after: float
    cursor_restarts: int
    db_retry_max: float
    adapter_path: str | None  # None: INFLUENCERS_SITE_ADAPTER (`Config.site_adapter`)
    site_url: str | None
    render: str | None

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> IngestSettings:
        read = _Reader(settings)
        _check_account_middleware(read)
        lease = read.number("INGEST_LEASE_SECONDS", positive=True)
        return cls(
            lease_seconds=lease,
            heartbeat_interval=read.number("INGEST_HEARTBEAT_INTERVAL") or lease / 3,
            poll_interval=read.number("INGEST_POLL_INTERVAL", positive=True),
            max_tasks=read.whole("INGEST_MAX_TASKS", minimum=0),
            pages_in_flight=read.whole("INGEST_PAGES_IN_FLIGHT", minimum=1),
            claim_wait=read.number("INGEST_CLAIM_WAIT"),
            failed_pages_retry_after=read.number("INGEST_FAILED_PAGES_RETRY_AFTER"),
            cursor_restarts=read.whole("INGEST_CURSOR_RESTARTS", minimum=0),
            db_retry_max=read.number("INGEST_DB_RETRY_MAX", positive=True),
            adapter_path=read.text("SITE_ADAPTER"),
            site_url=read.text("SITE_URL"),
            render=read.text("SITE_RENDER"),
        )


@dataclass(frozen=True)
class AccountsSettings:
    """The account middleware's: pacing, logins and cool-downs."""

    enabled: bool
    request_interval: float
    max_interval: float
    relogin_attempts: int
    login_attempts: int
    captcha_cooldown: float
    captcha_first_cooldown: float
    daily_cap_cooldown: float | None  # None: until the next local midnight
    login_failure_cooldown: float
    retry_after_margin: float

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> AccountsSettings:
        read = _Reader(settings)
        return cls(
            enabled=read.flag("ACCOUNTS_ENABLED"),
            request_interval=read.number("ACCOUNTS_REQUEST_INTERVAL"),
            max_interval=read.number("ACCOUNTS_MAX_INTERVAL"),
            relogin_attempts=read.whole("ACCOUNTS_RELOGIN_ATTEMPTS", minimum=0),
            login_attempts=read.whole("ACCOUNTS_LOGIN_ATTEMPTS", minimum=1),
            captcha_cooldown=read.number("ACCOUNTS_CAPTCHA_COOLDOWN"),
            captcha_first_cooldown=read.number("ACCOUNTS_CAPTCHA_FIRST_COOLDOWN"),
            daily_cap_cooldown=read.optional_number("ACCOUNTS_DAILY_CAP_COOLDOWN"),
            login_failure_cooldown=read.number("ACCOUNTS_LOGIN_FAILURE_COOLDOWN"),
            retry_after_margin=read.number("ACCOUNTS_RETRY_AFTER_MARGIN"),
        )


@dataclass(frozen=True)
class WriterSettings:
    """The MySQL pipeline's: batch size, flush interval, back-pressure, writer threads."""

    batch_items: int
    flush_interval: float
    max_pending_items: int
    writers: int

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> WriterSettings:
        read = _Reader(settings)
        return cls(
            batch_items=read.whole("MYSQL_BATCH_ITEMS", minimum=1),
            flush_interval=read.number("MYSQL_FLUSH_INTERVAL", positive=True),
            max_pending_items=read.whole("MYSQL_MAX_PENDING_ITEMS", minimum=1),
            writers=read.whole("MYSQL_WRITERS", minimum=1),
        )


@dataclass(frozen=True)
class TalliesSettings:
    """The response tallies': how often the crawl adds its 429s and captchas to the database."""

    flush_interval: float

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> TalliesSettings:
        return cls(flush_interval=_Reader(settings).number("TALLIES_FLUSH_INTERVAL", positive=True))


@dataclass(frozen=True)
class PlatformSettings:
    """The platform middleware's: when failing requests mean an outage, and how it is waited out."""

    enabled: bool
    failures: int  # consecutive failures, no success between, before the platform is checked
    http_codes: frozenset[int]  # statuses that mean the platform did not serve (5xx, gateway timeouts)
    first_delay: float
    max_delay: float
    probe_timeout: float

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> PlatformSettings:
        read = _Reader(settings)
        codes = read.settings.get("PLATFORM_OUTAGE_HTTP_CODES")
        try:
            http_codes = frozenset(int(code) for code in read.settings.getlist("PLATFORM_OUTAGE_HTTP_CODES"))
        except (TypeError, ValueError):
            http_codes = frozenset({0})
        if not http_codes or not all(100 <= code <= 599 for code in http_codes):
            raise ConfigError("PLATFORM_OUTAGE_HTTP_CODES", f"must be a list of HTTP status codes, not {codes!r}")
        first = read.number("PLATFORM_OUTAGE_FIRST_DELAY", positive=True)
        cap = read.number("PLATFORM_OUTAGE_MAX_DELAY", positive=True)
        if cap < first:
            raise ConfigError("PLATFORM_OUTAGE_MAX_DELAY", f"must be at least PLATFORM_OUTAGE_FIRST_DELAY ({first:g})")
        return cls(
            enabled=read.flag("PLATFORM_OUTAGE_ENABLED"),
            failures=read.whole("PLATFORM_OUTAGE_FAILURES", minimum=1),
            http_codes=http_codes,
            first_delay=first,
            max_delay=cap,
            probe_timeout=read.number("PLATFORM_PROBE_TIMEOUT", positive=True),
        )
