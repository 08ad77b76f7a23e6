"""`python -m exporter run` as real processes against real MariaDB: the seed's relay scenario,
SIGKILL at random moments, concurrent exporters, SIGTERM, configuration errors."""
from __future__ import annotations

import csv
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from openpyxl import load_workbook

from influencers.core.counts import counted, recount

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


# -- helpers ------------------------------------------------------------------------------------


def insert_rows(db, domain: str, count: int, *, prefix: str = "u") -> None:
    rows = [
        (f"达人{i}😀", f"{prefix}{i:06d}", domain, f"page={i // 20 + 1}",
         json.dumps({"fans": i, "region": "上海"}, ensure_ascii=False))
        for i in range(count)
    ]
    with db.cursor() as cursor:
        for start in range(0, len(rows), 5000):
            cursor.executemany(
                "INSERT INTO influencers (nickname, uid, domain, source_page, raw_data) VALUES (%s, %s, %s, %s, %s)",
                rows[start:start + 5000],
            )
    db.commit()
    recount(db)  # inserted around the pipeline, which keeps the domain counts


def counts_match(db) -> None:
    """The kept domain counts equal the rows' own (they change in the exporter's transactions)."""
    rows = query(db, "SELECT domain, status, COUNT(*) AS n FROM influencers GROUP BY domain, status")
    assert counted(db) == Counter({(row["domain"], row["status"]): row["n"] for row in rows})


def query(db, sql: str, params=()) -> list[dict]:
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = list(cursor.fetchall())
    db.commit()
    return rows


def one(db, sql: str, params=()):
    return next(iter(query(db, sql, params)[0].values()))


def exporter(env, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "exporter", "run", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


class StderrWatch:
    """Reads a process's stderr on a thread, and tells when a line containing ``marker`` came."""

    def __init__(self, proc: subprocess.Popen, marker: str) -> None:
        self.proc, self.marker, self.lines = proc, marker, []
        self.seen = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if self.marker in line:
                self.seen.set()
        self.seen.set()  # the process ended: nobody should wait any longer

    def text(self, timeout: float = 30) -> str:
        """Everything it wrote, once it has exited."""
        self.proc.wait(timeout)
        self.thread.join(timeout)
        self.proc.stdout.close()
        return "".join(self.lines)


def run_exporter(env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exporter", "run", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def start_export(env, domain: str, *args: str) -> int:
    out = subprocess.run([sys.executable, "-m", "influencers", "start_export", "--domain", domain, *args],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split("export task ")[1].split()[0])


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exporter exited ({proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def file_uids(path: Path) -> list[str]:
    if path.suffix == ".xlsx":
        header, *body = load_workbook(path, read_only=True).worksheets[0].iter_rows(values_only=True)
        return [str(row[header.index("uid")]) for row in body]
    if path.suffix == ".jsonl":
        return [json.loads(line)["uid"] for line in path.read_text(encoding="utf-8").splitlines()]
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [row["uid"] for row in csv.DictReader(fh)]


def check_exactly_once(db, export_dir: Path) -> dict[str, int]:
    """Every published batch is one complete file holding exactly its rows; returns uid → batch."""
    counts_match(db)
    logs = query(db, "SELECT * FROM export_logs ORDER BY id")
    assert [log["id"] for log in logs if log["state"] != "published"] == []
    assert list(export_dir.rglob(".*.tmp")) == []
    on_disk = {p for p in export_dir.rglob("*") if p.is_file()}
    assert on_disk == {Path(log["file_path"]) for log in logs}
    owner: dict[str, int] = {}
    for log in logs:
        uids = file_uids(Path(log["file_path"]))
        assert len(uids) == log["exported_count"]
        expected = [r["uid"] for r in query(db, "SELECT uid FROM influencers WHERE export_log_id = %s ORDER BY id",
                                             (log["id"],))]
        assert uids == expected
        for uid in uids:
            assert uid not in owner, f"{uid} in batches {owner[uid]} and {log['id']}"
            owner[uid] = log["id"]
    exported = {r["uid"] for r in query(db, "SELECT uid FROM influencers WHERE status = 'exported'")}
    assert exported == set(owner)  # exported ⇔ in a finished file
    for account in query(db, "SELECT * FROM accounts"):
        in_files = sum(log["exported_count"] for log in logs
                       if log["account_id"] == account["id"] and log["quota_date"] == account["quota_date"])
        assert account["today_export_count"] == in_files, account["username"]
        assert account["today_export_count"] <= account["daily_export_limit"]
    tallied = query(db, "SELECT label, SUM(value) AS n FROM tallies WHERE name = 'rows_exported' GROUP BY label")
    published: Counter[str] = Counter()
    for log in logs:
        published[str(log["account_id"])] += log["exported_count"]
    assert {row["label"]: int(row["n"]) for row in tallied} == +published  # GET /metrics: counted once, at finalize
    return owner


def turn_quota_day(db) -> None:
    """Inject the clock: everything counted so far happened yesterday (local quota day)."""
    with db.cursor() as cursor:
        cursor.execute("UPDATE accounts SET quota_date = quota_date - INTERVAL 1 DAY")
        cursor.execute("UPDATE export_logs SET quota_date = quota_date - INTERVAL 1 DAY")
    db.commit()


def task_events(db, task_id: int) -> list[tuple[str, int | None]]:
    return [(r["event"], r["account_id"]) for r in
            query(db, "SELECT event, account_id FROM events WHERE entity = 'task' AND entity_id = %s ORDER BY id",
                  (task_id,))]


# -- the seed's scenario (5.2) ------------------------------------------------------------------------


def test_seed_relay_scenario(db, accounts, env):
    insert_rows(db, "美妆", 10_000)
    insert_rows(db, "游戏", 500, prefix="g")  # another domain is never touched
    account1 = accounts.add("account1", "secret-1", daily_export_limit=4000)
    account2 = accounts.add("account2", "secret-2", daily_export_limit=4000)
    task_id = start_export(env, "美妆")
    export_dir = Path(env["INFLUENCERS_EXPORT_DIR"])

    service = exporter(env, "--poll-interval", "0.2")
    try:
        def paused_at_8000():
            row = query(db, "SELECT status, exported_count FROM tasks WHERE id = %s", (task_id,))[0]
            return row["status"] == "paused" and row["exported_count"] == 8000

        wait_until(paused_at_8000, 60, "the task to pause after two accounts", service)
        time.sleep(0.5)  # the service keeps polling; nothing may change while no account has quota

        logs = query(db, "SELECT * FROM export_logs ORDER BY id")
        assert [(log["account_id"], log["exported_count"], log["domain"], log["state"]) for log in logs] == [
            (account1, 4000, "美妆", "published"), (account2, 4000, "美妆", "published")]
        assert (logs[0]["first_id"], logs[0]["last_id"]) == (1, 4000)
        assert (logs[1]["first_id"], logs[1]["last_id"]) == (4001, 8000)  # continues after account 1's last id
        for log in logs:
            assert Path(log["file_path"]).is_file() and log["file_path"].endswith(".csv")
            assert f"acct{log['account_id']}" in Path(log["file_path"]).name
        task = query(db, "SELECT * FROM tasks WHERE id = %s", (task_id,))[0]
        assert task["status"] == "paused" and task["progress_marker"] == "last_id=8000"
        assert one(db, "SELECT COUNT(*) FROM influencers WHERE domain = '美妆' AND status = 'pending_export'") == 2000
        uids = [uid for log in logs for uid in file_uids(Path(log["file_path"]))]
        assert len(uids) == len(set(uids)) == 8000
        assert set(uids) == {f"u{i:06d}" for i in range(8000)}
        for account in accounts.list():
            assert (account.status, account.today_export_count, account.remaining_quota) == ("idle", 4000, 0)
        events = task_events(db, task_id)
        assert events[:5] == [("created", None), ("claimed", account1), ("paused", account1),
                              ("claimed", account2), ("paused", account2)]
        check_exactly_once(db, export_dir)

        turn_quota_day(db)  # no cron job: the service notices by itself
        wait_until(lambda: one(db, "SELECT status FROM tasks WHERE id = %s", (task_id,)) == "completed",
                   60, "the task to resume and complete on the new quota day", service)
    finally:
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=30)
    assert service.returncode == 0, stderr
    assert "secret-1" not in stderr and "secret-2" not in stderr
    assert "Traceback" not in stderr

    logs = query(db, "SELECT * FROM export_logs ORDER BY id")
    assert [log["exported_count"] for log in logs] == [4000, 4000, 2000]
    assert (logs[2]["first_id"], logs[2]["last_id"]) == (8001, 10000)
    owner = check_exactly_once(db, export_dir)
    assert set(owner) == {f"u{i:06d}" for i in range(10_000)}
    assert one(db, "SELECT COUNT(*) FROM influencers WHERE domain = '游戏' AND status = 'pending_export'") == 500
    assert task_events(db, task_id)[-2:] == [("claimed", logs[2]["account_id"]), ("completed", logs[2]["account_id"])]
    assert stderr.count("exported 4000 美妆 rows") == 2  # one log line per batch


def test_once_exits_3_while_work_waits_for_quota_and_0_when_done(db, accounts, env):
    insert_rows(db, "游戏", 300)
    accounts.add("account1", "pw", daily_export_limit=200)
    task_id = start_export(env, "游戏", "--format", "xlsx")
    first = run_exporter(env, "--once")
    assert first.returncode == 3, first.stderr
    assert one(db, "SELECT status FROM tasks WHERE id = %s", (task_id,)) == "paused"
    turn_quota_day(db)
    second = run_exporter(env, "--once")
    assert second.returncode == 0, second.stderr
    assert one(db, "SELECT status FROM tasks WHERE id = %s", (task_id,)) == "completed"
    paths = [Path(r["file_path"]) for r in query(db, "SELECT file_path FROM export_logs ORDER BY id")]
    assert [p.suffix for p in paths] == [".xlsx", ".xlsx"]
    check_exactly_once(db, Path(env["INFLUENCERS_EXPORT_DIR"]))


# -- crashes and concurrency --------------------------------------------------------------------------


def test_sigkill_at_random_moments_keeps_every_row_in_exactly_one_file(db, accounts, env):
    rows, kills_wanted = 50_000, 24
    insert_rows(db, "美妆", rows)
    for n in range(1, 6):
        accounts.add(f"account{n}", "pw", daily_export_limit=11_000)
    task_id = start_export(env, "美妆")
    with db.cursor() as cursor:  # a task fails after max_attempts lost workers; this test kills on purpose
        cursor.execute("UPDATE tasks SET max_attempts = 1000 WHERE id = %s", (task_id,))
    db.commit()
    export_dir = Path(env["INFLUENCERS_EXPORT_DIR"])

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kills, republished = 0, 0
    started = time.monotonic()
    while kills < kills_wanted:
        assert one(db, "SELECT status FROM tasks WHERE id = %s", (task_id,)) != "completed", \
            f"the export finished after only {kills} kills (seed {seed})"
        proc = exporter(env, "--poll-interval", "0.1", "--batch-size", "150")
        watch = StderrWatch(proc, "claimed task")
        if kills % 2:  # between batches (~13 ms each): after the claim, wherever start-up took
            watch.seen.wait(15)
            time.sleep(rng.uniform(0.0, 0.15))
        else:  # start-up (~0.3 s of imports), recovery, claim and relay get hit too
            time.sleep(rng.uniform(0.05, 0.4))
        proc.kill()  # SIGKILL, then restart at once
        stderr = watch.text()
        assert "Traceback" not in stderr, stderr
        republished += stderr.count("re-published export batch")
        kills += 1
        for batch in query(db, "SELECT * FROM export_logs WHERE state = 'reserved'"):
            path = Path(batch["file_path"])  # a killed batch's file is absent or complete, never partial
            assert not path.exists() or len(file_uids(path)) == batch["exported_count"]
    final = run_exporter(env, "--once", "--batch-size", "150")
    republished += final.stderr.count("re-published export batch")
    elapsed = time.monotonic() - started
    assert final.returncode == 0, final.stderr
    assert republished >= 1, f"no kill landed inside a batch (seed {seed})"

    owner = check_exactly_once(db, export_dir)
    assert len(owner) == rows
    assert one(db, "SELECT COUNT(*) FROM influencers WHERE status <> 'exported'") == 0
    assert one(db, "SELECT status FROM tasks WHERE id = %s", (task_id,)) == "completed"
    assert len({r["account_id"] for r in query(db, "SELECT account_id FROM export_logs")}) == 5  # relay crossed all
    # each restart took the task over at once through the dead worker's lock, not after a lease
    reasons = [r["reason"] for r in query(db, "SELECT reason FROM events WHERE event = 'recovered'")]
    assert reasons and all(reason.startswith("worker gone") for reason in reasons)
    print(f"\n{kills} kills, {republished} batches re-published, {len(reasons)} claims recovered,"
          f" {elapsed:.1f}s (seed {seed})")


def test_three_exporters_on_one_domain_with_five_accounts(db, accounts, env):
    insert_rows(db, "美妆", 60_000)  # seconds of work, so the three processes really overlap
    for n in range(1, 6):
        accounts.add(f"account{n}", "pw", daily_export_limit=10_000)
    tasks = [start_export(env, "美妆") for _ in range(3)]
    procs = [exporter(env, "--once", "--batch-size", "700", "--worker-name", f"exp{n}") for n in range(3)]
    results = [(proc.wait(timeout=120), proc.stderr.read()) for proc in procs]
    for code, stderr in results:
        assert code == 3, stderr  # rows are left, waiting for tomorrow's quota
    owner = check_exactly_once(db, Path(env["INFLUENCERS_EXPORT_DIR"]))
    assert len(owner) == 50_000  # every account's quota used, not one row more
    for account in accounts.list():
        assert account.today_export_count == 10_000 and account.status == "idle"
    states = {r["id"]: r["status"] for r in query(db, "SELECT id, status FROM tasks")}
    # A task the quota ran out before it was ever claimed stays pending; none may finish or fail.
    assert set(states) == set(tasks) and set(states.values()) <= {"paused", "pending"} and "paused" in states.values()
    workers = {r["worker"].split(":")[0] for r in query(db, "SELECT worker FROM events WHERE event = 'claimed'")}
    assert len(workers) >= 2, workers  # several processes really raced (all three, unless one started late)


def test_sigterm_finishes_the_batch_and_gives_the_task_back(db, accounts, env):
    insert_rows(db, "美妆", 30_000)
    accounts.add("account1", "pw", daily_export_limit=100_000)
    task_id = start_export(env, "美妆", "--format", "jsonl")
    service = exporter(env, "--batch-size", "300")
    wait_until(lambda: one(db, "SELECT COUNT(*) FROM export_logs WHERE state = 'published'") >= 3, 60,
               "a few batches", service)
    service.send_signal(signal.SIGTERM)
    _, stderr = service.communicate(timeout=20)
    assert service.returncode == 0, stderr
    assert "Traceback" not in stderr
    task = query(db, "SELECT * FROM tasks WHERE id = %s", (task_id,))[0]
    assert task["status"] == "pending" and task["claimed_by"] is None
    assert one(db, "SELECT COUNT(*) FROM export_logs WHERE state = 'reserved'") == 0
    assert task["progress_marker"] == f"last_id={one(db, 'SELECT MAX(last_id) FROM export_logs')}"
    assert one(db, "SELECT status FROM accounts") == "idle"
    exported = one(db, "SELECT COUNT(*) FROM influencers WHERE status = 'exported'")
    assert 0 < exported < 30_000
    assert exported == one(db, "SELECT SUM(exported_count) FROM export_logs")


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("INFLUENCERS_MYSQL_URL", "postgres://x", "INFLUENCERS_MYSQL_URL"),
    ("INFLUENCERS_MYSQL_URL", "mysql://root:hunter2@127.0.0.1:1/influencers", "cannot reach MySQL"),
    ("INFLUENCERS_TZ", "Mars/Olympus", "INFLUENCERS_TZ"),
])
def test_configuration_errors_are_one_line_exit_2(env, variable, value, message):
    out = run_exporter({**env, variable: value}, "--once", timeout=30)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out.stderr
    assert "hunter2" not in out.stderr
