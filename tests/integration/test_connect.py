"""How `influencers.core.db.connect` reaches the server: TLS by `?tls=`, errors as one line."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from influencers.core.db import connect
from influencers.core.errors import DatabaseUnavailable


def _cipher(conn) -> str:
    with conn.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return cursor.fetchone()["Value"]


def test_loopback_connects_without_building_a_tls_context(mysql_settings):
    assert mysql_settings.tls_mode == "disabled"
    conn = connect(mysql_settings)
    try:
        assert conn.ssl is False  # pymysql builds no SSL context (~60 ms of CPU each) for it
        assert _cipher(conn) == ""
    finally:
        conn.close()


def test_preferred_falls_back_to_plain_when_the_server_offers_no_tls(mysql_settings):
    conn = connect(replace(mysql_settings, tls="preferred"))
    try:
        assert conn.ssl is True  # it asked
        if _cipher(conn):
            pytest.skip("this server offers TLS; the fallback cannot be seen here")
    finally:
        conn.close()


def test_required_tls_that_cannot_be_had_is_one_clear_line(db, mysql_settings):
    with db.cursor() as cursor:
        cursor.execute("SHOW VARIABLES LIKE 'have_ssl'")
        row = cursor.fetchone()
    if row and row["Value"] == "YES":
        pytest.skip("this server offers TLS")
    # A wrong password too: TLS is settled before the password is sent, and no line may show it.
    settings = replace(mysql_settings, password="pw-never-shown-7d1e", tls="required")
    with pytest.raises(DatabaseUnavailable) as error:
        connect(settings)
    message = str(error.value)
    assert "\n" not in message
    assert "pw-never-shown" not in message
    assert "no TLS connection" in message and "?tls=" in message


def test_ensure_connected_reopens_a_connection_the_server_closed(mysql_settings, db):
    from influencers.core.db import ensure_connected

    conn = connect(mysql_settings)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID() AS id")
            first = cursor.fetchone()["id"]
        with db.cursor() as cursor:
            cursor.execute("KILL CONNECTION %s", (first,))
            for _ in range(100):  # until the server has let it go
                cursor.execute("SELECT COUNT(*) AS n FROM information_schema.processlist WHERE id = %s", (first,))
                if not cursor.fetchone()["n"]:
                    break
                time.sleep(0.01)
        ensure_connected(conn)
        with conn.cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID() AS id, @@session.time_zone AS tz")
            again = cursor.fetchone()
        assert again["id"] != first and again["tz"] == "+00:00"  # the init command ran again
    finally:
        conn.close()
