"""`make demo` / `python -m influencers.demo`: the main job end to end on the reference platform.

It never touches real data: it works in its own database (`<configured database>_demo`,
recreated on every run) and its own export directory, starts the bundled reference platform on a
free port, adds demo accounts with small export quotas so the account relay happens, crawls two
domains with the spider in service mode, exports with the exporter, and prints the reports and
where the files are. When no MySQL answers but MariaDB's server is installed, it starts a private
instance under `.influencers/mariadb/` and says how to stop it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from influencers.core.config import Config, MySQLSettings
from influencers.core.db import connect
from influencers.core.errors import DatabaseUnavailable, InfluencersError
from influencers.core.schema import apply_schema

REPO_ROOT = Path(__file__).resolve().parent.parent
PRIVATE_MYSQL_DIR = REPO_ROOT / ".influencers" / "mariadb"
DOMAINS = ("美妆", "游戏")
PAGES = 10
ACCOUNTS = (("demo1", 150), ("demo2", 150), ("demo3", 0), ("demo4", 0))  # (username, daily export limit)


def say(message: str) -> None:
    print(message, flush=True)


def section(title: str) -> None:
    say(f"\n=== {title}")


# -- MySQL ------------------------------------------------------------------------------------


def reachable(mysql: MySQLSettings) -> bool:
    try:
        connect(mysql, database=False, connect_timeout=2).close()
        return True
    except DatabaseUnavailable:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_private_mariadb(mysql: MySQLSettings) -> MySQLSettings:
    """A MariaDB of our own under .influencers/mariadb, reused by later runs while it lives."""
    server = shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if not Path(server).exists() or not install:
        raise InfluencersError(
            f"no MySQL answers at {mysql.host}:{mysql.port} and no MariaDB server is installed: "
            "install one (sudo apt-get install -y mariadb-server) or set INFLUENCERS_MYSQL_URL"
        )
    port_file = PRIVATE_MYSQL_DIR / "port"
    if port_file.exists():
        private = replace(mysql, host="127.0.0.1", port=int(port_file.read_text()), user="root", password="")
        if reachable(private):
            say(f"using the private MariaDB started by an earlier demo on port {private.port}")
            return private
    data = PRIVATE_MYSQL_DIR / "data"
    if not data.exists():
        PRIVATE_MYSQL_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
             *(["--user=root"] if os.geteuid() == 0 else [])],
            check=True, capture_output=True,
        )
    port = free_port()
    log = open(PRIVATE_MYSQL_DIR / "server.log", "ab")  # noqa: SIM115 - handed to the daemon
    subprocess.Popen(
        [server, "--no-defaults", f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1",
         f"--socket={PRIVATE_MYSQL_DIR / 'mysql.sock'}", f"--pid-file={PRIVATE_MYSQL_DIR / 'mysqld.pid'}",
         "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
         *(["--user=root"] if os.geteuid() == 0 else [])],
        stdout=log, stderr=log, start_new_session=True,
    )
    private = replace(mysql, host="127.0.0.1", port=port, user="root", password="")
    for _ in range(100):
        if reachable(private):
            port_file.write_text(str(port))
            say(f"no MySQL at {mysql.host}:{mysql.port}: started a private MariaDB on 127.0.0.1:{port} "
                f"(data in {PRIVATE_MYSQL_DIR}); stop it with: python -m influencers.demo --stop-mysql")
            return private
        time.sleep(0.2)
    raise InfluencersError(f"the private MariaDB did not start; see {PRIVATE_MYSQL_DIR / 'server.log'}")


def stop_private_mariadb() -> int:
    pid_file = PRIVATE_MYSQL_DIR / "mysqld.pid"
    if not pid_file.exists():
        say("no private MariaDB is running")
        return 0
    os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
    say(f"private MariaDB stopped (its data stays in {PRIVATE_MYSQL_DIR}; delete the folder to remove it)")
    return 0


# -- the run ----------------------------------------------------------------------------------


class Demo:
    def __init__(self, config: Config, mysql: MySQLSettings, workdir: Path) -> None:
        self.config = config
        self.mysql = mysql
        self.workdir = workdir
        self.export_dir = workdir / "exports"
        self.children: list[subprocess.Popen] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("INFLUENCERS_")},
            "INFLUENCERS_MYSQL_URL": mysql.connection_url,
            "INFLUENCERS_EXPORT_DIR": str(self.export_dir),
            "INFLUENCERS_KEY_FILE": str(workdir / "secret.key"),
            "INFLUENCERS_TZ": config.tz_name,
            "PYTHONPATH": str(REPO_ROOT),
        }

    def run(self) -> int:
        section(f"database {self.mysql.display} (recreated for the demo)")
        server = connect(self.mysql, database=False, autocommit=True)
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{self.mysql.database}`")
        server.close()
        apply_schema(self.mysql)
        if self.export_dir.exists():
            shutil.rmtree(self.export_dir)

        section("reference platform")
        site_url = self.start_sandbox()
        self.env["INFLUENCERS_SITE_URL"] = site_url
        say(f"serving {site_url} (accounts demo1..demo8, password sandbox-<name>)")

        section("accounts (passwords read from stdin, stored encrypted)")
        for username, limit in ACCOUNTS:
            self.cli("accounts", "add", "--username", username, "--password-stdin", "--daily-export-limit", str(limit),
                     stdin=f"sandbox-{username}\n")

        section(f"crawl {', '.join(DOMAINS)}: {PAGES} pages each, split into subtasks, one spider in service mode")
        for domain in DOMAINS:
            self.cli("start_crawl", "--domain", domain, "--pages", str(PAGES), "--split", "5")
        started = time.monotonic()
        self.run_step([sys.executable, "-m", "scrapy", "crawl", "influencers", "-a", "once=1", "-s", "LOG_LEVEL=WARNING"],
                      "spider")
        say(f"crawl finished in {time.monotonic() - started:.1f}s")

        section("export: demo1 and demo2 have 150 rows of quota today each; the rest waits for tomorrow")
        for domain in DOMAINS:
            self.cli("start_export", "--domain", domain)
        code = self.run_step([sys.executable, "-m", "exporter", "run", "--once"], "exporter", ok=(0, 3))
        if code == 3:
            say("the exporter stopped with work left: every account's quota is spent for today; "
                "it resumes by itself after local midnight")

        section("ingestion report (today)")
        self.cli("report", "ingestion")
        section("export report (today)")
        self.cli("report", "export")
        section("status")
        self.cli("status")
        section("files")
        for path in sorted(self.export_dir.rglob("*")):
            if path.is_file():
                say(f"{path}  ({path.stat().st_size} bytes)")
        say(f"\ndemo done: database {self.mysql.display}, files under {self.export_dir}")
        return 0

    def start_sandbox(self) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", "0", "--pages", str(PAGES), "--profile", "clean"],
            cwd=REPO_ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True,
        )
        self.children.append(process)
        line = process.stdout.readline().strip() if process.stdout else ""
        if not line.startswith("sandbox serving "):
            raise InfluencersError("the reference platform did not start")
        return line.rsplit(" ", 1)[1]

    def cli(self, *args: str, stdin: str | None = None) -> None:
        result = subprocess.run([sys.executable, "-m", "influencers", *args], cwd=REPO_ROOT, env=self.env,
                                input=stdin, capture_output=True, text=True)
        if result.stdout.strip():
            say(result.stdout.rstrip())
        if result.returncode != 0:
            raise InfluencersError(f"`influencers {' '.join(args)}` failed: {result.stderr.strip()}")

    def run_step(self, args: list[str], name: str, ok: tuple[int, ...] = (0,)) -> int:
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "w") as log:
            result = subprocess.run(args, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if result.returncode not in ok:
            raise InfluencersError(f"the {name} exited with {result.returncode}; its log: {log_path}")
        say(f"{name} log: {log_path}")
        return result.returncode

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    child.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m influencers.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--stop-mysql", action="store_true", help="stop the private MariaDB a demo started")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / ".influencers" / "demo",
                        help="where the demo's export files and logs go")
    args = parser.parse_args(argv)
    if args.stop_mysql:
        return stop_private_mariadb()
    demo = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds through `finally`: children stop too
    try:
        config = Config.from_env()
        mysql = config.mysql if reachable(config.mysql) else start_private_mariadb(config.mysql)
        mysql = replace(mysql, database=f"{config.mysql.database}_demo")
        args.workdir.mkdir(parents=True, exist_ok=True)
        demo = Demo(config, mysql, args.workdir.resolve())
        return demo.run()
    except InfluencersError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if demo is not None:
            demo.stop()


if __name__ == "__main__":
    sys.exit(main())
