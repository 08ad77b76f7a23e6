"""A worker process for the claim race: claim, hold briefly, complete, until nothing is left.

Prints one line per completed task (`done <task> <account>`) so the test can count completions.
"""

from __future__ import annotations

import random
import sys
import time

from influencers.core.accounts import AccountManager
from influencers.core.config import get_config
from influencers.core.db import connect
from influencers.core.tasks import TaskScheduler
from influencers.core.workers import Worker


def main() -> int:
    config = get_config()
    conn = connect(config.mysql)
    scheduler = TaskScheduler(conn, Worker.start(config.mysql, "race"), AccountManager(conn, quota_day=config.quota_day))
    idle_rounds = 0
    while True:
        claim = scheduler.claim("ingestion")
        if claim is None:
            with conn.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) AS n FROM tasks WHERE NOT is_parent AND status <> 'completed'")
                left = cursor.fetchone()["n"]
            conn.commit()
            if left == 0:
                return 0
            idle_rounds += 1
            time.sleep(0.002 * min(idle_rounds, 10))
            continue
        idle_rounds = 0
        time.sleep(random.random() * 0.002)
        scheduler.complete(claim)
        print(f"done {claim.task_id} {claim.account_id}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
