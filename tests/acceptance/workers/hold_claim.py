"""A worker that claims one task, says so, then either sleeps (to be SIGKILLed or SIGSTOPped)
or, once woken, tries to complete it and reports whether the fence let it."""

from __future__ import annotations

import sys
import time

from influencers.core.accounts import AccountManager
from influencers.core.config import get_config
from influencers.core.db import connect
from influencers.core.errors import ClaimLost
from influencers.core.tasks import TaskScheduler
from influencers.core.workers import Worker


def main() -> int:
    lease = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    hold = float(sys.argv[2]) if len(sys.argv) > 2 else 3600
    config = get_config()
    conn = connect(config.mysql)
    scheduler = TaskScheduler(conn, Worker.start(config.mysql, "holder"), AccountManager(conn), lease_seconds=lease)
    claim = scheduler.claim("ingestion")
    print(f"claimed {claim.task_id if claim else 'none'}", flush=True)
    time.sleep(hold)  # wall time: a SIGSTOPped process resumes here late
    try:
        scheduler.complete(claim)
    except ClaimLost:
        print("lost", flush=True)
        return 3
    print("completed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
