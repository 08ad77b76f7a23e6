"""The owner of the ``influencers`` and ``ingestion_logs`` tables: every statement that writes
them, and the export status words of a row (``pending_export``, ``exported``).

Ingestion: one transaction commits a batch of whole pages. For every page of the batch: its
`ingestion_logs` row (one multi-row insert per task, then one query for their ids); for all of
them: the upsert of the influencers, sorted by domain and uid so concurrent writers lock rows in
the same order and do not deadlock, then the move of stored rows listed under another domain; for
every task, at the end: the fence (`tasks.fence`) and the progress marker (`tasks.move_marker`),
with a cursor platform's position after it; each account's pages today (`budgets.count_pages`);
the rows per domain the batch inserted or moved (`counts.add`); the pages and rows ingested per
domain (`tallies.add`, one statement).

The upsert is one multi-row ``INSERT … VALUES … ON DUPLICATE KEY UPDATE`` of up to
``ROWS_PER_STATEMENT`` rows, every text in it a UTF-8 hex literal (`influencers.core.rowvalues`
says why). The server also parses such a statement faster than the same rows unpacked from one JSON
document by `JSON_TABLE`, and the writes are what an ingesting crawl waits for.
Either all of it commits or none of it: a kill at any moment leaves the marker, the logs and the
rows consistent, and a page is either wholly committed or not at all.

Export: the rows an export batch reserves (locked in id order after the task's marker, then
those committed behind it meanwhile), streams into its file and marks exported; a batch's rows
are found by its domain and id range, and ``export_log_id`` says which batch took a row (0: none
yet).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from pymysql.connections import Connection

from influencers.core import counts, tallies
from influencers.core.budgets import count_pages
from influencers.core.db import run_transaction
from influencers.core.errors import ClaimLost, ValueRefused
from influencers.core.lookahead import made_ahead
from influencers.core.profile import Profile
from influencers.core.quotaday import QuotaDay
from influencers.core.rowvalues import MAX_RAW_DEPTH, limit_depth, raw_json, row_values
from influencers.core.searchterms import row_terms
from influencers.core.selection import Selection
from influencers.core.tasks import Claim, fence, move_marker, page_marker

logger = logging.getLogger(__name__)

# Column sizes from sql/schema.sql.
UID_MAX = 255
NICKNAME_MAX = 255
DOMAIN_MAX = 100
SOURCE_PAGE_MAX = 255
SOURCE_URL_MAX = 1024

INSERT_LOGS = (
    "INSERT INTO ingestion_logs (task_id, account_id, domain, page_number, ingested_count, start_time, end_time,"
    " source_url) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    " ON DUPLICATE KEY UPDATE account_id = VALUES(account_id), ingested_count = VALUES(ingested_count),"
    " start_time = VALUES(start_time), end_time = VALUES(end_time), source_url = VALUES(source_url)"
)
SELECT_LOG_IDS = "SELECT id, page_number FROM ingestion_logs WHERE task_id = %s AND page_number IN ({pages})"
#: The columns of an upsert's row, in order: `row_values` writes them.
UPSERT_COLUMNS = ("uid", "nickname", "domain", "source_page", "raw_data", "ingestion_log_id", "fans", "region",
                  "tags", "has_contact", "profile_url", "search_terms", "fans_log_id", "growth_7d", "growth_30d",
                  "fans_first")
#: The textbook statement, one row of values per influencer (the benchmarks' naive baseline).
#: ``fans_log_id`` says whether this crawl changed fans (a history row follows, `INSERT_HISTORY`):
#: it is set before ``fans``, as MySQL assigns left to right, and so is ``fans_first``, which a
#: row without fans so far takes from this crawl. Fans a crawl does not give are kept.
UPSERT_INFLUENCERS = (
    f"INSERT INTO influencers ({', '.join(UPSERT_COLUMNS)}) VALUES ({', '.join(['%s'] * len(UPSERT_COLUMNS))})"
    " ON DUPLICATE KEY UPDATE nickname = VALUES(nickname), source_page = VALUES(source_page),"
    " raw_data = VALUES(raw_data), ingestion_log_id = VALUES(ingestion_log_id), crawl_count = crawl_count + 1,"
    " fans_log_id = IF(VALUES(fans) IS NULL OR fans <=> VALUES(fans), fans_log_id, VALUES(fans_log_id)),"
    " fans_first = IF(fans IS NULL, VALUES(fans_first), fans_first),"
    " fans = COALESCE(VALUES(fans), fans), region = VALUES(region), tags = VALUES(tags),"
    " has_contact = VALUES(has_contact), profile_url = VALUES(profile_url), search_terms = VALUES(search_terms)"
)
_BATCH_ROWS_JOIN = "influencers i JOIN ingestion_logs l ON l.id = i.ingestion_log_id WHERE i.ingestion_log_id IN ({logs})"
#: A history row for each row of the batch whose fans this crawl changed (or first gave).
INSERT_HISTORY = (
    "INSERT INTO influencer_history (influencer_id, recorded_at, fans, ingestion_log_id)"
    f" SELECT i.id, l.end_time, i.fans, l.id FROM {_BATCH_ROWS_JOIN}"
    " AND i.fans_log_id = i.ingestion_log_id AND i.fans IS NOT NULL"
)
_FANS_BEFORE = ("(SELECT h.fans FROM influencer_history h WHERE h.influencer_id = i.id"
                " AND h.recorded_at <= l.end_time - INTERVAL {days} DAY ORDER BY h.recorded_at DESC, h.id DESC LIMIT 1)")
_FANS_FIRST = ("COALESCE(i.fans_first, (SELECT h.fans FROM influencer_history h WHERE h.influencer_id = i.id"
               " ORDER BY h.recorded_at, h.id LIMIT 1))")
#: Growth of the batch's stored rows as of this crawl: fans now minus fans N days before it, or
#: minus the first fans seen when the history is younger than that. A row this batch inserted
#: (``crawl_count`` 1: a uid is in a batch once) got its growth, 0, from the insert itself.
UPDATE_GROWTH = (
    "UPDATE influencers i JOIN ingestion_logs l ON l.id = i.ingestion_log_id"
    f" SET i.growth_7d = i.fans - COALESCE({_FANS_BEFORE.format(days=7)}, {_FANS_FIRST}),"
    f" i.growth_30d = i.fans - COALESCE({_FANS_BEFORE.format(days=30)}, {_FANS_FIRST})"
    " WHERE i.ingestion_log_id IN ({logs}) AND i.fans IS NOT NULL AND i.crawl_count > 1"
)
# A stored row listed on a page of another domain moves there after the upsert (`_move_domains`),
# so the domain counts know where it came from; a row reserved by an export batch stays where the
# batch finds it (its domain and id range) until it is exported, and moves on its next crawl.
_MOVED_JOIN = "influencers i JOIN ingestion_logs l ON l.id = i.ingestion_log_id"
_MOVED_WHERE = (" WHERE i.ingestion_log_id IN ({logs}) AND i.domain <> l.domain"
                " AND (i.status = 'exported' OR i.export_log_id = 0)")
SELECT_MOVED = (f"SELECT i.domain AS source, l.domain AS target, i.status, COUNT(*) AS moved FROM {_MOVED_JOIN}"
                f"{_MOVED_WHERE} GROUP BY i.domain, l.domain, i.status")
MOVE_DOMAINS = f"UPDATE {_MOVED_JOIN} SET i.domain = l.domain{_MOVED_WHERE}"


#: One influencer ready to store: (uid, nickname, domain, source_page, raw_data, typed fields).
Row = tuple[str, str | None, str, str | None, dict[str, Any], Profile]

#: The pipeline's upsert: ``UPSERT_HEAD`` + comma-separated `row_values` + ``UPSERT_TAIL``.
UPSERT_HEAD = UPSERT_INFLUENCERS.partition(" VALUES ")[0] + " VALUES "
UPSERT_TAIL = " ON DUPLICATE KEY UPDATE " + UPSERT_INFLUENCERS.partition(" ON DUPLICATE KEY UPDATE ")[2]
ROWS_PER_STATEMENT = 500  # ~600 KB a statement, far below any max_allowed_packet default
STATEMENT_OVERHEAD = 64 * 1024  # the statement's text around the values, with room to spare
_STATEMENT_LIMITS: weakref.WeakKeyDictionary[Connection, int] = weakref.WeakKeyDictionary()


@dataclass
class PageBatch:
    """One page's rows, ready to commit (see `Row`)."""

    task_id: int
    page_number: int
    domain: str
    account_id: int | None
    source_url: str
    started_at: datetime
    finished_at: datetime
    rows: list[Row] = field(default_factory=list)


@dataclass
class TaskBatch:
    claim: Claim
    pages: list[PageBatch]
    marker: int  # the contiguous committed prefix once these pages are in
    current_marker: int
    position: str | None = None  # a cursor platform's cursor of the page after ``marker``


class TaskLost(Exception):
    def __init__(self, task_id: int, reason: str) -> None:
        super().__init__(reason)
        self.task_id = task_id


def write_batch(conn: Connection, work: Sequence[TaskBatch],
                quota_day: QuotaDay | None = None) -> tuple[list[TaskBatch], dict[int, str]]:
    """Commit ``work`` in one transaction; tasks whose claim is lost are left out (and the rest
    committed). With ``quota_day``, each account's pages today (`budgets.count_pages`) count the
    pages in the same transaction. Returns (committed task batches, {lost task id: reason})."""
    limit = statement_limit(conn)
    pending = sorted(work, key=lambda batch: batch.claim.task_id)
    lost: dict[int, str] = {}
    while pending:
        try:
            run_transaction(conn, lambda cursor, batches=pending: _write(cursor, batches, limit, quota_day),
                            isolation="READ COMMITTED")
            return pending, lost
        except TaskLost as exc:
            lost[exc.task_id] = str(exc)
            pending = [batch for batch in pending if batch.claim.task_id != exc.task_id]
    return [], lost


def statement_limit(conn: Connection) -> int:
    """The most bytes of row values one upsert may carry on this connection's server: the whole
    statement must fit in ``max_allowed_packet``."""
    limit = _STATEMENT_LIMITS.get(conn)
    if limit is None:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@max_allowed_packet AS packet")
            packet = int(cursor.fetchone()["packet"])
        limit = _STATEMENT_LIMITS[conn] = max(1024, packet - STATEMENT_OVERHEAD)
    return limit


def _write(cursor: Any, work: Sequence[TaskBatch], limit: int, quota_day: QuotaDay | None) -> None:
    newest: dict[str, tuple[Any, ...]] = {}
    all_logs: list[int] = []
    for batch in work:
        pages = sorted(batch.pages, key=lambda p: p.page_number)
        cursor.executemany(INSERT_LOGS, [
            (page.task_id, page.account_id, page.domain[:DOMAIN_MAX], page.page_number, len(page.rows),
             page.started_at, page.finished_at, page.source_url[:SOURCE_URL_MAX])
            for page in pages
        ])
        cursor.execute(SELECT_LOG_IDS.format(pages=", ".join(["%s"] * len(pages))),
                       (batch.claim.task_id, *[page.page_number for page in pages]))
        log_ids = {row["page_number"]: row["id"] for row in cursor.fetchall()}
        all_logs.extend(log_ids.values())
        for page in pages:
            log_id = log_ids[page.page_number]
            for row in page.rows:
                newest[row[0]] = (*row, log_id)
    # In (domain, uid) order: concurrent writers lock rows in one order, and each statement holds
    # one domain, so its affected rows say how many rows of that domain it inserted.
    delta: Counter[tuple[str, str]] = Counter()
    for domain, rows in groupby(sorted(newest.values(), key=lambda row: (row[2], row[0])), key=lambda row: row[2]):
        delta[(domain, PENDING_EXPORT)] += _upsert_all(cursor, list(rows), limit)
    stored_before = sum(delta.values()) < len(newest)
    if stored_before:  # they may have changed domain
        delta.update(_move_domains(cursor, all_logs))
    if all_logs:
        logs = ", ".join(["%s"] * len(all_logs))
        cursor.execute(INSERT_HISTORY.format(logs=logs), all_logs)
        if stored_before:  # a new row has no growth yet
            cursor.execute(UPDATE_GROWTH.format(logs=logs), all_logs)
    # The fence last: the task rows (in id order) are locked from here to the commit only, so a
    # task handing its account back or ending does not wait for the whole batch. The guarantee
    # is the fence's own: nothing of this transaction commits unless every claim holds now, and
    # nobody can take a task over between this check and the commit.
    for batch in work:
        try:
            fence(cursor, batch.claim)
        except ClaimLost as exc:
            raise TaskLost(batch.claim.task_id, str(exc)) from None
    for batch in work:
        if batch.marker > batch.current_marker:
            move_marker(cursor, batch.claim, page_marker(batch.marker), position=batch.position)
    if quota_day is not None:
        read = Counter(page.account_id for batch in work for page in batch.pages if page.account_id is not None)
        count_pages(cursor, read, quota_day)
    counts.add(cursor, delta)
    ingested: Counter[tuple[str, str]] = Counter()
    for page in (page for batch in work for page in batch.pages):
        ingested[(tallies.PAGES_INGESTED, page.domain[:DOMAIN_MAX])] += 1
        ingested[(tallies.ROWS_INGESTED, page.domain[:DOMAIN_MAX])] += len(page.rows)
    tallies.add(cursor, ingested)


def _move_domains(cursor: Any, log_ids: Sequence[int]) -> Counter[tuple[str, str]]:
    """Move the batch's stored rows listed under another domain to it; the counts' change."""
    if not log_ids:
        return Counter()
    logs = ", ".join(["%s"] * len(log_ids))
    cursor.execute(SELECT_MOVED.format(logs=logs), tuple(log_ids))
    delta: Counter[tuple[str, str]] = Counter()
    for row in cursor.fetchall():
        delta[(row["source"], row["status"])] -= row["moved"]
        delta[(row["target"], row["status"])] += row["moved"]
    if delta:
        cursor.execute(MOVE_DOMAINS.format(logs=logs), tuple(log_ids))
    return delta


def _upsert_all(cursor: Any, rows: Sequence[tuple[Any, ...]], limit: int) -> int:
    """Upsert ``rows`` (in uid order) in statements of at most ``ROWS_PER_STATEMENT`` rows and
    ``limit`` bytes of values; returns how many were new. Each statement's values are made on a
    helper thread while the server runs the one before (`made_ahead`)."""
    with contextlib.closing(made_ahead(_chunks(rows, limit), "upsert-values")) as statements:
        return sum(_upsert(cursor, chunk, values) for chunk, values in statements)


def _chunks(rows: Sequence[tuple[Any, ...]], limit: int) -> Iterator[tuple[list[tuple[Any, ...]], list[str]]]:
    """The rows in statements' worth: (rows, their VALUES texts). A single row larger than
    ``limit`` could never be sent: it is stored with a note in place of its raw data, one warning
    line, rather than failing its batch for ever."""
    chunk: list[tuple[Any, ...]] = []
    values: list[str] = []
    size = 0
    for row in rows:
        text = row_values(row)
        if len(text) > limit:
            text, row = _noted(row, limit)
        if chunk and (len(chunk) >= ROWS_PER_STATEMENT or size + len(text) > limit):
            yield chunk, values
            chunk, values, size = [], [], 0
        chunk.append(row)
        values.append(text)
        size += len(text) + 1
    if chunk:
        yield chunk, values


def _noted(row: tuple[Any, ...], limit: int) -> tuple[str, tuple[Any, ...]]:
    uid, nickname, domain, source_page, raw, profile, log_id = row
    size = len(raw_json(raw))
    logger.warning("uid %s: its raw data (%d bytes as JSON) is more than one statement to MySQL can carry"
                   " (%d, from max_allowed_packet); the row is stored with a note in its place", uid, size, limit)
    noted = (uid, nickname, domain, source_page, {"raw_data_omitted_bytes": size}, profile, log_id)
    return row_values(noted), noted


def _upsert(cursor: Any, rows: Sequence[tuple[Any, ...]], values: list[str]) -> int:
    """One upsert statement; returns how many rows it inserted. Rows nested deeper than the
    server's JSON limit are stored with their deepest parts as JSON text rather than failing the
    batch on every retry (a failed statement leaves the transaction open, so it is sent again at once).

    An update always changes ``crawl_count``, so each stored row counts 2 affected rows and each
    new one 1, found rows or not."""
    try:
        return 2 * len(rows) - cursor.execute(UPSERT_HEAD + ",".join(values) + UPSERT_TAIL)
    except ValueRefused:
        flattened = [(*row[:4], limit_depth(row[4], MAX_RAW_DEPTH), *row[5:]) for row in rows]
        changed = [row[0] for row, flat in zip(rows, flattened, strict=True) if row != flat]
        logger.warning("%d row(s) nest deeper than MySQL's JSON limit; their parts below depth %d are stored as"
                       " JSON text (uids %s)", len(changed), MAX_RAW_DEPTH, changed[:5])
        return 2 * len(rows) - cursor.execute(UPSERT_HEAD + ",".join(row_values(row) for row in flattened) + UPSERT_TAIL)


# -- filling the typed fields of rows stored before (core/profilefill.py) -------------------------

_SET_PROFILE = ("UPDATE influencers SET fans = %s, region = %s, tags = %s, has_contact = %s, profile_url = %s,"
                " search_terms = %s, growth_7d = %s, growth_30d = %s, updated_at = updated_at WHERE id = %s")
_FIRST_HISTORY = (
    "INSERT INTO influencer_history (influencer_id, recorded_at, fans, ingestion_log_id)"
    " SELECT i.id, COALESCE(l.end_time, i.updated_at), i.fans, COALESCE(i.ingestion_log_id, 0)"
    " FROM influencers i LEFT JOIN ingestion_logs l ON l.id = i.ingestion_log_id"
    " WHERE i.id BETWEEN %s AND %s AND i.fans IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM influencer_history h WHERE h.influencer_id = i.id)"
)


def lock_rows_after(cursor: Any, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Lock the next ``limit`` rows after ``after_id`` in id order: id, nickname, raw_data."""
    cursor.execute("SELECT id, nickname, raw_data FROM influencers WHERE id > %s ORDER BY id LIMIT %s FOR UPDATE",
                   (after_id, limit))
    return list(cursor.fetchall())


def set_profiles(cursor: Any, rows: Sequence[tuple[int, tuple[str | None, Profile]]]) -> None:
    """Set the typed fields of stored rows: (id, (nickname, profile)) each; growth starts at 0."""
    values = []
    for row_id, (nickname, profile) in rows:
        growth = None if profile.fans is None else 0
        tags = raw_json(list(profile.tags)).decode("utf-8") if profile.tags else None
        values.append((profile.fans, profile.region, tags, profile.has_contact, profile.profile_url,
                       row_terms(nickname, profile.tags), growth, growth, row_id))
    cursor.executemany(_SET_PROFILE, values)


def add_first_history(cursor: Any, first_id: int, last_id: int) -> None:
    """A first history row (fans as stored, at the row's last crawl) for the rows in
    [first_id, last_id] with fans and no history yet."""
    cursor.execute(_FIRST_HISTORY, (first_id, last_id))


def committed_pages(conn: Connection, task_id: int) -> set[int]:
    """The pages of a task whose rows are committed (a resumed task skips them)."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT page_number FROM ingestion_logs WHERE task_id = %s", (task_id,))
        pages = {row["page_number"] for row in cursor.fetchall()}
    conn.commit()
    return pages


# -- export ------------------------------------------------------------------------------------

PENDING_EXPORT = "pending_export"
EXPORTED = "exported"
#: An exported row's fields, in the order the export writers take them.
EXPORT_COLUMNS = ("id", "uid", "nickname", "domain", "source_page", "ingested_at", "raw_data")
_PENDING = "domain = %s AND status = 'pending_export' AND export_log_id = 0 AND id > %s"
_BEHIND = "domain = %s AND status = 'pending_export' AND export_log_id = 0 AND id <= %s"
# A batch's rows: its domain's pending rows in [first_id, last_id] that point at it. The range
# keeps the scan on ix_influencers_export_scan; export_log_id itself has no index (schema.sql).
_IN_BATCH = "domain = %s AND status = 'pending_export' AND id BETWEEN %s AND %s AND export_log_id = %s"
_BATCH_ROWS = f"SELECT {', '.join(EXPORT_COLUMNS)} FROM influencers WHERE {_IN_BATCH} ORDER BY id"
# CSV takes `ingested_at` as the server's text ('YYYY-MM-DD HH:MM:SS', what isoformat(sep=" ") of
# a DATETIME gives) instead of a datetime parsed and formatted again in Python for every row.
_CSV_BATCH_ROWS = _BATCH_ROWS.replace("ingested_at,", "CAST(ingested_at AS CHAR) AS ingested_at,", 1)


def lock_pending(cursor: Any, domain: str, after_id: int, limit: int, selection: Selection | None = None) -> list[int]:
    """Lock the next ``limit`` rows of the domain waiting for export after ``after_id`` (those
    ``selection`` selects, when given), in id order.

    A plain ``FOR UPDATE``, not ``SKIP LOCKED``: the marker only moves forward, so a row skipped
    because a spider's upsert held it for a moment would never be looked at again by the task.
    """
    if selection is not None:
        return _lock_selected(cursor, "i.id > %s", (domain, after_id), limit, selection)
    cursor.execute(f"SELECT id FROM influencers WHERE {_PENDING} ORDER BY id LIMIT %s FOR UPDATE",
                   (domain, after_id, limit))
    return [row["id"] for row in cursor.fetchall()]


def lock_behind(cursor: Any, domain: str, marker_id: int, limit: int, selection: Selection | None = None) -> list[int]:
    """Lock up to ``limit`` rows of the domain waiting for export at or below ``marker_id`` (its
    task's marker), in id order: rows whose ids were given out before the marker passed them and
    whose commits came after. A locking read waits for such a row still being inserted."""
    if selection is not None:
        return _lock_selected(cursor, "i.id <= %s", (domain, marker_id), limit, selection)
    cursor.execute(f"SELECT id FROM influencers WHERE {_BEHIND} ORDER BY id LIMIT %s FOR UPDATE",
                   (domain, marker_id, limit))
    return [row["id"] for row in cursor.fetchall()]


def _lock_selected(cursor: Any, range_condition: str, params: tuple[Any, ...], limit: int,
                   selection: Selection) -> list[int]:
    """The selected rows of a filtered export: found by a plain read (a locking read would lock
    every row it passes over, selected or not, for the whole reserve), then locked by id and
    checked again under the lock; a row that stopped qualifying meanwhile is left out."""
    where, values = selection.where(fulltext=False)
    pending = f"i.domain = %s AND i.status = 'pending_export' AND i.export_log_id = 0 AND {range_condition}"
    cursor.execute(f"SELECT i.id FROM influencers i WHERE {pending} AND {where} ORDER BY i.id LIMIT %s",
                   (*params, *values, limit))
    ids = [row["id"] for row in cursor.fetchall()]
    if not ids:
        return []
    cursor.execute(f"SELECT i.id FROM influencers i WHERE i.id IN ({', '.join(['%s'] * len(ids))}) AND {pending}"
                   f" AND {where} ORDER BY i.id FOR UPDATE", (*ids, *params, *values))
    return [row["id"] for row in cursor.fetchall()]


def any_pending(cursor: Any, domain: str, after_id: int, selection: Selection | None = None) -> bool:
    if selection is not None:
        where, values = selection.where(fulltext=False)
        cursor.execute(f"SELECT i.id FROM influencers i WHERE i.domain = %s AND i.status = 'pending_export'"
                       f" AND i.export_log_id = 0 AND i.id > %s AND {where} ORDER BY i.id LIMIT 1",
                       (domain, after_id, *values))
    else:
        cursor.execute(f"SELECT id FROM influencers WHERE {_PENDING} ORDER BY id LIMIT 1", (domain, after_id))
    return cursor.fetchone() is not None


def assign_batch(cursor: Any, batch_id: int, domain: str, first_id: int, last_id: int,
                 ids: Sequence[int] | None = None) -> int:
    """Point the locked rows in [first_id, last_id] at their batch; returns how many. Under the
    reserve's row locks, the pending rows of that range with no batch are exactly the locked ones,
    unless the export is filtered: then the rows are ``ids``, the locked ones."""
    if ids is not None:
        cursor.execute(f"UPDATE influencers SET export_log_id = %s WHERE id IN ({', '.join(['%s'] * len(ids))})"
                       " AND status = 'pending_export' AND export_log_id = 0", (batch_id, *ids))
        return cursor.rowcount
    cursor.execute(f"UPDATE influencers SET export_log_id = %s WHERE {_IN_BATCH}",
                   (batch_id, domain, first_id, last_id, 0))
    return cursor.rowcount


def stream_batch(cursor: Any, batch_id: int, domain: str, first_id: int, last_id: int, fmt: str) -> None:
    """Run the query of a batch's rows (tuples in `EXPORT_COLUMNS` order) on a streaming cursor."""
    cursor.execute(_CSV_BATCH_ROWS if fmt == "csv" else _BATCH_ROWS, (domain, first_id, last_id, batch_id))


def mark_exported(cursor: Any, batch_id: int, domain: str, first_id: int, last_id: int) -> None:
    """Mark a batch's rows exported, moving them from the domain's pending count to its exported one."""
    marked = cursor.execute(f"UPDATE influencers SET status = 'exported' WHERE {_IN_BATCH}",
                            (domain, first_id, last_id, batch_id))
    counts.add(cursor, {(domain, PENDING_EXPORT): -marked, (domain, EXPORTED): marked})
