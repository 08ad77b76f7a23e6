"""Settings of the reference platform: the data set, the accounts and the misbehaviour knobs.

``PROFILES`` is the one table of misbehaviour presets; command-line flags and
``POST /__admin/config`` override single knobs of it. Everything is validated here, so a bad
value fails at start (or with a 400 from the admin endpoint), never mid-request.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.data import DEFAULT_DOMAINS, uid_prefix

DEFAULT_ACCOUNT_COUNT = 8
API_STYLES = ("form-page", "token-cursor")  # see SiteSettings.api


class ConfigError(ValueError):
    """A sandbox setting is invalid."""


@dataclass(frozen=True)
class Knobs:
    """Misbehaviour switches; every one at its zero value means "behave"."""

    rate_limit: float = 0.0  # requests/s per account (token bucket); 0 = off
    retry_after: int = 1  # seconds sent in Retry-After with a 429
    rate_limit_headers: bool = False  # RateLimit-* headers on listing answers (needs rate_limit)
    daily_page_cap: int = 0  # listing pages per account per (UTC+8) day; 0 = off
    ban_after: int = 0  # limit responses ignored in a row before a permanent ban; 0 = off
    ban_accounts: frozenset[str] = field(default_factory=frozenset)  # banned at first listing
    captcha_rate: float = 0.0
    captcha_solvable: bool = False  # a captcha challenges the account until it is answered
    error_rate: float = 0.0  # 500/502/503
    slow_rate: float = 0.0
    slow_ms: int = 0
    malformed_rate: float = 0.0  # 200 with the body cut short
    shift_every: int = 0  # insert one row at the top every N listing requests of a domain
    session_ttl: float = 3600.0  # seconds a login stays valid
    maintenance: float = 0.0  # share of ALL requests (login too, not /__admin) answered 503; 1 = the site is down
    cursor_ttl: float = 600.0  # seconds a token-cursor API cursor stays valid
    link_accounts: bool = False  # ban an account seen on another's address or User-Agent
    link_window: float = 300.0  # seconds an address or User-Agent stays tied to an account
    fans_growth: bool = False  # fans change by a seeded daily amount (sandbox.data.grown)
    day: int = 0  # the day served when fans_growth is on; set it to "crawl again tomorrow"

    def __post_init__(self) -> None:
        for name in ("captcha_rate", "error_rate", "slow_rate", "malformed_rate", "maintenance"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, got {value}")
        for name in ("rate_limit", "daily_page_cap", "ban_after", "slow_ms", "shift_every", "day"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.retry_after < 1:
            raise ConfigError(f"retry_after must be >= 1 second, got {self.retry_after}")
        for name in ("session_ttl", "cursor_ttl", "link_window"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.slow_ms > 120_000:
            raise ConfigError(f"slow_ms must be <= 120000, got {self.slow_ms}")

    def updated(self, changes: dict[str, Any]) -> Knobs:
        """A copy with ``changes`` applied (JSON-ish values accepted); unknown keys rejected."""
        types = {f.name: f.type for f in dataclasses.fields(self)}
        coerced: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in types:
                raise ConfigError(f"unknown knob {key!r}; known: {', '.join(sorted(types))}")
            coerced[key] = _coerce(key, value)
        return dataclasses.replace(self, **coerced)

    @property
    def growth_day(self) -> int:
        """The day whose fans are served: ``day`` with ``fans_growth`` on, else 0 (base fans)."""
        return self.day if self.fans_growth else 0

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ban_accounts"] = sorted(self.ban_accounts)
        return data


def _coerce(key: str, value: Any) -> Any:
    try:
        if key == "ban_accounts":
            if isinstance(value, str):
                value = value.split(",")
            return frozenset(str(v).strip() for v in value if str(v).strip())
        if key in ("link_accounts", "captcha_solvable", "rate_limit_headers", "fans_growth"):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(value, bool):
            raise TypeError
        if key in ("retry_after", "daily_page_cap", "ban_after", "slow_ms", "shift_every", "day"):
            if isinstance(value, float) and not value.is_integer():
                raise TypeError
            return int(value)
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"bad value for {key}: {value!r}") from None


PROFILES: dict[str, Knobs] = {
    # No misbehaviour at all: unit/integration tests and benchmarks.
    "clean": Knobs(),
    # A little of everything a real marketplace does; a careless crawler gets banned.
    "realistic": Knobs(
        rate_limit=10, retry_after=1, daily_page_cap=1000, ban_after=30, captcha_rate=0.01,
        error_rate=0.01, slow_rate=0.02, slow_ms=800, malformed_rate=0.01,
    ),
    # A lot of everything, still crawlable by a client that honours Retry-After and rotates.
    "hostile": Knobs(
        rate_limit=5, retry_after=2, daily_page_cap=200, ban_after=20, captcha_rate=0.05,
        error_rate=0.05, slow_rate=0.05, slow_ms=1500, malformed_rate=0.05, shift_every=50,
        session_ttl=600,
    ),
}


@dataclass(frozen=True)
class Account:
    username: str
    password: str = field(repr=False)


def default_accounts() -> tuple[Account, ...]:
    """demo1 … demo8 with password ``sandbox-<name>``."""
    return tuple(
        Account(f"demo{i}", f"sandbox-demo{i}") for i in range(1, DEFAULT_ACCOUNT_COUNT + 1)
    )


def load_accounts(path: str | Path) -> tuple[Account, ...]:
    """Read a JSON list of ``{"username", "password"}`` objects."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read accounts file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"accounts file {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"accounts file {path} must hold a non-empty JSON list")
    accounts = []
    for entry in raw:
        if not (isinstance(entry, dict) and isinstance(entry.get("username"), str)
                and isinstance(entry.get("password"), str) and entry["username"]):
            raise ConfigError(
                f"accounts file {path}: each entry needs a string username and password")
        accounts.append(Account(entry["username"], entry["password"]))
    names = [a.username for a in accounts]
    if len(set(names)) != len(names):
        raise ConfigError(f"accounts file {path} lists a username twice")
    return tuple(accounts)


@dataclass(frozen=True)
class SiteSettings:
    """What the platform serves; fixed for the life of the process."""

    seed: int = 42
    domains: tuple[str, ...] = DEFAULT_DOMAINS
    pages: int = 50
    page_size: int = 20
    accounts: tuple[Account, ...] = field(default_factory=default_accounts)
    # "form-page": form login, cookie session, page numbers (HTML, JSON and JS listings).
    # "token-cursor": those plus /api/v2 (JSON login, header token, signed cursors, codes).
    api: str = "form-page"

    def __post_init__(self) -> None:
        if self.api not in API_STYLES:
            raise ConfigError(f"api must be one of {', '.join(API_STYLES)}, got {self.api!r}")
        if not self.domains:
            raise ConfigError("at least one domain is needed")
        if len(set(self.domains)) != len(self.domains):
            raise ConfigError("a domain is listed twice")
        if len({uid_prefix(d) for d in self.domains}) != len(self.domains):
            raise ConfigError("two domains map to the same uid prefix; rename one")
        if not 1 <= self.pages <= 100_000:
            raise ConfigError(f"pages must be between 1 and 100000, got {self.pages}")
        if not 1 <= self.page_size <= 500:
            raise ConfigError(f"page_size must be between 1 and 500, got {self.page_size}")

    @property
    def usernames(self) -> frozenset[str]:
        return frozenset(a.username for a in self.accounts)

    def check_knobs(self, knobs: Knobs) -> None:
        """Knobs that name accounts must name existing ones."""
        unknown = knobs.ban_accounts - self.usernames
        if unknown:
            raise ConfigError(f"ban_accounts names unknown accounts: {', '.join(sorted(unknown))}")
