"""The platform's pace: one crawler with N accounts against a platform that lets each account
fetch R pages a second, next to a client that knows R (issue 21).

    python -m bench.accounts [--accounts 8,32,128] [--rate 1] [--seconds 60] [--warmup 15]
                             [--repeat 1] [--split 0] [--headers] [--set NAME=VALUE …]

(``--set INGEST_MAX_TASKS={N}``: ``{N}`` in a value is replaced by the N of each run.)

For an operator the limit of a crawl is the platform, not MySQL: N accounts × R pages/s. For
each N (with its R: ``--rate 1`` for all, or one per N, ``--rate 1,1,0.5``):

* the platform: ``python -m sandbox --profile clean --rate-limit R`` (a token bucket of max(1, R)
  per account, 429 with Retry-After 1 s; ``--headers`` adds ``--rate-limit-headers``) with
  accounts demo1…demoN and two domains, one for each client, so that both pay for rendering
  fresh pages;
* ``ideal``: ``bench.paced_client``, which is told R and asks for pages at 0.98 × R per account
  (aiohttp, no Scrapy, no database): what this machine can do at all for that N × R;
* ``crawler``: N accounts added with ``AccountManager``, ``start_crawl --domain 美妆`` sized so
  that every account could stay busy past the window (N × R × (warm-up + window + 10 s) × 1.2
  pages, by default N subtasks), then ONE ``scrapy crawl influencers -a once=1`` with the
  project's default settings (``--set`` passes overrides) until the window ends, then SIGTERM
  and a wait for it to exit cleanly (a second SIGTERM after 90 s, then SIGKILL).

The window: it opens ``--warmup`` seconds after the crawler's process starts (start-up, logins
and whatever the pacing has to learn are outside it; the ideal client's opens 3 s after its
accounts are logged in) and lasts ``--seconds``. Both clients are measured the same way, by the
platform's own counters (``GET /__admin/stats``) read when the window opens and closes: pages/s
= listing pages served whole / window; 429 share = rate-limited answers / all listing answers.
For the crawler also: pages committed in the window (``ingestion_logs`` rows counted when it opens
and closes; batches commit about once a second, so this one wobbles by a second's pages), the
accounts busy in it (distinct ``account_id`` of those rows, and accounts the platform served),
pages/s in each half of the window (a steady window has both alike), CPU ms per page served
(``/proc`` of the crawler over the window), peak RSS of the whole process (wait4, through
``bench.measure``), and the platform's CPU in the window (cores). The crawler's pages/s is given
as a share of N × R and as a ratio to the ideal client of the same repeat (median of the
per-repeat ratios).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    Measured,
    bench_database,
    child_env,
    cpu_seconds,
    execute,
    machine_line,
    median,
    parse_counts,
    python_module,
    server_line,
    start_sandbox,
    stop,
)
from bench.crawl import DOMAIN, prepare
from influencers.core.config import Config
from influencers.core.db import connect

IDEAL_DOMAIN = "游戏"
IDEAL_SHARE = 0.98
IDEAL_WARMUP = 3.0
HEADROOM = 1.2  # pages for 1.2 × what N accounts could fetch, so no account runs dry in the window
STOP_TIMEOUT = 90.0
MAX_PAGES = 100_000  # the platform's and start_crawl's limit per domain
TARGET_SHARE, TARGET_LIMITED = 0.90, 0.01  # issue 21: ≥ 90% of N × R with < 1% rate-limited


@dataclass(frozen=True)
class Plan:
    """One N of the run: its accounts, its rate and the crawl sized for the window."""

    accounts: int
    rate: float
    pages: int
    split: int

    @property
    def ideal(self) -> float:
        return self.accounts * self.rate


def plan_for(accounts: int, rate: float, args: argparse.Namespace) -> Plan:
    pages = math.ceil(accounts * rate * (args.warmup + args.seconds + 10) * HEADROOM)
    if pages > MAX_PAGES:
        raise SystemExit(f"bench.accounts: N={accounts} at {rate}/s needs {pages:,} pages, more than the platform's"
                         f" {MAX_PAGES:,}; lower --seconds or --rate")
    split = args.split or math.ceil(pages / accounts)
    if math.ceil(pages / split) < accounts:
        raise SystemExit(f"bench.accounts: --split {split} makes fewer subtasks than the {accounts} accounts")
    return Plan(accounts, rate, pages, split)


def parse_rates(text: str, count: int) -> list[float]:
    """'1' -> [1.0] * count; '1,2,4' -> one per N."""
    rates = [float(part) for part in text.split(",") if part.strip()]
    if len(rates) == 1:
        rates *= count
    if len(rates) != count or min(rates) <= 0 or not all(math.isfinite(r) for r in rates):
        raise SystemExit("bench.accounts: --rate takes one positive number, or one per --accounts value")
    return rates


# -- the platform -------------------------------------------------------------------------------


def start_platform(plan: Plan, headers: bool, workdir: Path) -> tuple[subprocess.Popen, str]:
    """The reference platform with accounts demo1…demoN, rate-limited to R per account."""
    accounts = workdir / f"accounts-{plan.accounts}.json"
    accounts.write_text(json.dumps([{"username": f"demo{n}", "password": f"sandbox-demo{n}"}
                                    for n in range(1, plan.accounts + 1)]), encoding="utf-8")
    extra = ["--accounts", str(accounts), "--rate-limit", str(plan.rate), *(["--rate-limit-headers"] if headers else [])]
    return start_sandbox(plan.pages, domains=f"{DOMAIN},{IDEAL_DOMAIN}", log=workdir / f"sandbox-{plan.accounts}.log",
                         extra=extra)


def admin(url: str, path: str, *, post: bool = False) -> dict[str, Any]:
    request = urllib.request.Request(url + path, data=b"" if post else None, method="POST" if post else "GET")
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


# -- the window ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The counters a window is the difference of."""

    at: float
    requests: int  # listing answers of all accounts
    pages: int  # listing pages served whole
    limited: int  # 429s
    served: dict[str, int]  # pages per account
    client_cpu: float
    platform_cpu: float
    committed: int = 0  # ingestion_logs rows
    last_log: int = 0  # their highest id


def snapshot(url: str, client_pid: int | None, platform_pid: int, conn: Any = None) -> Snapshot:
    accounts = admin(url, "/__admin/stats")["accounts"]
    committed = last_log = 0
    if conn is not None:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS last FROM ingestion_logs")
            row = cursor.fetchone()
        conn.commit()
        committed, last_log = row["n"], row["last"]
    return Snapshot(time.monotonic(), sum(a["requests"] for a in accounts.values()),
                    sum(a["pages"] for a in accounts.values()), sum(a["rate_limited"] for a in accounts.values()),
                    {name: a["pages"] for name, a in accounts.items()}, cpu_seconds(client_pid),
                    cpu_seconds(platform_pid), committed, last_log)


def sleep_until(moment: float, process: subprocess.Popen, what: str) -> None:
    while (left := moment - time.monotonic()) > 0:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}) before the window closed")
        time.sleep(min(left, 0.2))


def observe(url: str, pid: int | None, platform: subprocess.Popen, process: subprocess.Popen, begin: float,
            seconds: float, what: str, conn: Any = None) -> tuple[Snapshot, Snapshot, Snapshot]:
    """Snapshots when the window opens, at its middle and when it closes."""
    shots = []
    for moment in (begin, begin + seconds / 2, begin + seconds):
        sleep_until(moment, process, what)
        shots.append(snapshot(url, pid, platform.pid, conn))
    return shots[0], shots[1], shots[2]


def figures(first: Snapshot, middle: Snapshot, last: Snapshot, plan: Plan) -> dict[str, Any]:
    span = last.at - first.at
    pages = last.pages - first.pages
    requests = last.requests - first.requests
    return {
        "rate": pages / span, "share": pages / span / plan.ideal,
        "limited": (last.limited - first.limited) / requests if requests else 0.0,
        "halves": ((middle.pages - first.pages) / (middle.at - first.at), (last.pages - middle.pages) / (last.at - middle.at)),
        "cpu_ms": 1000 * (last.client_cpu - first.client_cpu) / pages if pages else float("nan"),
        "platform_cores": (last.platform_cpu - first.platform_cpu) / span,
        "busy_platform": sum(1 for name, count in last.served.items() if count > first.served.get(name, 0)),
        "committed_rate": (last.committed - first.committed) / span,
    }


def child_pid(measured: Measured, within: float = 10.0) -> int:
    deadline = time.monotonic() + within
    while (pid := measured.pid) is None:
        if time.monotonic() > deadline or measured.process.poll() is not None:
            raise RuntimeError("the measured command did not start")
        time.sleep(0.02)
    return pid


# -- the two clients ----------------------------------------------------------------------------


def run_ideal(args: argparse.Namespace, plan: Plan, url: str, env: dict[str, str], workdir: Path,
              platform: subprocess.Popen) -> dict[str, Any]:
    admin(url, "/__admin/reset", post=True)
    command = python_module("bench.paced_client", url, "--accounts", str(plan.accounts), "--rate", str(plan.rate),
                            "--share", str(IDEAL_SHARE), "--seconds", str(IDEAL_WARMUP + args.seconds + 1),
                            "--domain", IDEAL_DOMAIN, "--pages", str(plan.pages))
    errors = workdir / "ideal.err"
    with open(errors, "w", encoding="utf-8") as err:
        client = Measured(command, workdir=workdir, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=err,
                          text=True)
    try:
        pid = child_pid(client)
        ready, _, _ = select.select([client.process.stdout], [], [], 60 + plan.accounts / 4)
        if not ready or client.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the ideal client did not log in: {errors.read_text(encoding='utf-8')[-2000:]}")
        shots = observe(url, pid, platform, client.process, time.monotonic() + IDEAL_WARMUP, args.seconds,
                        "the ideal client")
        output, _ = client.process.communicate(timeout=IDEAL_WARMUP + 60)
        summary = json.loads(output.strip().splitlines()[-1])
        finished = client.wait(10)
    finally:
        stop(client.process)
    if finished.returncode != 0:
        raise RuntimeError(f"the ideal client exited {finished.returncode}: {errors.read_text(encoding='utf-8')[-2000:]}")
    return figures(*shots, plan) | {"late_ms": summary["late_ms"], "client_errors": summary["errors"]}


def run_crawler(args: argparse.Namespace, plan: Plan, url: str, env: dict[str, str], workdir: Path,
                platform: subprocess.Popen, label: str) -> dict[str, Any]:
    config = Config.from_env(env)
    execute(config.mysql, "SET FOREIGN_KEY_CHECKS = 0", "TRUNCATE TABLE account_identities",
            "TRUNCATE TABLE account_budgets", "SET FOREIGN_KEY_CHECKS = 1")
    prepare(env, plan.pages, plan.split, plan.accounts)
    admin(url, "/__admin/reset", post=True)
    log = workdir / f"crawl-{label}.log"
    overrides = {"LOG_FILE": str(log)} | {name: value.replace("{N}", str(plan.accounts))
                                          for name, _, value in (item.partition("=") for item in args.set)}
    command = python_module("scrapy", "crawl", "influencers", "-a", "once=1",
                            *(arg for name, value in overrides.items() for arg in ("-s", f"{name}={value}")))
    conn = connect(config.mysql)
    crawl = Measured(command, workdir=workdir, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    try:
        pid = child_pid(crawl)
        try:
            first, middle, last = observe(url, pid, platform, crawl.process, crawl.started + args.warmup,
                                          args.seconds, "the crawler", conn)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; log tail:\n{log.read_text(encoding='utf-8', errors='replace')[-3000:]}") from None
        stopping = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        try:
            crawl.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGTERM)  # Scrapy's second signal: stop without waiting for requests
        finished = crawl.wait(STOP_TIMEOUT / 3)
        stopped = time.monotonic() - stopping
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(DISTINCT account_id) AS n FROM ingestion_logs WHERE id > %s AND id <= %s",
                           (first.last_log, last.last_log))
            busy = cursor.fetchone()["n"]
        conn.commit()
    finally:
        conn.close()
        stop(crawl.process)
    run_limited = last.limited / last.requests if last.requests else 0.0  # since the crawler's start
    return figures(first, middle, last, plan) | {"busy_logs": busy, "rss": finished.maxrss_mb, "stopped": stopped,
                                                 "exit": finished.returncode, "limited_run": run_limited}


# -- the report ---------------------------------------------------------------------------------


def pct(value: float) -> str:
    return f"{value:.0%}" if value >= 0.1 else f"{value:.1%}"


def rate_spread(values: list[float]) -> str:
    return f"{median(values):.2f}" + (f" ({min(values):.2f}–{max(values):.2f})" if len(values) > 1 else "")


def med_of(runs: list[dict], key: str) -> float:
    return median([run[key] for run in runs])


def report(results: list[tuple[Plan, list[dict], list[dict]]], args: argparse.Namespace) -> None:
    print(f"\nsteady window of {args.seconds:g} s (the crawler's from {args.warmup:g} s after its start), pages/s"
          f" served by the platform; medians of {args.repeat} (min–max); 429s = rate-limited / all listing answers")
    print(f"  {'N':>4} {'R':>5} {'N×R':>6} | {'ideal pages/s (share)':>22} | {'crawler pages/s (share, vs ideal)':>34}"
          f" | {'429s':>6} | {'CPU ms/page':>11} | {'peak RSS MB':>11} | {'platform CPU':>12}")
    for plan, ideal, crawler in results:
        versus = median([c["rate"] / i["rate"] if i["rate"] else float("nan") for c, i in zip(crawler, ideal, strict=True)])
        ideal_text = f"{rate_spread([r['rate'] for r in ideal])} ({pct(med_of(ideal, 'share'))})"
        crawler_text = f"{rate_spread([r['rate'] for r in crawler])} ({pct(med_of(crawler, 'share'))}, {versus:.2f}×)"
        print(f"  {plan.accounts:>4} {plan.rate:>5g} {plan.ideal:>6g} | {ideal_text:>22} | {crawler_text:>34}"
              f" | {pct(med_of(crawler, 'limited')):>6} | {med_of(crawler, 'cpu_ms'):>11.1f} | {med_of(crawler, 'rss'):>11.0f}"
              f" | {med_of(crawler, 'platform_cores'):>6.2f} cores")
    print("\ndetails:")
    for plan, ideal, crawler in results:
        halves = [median([r["halves"][k] for r in crawler]) for k in (0, 1)]
        late = ideal[-1]["late_ms"]
        print(f"  N={plan.accounts}: crawler: {med_of(crawler, 'committed_rate'):.2f} pages/s committed"
              f" (ingestion_logs); accounts busy {med_of(crawler, 'busy_logs'):.0f} of {plan.accounts} (distinct"
              f" account_id in the window's ingestion_logs), {med_of(crawler, 'busy_platform'):.0f} served by the"
              f" platform; pages/s first half {halves[0]:.2f}, second half {halves[1]:.2f}; 429s over the whole"
              f" run so far, learning included, {pct(med_of(crawler, 'limited_run'))}; stopped"
              f" {med_of(crawler, 'stopped'):.1f} s after SIGTERM, exit {', '.join(str(r['exit']) for r in crawler)}")
        print(f"  N={plan.accounts}: ideal: 429s {pct(med_of(ideal, 'limited'))}, requests late against their"
              f" schedule p50 {late['p50']:.1f} ms / p99 {late['p99']:.1f} ms (last run), client CPU"
              f" {med_of(ideal, 'cpu_ms'):.1f} ms/page, platform {med_of(ideal, 'platform_cores'):.2f} cores"
              + (f", {sum(r['client_errors'] for r in ideal)} transport errors" if any(r["client_errors"] for r in ideal) else ""))
    print("\ntargets (issue 21: ≥ 90% of N × R with < 1% rate-limited answers):")
    for plan, _, crawler in results:
        share, limited = med_of(crawler, "share"), med_of(crawler, "limited")
        met = share >= TARGET_SHARE and limited < TARGET_LIMITED
        print(f"  N={plan.accounts}, R={plan.rate:g}: {pct(share)} of N × R, {pct(limited)} rate-limited"
              f" ({'met' if met else 'NOT met'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accounts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=parse_counts, default=[8, 32, 128], help="values of N (default 8,32,128)")
    parser.add_argument("--rate", default="1", help="the platform's pages/s per account: one for all N, or one per N")
    parser.add_argument("--seconds", type=float, default=60, help="the measured window")
    parser.add_argument("--warmup", type=float, default=15, help="seconds from the crawler's start to the window")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--split", type=int, default=0, help="pages per subtask (default: one subtask per account)")
    parser.add_argument("--headers", action="store_true", help="the platform sends RateLimit-* headers")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a Scrapy setting for the crawler; {N} in VALUE is the run's N (INGEST_MAX_TASKS={N})")
    args = parser.parse_args(argv)
    if args.seconds < 2 or args.warmup < 0 or args.repeat < 1 or args.split < 0:
        parser.error("--seconds must be 2 or more, --warmup and --split 0 or more, --repeat 1 or more")
    plans = [plan_for(n, rate, args) for n, rate in zip(args.accounts, parse_rates(args.rate, len(args.accounts)),
                                                        strict=True)]

    print(machine_line())
    results = []
    with bench_database() as settings, tempfile.TemporaryDirectory(prefix="bench-accounts-") as tmp:
        workdir = Path(tmp)
        conn = connect(settings)
        print(server_line(conn))
        conn.close()
        print("crawler: scrapy crawl influencers -a once=1 with the project's settings"
              + (f", and {' '.join(args.set)}" if args.set else " (defaults)"), flush=True)
        base_env = child_env(settings, workdir)  # one key for the whole run: the database records it
        for plan in plans:
            platform, url = start_platform(plan, args.headers, workdir)
            env = base_env | {"INFLUENCERS_SITE_URL": url}
            print(f"N={plan.accounts}, R={plan.rate:g}/s: platform {url} (clean, token bucket, Retry-After 1 s"
                  f"{', RateLimit-* headers' if args.headers else ''}); crawl of {plan.pages:,} pages in"
                  f" {math.ceil(plan.pages / plan.split)} subtasks of {plan.split}", flush=True)
            ideal, crawler = [], []
            try:
                for attempt in range(1, args.repeat + 1):
                    order = ("ideal", "crawler") if attempt % 2 else ("crawler", "ideal")
                    for which in order:
                        if which == "ideal":
                            ideal.append(run_ideal(args, plan, url, env, workdir, platform))
                        else:
                            crawler.append(run_crawler(args, plan, url, env, workdir, platform,
                                                       f"{plan.accounts}-{attempt}"))
                    print(f"  run {attempt}: ideal {ideal[-1]['rate']:.2f} pages/s ({pct(ideal[-1]['limited'])} 429s),"
                          f" crawler {crawler[-1]['rate']:.2f} ({pct(crawler[-1]['limited'])} 429s,"
                          f" {crawler[-1]['busy_logs']} accounts busy)", flush=True)
            finally:
                stop(platform)
            results.append((plan, ideal, crawler))
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
