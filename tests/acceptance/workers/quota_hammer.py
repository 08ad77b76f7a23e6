"""Counts exports against one account as fast as it can; prints how many were accepted."""

from __future__ import annotations

import sys

from influencers.core.accounts import AccountManager
from influencers.core.config import get_config
from influencers.core.db import connect
from influencers.core.errors import QuotaExceeded


def main() -> int:
    account_id, attempts, size = (int(arg) for arg in sys.argv[1:4])
    config = get_config()
    accounts = AccountManager(connect(config.mysql), quota_day=config.quota_day)
    accepted = 0
    for _ in range(attempts):
        try:
            accounts.update_export_count(account_id, size)
            accepted += size
        except QuotaExceeded:
            pass
    print(f"accepted {accepted}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
