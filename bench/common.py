"""What every benchmark shares: a throwaway database, synthetic rows, process CPU/RSS, medians.

Each script creates ``influencers_bench_<pid>`` on the server named by ``BENCH_MYSQL_URL``
(default ``mysql://root:@127.0.0.1:3306/``), applies ``sql/schema.sql`` and drops it at the end,
also on Ctrl-C. Figures are medians of ``--repeat`` runs; every ratio is against a baseline
measured in the same run, because absolute numbers drift on a shared 2-core machine.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pymysql
from cryptography.fernet import Fernet

from influencers.core.config import MySQLSettings, parse_mysql_url
from influencers.core.db import connect
from influencers.core.profile import default_profile
from influencers.core.schema import apply_schema
from influencers.core.searchterms import row_terms

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("BENCH_MYSQL_URL", "mysql://root:@127.0.0.1:3306/influencers_bench")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# -- the database -------------------------------------------------------------------------------


@contextlib.contextmanager
def bench_database() -> Iterator[MySQLSettings]:
    """A fresh database with the project's schema, dropped afterwards (also on Ctrl-C)."""
    settings = replace(parse_mysql_url(SERVER_URL), database=f"influencers_bench_{os.getpid()}")
    drop_database(settings)
    apply_schema(settings)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # so `finally` drops the database on SIGTERM too
    try:
        yield settings
    finally:
        signal.signal(signal.SIGTERM, previous)
        drop_database(settings)


def _raise_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def drop_database(settings: MySQLSettings) -> None:
    server = connect(settings, database=False, autocommit=True)
    try:
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{settings.database}`")
    finally:
        server.close()


def mysql_url(settings: MySQLSettings) -> str:
    return settings.connection_url


def child_env(settings: MySQLSettings, workdir: Path, **extra: str) -> dict[str, str]:
    """Environment for a project process (exporter, spider, worker) pointed at the bench database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFLUENCERS_", "SCRAPY_"))}
    env.update(
        INFLUENCERS_MYSQL_URL=mysql_url(settings),
        INFLUENCERS_SECRET_KEY=Fernet.generate_key().decode(),
        INFLUENCERS_EXPORT_DIR=str(workdir / "exports"),
        INFLUENCERS_KEY_FILE=str(workdir / "secret.key"),
        PYTHONPATH=str(REPO_ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def connect_infile(settings: MySQLSettings, *, autocommit: bool = False) -> pymysql.connections.Connection:
    """A plain tuple-cursor connection that may send LOAD DATA LOCAL INFILE."""
    return pymysql.connect(
        host=settings.host, port=settings.port, user=settings.user, password=settings.password,
        database=settings.database, charset="utf8mb4", autocommit=autocommit, local_infile=True,
        init_command="SET time_zone = '+00:00'",
    )


@contextlib.contextmanager
def local_infile_on(conn: pymysql.connections.Connection) -> Iterator[None]:
    """The server's ``local_infile`` ON for the block; switched back off after if it was off."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.local_infile")
        was_on = bool(cursor.fetchone()[0])
        if not was_on:
            cursor.execute("SET GLOBAL local_infile = 1")
    try:
        yield
    finally:
        if not was_on:
            with conn.cursor() as cursor:
                cursor.execute("SET GLOBAL local_infile = 0")


def execute(settings: MySQLSettings, *statements: str) -> None:
    conn = connect(settings, autocommit=True)
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        conn.close()


def scalar(conn: Any, sql: str, args: Sequence[Any] = ()) -> Any:
    with conn.cursor() as cursor:
        cursor.execute(sql, args)
        row = cursor.fetchone()
    conn.commit()
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def add_accounts(conn: Any, count: int, *, daily_export_limit: int = 4000, prefix: str = "bench") -> list[int]:
    """Accounts straight into the table (the password column holds a dummy token: nothing here
    logs in)."""
    ids = []
    with conn.cursor() as cursor:
        for number in range(1, count + 1):
            cursor.execute(
                "INSERT INTO accounts (username, password, status, daily_export_limit) VALUES (%s, 'x', 'idle', %s)",
                (f"{prefix}{number}", daily_export_limit),
            )
            ids.append(cursor.lastrowid)
    conn.commit()
    return ids


# -- synthetic influencers ----------------------------------------------------------------------

_PHRASES = [
    "分享日常好物", "认真做内容", "每天更新", "喜欢就关注我吧", "合作请私信", "真实测评不恰饭",
    "宝藏博主", "坚持原创", "记录生活的小美好", "和大家一起成长", "专注细分领域五年", "干货满满",
    "周末直播见", "粉丝福利不定期", "商务合作看主页", "新手友好", "省钱攻略", "走心推荐",
]
_TITLES = [
    "这样搭配太好看了", "一周通勤不重样", "平价替代大公开", "新手必看入门教程", "我的年度爱用物",
    "踩雷合集避坑指南", "周末探店打卡", "三分钟学会这一招", "开箱测评真实体验", "跟着我一起做",
]
_NAME_CORES = ["鹿", "七", "米粒", "橙子", "糖糖", "阿杰", "胖虎", "桃桃", "可乐", "南风", "团子", "柚子"]
_NAME_PARTS = ["小", "阿", "大", "爱吃的", "今天也要", "超级", "一只", ""]
_SUFFIXES = ["酱", "呀", "同学", "日记", "的小窝", "君", ""]
_EMOJI = ["🍑", "✨", "🎮", "🍜", "👗", "🍼", "💻", "🌸", "🔥", "🐱", "💄", "😂"]
_REGIONS = ["北京", "上海", "广东·广州", "广东·深圳", "浙江·杭州", "江苏·南京", "四川·成都", "湖北·武汉"]
_TAGS = ["彩妆", "护肤", "平价好物", "测评", "探店", "家常菜", "通勤", "数码", "育儿", "攻略", "直播"]
_HOSTILE = ['=HYPERLINK("http://evil.invalid","点我")', "+86 138 0013 8000", "-2+3", "@SUM(1+1)",
            '他说"买买买", 然后走了', "第一行\n第二行🎉", "back\\slash\ttab"]


def make_raw(rng: random.Random, domain: str, uid: str, index: int) -> dict[str, Any]:
    """One listing row as the platform sends it: ~600 bytes of JSON with Chinese text and emoji."""
    if index % 50 == 7:
        nickname = _HOSTILE[index // 50 % len(_HOSTILE)]
    else:
        nickname = (rng.choice(_NAME_PARTS) + rng.choice(_NAME_CORES) + rng.choice(_SUFFIXES)
                    + rng.choice(_EMOJI))
    handle = "".join(rng.choice("abcdefghijkmnpqrstuvwxyz") for _ in range(7))
    return {
        "uid": uid,
        "nickname": nickname,
        "domain": domain,
        "fans": rng.randint(1_000, 9_000_000),
        "avg_likes": rng.randint(10, 200_000),
        "region": rng.choice(_REGIONS),
        "gender": rng.choice(("female", "male")),
        "tags": rng.sample(_TAGS, 3),
        "contact": {"wechat": f"{handle}_{rng.randint(10, 99999)}", "email": f"{handle}{rng.randint(1, 9999)}@qq.com"},
        "profile_url": f"https://sandbox.invalid/u/{uid}",
        "price": round(rng.uniform(100, 50_000), 2),
        "bio": "，".join(rng.sample(_PHRASES, 6)) + "。",
        "recent_posts": rng.sample(_TITLES, 4),
        "updated_at": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }


@dataclass(frozen=True)
class Row:
    uid: str
    nickname: str
    domain: str
    source_page: str
    raw: dict[str, Any]


def iter_synthetic_rows(count: int, *, domain: str = "美妆", page_size: int = 20, repeat_share: float = 0.0,
                        seed: int = 7) -> Iterator[Row]:
    """``count`` rows in page order; ``repeat_share`` of them (after the first page) carry the uid
    of an earlier row with fresh values, as a re-crawled influencer does. Deterministic: the same
    arguments give the same rows in every process."""
    rng = random.Random(seed)
    uids: list[str] = []
    for index in range(count):
        page = index // page_size + 1
        if uids and page > 1 and rng.random() < repeat_share:
            uid = rng.choice(uids)
        else:
            uid = f"bench-{len(uids) + 1:08d}"
            uids.append(uid)
        raw = make_raw(rng, domain, uid, index)
        yield Row(uid, raw["nickname"], domain, f"https://sandbox.invalid/api?page={page}", raw)


def synthetic_rows(count: int, **kwargs: Any) -> list[Row]:
    return list(iter_synthetic_rows(count, **kwargs))


def dumps(raw: Any) -> str:
    """The JSON text the project stores (compact, UTF-8, not ASCII-escaped)."""
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"))


_TSV = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
#: What the pipeline writes of a new row, typed fields and search terms included, so LOAD DATA
#: does the same work (and feeds the same indexes) as the upsert it is compared with.
LOAD_COLUMNS = "(uid, nickname, domain, source_page, raw_data, fans, region, tags, has_contact, profile_url, search_terms)"
_NULL = "\\N"


def write_load_file(path: Path, rows: Iterable[Row]) -> int:
    """Rows as LOAD DATA's default text format (tab-separated, backslash escapes, \\N for NULL)."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            profile = default_profile(row.raw)
            fields = (row.uid, row.nickname, row.domain, row.source_page, dumps(row.raw),
                      None if profile.fans is None else str(profile.fans), profile.region,
                      dumps(list(profile.tags)) if profile.tags else None, str(int(profile.has_contact)),
                      profile.profile_url, row_terms(row.nickname, profile.tags))
            fh.write("\t".join(_NULL if field is None else field.translate(_TSV) for field in fields))
            fh.write("\n")
            count += 1
    return count


def load_data(conn: Any, path: Path, *, mode: str = "") -> int:
    """``LOAD DATA LOCAL INFILE`` into ``influencers``; mode '' / 'REPLACE' / 'IGNORE'. Commits."""
    with conn.cursor() as cursor:
        cursor.execute(f"LOAD DATA LOCAL INFILE %s {mode} INTO TABLE influencers CHARACTER SET utf8mb4 {LOAD_COLUMNS}",
                       (str(path),))
        count = cursor.rowcount
    conn.commit()
    return count


# -- processes ----------------------------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float:
    """user + sys seconds a live process has used so far (0 if it is gone)."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a live process, in KiB."""
    values = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    values[key] = int(value.split()[0])
    except OSError:
        pass
    return values


def mariadb_pid() -> int | None:
    """The local server's pid (to read its CPU), if it runs on this machine."""
    found = shutil.which("pidof") and subprocess.run(["pidof", "mariadbd", "mysqld"], capture_output=True, text=True,
                                                         check=False)
    if not found or not found.stdout.split():
        return None
    return int(found.stdout.split()[0])


@dataclass
class Finished:
    """A child process that ran to its end: its own wall time, user+sys seconds and peak RSS."""

    returncode: int
    wall: float
    cpu: float
    maxrss_mb: float


class Measured:
    """A command started under ``bench.measure`` (exact CPU and peak RSS from wait4)."""

    def __init__(self, args: Sequence[str], *, workdir: Path, **popen: Any) -> None:
        self.out = workdir / f"measure-{secrets.token_hex(4)}.json"
        self.started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "bench.measure", str(self.out), "--", *args],
                                        start_new_session=True, **popen)

    @property
    def pid(self) -> int | None:
        """The command's own pid (the launcher's only child), once it has started."""
        try:
            with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children", encoding="ascii") as fh:
                children = fh.read().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def wait(self, timeout: float) -> Finished:
        try:
            self.process.wait(max(1.0, self.started + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop(self.process)
            raise TimeoutError(f"{self.process.args[5:]!r} did not finish in {timeout:.0f}s") from None
        try:
            data = json.loads(self.out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Finished(self.process.returncode, time.monotonic() - self.started, 0.0, 0.0)
        finally:
            self.out.unlink(missing_ok=True)
        return Finished(data["returncode"], data["wall"], data["user"] + data["sys"], data["maxrss_mb"])


def run_measured(args: Sequence[str], *, workdir: Path, timeout: float, **popen: Any) -> Finished:
    return Measured(args, workdir=workdir, **popen).wait(timeout)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def start_sandbox(pages: int, *, page_size: int = 20, domains: str | None = None, log: Path,
                  extra: Sequence[str] = ()) -> tuple[subprocess.Popen, str]:
    """The reference platform (clean profile, ``extra`` options) on a free port; returns (process, base URL)."""
    args = python_module("sandbox", "--port", "0", "--profile", "clean", "--pages", str(pages),
                         "--page-size", str(page_size), "--log-level", "warning", *extra)
    if domains:
        args += ["--domains", domains]
    out = open(log, "w", encoding="utf-8")  # noqa: SIM115 - the child keeps it
    process = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=out, text=True,
                               start_new_session=True)
    line = process.stdout.readline()
    if "sandbox serving" not in line:
        process.kill()
        raise RuntimeError(f"sandbox did not start: {line!r}; see {log}")
    return process, line.split()[2]


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


# -- figures ------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free confidence interval of the median: the order statistics (k, n+1-k) with
    the largest k whose coverage, 1 - 2·P(Binomial(n, ½) < k), is at least ``confidence``. None
    when there are too few values for any (fewer than 6 at 95%). One run's figure on this VM
    swings too much for a normal-theory interval, and medians are what the reports quote."""
    ordered, n = sorted(values), len(values)
    best, tail = None, 0.0
    for k in range(1, (n + 1) // 2 + 1):
        tail += math.comb(n, k - 1) / 2**n  # P(Binomial(n, 1/2) < k)
        if 1 - 2 * tail < confidence:
            break
        best = k
    return None if best is None else (ordered[best - 1], ordered[n - best])


def spread(values: Sequence[float]) -> str:
    """'median (min–max, n)' for a line of the report."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f}, n={len(values)})"


def machine_line() -> str:
    load = os.getloadavg()
    return (f"machine: {os.cpu_count()} cpus, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
            f"python {sys.version.split()[0]}; run {time.strftime('%Y-%m-%d %H:%M:%S')}")


def server_line(conn: Any) -> str:
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@version, @@innodb_buffer_pool_size, @@innodb_flush_log_at_trx_commit")
        row = cursor.fetchone()
    conn.commit()
    version, pool, flush = row.values() if isinstance(row, dict) else row
    return f"server: {version}, buffer pool {int(pool) // 2**20} MiB, innodb_flush_log_at_trx_commit={flush}"


def parse_counts(text: str) -> list[int]:
    """'50000,500000' -> [50000, 500000]."""
    values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise ValueError("expected positive whole numbers separated by commas")
    return values


def token() -> str:
    return secrets.token_hex(4)
