"""Export throughput: `python -m exporter run --once` against plain keyset SELECT → CSV.

    python -m bench.export [--rows 50000,500000] [--repeat 3] [--batch-size N] [--accounts 4]
                           [--per-row-rows 5000] [--compare-ref GIT_REF]

For every size in ``--rows``, ``--repeat`` times, each path starts from the same freshly loaded
table (TRUNCATE + LOAD DATA of the same file: N pending 美妆 rows with ~600 bytes of raw_data
JSON with Chinese text, emoji and 2% spreadsheet-hostile nicknames):

* ``plain``      keyset ``SELECT … WHERE id > last ORDER BY id LIMIT batch`` → one CSV file
                 (csv module, UTF-8 BOM, one fsync at the end); no status change. The baseline.
* ``update``     the same plus one ``UPDATE … SET status='exported' WHERE id BETWEEN`` and a
                 commit per batch.
* ``per-row``    the same with one UPDATE + COMMIT per row, on the first ``--per-row-rows`` rows.
* ``exporter``   ``python -m exporter run --once`` as its own process, wall time from spawn to
                 exit: claim, quota accounting, reserve → publish (temp file, fsync, rename,
                 fsync dir) → finalize per batch, the account relay (``--accounts`` accounts,
                 each with a quota of a third of the rows), export_logs and events. Its peak RSS
                 and CPU come from wait4. Afterwards the rows, batches and quotas are checked.

With ``--compare-ref`` the exporter of an earlier commit (``git archive`` of its ``exporter/``,
``influencers/`` and ``sql/``) runs too, on the same data in the same repeats: before/after. It
runs on this commit's schema, so only commits from ed2f88a on compare fairly: older exporters
find a batch's rows through ``ix_influencers_export_log``, which the schema no longer has.

Prints rows/s (median, min–max) per path, the ratio to ``plain`` from the same run, the server's
CPU seconds per path (``pidof mariadbd``), and the exporter's peak RSS per size.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.common import (
    REPO_ROOT,
    add_accounts,
    bench_database,
    child_env,
    connect_infile,
    cpu_seconds,
    load_data,
    local_infile_on,
    machine_line,
    mariadb_pid,
    median,
    parse_counts,
    python_module,
    run_measured,
    server_line,
    spread,
    synthetic_rows,
    write_load_file,
)
from exporter.batches import DEFAULT_BATCH_SIZE
from exporter.writers import COLUMNS
from influencers.core.accounts import AccountManager
from influencers.core.db import connect
from influencers.core.tasks import TaskScheduler

DOMAIN = "美妆"
TARGET_RATE = 30_000
TARGET_SHARE = 0.60
TARGET_RSS_MB = 150
SELECT_PAGE = (
    "SELECT id, uid, nickname, domain, source_page, ingested_at, raw_data FROM influencers"
    " WHERE domain = %s AND status = 'pending_export' AND id > %s ORDER BY id LIMIT %s"
)
MARK_RANGE = (
    "UPDATE influencers SET status = 'exported'"
    " WHERE domain = %s AND status = 'pending_export' AND id BETWEEN %s AND %s"
)
MARK_ONE = "UPDATE influencers SET status = 'exported' WHERE id = %s"


def reset(settings, conn, load_file: Path, rows: int, accounts: int) -> int:
    """Empty every table, load the rows, add the accounts and one export task; returns its id."""
    with conn.cursor() as cursor:
        cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in ("influencers", "export_logs", "events", "tasks", "accounts"):
            cursor.execute(f"TRUNCATE TABLE {table}")
        cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
    conn.commit()
    loaded = load_data(conn, load_file)
    if loaded != rows:
        raise RuntimeError(f"loaded {loaded} rows, expected {rows}")
    dict_conn = connect(settings)
    try:
        add_accounts(dict_conn, accounts, daily_export_limit=math.ceil(rows / 3))
        return TaskScheduler(dict_conn, None, AccountManager(dict_conn)).create_export(DOMAIN)
    finally:
        dict_conn.close()


def keyset_csv(conn, path: Path, batch: int, *, mark: str | None = None, limit: int | None = None) -> int:
    """SELECT pages in id order into one CSV; ``mark``: None, 'batch' or 'row'."""
    last, count = 0, 0
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        while limit is None or count < limit:
            size = batch if limit is None else min(batch, limit - count)
            with conn.cursor() as cursor:
                cursor.execute(SELECT_PAGE, (DOMAIN, last, size))
                rows = cursor.fetchall()
                if not rows:
                    break
                writer.writerows(rows)
                first, last = rows[0][0], rows[-1][0]
                count += len(rows)
                if mark == "batch":
                    cursor.execute(MARK_RANGE, (DOMAIN, first, last))
                    conn.commit()
                elif mark == "row":
                    for row in rows:
                        cursor.execute(MARK_ONE, (row[0],))
                        conn.commit()
                else:
                    conn.commit()
        fh.flush()
        os.fsync(fh.fileno())
    return count


def timed(fn, *args, **kwargs) -> tuple[int, float, float]:
    """(rows, seconds, server CPU seconds) of one in-process path."""
    server = mariadb_pid()
    cpu0 = cpu_seconds(server)
    started = time.monotonic()
    rows = fn(*args, **kwargs)
    return rows, time.monotonic() - started, cpu_seconds(server) - cpu0


def checkout(ref: str, workdir: Path) -> Path:
    """The exporter and core of an earlier commit, unpacked beside the bench's files."""
    target = workdir / f"ref-{ref.replace('/', '_')}"
    target.mkdir()
    archive = subprocess.run(["git", "archive", ref, "exporter", "influencers", "sql"], cwd=REPO_ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run_exporter(settings, workdir: Path, batch_size: int | None, rows: int, log: Path,
                 code: Path | None = None) -> dict:
    env = child_env(settings, workdir)
    if code is not None:
        env["PYTHONPATH"] = f"{code}{os.pathsep}{REPO_ROOT}"  # its packages first; bench.measure from here
    args = python_module("exporter", "run", "--once", "--poll-interval", "1")
    if batch_size:
        args += ["--batch-size", str(batch_size)]
    server = mariadb_pid()
    cpu0 = cpu_seconds(server)
    with open(log, "w", encoding="utf-8") as err:
        finished = run_measured(args, workdir=workdir, timeout=max(120, rows / 2000), cwd=workdir, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    server_cpu = cpu_seconds(server) - cpu0
    if finished.returncode != 0:
        raise RuntimeError(f"exporter exited {finished.returncode}; log:\n{log.read_text()[-3000:]}")
    return {"seconds": finished.wall, "cpu": finished.cpu, "rss": finished.maxrss_mb, "server_cpu": server_cpu}


def check_export(settings, export_dir: Path, rows: int) -> dict:
    """Every row exported, in exactly one published batch; quotas equal the rows in the files."""
    conn = connect(settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) AS n FROM influencers WHERE status = 'exported' AND export_log_id <> 0")
            exported = cursor.fetchone()["n"]
            cursor.execute("SELECT COUNT(*) AS batches, SUM(exported_count) AS counted, SUM(state <> 'published') AS open,"
                           " COUNT(DISTINCT account_id) AS accounts FROM export_logs")
            logs = cursor.fetchone()
            cursor.execute("SELECT SUM(today_export_count) AS used FROM accounts")
            used = cursor.fetchone()["used"]
        conn.commit()
    finally:
        conn.close()
    files = [p for p in export_dir.rglob("*") if p.is_file()]
    problems = []
    if exported != rows or int(logs["counted"] or 0) != rows or int(used or 0) != rows:
        problems.append(f"exported {exported}, in batches {logs['counted']}, counted on quotas {used} (want {rows})")
    if logs["open"]:
        problems.append(f"{logs['open']} batches not published")
    if len(files) != logs["batches"] or any(p.name.startswith(".") for p in files):
        problems.append(f"{len(files)} files for {logs['batches']} batches")
    if problems:
        raise RuntimeError("export check failed: " + "; ".join(problems))
    return {"batches": logs["batches"], "accounts": logs["accounts"], "bytes": sum(p.stat().st_size for p in files)}


def bench_size(settings, conn, workdir: Path, rows: int, args) -> dict:
    load_file = workdir / f"rows-{rows}.tsv"
    write_load_file(load_file, synthetic_rows(rows, domain=DOMAIN))
    batch = args.page_size
    per_row = min(rows, args.per_row_rows)
    rates: dict[str, list[float]] = defaultdict(list)
    server_cpu: dict[str, list[float]] = defaultdict(list)
    rss, cpu, checks = [], [], []
    export_dir = workdir / "exports"
    for attempt in range(1, args.repeat + 1):
        reset(settings, conn, load_file, rows, args.accounts)
        done, seconds, server = timed(keyset_csv, conn, workdir / "plain.csv", batch)
        assert done == rows, (done, rows)
        rates["plain"].append(rows / seconds)
        server_cpu["plain"].append(server / seconds)
        done, seconds, server = timed(keyset_csv, conn, workdir / "per-row.csv", batch, mark="row", limit=per_row)
        rates["per-row"].append(done / seconds)
        server_cpu["per-row"].append(server / seconds)

        reset(settings, conn, load_file, rows, args.accounts)
        done, seconds, server = timed(keyset_csv, conn, workdir / "update.csv", batch, mark="batch")
        assert done == rows, (done, rows)
        rates["update"].append(rows / seconds)
        server_cpu["update"].append(server / seconds)

        reset(settings, conn, load_file, rows, args.accounts)
        shutil.rmtree(export_dir, ignore_errors=True)
        result = run_exporter(settings, workdir, args.batch_size, rows, workdir / f"exporter-{rows}-{attempt}.log")
        checks.append(check_export(settings, export_dir, rows))
        rates["exporter"].append(rows / result["seconds"])
        server_cpu["exporter"].append(result["server_cpu"] / result["seconds"])
        rss.append(result["rss"])
        cpu.append(result["cpu"] / result["seconds"])
        shutil.rmtree(export_dir, ignore_errors=True)
        if args.compare_code is not None:
            reset(settings, conn, load_file, rows, args.accounts)
            result = run_exporter(settings, workdir, args.batch_size, rows, workdir / f"ref-{rows}-{attempt}.log",
                                  code=args.compare_code)
            check_export(settings, export_dir, rows)
            rates["ref"].append(rows / result["seconds"])
            server_cpu["ref"].append(result["server_cpu"] / result["seconds"])
            shutil.rmtree(export_dir, ignore_errors=True)
        before = f", exporter@{args.compare_ref} {rates['ref'][-1]:,.0f}" if args.compare_code else ""
        print(f"  run {attempt}: plain {rates['plain'][-1]:,.0f}, update {rates['update'][-1]:,.0f},"
              f" per-row {rates['per-row'][-1]:,.0f}, exporter {rates['exporter'][-1]:,.0f}{before} rows/s,"
              f" exporter peak RSS {rss[-1]:.1f} MB", flush=True)
    load_file.unlink()

    plain = median(rates["plain"])
    print(f"\nexport of {rows:,} rows (exporter batch {args.batch_size or DEFAULT_BATCH_SIZE}, {checks[-1]['batches']} files"
          f" over {checks[-1]['accounts']} accounts, baselines read pages of {batch};"
          f" {checks[-1]['bytes'] / rows:.0f} bytes/row in the files); medians of {args.repeat}")
    print(f"  {'path':<46} {'rows/s (min–max)':>34} {'vs plain':>9} {'server CPU':>11}")
    labels = {
        "plain": "keyset SELECT → CSV (baseline)",
        "update": "SELECT → CSV + one UPDATE per batch",
        "per-row": f"SELECT → CSV + per-row UPDATE+COMMIT ({per_row:,})",
        "exporter": "python -m exporter run --once",
    }
    if args.compare_code is not None:
        labels["ref"] = f"the same, exporter of {args.compare_ref}"
    for key, label in labels.items():
        print(f"  {label:<46} {spread(rates[key]):>34} {median(rates[key]) / plain:>8.2f}x"
              f" {median(server_cpu[key]):>10.2f}c")
    print(f"  exporter: peak RSS {spread(rss)} MB, CPU {median(cpu):.2f} cores while it ran")
    if args.compare_code is not None:
        print(f"  exporter now vs {args.compare_ref}: {median(rates['exporter']) / median(rates['ref']):.2f}x")
    return {"rows": rows, "exporter": median(rates["exporter"]), "plain": plain, "rss": max(rss)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=parse_counts, default=[50_000, 500_000], help="sizes, e.g. 50000,500000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"exporter --batch-size (default: the exporter's own, {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--page-size", type=int, default=5000, help="rows per SELECT of the baselines")
    parser.add_argument("--accounts", type=int, default=4, help="accounts, each with a quota of a third of the rows")
    parser.add_argument("--per-row-rows", type=int, default=5000, help="rows for the per-row UPDATE+COMMIT anchor")
    parser.add_argument("--compare-ref", metavar="GIT_REF", help="also run the exporter of this commit (before/after)")
    args = parser.parse_args(argv)
    print(machine_line())
    results = []
    with bench_database() as settings, tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        args.compare_code = checkout(args.compare_ref, Path(tmp)) if args.compare_ref else None
        conn = connect_infile(settings)
        try:
            print(server_line(conn), flush=True)
            with local_infile_on(conn):
                for rows in args.rows:
                    print(f"\n== {rows:,} rows", flush=True)
                    results.append(bench_size(settings, conn, Path(tmp), rows, args))
        finally:
            conn.close()
    print("\ntargets:")
    for result in results:
        share = result["exporter"] / result["plain"]
        print(f"  {result['rows']:>9,} rows: exporter {result['exporter']:,.0f} rows/s"
              f" ({'met' if result['exporter'] >= TARGET_RATE else 'NOT met'}: ≥ {TARGET_RATE:,}),"
              f" {share:.0%} of plain ({'met' if share >= TARGET_SHARE else 'NOT met'}: ≥ {TARGET_SHARE:.0%}),"
              f" peak RSS {result['rss']:.1f} MB ({'met' if result['rss'] < TARGET_RSS_MB else 'NOT met'}:"
              f" < {TARGET_RSS_MB} MB)")
    if len(results) > 1:
        low, high = results[0], results[-1]
        print(f"  RSS {low['rows']:,} → {high['rows']:,} rows: {low['rss']:.1f} → {high['rss']:.1f} MB"
              f" ({high['rss'] - low['rss']:+.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
