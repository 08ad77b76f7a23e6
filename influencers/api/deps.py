"""One fresh MySQL connection per request, closed when the request ends.

The dependency and the endpoints that use it are plain `def`: FastAPI runs them in its thread
pool, so pymysql's blocking I/O never stalls the event loop. No pool: after a MySQL outage the
next request's connection is a new one, and `availability.DatabaseGate` keeps requests during
the outage from each waiting out a connect timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from pymysql.connections import Connection

from influencers.api.availability import database_gate
from influencers.core.accounts import AccountManager
from influencers.core.config import Config
from influencers.core.credentials import CredentialCipher
from influencers.core.db import connect
from influencers.core.tasks import TaskScheduler

CONNECT_TIMEOUT = 3.0  # seconds: a request finds out quickly that MySQL is not there


class Core:
    """The core objects of one request (the CLI's `Context`, per request)."""

    def __init__(self, config: Config, conn: Connection) -> None:
        self.config = config
        self.conn = conn

    def accounts(self, *, with_cipher: bool = False) -> AccountManager:
        cipher = CredentialCipher.from_config(self.config) if with_cipher else None
        return AccountManager(self.conn, quota_day=self.config.quota_day, cipher=cipher)

    def scheduler(self) -> TaskScheduler:
        return TaskScheduler(self.conn, None, self.accounts())


def get_core(request: Request) -> Iterator[Core]:
    config: Config = request.app.state.config
    gate = database_gate(request.app)
    gate.check()
    conn = connect(config.mysql, connect_timeout=CONNECT_TIMEOUT)  # a failure reaches the gate in errors.py
    gate.reached()
    try:
        yield Core(config, conn)
    finally:
        conn.close()


#: An endpoint parameter `core: CoreDep` gets the request's `Core`.
CoreDep = Annotated[Core, Depends(get_core)]
