"""Command line of ``python -m sandbox``.

``--profile`` picks a row of ``sandbox.config.PROFILES``; each misbehaviour flag overrides one
knob of it. Bad arguments end the process with one ``sandbox: error: …`` line on stderr and
exit status 2; a port that cannot be bound, exit status 1. The only stdout output is the
``sandbox serving http://HOST:PORT`` line (see ``sandbox.server``).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from sandbox.app import Site
from sandbox.config import (
    API_STYLES,
    PROFILES,
    ConfigError,
    Knobs,
    SiteSettings,
    default_accounts,
    load_accounts,
)
from sandbox.data import DEFAULT_DOMAINS
from sandbox.server import ListenError, serve

log = logging.getLogger(__name__)

# flag -> (knob, type, help); every one defaults to "take the profile's value"
_KNOB_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--rate-limit", "rate_limit", float, "requests/s per account (token bucket); 0 = off"),
    ("--retry-after", "retry_after", int, "seconds announced in Retry-After with a 429"),
    ("--daily-page-cap", "daily_page_cap", int, "listing pages per account per day; 0 = off"),
    ("--ban-after", "ban_after", int,
     "ban an account after N limit responses without backing off; 0 = off"),
    ("--captcha-rate", "captcha_rate", float, "share of listing requests answered by a captcha"),
    ("--error-rate", "error_rate", float, "share answered by 500/502/503"),
    ("--slow-rate", "slow_rate", float, "share answered after --slow-ms"),
    ("--slow-ms", "slow_ms", int, "delay of a slow response, milliseconds"),
    ("--malformed-rate", "malformed_rate", float, "share answered 200 with a truncated body"),
    ("--shift-every", "shift_every", int,
     "insert a new influencer at the top every N listing requests of a domain; 0 = off"),
    ("--session-ttl", "session_ttl", float, "seconds a login stays valid (default 3600)"),
    ("--maintenance", "maintenance", float,
     "share of all requests, login included, answered 503 (1 = the whole site is down)"),
    ("--cursor-ttl", "cursor_ttl", float,
     "seconds a cursor of the token-cursor API stays valid (default 600)"),
    ("--link-window", "link_window", float,
     "seconds an address or User-Agent stays tied to the account that used it (default 300)"),
    ("--day", "day", int, "the day whose fans are served with --fans-growth (default 0)"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """One line, no usage dump: the caller is often a script reading stderr."""
        sys.stderr.write(f"sandbox: error: {message}\n")
        raise SystemExit(2)


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    settings: SiteSettings
    knobs: Knobs
    log_level: str


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m sandbox",
                     description="Reference influencer platform to crawl (demo, tests, bench).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--domains", type=_csv, default=DEFAULT_DOMAINS,
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--pages", type=int, default=50, help="pages per domain")
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--accounts", metavar="FILE",
                        help='JSON list of {"username", "password"}; default demo1..demo8')
    parser.add_argument("--profile", choices=sorted(PROFILES), default="clean")
    parser.add_argument("--api", choices=API_STYLES, default=API_STYLES[0],
                        help="form-page: form login and page numbers (default); token-cursor: "
                             "also /api/v2 with a JSON login, a header token and signed cursors")
    for flag, knob, kind, help_text in _KNOB_FLAGS:
        parser.add_argument(flag, dest=knob, type=kind, default=None, help=help_text)
    parser.add_argument("--ban-accounts", dest="ban_accounts", type=_csv, default=None,
                        help="comma-separated accounts banned at their first listing request")
    parser.add_argument("--link-accounts", dest="link_accounts", default=None,
                        action=argparse.BooleanOptionalAction,
                        help="ban an account whose request comes from the address, or carries "
                             "the User-Agent, another account used within --link-window "
                             "(账号关联; see sandbox.linking); default off")
    parser.add_argument("--captcha-solvable", dest="captcha_solvable", default=None,
                        action=argparse.BooleanOptionalAction,
                        help="a captcha challenges the account: its listings get the captcha "
                             "until it answers the arithmetic question (POST /captcha, "
                             "POST /api/v2/verify; see sandbox.captcha); default off")
    parser.add_argument("--rate-limit-headers", dest="rate_limit_headers", default=None,
                        action=argparse.BooleanOptionalAction,
                        help="every listing answer of an account (200 and 429, both API styles) "
                             "carries RateLimit-Limit, -Remaining, -Reset and -Policy describing "
                             "its --rate-limit bucket (IETF draft; see sandbox.misbehaviour); "
                             "default off")
    parser.add_argument("--fans-growth", dest="fans_growth", default=None,
                        action=argparse.BooleanOptionalAction,
                        help="fans change by a seeded amount per --day (about 20%% never, some "
                             "lose; see sandbox.data.grown), in every listing and the truth; "
                             "default off")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parse and validate; raises ConfigError (or exits 2 on syntax errors)."""
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, got {args.port}")
    accounts = load_accounts(args.accounts) if args.accounts else default_accounts()
    settings = SiteSettings(seed=args.seed, domains=args.domains, pages=args.pages,
                            page_size=args.page_size, accounts=accounts, api=args.api)
    overrides = {knob: getattr(args, knob) for _, knob, _, _ in _KNOB_FLAGS}
    overrides["ban_accounts"] = args.ban_accounts
    overrides["link_accounts"] = args.link_accounts
    overrides["captcha_solvable"] = args.captcha_solvable
    overrides["rate_limit_headers"] = args.rate_limit_headers
    overrides["fans_growth"] = args.fans_growth
    knobs = PROFILES[args.profile].updated({k: v for k, v in overrides.items() if v is not None})
    settings.check_knobs(knobs)
    return Options(args.host, args.port, settings, knobs, args.log_level)


def _announce(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options = parse_args(argv)
    except ConfigError as exc:
        sys.stderr.write(f"sandbox: error: {exc}\n")
        return 2
    logging.basicConfig(level=options.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    site = Site(options.settings, options.knobs)
    log.info("seed %s, %d domains x %d pages x %d rows, api %s, knobs %s",
             options.settings.seed, len(options.settings.domains), options.settings.pages,
             options.settings.page_size, options.settings.api, options.knobs.to_json())
    try:
        asyncio.run(serve(site, options.host, options.port, _announce))
    except ListenError as exc:
        sys.stderr.write(f"sandbox: error: {exc}\n")
        return 1
    return 0
