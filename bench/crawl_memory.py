"""Memory of a long crawl: RSS of the `influencers` spider over 2,000 pages, without the browser.

    python -m bench.crawl_memory [--pages 2000] [--tasks 2] [--split 10] [--repeat 1]

The same shape as ``bench.crawl`` (clean platform, JSON listing, ``start_crawl`` subtasks of
``--split`` pages, ``--tasks`` claims at once, persistence on, no pause between requests), over
``--pages`` pages. Every half second the crawler's VmRSS is read from ``/proc`` together with the
pages committed so far (``ingestion_logs``); the table shows RSS as the crawl goes, the growth per
1,000 pages over the second half (a leak shows here), and the peak RSS of the whole process
(wait4). ``render=json``: no request goes through Playwright, so no browser is started.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    REPO_ROOT,
    Measured,
    bench_database,
    child_env,
    machine_line,
    median,
    memory_kb,
    python_module,
    start_sandbox,
    stop,
)
from bench.crawl import DOMAIN, check_stored, crawl_settings, prepare, stat
from influencers.core.config import Config
from influencers.core.db import connect

TARGET_MB = 300
SAMPLE_SECONDS = 0.5


def committed_pages(conn) -> int:
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) AS n FROM ingestion_logs")
        count = cursor.fetchone()["n"]
    conn.commit()
    return count


def run(args: argparse.Namespace, env: dict[str, str], workdir: Path, attempt: int) -> dict:
    log = workdir / f"crawl-{attempt}.log"
    command = python_module("scrapy", "crawl", "influencers", "-a", "once=1", "-a", "render=json",
                            *crawl_settings(args, log, persist=True))
    conn = connect(Config.from_env(env).mysql)
    samples: list[tuple[float, int, float]] = []  # (seconds, pages committed, RSS MB)
    try:
        crawl = Measured(command, workdir=workdir, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        while crawl.process.poll() is None:
            pid = crawl.pid
            rss = memory_kb(pid).get("VmRSS") if pid else None
            if rss:
                samples.append((time.monotonic() - crawl.started, committed_pages(conn), rss / 1024))
            time.sleep(SAMPLE_SECONDS)
        finished = crawl.wait(timeout=60 + args.pages)
    finally:
        conn.close()
    text = log.read_text(encoding="utf-8", errors="replace")
    if finished.returncode != 0 or "'finish_reason': 'queue_empty'" not in text:
        raise RuntimeError(f"crawl exited {finished.returncode}; log tail:\n{text[-3000:]}")
    if "playwright" in text.lower() and "Launching browser" in text:
        raise RuntimeError("the crawl started a browser")
    check_stored(env, args.pages, args.page_size)
    return {"samples": samples, "peak": finished.maxrss_mb, "pages_per_s": (stat(text, "ingest/pages_fetched") or 0)
            / (stat(text, "elapsed_time_seconds") or 1)}


def at_pages(samples: list[tuple[float, int, float]], pages: int) -> float | None:
    """RSS of the first sample taken with at least ``pages`` committed."""
    for _, done, rss in samples:
        if done >= pages:
            return rss
    return None


def growth_per_1000(samples: list[tuple[float, int, float]], total: int) -> float | None:
    """Least-squares slope of RSS over pages in the second half of the crawl, MB per 1,000 pages."""
    half = [(done, rss) for _, done, rss in samples if done >= total / 2]
    if len(half) < 3 or half[-1][0] == half[0][0]:
        return None
    mean_x = sum(x for x, _ in half) / len(half)
    mean_y = sum(y for _, y in half) / len(half)
    var = sum((x - mean_x) ** 2 for x, _ in half)
    return 1000 * sum((x - mean_x) * (y - mean_y) for x, y in half) / var if var else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crawl_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--split", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a Scrapy setting")
    args = parser.parse_args(argv)

    print(machine_line())
    runs = []
    sandbox = None
    with bench_database() as settings, tempfile.TemporaryDirectory(prefix="bench-crawl-memory-") as tmp:
        workdir = Path(tmp)
        try:
            sandbox, url = start_sandbox(args.pages, page_size=args.page_size, log=workdir / "sandbox.log")
            env = child_env(settings, workdir, INFLUENCERS_SITE_URL=url)
            print(f"platform {url} (clean, {args.pages} pages of {args.page_size} in {DOMAIN}); crawl:"
                  f" {args.pages // args.split} subtasks, {args.tasks} at once, persistence on, JSON (no browser)",
                  flush=True)
            for attempt in range(1, args.repeat + 1):
                prepare(env, args.pages, args.split, args.tasks)
                runs.append(run(args, env, workdir, attempt))
                print(f"  run {attempt}: peak RSS {runs[-1]['peak']:.0f} MB, {runs[-1]['pages_per_s']:.0f} pages/s",
                      flush=True)
        finally:
            stop(sandbox)

    checkpoints = sorted({max(1, args.pages * share // 4) for share in (1, 2, 3, 4)})
    print(f"\ncrawler RSS over {args.pages:,} pages (MB, median of {args.repeat}; sampled every {SAMPLE_SECONDS}s)")
    for pages in checkpoints:
        values = [v for v in (at_pages(r["samples"], pages) for r in runs) if v is not None]
        print(f"  after {pages:>6,} pages: {median(values):7.1f}" if values else f"  after {pages:>6,} pages: -")
    lasts = [r["samples"][-1] for r in runs if r["samples"]]
    if lasts:
        print(f"  last sample before exit ({median([d for _, d, _ in lasts]):,.0f} pages committed):"
              f" {median([rss for _, _, rss in lasts]):7.1f}")
    growth = [g for g in (growth_per_1000(r["samples"], args.pages) for r in runs) if g is not None]
    if growth:
        print(f"  growth over the second half: {median(growth):+.1f} MB per 1,000 pages")
    peak = median([r["peak"] for r in runs])
    last = [v for v in (at_pages(r["samples"], args.pages) for r in runs) if v is not None]
    after = median(last) if last else median([rss for _, _, rss in lasts]) if lasts else peak
    print(f"  peak RSS of the whole crawl (wait4): {peak:.1f} MB")
    print("\ntarget:")
    print(f"  RSS after {args.pages:,} pages {after:.0f} MB, peak {peak:.0f} MB"
          f" ({'met' if peak < TARGET_MB else 'NOT met'}: < {TARGET_MB} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
