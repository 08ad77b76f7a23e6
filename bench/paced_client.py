"""The ideal line of ``bench.accounts``: a client that knows the platform's per-account rate.

    python -m bench.paced_client URL --accounts N --rate R [--share 0.98] --seconds T
                                 [--domain 游戏] [--pages P]

Why it exists: the crawler has to learn R; this client is told it. It is what this machine can
do at all for N accounts at R pages/s each, with no Scrapy and no database: aiohttp, one
coroutine per account (sandbox accounts ``demo1…demoN``, logged in through the form like a
browser), each asking for listing pages (``/api/v1``, JSON) at ``share`` × R. A request that
goes out late does not catch up (the next one waits a full interval), so jitter cannot empty a
bucket; a 429 is waited out for its Retry-After. The accounts start spread over one interval,
not all at once.

Prints ``ready`` when every account is logged in, then, after ``--seconds`` of pacing, one JSON
line: requests sent, answers by status, transport errors, and how late requests went out
against their schedule (p50, p99, max in ms), which says whether the machine kept the pace.
The platform's own counters are what ``bench.accounts`` measures; these are the client's view.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp

from sandbox.auth import CSRF_COOKIE, SESSION_COOKIE

TIMEOUT = aiohttp.ClientTimeout(total=30)


@dataclass
class Tally:
    """What the client saw, across accounts (one event loop: no locks)."""

    statuses: Counter = field(default_factory=Counter)
    errors: int = 0
    late: list[float] = field(default_factory=list)  # seconds behind schedule, per request

    def summary(self) -> dict:
        late = sorted(self.late) or [0.0]

        def at(share: float) -> float:
            return round(1000 * late[min(len(late) - 1, int(share * len(late)))], 1)

        return {"requests": sum(self.statuses.values()) + self.errors,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}, "errors": self.errors,
                "late_ms": {"p50": at(0.5), "p99": at(0.99), "max": round(1000 * late[-1], 1)}}


async def login(http: aiohttp.ClientSession, base: str, username: str) -> str:
    """The account's session cookie, through the form login (CSRF cookie and token)."""
    async with http.get(f"{base}/login") as form:
        await form.read()
        token = form.cookies[CSRF_COOKIE].value
    async with http.post(f"{base}/login", allow_redirects=False, headers={"Cookie": f"{CSRF_COOKIE}={token}"},
                         data={"username": username, "password": f"sandbox-{username}", "csrf_token": token}) as done:
        await done.read()
        if done.status != 302 or SESSION_COOKIE not in done.cookies:
            raise RuntimeError(f"login of {username} failed: HTTP {done.status}")
        return f"{SESSION_COOKIE}={done.cookies[SESSION_COOKIE].value}"


async def pace(http: aiohttp.ClientSession, url: str, cookie: str, pages: itertools.cycle, first: float,
               interval: float, until: float, tally: Tally) -> None:
    """One account: ``url`` + the next page every ``interval`` seconds from ``first`` on, never
    sooner than ``interval`` after the request before."""
    loop = asyncio.get_running_loop()
    due = first
    while due < until:
        await asyncio.sleep(max(0.0, due - loop.time()))
        sent = loop.time()
        tally.late.append(sent - due)
        wait = interval
        try:
            async with http.get(f"{url}{next(pages)}", headers={"Cookie": cookie}) as reply:
                await reply.read()
                tally.statuses[reply.status] += 1
                if reply.status == 429:
                    wait = max(interval, float(reply.headers.get("Retry-After", "1")))
        except (TimeoutError, aiohttp.ClientError):
            tally.errors += 1
        due = max(due + interval, sent + wait)


async def run(args: argparse.Namespace) -> dict:
    base = args.url.rstrip("/")
    names = [f"demo{number}" for number in range(1, args.accounts + 1)]
    connector = aiohttp.TCPConnector(limit=max(100, 2 * args.accounts))
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        gate = asyncio.Semaphore(16)

        async def one(name: str) -> str:
            async with gate:
                return await login(http, base, name)

        cookies = await asyncio.gather(*(one(name) for name in names))
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        interval = 1.0 / (args.share * args.rate)
        start = loop.time() + 0.1
        until = start + args.seconds
        pages = itertools.cycle(range(1, args.pages + 1))
        url = f"{base}/api/v1/influencers?domain={quote(args.domain, safe='')}&page="
        tally = Tally()
        await asyncio.gather(*(
            pace(http, url, cookie, pages, start + index * interval / len(cookies), interval, until, tally)
            for index, cookie in enumerate(cookies)))
    return tally.summary()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paced_client", description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--accounts", type=int, required=True, help="demo1…demoN")
    parser.add_argument("--rate", type=float, required=True, help="the platform's pages/s per account")
    parser.add_argument("--share", type=float, default=0.98, help="of --rate to ask for")
    parser.add_argument("--seconds", type=float, required=True, help="how long to pace")
    parser.add_argument("--domain", default="游戏")
    parser.add_argument("--pages", type=int, default=50, help="pages of the domain, read round and round")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
