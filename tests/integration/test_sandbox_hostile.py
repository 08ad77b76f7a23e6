"""The hostile profile's promise: a polite client still crawls everything and is never banned.

Polite means: at most ``rate_limit`` requests/s per account, Retry-After honoured, another
account on a daily cap, a fresh login on 401, a retry on captcha/5xx/truncated bodies.
"""
from __future__ import annotations

import json
import queue
import threading
import time

import pytest

from sandbox.config import PROFILES
from sandbox.data import DEFAULT_DOMAINS
from tests.fixtures.sandbox import SandboxServer

PAGES = 5


def polite_worker(server: SandboxServer, username: str, todo: queue.Queue, rows: dict,
                  problems: list) -> None:
    interval = 1.0 / PROFILES["hostile"].rate_limit
    client = server.logged_in(username)
    while True:
        try:
            domain, page = todo.get_nowait()
        except queue.Empty:
            return
        while True:
            time.sleep(interval)
            reply = client.listing(domain, page)
            if reply.status == 200:
                try:
                    payload = json.loads(reply.body)
                except ValueError:
                    continue  # truncated: fetch again
                if "items" in payload:
                    rows[domain, page] = [item["uid"] for item in payload["items"]]
                    break
                continue  # captcha: fetch again later
            if reply.status == 429:
                time.sleep(int(reply.header("Retry-After")))
            elif reply.status == 401:
                client.login(username)
            elif reply.status == 403:
                todo.put((domain, page))  # daily cap (or a ban): hand the page back, stop
                problems.append((username, reply.json()["error"]["code"]))
                return
            elif reply.status < 500:
                problems.append((username, reply.status))
                return


@pytest.mark.timeout(60)
def test_hostile_profile_is_crawlable_by_a_polite_client(start_sandbox):
    server = start_sandbox(profile="hostile", pages=PAGES, slow_ms=300)
    todo: queue.Queue = queue.Queue()
    for domain in DEFAULT_DOMAINS:
        for page in range(1, PAGES + 1):
            todo.put((domain, page))
    rows: dict = {}
    problems: list = []
    workers = [threading.Thread(target=polite_worker,
                                args=(server, f"demo{i}", todo, rows, problems))
               for i in range(1, 5)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(50)
    assert problems == []
    assert todo.empty()
    for domain in DEFAULT_DOMAINS:
        seen = {uid for page in range(1, PAGES + 1) for uid in rows[domain, page]}
        # the listing shifts while we crawl: rows only move down, so a forward crawl of the
        # original page count may push the last few truth rows past it, never skip others
        truth = [r["uid"] for r in server.truth(domain)]
        inserted = len(server.admin_stats()["inserted"][domain])
        assert set(truth[: len(truth) - inserted]) <= seen
    stats = server.admin_stats()["accounts"]
    assert not any(s["banned"] for s in stats.values())
    fired = {c for s in stats.values() for c in ("captchas", "errors", "malformed", "slow") if s[c]}
    assert fired, "hostile misbehaviour should show up in 120+ requests"
