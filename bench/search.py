"""Search at scale (issue 22): `influencers.core.search` and ``GET /api/v1/influencers`` on the
database of `bench.growth` (10,000,000 influencers) against the same queries on a small one
(10,000 rows of the same generator), in the same run.

    python -m bench.search [--rows 10000000] [--small-rows 10000] [--keep NAME] [--repeat 5] [--cap 30]
                           [--explain]

The large database is `bench.growth`'s (``bench.growth_data``: nicknames from word lists, typed
fields, ``search_terms``; 1M ingestion logs and 100,000 tasks at 10M rows, fewer in proportion),
loaded with LOAD DATA LOCAL INFILE or, with ``--keep NAME``, kept as ``influencers_growth_NAME``
and reused when it holds the same sizes: ``--keep full`` is the database ``python -m bench.growth
--keep full`` uses. The small one is loaded for the run and dropped.

Each query is a `search(conn, Selection(...), sort=..., limit=50)` in this process on one kept
connection (``detail(uid)`` for the detail): the first call is shown apart, the median of
``--repeat`` more is the figure. Page 50 is reached by following ``next`` from page 1; the
timed call is page 50 alone. Two queries also go through the API (``python -m influencers api``,
a kept-alive HTTP connection; the API opens a database connection per request). Every SELECT of
this process runs under MariaDB's ``max_statement_time`` (``--cap``): a query stopped there is
reported as more than the cap (and not sent to the API). The target: ≤ 200 ms a search on the
large database. ``--explain``: each query's statements EXPLAINed, and how many rows match.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pymysql

from bench.common import SERVER_URL, drop_database, machine_line, median, server_line
from bench.growth import Cut, Db, capped, derived_key, sample
from bench.growth_data import Sizes
from bench.growth_io import ApiClient
from bench.growth_store import load_large
from influencers.core import search as finder
from influencers.core.config import parse_mysql_url
from influencers.core.db import connect
from influencers.core.errors import InvalidArgument
from influencers.core.selection import Selection

TARGET_MS = 200.0
LIMIT = 50
DEEP_PAGE = 50
RARE_TEXT = "小晴霜"  # a prefix and a given name of two of 200 characters: ~1 row in 1,000,000
COMMON_TEXT = "日记"  # a suffix and a title: ~6% of the rows
ONE_CHAR = "鹿"  # ~1.4% of the rows
ONE_CHAR_NONE = "龘"  # in no nickname: the worst case of a 1-character text
COMMON_TAG = "护肤"  # one of 美妆's 8 tags: ~3% of the rows
API_QUERIES = ("nickname, rare", "region prefix, sort -fans")


@dataclass(frozen=True)
class Query:
    name: str
    selection: Selection | None = None  # None: detail(uid)
    sort: str = finder.DEFAULT_SORT
    page: int = 1


def queries(uid: str) -> list[Query]:
    return [
        Query("nickname, rare", Selection(q=RARE_TEXT)),
        Query("nickname, common", Selection(q=COMMON_TEXT)),
        Query("nickname, 1 character", Selection(q=ONE_CHAR)),
        Query("nickname, 1 character, no match", Selection(q=ONE_CHAR_NONE)),
        Query("tag, common", Selection(tag=COMMON_TAG)),
        Query("tag + domain + fans_min", Selection(domain="美妆", tag=COMMON_TAG, fans_min=100_000)),
        Query("region prefix, sort -fans", Selection(region="广东"), "-fans"),
        Query("fans range, sort fans", Selection(fans_min=50_000, fans_max=60_000), "fans"),
        Query("growth_7d_min, sort -growth", Selection(growth_7d_min=1_000), "-growth"),
        Query("has_contact, page 1", Selection(has_contact=True)),
        Query(f"has_contact, page {DEEP_PAGE}", Selection(has_contact=True), page=DEEP_PAGE),
        Query("uid", Selection(uid=uid)),
        Query("detail(uid)"),
    ]


def middle_uid(rows: int) -> str:
    """The uid of the row in the middle (bench.growth_data numbers them g000000001 …)."""
    return f"g{max(1, rows // 2):09d}"


# -- timing -------------------------------------------------------------------------------------


@contextlib.contextmanager
def statements(sent: list[str]) -> Iterator[None]:
    """Every statement this process sends in the block, appended to ``sent`` (without the cap)."""
    original = pymysql.connections.Connection.query

    def query(self: Any, sql: Any, unbuffered: bool = False) -> Any:
        text = sql if isinstance(sql, str) else sql.decode("utf-8", "replace")
        sent.append(text.split(" FOR ", 1)[1] if text.startswith("SET STATEMENT") else text)
        return original(self, sql, unbuffered)

    pymysql.connections.Connection.query = query
    try:
        yield
    finally:
        pymysql.connections.Connection.query = original


def call_of(conn: Any, query: Query, uid: str, found: dict[str, Any]) -> Callable[[], float]:
    """A call that runs ``query`` once and returns its seconds; ``found['rows']`` its rows."""
    after = None
    if query.page > 1:  # follow `next` to the page; only the page itself is timed
        for _ in range(query.page - 1):
            after = finder.search(conn, query.selection, sort=query.sort, limit=LIMIT, after=after).next
            if after is None:
                break

    def call() -> float:
        started = time.perf_counter()
        if query.selection is None:
            found["rows"] = int(finder.detail(conn, uid) is not None)
        elif query.page > 1 and after is None:
            found["rows"] = 0  # there is no such page
        else:
            found["rows"] = len(finder.search(conn, query.selection, sort=query.sort, limit=LIMIT, after=after).rows)
        return time.perf_counter() - started

    return call


def measure(call: Callable[[], float], repeat: int, cap: float, sent: list[str]) -> dict[str, Any]:
    """The first call (its statements into ``sent``), then up to ``repeat`` more while the calls
    so far took less than ``cap`` seconds; a call stopped by the cap ends it, marked cut."""
    try:
        with statements(sent):
            first = call()
    except (Cut, InvalidArgument):  # the bench's cap, or the search's own (it refuses the query)
        return {"first": cap, "runs": [], "cut": True}
    runs: list[float] = []
    while len(runs) < repeat and first + sum(runs) < cap:
        try:
            runs.append(call())
        except (Cut, InvalidArgument):
            return {"first": first, "runs": runs, "cut": True}
    return {"first": first, "runs": runs}


def time_queries(db: Db, uid: str, repeat: int, cap: float) -> dict[str, dict[str, Any]]:
    """Each query's first call, ``repeat`` more, its rows and the statements of its first call."""
    conn = connect(db.settings)
    results: dict[str, dict[str, Any]] = {}
    try:
        with capped(cap):
            for query in queries(uid):
                found: dict[str, Any] = {}
                sent: list[str] = []
                try:
                    result = measure(call_of(conn, query, uid, found), repeat, cap, sent)
                except Cut:  # on the way to its page
                    result = {"first": cap, "runs": [], "cut": True}
                results[query.name] = result | {"rows": found.get("rows"), "sent": sent, "query": query}
                print(f"  {db.label}: {query.name}: {describe(results[query.name])}", flush=True)
    finally:
        conn.close()
    return results


def time_api(db: Db, uid: str, workdir: Path, repeat: int, cap: float, in_process: dict[str, dict[str, Any]]
             ) -> dict[str, dict[str, Any]]:
    """The API's answer to two of the queries; not sent when the query ran past the cap in process
    (the API has no cap: it would hold the run)."""
    chosen = [query for query in queries(uid) if query.name in API_QUERIES]
    runnable = [query for query in chosen if not in_process[query.name].get("cut")]
    results = {f"GET ({query.name})": {"first": cap, "runs": [], "cut": True, "rows": None, "sent": []}
               for query in chosen if query not in runnable}
    if not runnable:
        return results
    client = ApiClient.start(db.env(workdir), workdir / f"api-{db.label}")
    try:
        for query in runnable:
            params = {key: str(value).lower() if isinstance(value, bool) else value
                      for key, value in query.selection.filters.items()}
            path = "/api/v1/influencers?" + urlencode(params | {"sort": query.sort, "limit": LIMIT})
            found: dict[str, Any] = {}

            def call(path: str = path, found: dict[str, Any] = found) -> float:
                started = time.perf_counter()
                found["rows"] = len(json.loads(client.get(0, path))["items"])
                return time.perf_counter() - started

            results[f"GET ({query.name})"] = sample(call, repeat, cap) | {"rows": found["rows"], "sent": []}
            print(f"  {db.label}: GET {path}: {describe(results[f'GET ({query.name})'])}", flush=True)
    finally:
        client.stop()
    return results


# -- EXPLAIN ------------------------------------------------------------------------------------


def explain(db: Db, results: dict[str, dict[str, Any]], cap: float) -> None:
    """The plan of every SELECT each query sent (its first call), and its matching rows."""
    conn = pymysql.connect(host=db.settings.host, port=db.settings.port, user=db.settings.user,
                           password=db.settings.password, database=db.settings.database, charset="utf8mb4")
    try:
        for result in results.values():
            plans = []
            for sql in result["sent"]:
                if not sql.lstrip().upper().startswith("SELECT"):
                    continue
                with conn.cursor() as cursor:
                    cursor.execute("EXPLAIN " + sql)
                    names = [d[0] for d in cursor.description]
                    steps = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
                plans.append((sql, steps))
            result["plans"] = plans
            result["key"] = " + ".join(",".join(f"{s['type']} {s['key'] or '-'}" for s in steps if s["table"] == "i")
                                       for _, steps in plans if any(s["table"] == "i" for s in steps)) or "-"
            result["matching"] = matching(conn, result.get("query"), cap)
    finally:
        conn.close()


def matching(conn: Any, query: Query | None, cap: float) -> int | str | None:
    """How many rows the query's selection matches (None for the detail)."""
    if query is None or query.selection is None:
        return None
    where, params = query.selection.where()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SET STATEMENT max_statement_time = {cap:g} FOR SELECT COUNT(*) FROM influencers i"
                           f" WHERE {where}", params)
            return int(cursor.fetchone()[0])
    except pymysql.err.OperationalError:
        return f"> {cap:g} s"


# -- the report ---------------------------------------------------------------------------------


def figure(result: dict[str, Any]) -> float:
    """The median in ms (the first call when there was no other); inf when cut."""
    if result.get("cut"):
        return float("inf")
    return median(result["runs"] or [result["first"]]) * 1000


def describe(result: dict[str, Any]) -> str:
    if result.get("cut"):
        return "> cap (cut)"
    runs = result["runs"]
    spread = f" ({min(runs) * 1000:,.1f}–{max(runs) * 1000:,.1f}, n={len(runs)})" if runs else " (n=0)"
    return f"{figure(result):,.1f} ms{spread}, first {result['first'] * 1000:,.0f} ms, {result['rows']} rows"


def report(small: dict[str, dict[str, Any]], large: dict[str, dict[str, Any]], cap: float, explained: bool) -> None:
    print(f"\nmedians of the calls after the first (min–max, n), ms; the first call apart; limit {LIMIT}; "
          f"cap {cap:g} s; target ≤ {TARGET_MS:.0f} ms on the large database")
    header = (f"  {'query':<34} {'rows s/l':>9} {'small':>9} {'large (min–max, n)':>34} {'large/small':>11}"
              f" {'first s / l':>16}  {'≤ 200 ms':<8}")
    print(header + (f"  {'matching (large)':>16}  plan key (large)" if explained else ""))
    for name, big in large.items():
        little = small[name]
        ratio = "-" if big.get("cut") or little.get("cut") else f"{figure(big) / figure(little):,.1f}x"
        first = " / ".join("cut" if r.get("cut") else f"{r['first'] * 1000:,.0f}" for r in (little, big))
        line = (f"  {name:<34} {_rows(little) + '/' + _rows(big):>9} {_ms(little, cap):>9} {_ms(big, cap, True):>34}"
                f" {ratio:>11} {first:>16}  {'met' if figure(big) <= TARGET_MS else 'NOT met':<8}")
        if explained:
            matches = big.get("matching")
            line += f"  {'-' if matches is None else format(matches, ',') if isinstance(matches, int) else matches:>16}"
            line += f"  {big.get('key', '-')}"
        print(line)


def _ms(result: dict[str, Any], cap: float, spread: bool = False) -> str:
    if result.get("cut"):
        return f"> {cap:g} s (cut)"
    runs = result["runs"]
    text = f"{figure(result):,.1f}"
    if spread:
        text += f" ({min(runs) * 1000:,.1f}–{max(runs) * 1000:,.1f}, n={len(runs)})" if runs else " (n=0)"
    return text


def _rows(result: dict[str, Any]) -> str:
    return "-" if result.get("rows") is None else str(result["rows"])


def print_plans(large: dict[str, dict[str, Any]]) -> None:
    for name, result in large.items():
        for sql, steps in result.get("plans", []):
            print(f"\nEXPLAIN ({name}): {' '.join(sql.split())[:400]}")
            for step in steps:
                print(f"    {step.get('select_type')} {step.get('table')} type={step.get('type')} key={step.get('key')}"
                      f" rows={step.get('rows')} {step.get('Extra') or ''}")


# -- the run ------------------------------------------------------------------------------------


def open_database(label: str, name: str, rows: int, workdir: Path) -> tuple[Db, float, bool]:
    settings = replace(parse_mysql_url(SERVER_URL), database=name)
    key = derived_key(name)
    started = time.monotonic()
    marks, loaded = load_large(settings, key, Sizes.scaled(rows), workdir)
    return Db(label, settings, key, marks), time.monotonic() - started, loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="influencers of the large database")
    parser.add_argument("--small-rows", type=int, default=10_000, help="influencers of the small database")
    parser.add_argument("--repeat", type=int, default=5, help="calls after the first, for the median")
    parser.add_argument("--cap", type=float, default=30,
                        help="seconds: a statement is stopped there (MariaDB max_statement_time), and a query is not"
                             " repeated once its calls took that long")
    parser.add_argument("--keep", metavar="NAME", help="keep the large database as influencers_growth_NAME; reuse it")
    parser.add_argument("--explain", action="store_true", help="each query's plan, and its matching rows")
    args = parser.parse_args(argv)
    if args.keep is not None and not re.fullmatch(r"[A-Za-z0-9_]{1,40}", args.keep):
        parser.error("--keep takes letters, digits and _")
    if args.repeat < 1 or args.small_rows < 2000 or args.rows < args.small_rows:
        parser.error("--repeat ≥ 1, --small-rows ≥ 2000, --rows ≥ --small-rows")

    print(machine_line(), flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # so the databases are dropped on SIGTERM too
    prefix = f"influencers_search_{os.getpid()}"
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        workdir = Path(tmp)
        stack.callback(signal.signal, signal.SIGTERM, previous)
        small_name, large_name = f"{prefix}_small", f"influencers_growth_{args.keep}" if args.keep else f"{prefix}_large"
        for name in [small_name] if args.keep else [small_name, large_name]:
            stack.callback(drop_database, replace(parse_mysql_url(SERVER_URL), database=name))
        small, seconds, _ = open_database("small", small_name, args.small_rows, workdir)
        print(f"small database {small_name}: {args.small_rows:,} rows loaded in {seconds:,.1f} s", flush=True)
        large, seconds, loaded = open_database("large", large_name, args.rows, workdir)
        print(f"large database {large_name}: {'loaded' if loaded else 'reused (same sizes)'} in {seconds:,.0f} s;"
              f" {Sizes.scaled(args.rows).key()}", flush=True)
        conn = connect(large.settings)
        print(server_line(conn), flush=True)
        conn.close()

        uids = {"small": middle_uid(args.small_rows), "large": middle_uid(args.rows)}
        times = {db.label: time_queries(db, uids[db.label], args.repeat, args.cap) for db in (small, large)}
        for db in (small, large):
            times[db.label] |= time_api(db, uids[db.label], workdir, args.repeat, args.cap, times[db.label])
        if args.explain:
            explain(large, times["large"], args.cap)
        report(times["small"], times["large"], args.cap, args.explain)
        if args.explain:
            print_plans(times["large"])
    return 0


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
