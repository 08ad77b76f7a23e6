"""The processes `bench.growth` times: the API server and its client, the reference platform, a
crawl, an export; and the statements behind `status` and `report`, EXPLAINed."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymysql

from bench.common import REPO_ROOT, Finished, Measured, python_module, start_sandbox, stop
from bench.growth_data import EXPORT_DOMAIN
from influencers.core.config import MySQLSettings
from influencers.core.db import connect

PAGE_SIZE = 20
START_TIMEOUT = 30.0
STAT = r"'{name}': ([0-9.]+)"
stop_process = stop


# -- the API ------------------------------------------------------------------------------------


class ApiClient:
    """``python -m influencers api`` with a token, and kept-alive connections to it (one per
    request the dashboard sends at once, as a browser opens them)."""

    def __init__(self, process: subprocess.Popen, url: str, token: str) -> None:
        self.process, self.token = process, token
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.connections: list[http.client.HTTPConnection] = []
        self.pool = ThreadPoolExecutor(3)

    @classmethod
    def start(cls, env: dict[str, str], workdir: Path) -> ApiClient:
        workdir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(24)
        out = workdir / "api.out"
        with open(out, "wb") as stdout:
            process = subprocess.Popen(python_module("influencers", "api", "--host", "127.0.0.1", "--port", "0"),
                                       cwd=REPO_ROOT, env=env | {"INFLUENCERS_API_TOKEN": token}, stdin=subprocess.DEVNULL,
                                       stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"api serving (\S+)", out.read_text("utf-8", "replace"))
            if found:
                client = cls(process, found.group(1).rstrip("/"), token)
                client.get(0, "/healthz")
                return client
            time.sleep(0.05)
        stop(process)
        raise RuntimeError(f"the API did not start: {out.read_text('utf-8', 'replace')[-2000:]}")

    def get(self, slot: int, path: str) -> bytes:
        while len(self.connections) <= slot:
            self.connections.append(http.client.HTTPConnection(self.host, self.port, timeout=1800))
        conn = self.connections[slot]
        conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"})
        reply = conn.getresponse()
        body = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {reply.status}: {body[:500]!r}")
        return body

    def timed(self, paths: list[str]) -> float:
        """Seconds until every path has answered, all sent at once."""
        started = time.perf_counter()
        if len(paths) == 1:
            self.get(0, paths[0])
        else:
            for future in [self.pool.submit(self.get, slot, path) for slot, path in enumerate(paths)]:
                future.result()
        return time.perf_counter() - started

    def stop(self) -> None:
        self.pool.shutdown()
        for conn in self.connections:
            conn.close()
        stop(self.process)


# -- the platform and a crawl -------------------------------------------------------------------


def start_platform(args: Any, domains: list[str], workdir: Path) -> tuple[subprocess.Popen, str]:
    """The reference platform (clean) with the domains and accounts demo1 … demoN."""
    accounts = workdir / "platform-accounts.json"
    accounts.write_text(json.dumps([{"username": f"demo{n}", "password": f"sandbox-demo{n}"}
                                    for n in range(1, args.accounts + 1)]), encoding="utf-8")
    return start_sandbox(args.pages, page_size=PAGE_SIZE, domains=",".join(domains), log=workdir / "platform.log",
                         extra=("--accounts", str(accounts)))


def command(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(python_module(*args), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")


def run_to_end(args: list[str], *, workdir: Path, timeout: float, **popen: Any) -> Finished:
    """``bench.common.run_measured``, and the command stopped if the bench is (Ctrl-C, SIGTERM)."""
    measured = Measured(args, workdir=workdir, **popen)
    try:
        return measured.wait(timeout)
    finally:
        stop(measured.process)


def stat(text: str, name: str) -> float | None:
    found = re.findall(STAT.format(name=re.escape(name)), text)
    return float(found[-1]) if found else None


def crawl(args: Any, db: Any, domain: str, url: str, workdir: Path, label: str) -> float:
    """``start_crawl`` and ``scrapy crawl influencers -a once=1``; rows/s by Scrapy's elapsed time."""
    env = db.env(workdir, INFLUENCERS_SITE_URL=url)
    command(env, "influencers", "start_crawl", "--domain", domain, "--pages", str(args.pages), "--split", str(args.split))
    log = workdir / f"crawl-{db.label}-{label}.log"
    settings = {"ACCOUNTS_REQUEST_INTERVAL": 0, "INGEST_MAX_TASKS": args.crawl_tasks, "INGEST_POLL_INTERVAL": 0.5,
                "LOG_FILE": str(log), "LOG_LEVEL": "INFO", "PROGRESS_ENABLED": "False"}
    finished = run_to_end(python_module("scrapy", "crawl", "influencers", "-a", "once=1", "-a", "render=json",
                                        *(a for k, v in settings.items() for a in ("-s", f"{k}={v}"))),
                          workdir=workdir, timeout=180 + args.pages, env=env, cwd=REPO_ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = log.read_text(encoding="utf-8", errors="replace")
    pages, elapsed = stat(text, "ingest/pages_fetched"), stat(text, "elapsed_time_seconds")
    if finished.returncode != 0 or not pages or not elapsed or "'finish_reason': 'queue_empty'" not in text:
        raise RuntimeError(f"crawl {label} on {db.label} exited {finished.returncode}; log tail:\n{text[-3000:]}")
    stored = count(db.settings, "SELECT COUNT(*) FROM influencers WHERE domain = %s", domain)
    if int(pages) != args.pages or stored != args.pages * PAGE_SIZE:
        raise RuntimeError(f"crawl {label} on {db.label}: {pages:.0f} pages fetched, {stored} rows of {domain} stored;"
                           f" expected {args.pages} and {args.pages * PAGE_SIZE}")
    log.unlink()
    return pages * PAGE_SIZE / elapsed


def count(settings: MySQLSettings, sql: str, *params: Any) -> int:
    conn = connect(settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            value = next(iter(cursor.fetchone().values()))
        conn.commit()
        return int(value or 0)
    finally:
        conn.close()


def export(db: Any, workdir: Path, rows: int) -> float:
    """``start_export`` and ``python -m exporter run --once``; rows/s by the exporter's wall time."""
    env = db.env(workdir)
    command(env, "influencers", "start_export", "--domain", EXPORT_DOMAIN)
    log = workdir / f"exporter-{db.label}.log"
    with open(log, "w", encoding="utf-8") as err:
        finished = run_to_end(python_module("exporter", "run", "--once", "--poll-interval", "1"), workdir=workdir,
                              timeout=max(300, rows / 1000), cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=err)
    exported = count(db.settings, "SELECT SUM(exported_count) FROM export_logs WHERE id > %s AND state = 'published'",
                     db.marks.export_logs)
    if finished.returncode != 0 or exported != rows:
        raise RuntimeError(f"exporter on {db.label} exited {finished.returncode}, exported {exported} of {rows}:"
                           f" {log.read_text(encoding='utf-8', errors='replace')[-2000:]}")
    shutil.rmtree(workdir / "exports", ignore_errors=True)
    return rows / finished.wall


# -- EXPLAIN ------------------------------------------------------------------------------------


def explain(settings: MySQLSettings, commands: list[list[str]], run: Callable[[list[str]], float]) -> None:
    """Each command once with every statement it sends timed (pymysql's Connection.query), then the
    plan of every SELECT."""
    original = pymysql.connections.Connection.query
    for argv in commands:
        sent: list[tuple[str, float]] = []

        def query(self: Any, sql: Any, unbuffered: bool = False, sent: list = sent) -> Any:
            started = time.perf_counter()
            try:
                return original(self, sql, unbuffered)
            finally:
                text = sql if isinstance(sql, str) else sql.decode("utf-8", "replace")
                if text.startswith("SET STATEMENT"):  # the bench's cap (growth.capped), not the command's
                    text = text.split(" FOR ", 1)[1]
                sent.append((text, time.perf_counter() - started))

        pymysql.connections.Connection.query = query
        try:
            total = f"{run(argv) * 1000:,.1f} ms in all"
        except Exception as exc:  # growth.Cut: a statement ran past the cap
            total = f"cut: {type(exc).__name__}"
        finally:
            pymysql.connections.Connection.query = original
        print(f"\nEXPLAIN: influencers {' '.join(argv)} on the large database, {total}")
        conn = pymysql.connect(host=settings.host, port=settings.port, user=settings.user, password=settings.password,
                               database=settings.database, charset="utf8mb4", init_command="SET time_zone = '+00:00'")
        try:
            for sql, seconds in sent:
                if not sql.lstrip().upper().startswith("SELECT") or seconds < 0.001:
                    continue
                print(f"  {seconds * 1000:8.1f} ms  {' '.join(sql.split())[:300]}")
                with conn.cursor() as cursor:
                    cursor.execute("EXPLAIN " + sql)
                    names = [d[0] for d in cursor.description]
                    for row in cursor.fetchall():
                        plan = dict(zip(names, row, strict=True))
                        print(f"      {plan.get('select_type')} {plan.get('table')} type={plan.get('type')}"
                              f" key={plan.get('key')} rows={plan.get('rows')} {plan.get('Extra') or ''}")
        finally:
            conn.close()
