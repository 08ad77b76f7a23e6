"""The owner of the ``profile_fill`` table: filling the typed fields of rows stored before a
migration added them (``db init`` runs it after the migrations).

A migration that adds typed fields schedules a fill by inserting the table's one row; the fill
maps each stored row's ``raw_data`` through the configured site adapter's `SiteAdapter.profile`,
in id order, a chunk per transaction, and records how far it got in that same transaction, so a
fill stopped at any moment goes on from there on the next ``db init``. It deletes the row when it
is done, so a later ``db init`` does not scan the table again. The crawl fills new rows itself.

A filled row gets its first history row (fans as stored, at its last crawl's time) when it has
none, so growth is measured from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pymysql.connections import Connection

from influencers.core import store
from influencers.core.db import run_transaction
from influencers.core.profile import Profile

logger = logging.getLogger(__name__)

CHUNK = 1000

_NEXT = "SELECT next_id FROM profile_fill WHERE id = 1 FOR UPDATE"


def pending(conn: Connection) -> bool:
    """Whether a fill is scheduled (or was stopped before it ended)."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM profile_fill WHERE id = 1")
        found = cursor.fetchone() is not None
    conn.commit()
    return found


def ids_left(conn: Connection) -> int | None:
    """About how many rows the fill has left: the ids after its ``next_id`` (ids only grow and the
    fill walks them in order), two index look-ups where ``COUNT(*)`` would read the whole table.
    High when an upsert skipped ids. None when no fill is scheduled."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT (SELECT MAX(id) FROM influencers) - next_id AS ids_left FROM profile_fill WHERE id = 1")
        row = cursor.fetchone()
    conn.commit()
    return row["ids_left"] if row and row["ids_left"] else None


def fill(conn: Connection, profile: Callable[[Mapping[str, Any]], Profile],
         progress: Callable[[int], None] | None = None) -> int:
    """Run the scheduled fill to its end; returns the rows filled (0 when none is scheduled)."""
    filled = 0
    while True:
        done, count = run_transaction(conn, lambda cursor: _chunk(cursor, profile), isolation="READ COMMITTED")
        filled += count
        if progress is not None and count:
            progress(filled)
        if done:
            return filled


def _chunk(cursor: Any, profile: Callable[[Mapping[str, Any]], Profile]) -> tuple[bool, int]:
    cursor.execute(_NEXT)
    row = cursor.fetchone()
    if row is None:
        return True, 0
    rows = store.lock_rows_after(cursor, row["next_id"], CHUNK)
    if not rows:
        cursor.execute("DELETE FROM profile_fill WHERE id = 1")
        logger.info("typed fields filled for every stored row")
        return True, 0
    store.set_profiles(cursor, [(stored["id"], _profile(stored, profile)) for stored in rows])
    store.add_first_history(cursor, rows[0]["id"], rows[-1]["id"])
    cursor.execute("UPDATE profile_fill SET next_id = %s WHERE id = 1", (rows[-1]["id"],))
    return False, len(rows)


def _profile(stored: Mapping[str, Any], profile: Callable[[Mapping[str, Any]], Profile]) -> tuple[str | None, Profile]:
    raw = _raw(stored["raw_data"])
    try:
        typed = profile(raw) if isinstance(raw, dict) else Profile()
    except Exception:  # noqa: BLE001 - one odd row keeps no typed fields rather than stopping the upgrade
        logger.warning("influencer %s: the adapter's profile() raised; it keeps no typed fields", stored["id"])
        typed = Profile()
    return stored["nickname"], typed if isinstance(typed, Profile) else Profile()


def _raw(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, str)):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value
