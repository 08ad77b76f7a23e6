"""``python -m influencers accounts check``: log each account in and read one listing page
through its identity, and say per account what happened (`influencers.account_check_spider`).

The accounts, their passwords and identities are read here, before Scrapy starts, so the spider
never touches the database; the check changes nothing (no status, no cool-down), so it is safe
to run beside running crawls.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from influencers.account_check_spider import AccountCheckSpider, CheckAccount, CheckResult
from influencers.core.accounts import AccountManager
from influencers.core.config import Config
from influencers.core.errors import InvalidArgument
from influencers.core.identities import IdentityStore
from influencers.core.tasks import validate_domain
from influencers.tables import render

if TYPE_CHECKING:
    from influencers.cli import Context

#: How long the whole check may take before what has not answered is reported as such.
CHECK_TIMEOUT_SECONDS = 120
CHECK_COLUMNS = [("id", "id"), ("username", "username"), ("result", "result"), ("proxy", "proxy"),
                 ("detail", "detail")]


def check_command(args: argparse.Namespace, ctx: Context) -> int:
    """`accounts check`: exit 0 when every account checked is ok, 1 when one is not (a script
    can act on it)."""
    domain = validate_domain(args.domain) if args.domain else latest_domain(ctx.conn)
    if domain is None:
        raise InvalidArgument("no ingestion task yet to take the domain from: give --domain")
    accounts = ctx.accounts(with_cipher=True)
    accounts.check_key()
    checked = accounts_to_check(accounts, ctx.identities(with_cipher=True), args.username)
    ctx.close()  # the check may take a while and needs no database
    results = run_check(ctx.config, checked, domain)
    print(render([result.__dict__ for result in results], CHECK_COLUMNS, args.format), end="")
    return 0 if all(result.result == "ok" for result in results) else 1


def latest_domain(conn: Any) -> str | None:
    """The domain of the newest ingestion task: what the operator crawls (the default to read)."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT domain FROM tasks WHERE task_type = 'ingestion' ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
    conn.commit()
    return row["domain"] if row else None


def accounts_to_check(accounts: AccountManager, identities: IdentityStore, username: str | None) -> list[CheckAccount]:
    """Every account not disabled (or the one named, whatever its status), with what it logs in with."""
    chosen = [accounts.find(username)] if username else [a for a in accounts.list() if a.status != "disabled"]
    checked = []
    for account in chosen:
        name, password = accounts.credentials(account.id)
        checked.append(CheckAccount(account.id, name, password, identities.get(account.id)))
    return checked


def run_check(config: Config, accounts: list[CheckAccount], domain: str) -> list[CheckResult]:
    """Run the check spider over ``accounts`` (in this process; it starts the Twisted reactor)."""
    if not accounts:
        raise InvalidArgument("no account to check (accounts add …)")
    settings = Settings()
    settings.setmodule("influencers.settings", priority="project")
    settings.set("LOG_LEVEL", "ERROR", priority="cmdline")
    settings.set("CLOSESPIDER_TIMEOUT", CHECK_TIMEOUT_SECONDS, priority="cmdline")
    results: dict[int, CheckResult] = {}
    process = CrawlerProcess(settings, install_root_handler=False)
    logging.getLogger("scrapy").setLevel(logging.ERROR)
    process.crawl(AccountCheckSpider, accounts=accounts, domain=domain, site_url=config.site_url, results=results)
    process.start()
    return [results.get(account.id) or CheckResult(account.id, account.username, proxy=account.identity.proxy_host)
            for account in accounts]
