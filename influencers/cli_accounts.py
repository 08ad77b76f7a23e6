"""`python -m influencers accounts …`: the account pool and each account's identity.

Passwords come from standard input, never from the command line, and are never printed; a proxy
URL may carry credentials too, so listings, messages and events show only its
``scheme://host:port``. `accounts import` takes many accounts, with their identities, from a
CSV file or standard input: every bad line is reported and then nothing is imported.
`accounts check` logs accounts in through their identities and reads one page
(`influencers.accountcheck`).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from influencers import progress
from influencers.argtypes import non_negative_int, positive_int, utf8_text
from influencers.core.accounts import MAX_PASSWORD_BYTES
from influencers.core.budgets import Budget, BudgetStore
from influencers.core.db import run_transaction
from influencers.core.errors import InfluencersError, InvalidArgument
from influencers.core.identities import KEEP, parse_headers, parse_proxy_url, parse_user_agent
from influencers.sites.base import adapter_class
from influencers.tables import render, visible

if TYPE_CHECKING:
    from influencers.cli import Context

ACCOUNT_COLUMNS = [
    ("id", "id"), ("username", "username"), ("status", "status"), ("status_reason", "reason"),
    ("remaining_quota", "quota left today"), ("daily_export_limit", "daily limit"),
    ("today_export_count", "exported today"), ("cooldown_until", "cool-down until"),
    ("last_used_at", "last used"), ("proxy", "proxy"), ("user_agent", "user agent"),
    ("proxy_health", "proxy health"), ("pages_today", "pages today"), ("pages_per_day", "page budget"),
    ("requests_per_minute", "req/min budget"),
]
#: How much of a user agent or a proxy failure a table shows (JSON and CSV show all of it).
TABLE_TEXT_WIDTH = 40
DEFAULT_DAILY_EXPORT_LIMIT = 4000
MAX_INT = 2**31 - 1  # accounts.daily_export_limit is an INT
IMPORT_FIELDS = ("username", "password", "proxy", "user_agent", "daily_export_limit")
MAX_IMPORT_ROWS = 10_000
MAX_IMPORT_BYTES = 16 * 1024 * 1024
PROXY_HELP = ("the proxy this account's requests go through: http(s)://[user:password@]host:port, stored"
              " encrypted (a command line is visible to other local users: `accounts import -` keeps proxy"
              " credentials off it)")


# -- listing (also the Accounts section of `status`) ------------------------------------------


def account_rows(ctx: Context, *, table: bool) -> list[dict[str, Any]]:
    """Every account with its identity as shown to operators: the proxy's host, never its URL."""
    accounts = ctx.accounts().list()
    views = ctx.identities().display([account.id for account in accounts])
    budgets = BudgetStore(ctx.conn, quota_day=ctx.config.quota_day).display([account.id for account in accounts])
    site = _site_budget(ctx)
    rows = []
    for account in accounts:
        view, budget = views[account.id], budgets[account.id]
        row = ctx.local(account.__dict__, "cooldown_until", "last_used_at")
        row.update(proxy=view.proxy_host, user_agent=view.user_agent, proxy_health=view.proxy_health,
                   pages_today=budget.pages_today,
                   pages_per_day=_budget_text(budget.pages_per_day, site.pages_per_day),
                   requests_per_minute=_budget_text(budget.requests_per_minute, site.requests_per_minute))
        if table:
            row.update(user_agent=_shorten(view.user_agent), proxy_health=_shorten(view.proxy_health))
        rows.append(row)
    return rows


def _site_budget(ctx: Context) -> Budget:
    """The site adapter's declared budgets (none when it cannot be loaded: `status` still works)."""
    try:
        return adapter_class(ctx.config.site_adapter).budgets
    except Exception:  # noqa: BLE001 - a bad adapter path is `scrapy crawl`'s and `start_crawl`'s to say
        return Budget()


def _budget_text(own: int | None, site: int | None) -> str | None:
    """The account's own budget, else the site's (marked so), else none."""
    if own is not None:
        return str(own)
    return f"{site} (site)" if site is not None else None


def cmd_accounts_set_budget(args: argparse.Namespace, ctx: Context) -> int:
    changes: dict[str, Any] = {}
    if args.pages_per_day is not None or args.no_pages_per_day:
        changes["pages_per_day"] = args.pages_per_day
    if args.requests_per_minute is not None or args.no_requests_per_minute:
        changes["requests_per_minute"] = args.requests_per_minute
    changed = BudgetStore(ctx.conn, quota_day=ctx.config.quota_day).set(_account_id(ctx, args), **changes)
    print(f"account {args.username or args.id}: budget changed ({changed})")
    return 0


def _shorten(text: str | None) -> str | None:
    return text if text is None or len(text) <= TABLE_TEXT_WIDTH else text[:TABLE_TEXT_WIDTH - 1] + "…"


def cmd_accounts_list(args: argparse.Namespace, ctx: Context) -> int:
    print(render(account_rows(ctx, table=args.format == "table"), ACCOUNT_COLUMNS, args.format))
    return 0


# -- one account ------------------------------------------------------------------------------


def cmd_accounts_add(args: argparse.Namespace, ctx: Context) -> int:
    identity = _identity_arguments(args)  # a bad proxy is refused before anything is asked or written
    accounts = ctx.accounts(with_cipher=True)
    accounts.check_key()  # a wrong or unreadable key is said before a password is asked for
    password = _read_password(args.password_stdin)
    account_id = accounts.add(args.username, password, args.daily_export_limit)
    print(f"account {args.username} added with id {account_id} (daily export limit {args.daily_export_limit})")
    if identity:
        changed = ctx.identities(with_cipher=True).set(account_id, **identity)
        print(f"account {args.username}: identity set ({changed})")
    return 0


def _identity_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The identity fields given on the command line, validated (nothing given: empty)."""
    identity: dict[str, Any] = {}
    if getattr(args, "proxy", None) is not None:
        identity["proxy_url"] = parse_proxy_url(args.proxy)[0]
    if getattr(args, "no_user_agent", False):
        identity["user_agent"] = None
    elif getattr(args, "user_agent", None) is not None:
        identity["user_agent"] = parse_user_agent(args.user_agent)
    if getattr(args, "no_headers", False):
        identity["headers"] = None
    elif getattr(args, "header", None):
        identity["headers"] = parse_headers(args.header)
    return identity


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        if sys.stdin is None:
            raise InvalidArgument("--password-stdin: standard input is closed")
        line = sys.stdin.buffer.readline()  # bytes: a text stream would let invalid UTF-8 through
        try:
            password = line.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise InvalidArgument("the password read from standard input is not valid UTF-8") from None
    elif sys.stdin is not None and sys.stdin.isatty():
        try:
            password = getpass.getpass("password: ")
            password.encode("utf-8")
        except UnicodeError:
            raise InvalidArgument("the password typed is not valid UTF-8") from None
    else:
        raise InvalidArgument("give the password on standard input with --password-stdin")
    if not password:
        raise InvalidArgument("the password read from standard input is empty")
    return password


def _account_id(ctx: Context, args: argparse.Namespace) -> int:
    return ctx.accounts().find(args.username).id if args.username else args.id


def cmd_accounts_disable(args: argparse.Namespace, ctx: Context) -> int:
    ctx.accounts().disable(_account_id(ctx, args), args.reason)
    print(f"account {args.username or args.id} disabled: {args.reason}")
    return 0


def cmd_accounts_enable(args: argparse.Namespace, ctx: Context) -> int:
    ctx.accounts().enable(_account_id(ctx, args))
    print(f"account {args.username or args.id} enabled")
    return 0


def cmd_accounts_reset_quotas(args: argparse.Namespace, ctx: Context) -> int:
    count = ctx.accounts().reset_quotas()
    print(f"today's export count reset for {count} account(s)")
    return 0


def cmd_accounts_set_proxy(args: argparse.Namespace, ctx: Context) -> int:
    proxy_url = None if args.none else parse_proxy_url(args.url)[0]
    changed = ctx.identities(with_cipher=proxy_url is not None).set(_account_id(ctx, args), proxy_url=proxy_url)
    print(f"account {args.username or args.id}: {changed}")
    return 0


def cmd_accounts_set_identity(args: argparse.Namespace, ctx: Context) -> int:
    identity = _identity_arguments(args)
    changed = ctx.identities().set(_account_id(ctx, args), **identity)
    print(f"account {args.username or args.id}: identity changed ({changed})")
    return 0


# -- import -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRow:
    """One account of an import file, validated."""

    line: int
    username: str
    password: str = field(repr=False)
    proxy_url: str | None = field(default=None, repr=False)
    user_agent: str | None = None
    daily_export_limit: int = DEFAULT_DAILY_EXPORT_LIMIT


def parse_import(text: str, in_pool: Collection[str] = ()) -> tuple[list[ImportRow], list[tuple[int, str]]]:
    """The accounts of a CSV text ``username,password,proxy,user_agent,daily_export_limit`` (an
    optional header line; trailing fields may be left out or empty; spaces after a comma are
    skipped), and the problems found as (line, what is wrong): one per bad record, never
    quoting a password or a proxy URL. A username twice in the text, or in ``in_pool``, is a
    problem."""
    rows: list[ImportRow] = []
    problems: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append((line, f"not valid CSV ({exc}); the lines after it were not read"))
            break
        if not record or (not rows and not problems and _is_header(record)):
            continue
        if len(rows) + len(problems) >= MAX_IMPORT_ROWS:
            problems.append((line, f"more than {MAX_IMPORT_ROWS} accounts in one file: split it"))
            break
        row, wrong = _import_row(line, record)
        if row is not None and row.username in first_line:
            wrong.append(f"username {row.username!r} is also on line {first_line[row.username]}")
        elif row is not None and row.username in in_pool:
            wrong.append(f"username {row.username!r} is already in the pool")
        if row is not None:
            first_line.setdefault(row.username, line)
        if wrong:
            problems.append((line, "; ".join(wrong)))
        else:
            rows.append(row)
    return rows, problems


def _is_header(record: list[str]) -> bool:
    names = [value.strip().lower() for value in record]
    return len(names) >= 2 and names == list(IMPORT_FIELDS[:len(names)])


def _import_row(line: int, record: list[str]) -> tuple[ImportRow | None, list[str]]:
    if len(record) > len(IMPORT_FIELDS):
        return None, [f"{len(record)} fields, expected at most {len(IMPORT_FIELDS)} ({','.join(IMPORT_FIELDS)});"
                      " quote a field that holds a comma"]
    username, password, proxy, user_agent, limit = (*record, "", "", "", "")[:len(IMPORT_FIELDS)]
    username, proxy, user_agent, limit = username.strip(), proxy.strip(), user_agent.strip(), limit.strip()
    wrong = []
    if not 1 <= len(username) <= 255:
        wrong.append("username must be 1 to 255 characters")
    if not password:
        wrong.append("empty password")
    elif len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        wrong.append(f"password longer than {MAX_PASSWORD_BYTES} bytes")
    proxy_url = _checked(parse_proxy_url, proxy, wrong)
    user_agent = _checked(parse_user_agent, user_agent, wrong)
    daily_limit = DEFAULT_DAILY_EXPORT_LIMIT
    if limit:
        if re.fullmatch(r"[0-9]{1,10}", limit) and int(limit) <= MAX_INT:
            daily_limit = int(limit)
        else:
            wrong.append(f"daily_export_limit must be a whole number from 0 to {MAX_INT}")
    row = ImportRow(line, username, password, proxy_url and proxy_url[0], user_agent, daily_limit)
    return (row if username else None), wrong


def _checked(parse: Any, text: str, wrong: list[str]) -> Any:
    if not text:
        return None
    try:
        return parse(text)
    except InvalidArgument as exc:
        wrong.append(str(exc))
        return None


def cmd_accounts_import(args: argparse.Namespace, ctx: Context) -> int:
    accounts = ctx.accounts(with_cipher=True)
    accounts.check_key()  # a wrong or unreadable key is said before the file is read
    source = "standard input" if args.file == "-" else visible(args.file)
    text = _import_text(args.file, source)
    rows, problems = parse_import(text, {account.username for account in accounts.list()})
    if problems:
        for line, wrong in problems:
            print(f"line {line}: {wrong}", file=sys.stderr)
        raise InvalidArgument(f"{source}: {len(problems)} bad line(s); nothing was imported")
    if not rows:
        raise InvalidArgument(f"{source}: no accounts to import")
    identities = ctx.identities(with_cipher=True)
    identities.check_key()  # in a transaction of its own: not inside the import's

    def add_all(cursor: Any) -> int:
        # one transaction: an outage or a concurrent add of the same name undoes all (a retry starts
        # a new bar, and an error clears it before the message is printed)
        with progress.bar("importing accounts", total=len(rows), unit="account") as bar:
            for row in rows:
                try:
                    account_id = accounts.add(row.username, row.password, row.daily_export_limit, cursor=cursor)
                    if row.proxy_url is not None or row.user_agent is not None:
                        identities.set(account_id, proxy_url=row.proxy_url or KEEP,
                                       user_agent=row.user_agent or KEEP, cursor=cursor)
                except InfluencersError as exc:
                    raise InvalidArgument(f"line {row.line}: {exc}; nothing was imported") from None
                bar.update()
        return len(rows)

    added = run_transaction(ctx.conn, add_all)
    with_proxy = sum(row.proxy_url is not None for row in rows)
    print(f"{added} account(s) imported from {source} ({with_proxy} with a proxy)")
    return 0


def _import_text(path: str, source: str) -> str:
    try:
        if path == "-":
            if sys.stdin is None:
                raise InvalidArgument("accounts import -: standard input is closed")
            data = sys.stdin.buffer.read(MAX_IMPORT_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_IMPORT_BYTES + 1)
    except OSError as exc:
        raise InvalidArgument(f"{source}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_IMPORT_BYTES:
        raise InvalidArgument(f"{source}: larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8-sig")  # with or without the BOM Excel writes
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InvalidArgument(f"{source}: line {line}: not UTF-8 text") from None


def cmd_accounts_check(args: argparse.Namespace, ctx: Context) -> int:
    from influencers.accountcheck import check_command  # Scrapy is loaded for this command only

    return check_command(args, ctx)


# -- parser -----------------------------------------------------------------------------------


def register(commands: Any) -> None:
    """Add `accounts` and its sub-commands to the CLI's sub-parsers."""
    accounts = commands.add_parser("accounts", help="the account pool").add_subparsers(dest="accounts_command",
                                                                                       required=True)
    add = accounts.add_parser("add", help="add an account; the password is read from stdin, never from the command line")
    add.add_argument("--username", required=True, type=utf8_text)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--daily-export-limit", type=non_negative_int, default=4000)
    add.add_argument("--proxy", metavar="URL", help=PROXY_HELP)
    _identity_options(add, clearing=False)
    add.set_defaults(handler=cmd_accounts_add)
    listing = accounts.add_parser("list", help="accounts with status and quota (never passwords)")
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    listing.set_defaults(handler=cmd_accounts_list)
    for name, handler, needs_reason in (("disable", cmd_accounts_disable, True), ("enable", cmd_accounts_enable, False)):
        sub = accounts.add_parser(name, help=f"{name} an account")
        _who(sub)
        if needs_reason:
            sub.add_argument("--reason", required=True, type=utf8_text, help="why; kept with the account and in its history")
        sub.set_defaults(handler=handler)
    accounts.add_parser("reset-quotas", help="start today's export quota from zero (for cron; not required)").set_defaults(
        handler=cmd_accounts_reset_quotas
    )

    set_proxy = accounts.add_parser("set-proxy", help="set or remove the proxy of an account (its failures are"
                                                      " forgotten)")
    _who(set_proxy)
    proxy = set_proxy.add_mutually_exclusive_group(required=True)
    proxy.add_argument("url", nargs="?", metavar="URL", help=PROXY_HELP)
    proxy.add_argument("--none", action="store_true", help="remove the proxy: the account connects directly")
    set_proxy.set_defaults(handler=cmd_accounts_set_proxy)
    set_identity = accounts.add_parser("set-identity", help="set or remove the user agent and extra headers of an"
                                                            " account")
    _who(set_identity)
    _identity_options(set_identity, clearing=True)
    set_identity.set_defaults(handler=cmd_accounts_set_identity)

    importing = accounts.add_parser(
        "import", help="add accounts from CSV: username,password,proxy,user_agent,daily_export_limit; every bad line"
                       " is reported and then nothing is imported")
    importing.add_argument("file", metavar="FILE", help="a UTF-8 CSV file (header line optional), or - for standard"
                                                        " input")
    importing.set_defaults(handler=cmd_accounts_import)

    set_budget = accounts.add_parser("set-budget", help="what the platform allows the account, where known: the"
                                                        " pool stops before it (default: the site adapter's)")
    _who(set_budget)
    pages = set_budget.add_mutually_exclusive_group()
    pages.add_argument("--pages-per-day", type=positive_int, help="listing pages a local day at most")
    pages.add_argument("--no-pages-per-day", action="store_true", help="remove it (the site's applies)")
    rate = set_budget.add_mutually_exclusive_group()
    rate.add_argument("--requests-per-minute", type=positive_int, help="requests a minute at most (paces the account)")
    rate.add_argument("--no-requests-per-minute", action="store_true", help="remove it (the site's applies)")
    set_budget.set_defaults(handler=cmd_accounts_set_budget)

    check = accounts.add_parser("check", help="log each account in through its identity and read page 1 of a domain;"
                                              " says ok, login failed, proxy failed or banned (exit 1 if any is not ok)")
    check.add_argument("--username", type=utf8_text, help="only this account (default: every account not disabled)")
    check.add_argument("--domain", type=utf8_text, help="the listing to read (default: the newest crawl's domain)")
    check.add_argument("--format", choices=("table", "csv", "json"), default="table")
    check.set_defaults(handler=cmd_accounts_check)


def _who(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--username", type=utf8_text)
    who.add_argument("--id", type=positive_int)


def _identity_options(parser: argparse.ArgumentParser, *, clearing: bool) -> None:
    agent = parser.add_mutually_exclusive_group() if clearing else parser
    agent.add_argument("--user-agent", metavar="UA", help="the User-Agent this account sends (printable ASCII, at"
                                                          " most 512 characters)")
    headers = parser.add_mutually_exclusive_group() if clearing else parser
    headers.add_argument("--header", action="append", metavar="'Name: value'",
                         help="an extra header this account sends; repeat for several (at most 20)"
                              + ("; replaces the account's extra headers" if clearing else ""))
    if clearing:
        agent.add_argument("--no-user-agent", action="store_true", help="remove the user agent: the crawl's default")
        headers.add_argument("--no-headers", action="store_true", help="remove the extra headers")

