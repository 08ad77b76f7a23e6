"""The one place environment variables are read.

Every process (CLI, spider, exporter, sandbox tools) builds one frozen `Config` at start, so a
missing or malformed setting fails before any work begins, with a line naming the variable.
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from influencers.core.errors import ConfigError
from influencers.core.quotaday import QuotaDay

DEFAULT_MYSQL_URL = "mysql://root:@127.0.0.1:3306/influencers"
DEFAULT_SITE_URL = "http://127.0.0.1:8800"
DEFAULT_SITE_ADAPTER = "influencers.sites.sandbox.SandboxAdapter"
DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_EXPORT_DIR = "./exports"
#: The key file when INFLUENCERS_KEY_FILE is not set: under $XDG_CONFIG_HOME (default ~/.config), so
#: every process of the user finds the same key whatever its working directory.
DEFAULT_KEY_FILE = Path("influencers", "secret.key")
MIN_API_TOKEN_LENGTH = 16
_SAFE_DB_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
#: ``?tls=`` of the MySQL URL. auto: off on this machine's loopback (nothing to protect there, and
#: the TLS context pymysql builds costs CPU on every connection), preferred elsewhere.
TLS_MODES = ("auto", "disabled", "preferred", "required")
DEFAULT_ALERT_WINDOW = 3600.0
DEFAULT_ALERT_OUTAGE_AFTER = 300.0
#: INFLUENCERS_ALERT_URLS splits on white space, and on a comma that starts another URL (a comma
#: inside one, as in mailto's ``to=a,b``, stays).
_ALERT_URL_SEPARATOR = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_ALERT_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


@dataclass(frozen=True)
class MySQLSettings:
    """Where the database lives. `password` is kept out of repr so it never reaches a log."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    tls: str = "auto"

    @property
    def tls_mode(self) -> str:
        """disabled, preferred (TLS when the server offers it, unverified) or required (verified)."""
        if self.tls != "auto":
            return self.tls
        try:
            loopback = self.host == "localhost" or ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        return "disabled" if loopback else "preferred"

    @property
    def connection_url(self) -> str:
        """The URL with its password, for a child process's environment only (never a log)."""
        tls = "" if self.tls == "auto" else f"?tls={self.tls}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (f"mysql://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{host}:{self.port}"
                f"/{self.database}{tls}")

    @property
    def display(self) -> str:
        """The URL without its password, for messages."""
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go and how often. `urls` (apprise notification URLs) hold webhook keys and
    passwords: out of repr, and never printed (`alerting.Notifier` names them by service)."""

    urls: tuple[str, ...] = field(default=(), repr=False)
    #: A cause (kind, subject) is alerted at most once in this many seconds.
    window: float = DEFAULT_ALERT_WINDOW
    #: An outage (MySQL, the platform, a Scrapyd node) or a starved pool is alerted once it has
    #: lasted this many seconds.
    outage_after: float = DEFAULT_ALERT_OUTAGE_AFTER


@dataclass(frozen=True)
class Config:
    mysql: MySQLSettings
    secret_key: str | None = field(repr=False)
    #: None: INFLUENCERS_KEY_FILE is not set and there is no home directory for the default.
    key_file: Path | None
    export_dir: Path
    site_url: str
    tz_name: str
    #: Dotted path of the platform's SiteAdapter: crawls use it (unless ``-s SITE_ADAPTER``), and
    #: `start_crawl` asks it whether the platform pages with cursors.
    site_adapter: str
    #: Days in INFLUENCERS_TZ: quota days, daily-cap cool-downs, report days.
    quota_day: QuotaDay
    api_token: str | None = field(default=None, repr=False)
    scrapyd_username: str | None = None
    scrapyd_password: str | None = field(default=None, repr=False)
    alerts: AlertSettings = AlertSettings()

    @property
    def utc_offset(self) -> str:
        """The zone's offset now ('+08:00'), to label times shown to people; days come from `quota_day`."""
        return self.quota_day.utc_offset()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        tz_name = env.get("INFLUENCERS_TZ", DEFAULT_TZ).strip() or DEFAULT_TZ
        return cls(
            mysql=parse_mysql_url(env.get("INFLUENCERS_MYSQL_URL", DEFAULT_MYSQL_URL)),
            secret_key=_optional(env.get("INFLUENCERS_SECRET_KEY")),
            key_file=_key_file(env),
            export_dir=Path(env.get("INFLUENCERS_EXPORT_DIR", DEFAULT_EXPORT_DIR) or DEFAULT_EXPORT_DIR),
            site_url=_parse_site_url(env.get("INFLUENCERS_SITE_URL", DEFAULT_SITE_URL)),
            tz_name=tz_name,
            site_adapter=env.get("INFLUENCERS_SITE_ADAPTER", "").strip() or DEFAULT_SITE_ADAPTER,
            quota_day=_parse_zone(tz_name),
            api_token=_parse_api_token(env.get("INFLUENCERS_API_TOKEN")),
            # Scrapyd basic auth for nodes whose URL carries none (the dispatcher); the same
            # variables scrapy.cfg's deploy targets expand. The password is taken as written.
            scrapyd_username=_optional(env.get("SCRAPYD_USERNAME")),
            scrapyd_password=env.get("SCRAPYD_PASSWORD") or None,
            alerts=AlertSettings(
                urls=_parse_alert_urls(env.get("INFLUENCERS_ALERT_URLS", "")),
                window=_seconds(env, "INFLUENCERS_ALERT_WINDOW", DEFAULT_ALERT_WINDOW, minimum=1.0),
                outage_after=_seconds(env, "INFLUENCERS_ALERT_OUTAGE_AFTER", DEFAULT_ALERT_OUTAGE_AFTER, minimum=0.0),
            ),
        )


@lru_cache(maxsize=1)
def get_config() -> Config:
    """The process's configuration, read once from `os.environ`."""
    return Config.from_env()


def parse_mysql_url(url: str) -> MySQLSettings:
    variable = "INFLUENCERS_MYSQL_URL"
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mysql", "mysql+pymysql", "mariadb"):
        raise ConfigError(variable, "must look like mysql://user:password@host:3306/database")
    try:
        port = parts.port or 3306
    except ValueError:
        raise ConfigError(variable, "the port is not a number") from None
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ConfigError(variable, "names no database (…:3306/influencers)")
    if not set(database) <= _SAFE_DB_NAME or len(database) > 64:
        raise ConfigError(variable, "the database name may use only letters, digits, _ and $")
    options = parse_qs(parts.query)
    unknown = sorted(set(options) - {"tls"})
    tls = options.get("tls", ["auto"])[-1].strip().lower()
    if unknown or tls not in TLS_MODES:
        raise ConfigError(variable, f"takes one option, ?tls={'|'.join(TLS_MODES)}")
    return MySQLSettings(
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=database,
        tls=tls,
    )


def _parse_site_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("INFLUENCERS_SITE_URL", "must be an http(s) URL such as http://127.0.0.1:8800")
    return url.strip().rstrip("/")


def _parse_zone(tz_name: str) -> QuotaDay:
    """Any IANA zone, daylight saving included: `QuotaDay` needs no server time-zone tables."""
    try:
        return QuotaDay(ZoneInfo(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("INFLUENCERS_TZ", f"unknown time zone {tz_name!r} (e.g. Asia/Shanghai)") from None


def _parse_api_token(value: str | None) -> str | None:
    """The HTTP API's bearer token: printable ASCII (it travels in a header), long enough not to be guessed."""
    token = _optional(value)
    if token is None:
        return None
    if not all("!" <= ch <= "~" for ch in token):
        raise ConfigError("INFLUENCERS_API_TOKEN", "may use only printable ASCII without spaces")
    if len(token) < MIN_API_TOKEN_LENGTH:
        raise ConfigError(
            "INFLUENCERS_API_TOKEN",
            f"must be at least {MIN_API_TOKEN_LENGTH} characters (make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
        )
    return token


def _parse_alert_urls(value: str) -> tuple[str, ...]:
    """Notification URLs, checked for shape only (apprise knows the services; `alerting` asks it
    at start). A bad one is named by its position: the text may hold a webhook key."""
    urls = tuple(url for url in _ALERT_URL_SEPARATOR.split(value.strip()) if url)
    for position, url in enumerate(urls, 1):
        if not _ALERT_URL.fullmatch(url):
            raise ConfigError("INFLUENCERS_ALERT_URLS", f"item {position} is not a URL (scheme://…, e.g."
                                                        " json://host/path or dingtalk://token)")
    return urls


def _seconds(env: Mapping[str, str], variable: str, default: float, *, minimum: float) -> float:
    text = env.get(variable, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(variable, f"must be a number of seconds, not {text[:40]!r}") from None
    if not minimum <= value < float("inf"):
        raise ConfigError(variable, f"must be at least {minimum:g} seconds")
    return value


def _key_file(env: Mapping[str, str]) -> Path | None:
    """INFLUENCERS_KEY_FILE (made absolute), else $XDG_CONFIG_HOME/influencers/secret.key, else
    ~/.config/influencers/secret.key: never relative to the working directory."""
    given = _optional(env.get("INFLUENCERS_KEY_FILE"))
    if given is not None:
        return Path(os.path.abspath(os.path.expanduser(given)))
    xdg = _optional(env.get("XDG_CONFIG_HOME"))
    if xdg is not None and os.path.isabs(xdg):  # the XDG spec: a relative value is ignored
        return Path(xdg) / DEFAULT_KEY_FILE
    home = _optional(env.get("HOME"))
    if home is None or not os.path.isabs(home):
        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            return None
    return Path(home) / ".config" / DEFAULT_KEY_FILE


def _optional(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None
