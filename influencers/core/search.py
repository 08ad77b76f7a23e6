"""Finding influencers: a `Selection` in a sort order, a page at a time, and everything known
about one of them.

Pages are keyset pages: the ``next`` cursor holds the sort value and id of the last row shown,
and the next page starts after it, so a page costs the same at row 10 and at row 10,000,000 and
rows committed meanwhile neither repeat nor shift a page. Each sort key has its own index
(``(fans, id)``, ``(growth_7d, id)``, ``(growth_30d, id)``; ``ingested_at`` is id order, the
order rows were first stored). Rows whose sort value is unknown (NULL) come after the others,
in id order, as their own phase of the walk.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from pymysql.connections import Connection

from influencers.core.db import capped
from influencers.core.errors import InvalidArgument, StatementTimeout
from influencers.core.selection import Selection, like_pattern

#: sort name → (column, descending)
SORTS: dict[str, tuple[str, bool]] = {
    "fans": ("fans", False), "-fans": ("fans", True),
    "ingested_at": ("id", False), "-ingested_at": ("id", True),
    "growth": ("growth_7d", False), "-growth": ("growth_7d", True),
    "growth_30d": ("growth_30d", False), "-growth_30d": ("growth_30d", True),
}
DEFAULT_SORT = "-fans"
MAX_LIMIT = 500
LIST_COLUMNS = ("id", "uid", "nickname", "domain", "fans", "region", "tags", "has_contact", "profile_url", "status",
                "ingested_at", "updated_at", "growth_7d", "growth_30d", "crawl_count")
HISTORY_SHOWN = 1000
#: Rows of the sort order a text or tag search checks before it asks the fulltext index instead.
WALK = 2000
#: The longest a search statement may run (the API answers every request with one).
SEARCH_SECONDS = 10.0
#: The longest the fulltext index may take for a text the walk did not fill a page with: longer
#: means many matches, which the sort order's own walk then finds sooner.
FULLTEXT_SECONDS = 0.3


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next: str | None  # the cursor of the page after this one; None: this is the last


def search(conn: Connection, selection: Selection, *, sort: str = DEFAULT_SORT, limit: int = 50,
           after: str | None = None) -> Page:
    """Up to ``limit`` rows of ``selection`` in ``sort`` order after the cursor ``after``."""
    if sort not in SORTS:
        raise InvalidArgument(f"sort: one of {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit: 1 to {MAX_LIMIT}")
    column, descending = SORTS[sort]
    phase, value, last_id = _decode(after, sort) if after else ("values", None, None)
    rows: list[dict[str, Any]] = []
    if phase == "values":
        rows = _query(conn, selection, column, descending, limit + 1, nulls=False, value=value, last_id=last_id)
        if len(rows) <= limit and column != "id":
            phase, last_id = "nulls", None
    if phase == "nulls":
        rows += _query(conn, selection, column, descending, limit + 1 - len(rows), nulls=True, value=None,
                       last_id=last_id)
    more = len(rows) > limit
    rows = [_shown(row) for row in rows[:limit]]
    cursor = _encode(sort, rows[-1], column) if more else None
    return Page(rows=rows, next=cursor)


def _query(conn: Connection, selection: Selection, column: str, descending: bool, limit: int, *, nulls: bool,
           value: Any, last_id: int | None) -> list[dict[str, Any]]:
    """One phase's rows. With a text or tag filter, the first `WALK` rows of the sort order are
    tried first: a common text fills the page from them at once, where the fulltext index would
    hand over every match to be sorted. Then the fulltext index, fast exactly when matches are
    few, for at most `FULLTEXT_SECONDS`; then the sort order walked on from where the first walk
    stopped, with the row checks, which finds a page of a text that many rows hold sooner than
    the index can sort them all."""
    columns = ", ".join("i." + name for name in LIST_COLUMNS)
    walk = None
    if selection.has_text:
        walk = _walk(conn, selection, column, descending, limit, nulls=nulls, value=value, last_id=last_id)
        if walk.complete:
            return walk.rows
    if selection.has_fulltext:
        where, params = selection.where()
        order, conditions, keyset = _order(column, descending, nulls=nulls, value=value, last_id=last_id)
        try:  # a rare text: the fulltext index has its few matches at once
            return _rows(conn, f"SELECT {columns} FROM influencers i WHERE {' AND '.join([where, *conditions])}"
                               f" ORDER BY {order} LIMIT %s", (*params, *keyset, limit), seconds=FULLTEXT_SECONDS)
        except StatementTimeout:  # too many matches to sort: the sort order's walk finds a page sooner
            pass
    walked: list[dict[str, Any]] = []
    if walk is not None:  # on from the walk's last row: the rows before it were checked already
        walked, value, last_id = walk.rows, walk.last_value, walk.last_id
    where, params = selection.where(fulltext=False)
    order, conditions, keyset = _order(column, descending, nulls=nulls, value=value, last_id=last_id)
    scan = f"FROM influencers i WHERE {' AND '.join([where, *conditions])} ORDER BY {order} LIMIT %s"
    if column == "fans" and selection.on_fans_index:  # NULL fans too: that range is in id order
        # The ids alone: the server tests the text on index entries (a backward range with the
        # row's other columns asked for reads every row first), then only the matches are read.
        ids = [row["id"] for row in _rows(conn, f"SELECT i.id {scan}", (*params, *keyset, limit - len(walked)))]
        return walked + _by_ids(conn, ids)
    return walked + _rows(conn, f"SELECT {columns} {scan}", (*params, *keyset, limit - len(walked)))


def _by_ids(conn: Connection, ids: list[int], checks: str = "TRUE", values: list[Any] | None = None
            ) -> list[dict[str, Any]]:
    """The rows of ``ids`` that pass ``checks``, in the order of ``ids``. No ORDER BY: the server
    would walk the sort index for it past these rows; their order is the page's."""
    if not ids:
        return []
    rows = _rows(conn, f"SELECT {', '.join('i.' + name for name in LIST_COLUMNS)} FROM influencers i"
                       f" WHERE i.id IN ({', '.join(['%s'] * len(ids))}) AND {checks}", (*ids, *(values or [])))
    position = {row_id: index for index, row_id in enumerate(ids)}
    return sorted(rows, key=lambda row: position[row["id"]])


@dataclass(frozen=True)
class Walk:
    rows: list[dict[str, Any]]  # the matches among the walked rows, in order (at most the limit)
    complete: bool  # the page needs no more: the limit was reached, or the phase has no more rows
    last_value: Any  # the sort value and id of the last row walked: the walk goes on after it
    last_id: int | None


def _walk(conn: Connection, selection: Selection, column: str, descending: bool, limit: int, *, nulls: bool,
          value: Any, last_id: int | None) -> Walk:
    """The phase's matches among its next `WALK` rows that pass the other filters. The walk is
    a prefix of the order, so the matches in it are the first matches of all. The nickname is
    tested in the walk's own statement: on the fans order it is part of the index
    (``ix_influencers_fans``), so a text is checked on index entries and only its matches are
    read from the table."""
    where, params = selection.where(text=False)
    order, conditions, keyset = _order(column, descending, nulls=nulls, value=value, last_id=last_id)
    hit, hit_params = ("i.nickname LIKE %s", [like_pattern(selection.q)]) if selection.q is not None else ("TRUE", [])
    head = _rows(conn, f"SELECT i.id, i.{column} AS sort_value, {hit} AS hit FROM influencers i"
                       f" WHERE {' AND '.join([where, *conditions])} ORDER BY {order} LIMIT %s",
                 (*hit_params, *params, *keyset, WALK))
    if not head:
        return Walk([], True, value, last_id)
    checks, values = selection.text_checks()
    rows = _by_ids(conn, [row["id"] for row in head if row["hit"]], checks, values)[:limit]
    return Walk(rows, len(rows) >= limit or len(head) < WALK, head[-1]["sort_value"], head[-1]["id"])


def _order(column: str, descending: bool, *, nulls: bool, value: Any,
           last_id: int | None) -> tuple[str, list[str], list[Any]]:
    """The phase's ORDER BY, its keyset conditions after the cursor and their parameters."""
    direction, before = ("DESC", "<") if descending else ("ASC", ">")
    conditions: list[str] = []
    params: list[Any] = []
    if column == "id":
        if last_id is not None:
            conditions.append(f"i.id {before} %s")
            params.append(last_id)
        order = f"i.id {direction}"
    elif nulls:
        conditions.append(f"i.{column} IS NULL")
        if last_id is not None:
            conditions.append(f"i.id {before} %s")
            params.append(last_id)
        order = f"i.id {direction}"
    else:
        conditions.append(f"i.{column} IS NOT NULL")
        if value is not None:
            # the first condition is a range on the sort index; the second drops the rows up to the cursor
            conditions.append(f"i.{column} {before}= %s AND (i.{column} {before} %s OR i.id {before} %s)")
            params.extend([value, value, last_id])
        order = f"i.{column} {direction}, i.id {direction}"
    return order, conditions, params


def _rows(conn: Connection, sql: str, params: tuple[Any, ...], *, seconds: float | None = None) -> list[dict[str, Any]]:
    """The statement's rows. With ``seconds``, `StatementTimeout` when it runs longer; otherwise a
    search that would run over `SEARCH_SECONDS` (a text no nickname holds, one character long,
    over millions of rows) is stopped by the server and refused."""
    try:
        with conn.cursor() as cursor:
            cursor.execute(capped(conn, sql, seconds or SEARCH_SECONDS), params)
            rows = list(cursor.fetchall())
    except StatementTimeout:
        conn.rollback()
        if seconds is not None:
            raise
        raise InvalidArgument(f"the search ran over {SEARCH_SECONDS:g} s and was stopped: narrow it (a domain,"
                              " a fans range, a longer text)") from None
    conn.commit()
    return rows


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    tags = row.get("tags")
    return {**row, "tags": json.loads(tags) if isinstance(tags, (str, bytes)) else [],
            "has_contact": bool(row.get("has_contact"))}


def _encode(sort: str, row: dict[str, Any], column: str) -> str:
    value = row["id"] if column == "id" else row[column]
    phase = "values" if value is not None else "nulls"
    text = json.dumps([sort, phase, value, row["id"]], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> tuple[str, Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, phase, value, last_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, TypeError, UnicodeError):
        raise InvalidArgument("after: not a cursor this search gave") from None
    if name != sort:
        raise InvalidArgument("after: a cursor of another sort order")
    numbers = (value, last_id) if phase == "values" else (last_id,)
    if phase not in ("values", "nulls") or not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        raise InvalidArgument("after: not a cursor this search gave")
    return phase, value, last_id


# -- one influencer ------------------------------------------------------------------------------


def detail(conn: Connection, uid: str) -> dict[str, Any] | None:
    """Everything stored about the influencer ``uid``: its fields and raw data, the page that last
    listed it, the export file it went to, and its fans history (the latest ``HISTORY_SHOWN``).
    None if there is no such uid."""
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join('i.' + name for name in LIST_COLUMNS)}, i.source_page, i.raw_data,"
                       " i.ingestion_log_id, i.export_log_id FROM influencers i WHERE i.uid = %s", (uid,))
        row = cursor.fetchone()
        if row is None:
            conn.commit()
            return None
        cursor.execute("SELECT l.id, l.task_id, l.domain, l.page_number, l.start_time, l.end_time, l.source_url,"
                       " a.username AS account FROM ingestion_logs l LEFT JOIN accounts a ON a.id = l.account_id"
                       " WHERE l.id = %s", (row["ingestion_log_id"],))
        crawl = cursor.fetchone()
        export = None
        if row["export_log_id"]:
            cursor.execute("SELECT e.id, e.task_id, e.file_path, e.state, e.export_format, e.start_time, e.end_time,"
                           " a.username AS account FROM export_logs e LEFT JOIN accounts a ON a.id = e.account_id"
                           " WHERE e.id = %s", (row["export_log_id"],))
            export = cursor.fetchone()
        cursor.execute("SELECT recorded_at, fans, ingestion_log_id FROM (SELECT h.recorded_at, h.fans,"
                       " h.ingestion_log_id, h.id FROM influencer_history h WHERE h.influencer_id = %s"
                       " ORDER BY h.recorded_at DESC, h.id DESC LIMIT %s) latest ORDER BY recorded_at, id",
                       (row["id"], HISTORY_SHOWN))
        history = list(cursor.fetchall())
    conn.commit()
    raw = row.pop("raw_data")
    shown = _shown(row)
    shown["raw_data"] = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    return {"influencer": shown, "last_crawl": crawl, "export": export, "history": history}
