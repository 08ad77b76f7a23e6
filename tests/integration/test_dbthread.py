"""`DatabaseThread`: one connection on one thread, pinged only after a quiet spell or an error."""

from __future__ import annotations

import time

import pytest

import influencers.extensions.dbthread as dbthread
from influencers.core.errors import ConnectionLost
from influencers.extensions.dbthread import DatabaseThread


def connection_id(conn) -> int:
    with conn.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID() AS id")
        return cursor.fetchone()["id"]


def kill(db, thread_id: int) -> None:
    with db.cursor() as cursor:
        cursor.execute("KILL CONNECTION %s", (thread_id,))
    time.sleep(0.05)  # the server closes the socket a moment after KILL returns


@pytest.fixture
def database_thread(mysql_settings):
    thread = DatabaseThread(mysql_settings, "test-db")
    yield thread
    thread.close()


def test_calls_run_in_order_on_one_connection(database_thread):
    ids = [database_thread.submit(connection_id) for _ in range(5)]
    assert len({future.result(timeout=10) for future in ids}) == 1


def test_a_connection_lost_in_a_busy_spell_fails_one_call_and_the_next_reconnects(database_thread, db):
    first = database_thread.submit(connection_id).result(timeout=10)
    kill(db, first)
    with pytest.raises(ConnectionLost):
        database_thread.submit(connection_id).result(timeout=10)  # no ping: the call itself finds out
    again = database_thread.submit(connection_id).result(timeout=10)  # pymysql closed it: reconnect
    assert again != first


def test_a_connection_lost_while_idle_is_reconnected_before_the_call(database_thread, db, monkeypatch):
    monkeypatch.setattr(dbthread, "PING_AFTER_IDLE", 0.1)
    first = database_thread.submit(connection_id).result(timeout=10)
    kill(db, first)
    time.sleep(0.2)
    assert database_thread.submit(connection_id).result(timeout=10) != first
