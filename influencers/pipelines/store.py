"""The SQL of ingestion: one transaction commits a batch of whole pages.

For every page of the batch: its `ingestion_logs` row (one multi-row insert per task, then one
query for their ids); for all of them: the upsert of the influencers, sorted by uid so
concurrent writers lock rows in the same order and do not deadlock; for every task, at the end:
the fence (`check_claim`) and the progress marker.

The upsert sends its rows as ONE JSON document parameter that the server unpacks with
`JSON_TABLE` (MariaDB 10.6+, MySQL 8.0.4+), ``ROWS_PER_STATEMENT`` rows a statement. The usual
multi-row ``INSERT … VALUES (%s, …)`` costs ~20 µs of Python per row to escape six values in
pymysql; one `orjson.dumps` of the rows costs ~5, the server's work is the same, and the Python
saved is CPU the crawler's reactor thread gets back (bench/README.md, ingestion).
Either all of it commits or none of it: a kill at any moment leaves the marker, the logs and the
rows consistent, and a page is either wholly committed or not at all.
"""

from __future__ import annotations

import json
import logging
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pymysql
from pymysql.connections import Connection

from influencers.db import run_transaction
from influencers.errors import ClaimLost
from influencers.tasks import Claim, TaskScheduler

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
#: The textbook statement, one row of values per influencer (the benchmarks' naive baseline).
UPSERT_INFLUENCERS = (
    "INSERT INTO influencers (uid, nickname, domain, source_page, raw_data, ingestion_log_id)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
    " ON DUPLICATE KEY UPDATE nickname = VALUES(nickname), domain = VALUES(domain),"
    " source_page = VALUES(source_page), raw_data = VALUES(raw_data), ingestion_log_id = VALUES(ingestion_log_id)"
)


#: One influencer ready to store: (uid, nickname, domain, source_page, raw_data).
Row = tuple[str, str | None, str, str | None, dict[str, Any]]

#: The pipeline's upsert: rows as a JSON array of [uid, nickname, domain, source_page, raw_data,
#: log id] arrays. CONVERT: pymysql sends bytes as a binary string, which MySQL will not read as JSON.
UPSERT_INFLUENCERS_FROM_JSON = (
    "INSERT INTO influencers (uid, nickname, domain, source_page, raw_data, ingestion_log_id)"
    " SELECT r.uid, r.nickname, r.domain, r.source_page, r.raw_data, r.log_id"
    " FROM JSON_TABLE(CONVERT(%s USING utf8mb4), '$[*]' COLUMNS ("
    "uid VARCHAR(255) CHARACTER SET utf8mb4 PATH '$[0]',"
    " nickname VARCHAR(255) CHARACTER SET utf8mb4 PATH '$[1]',"
    " domain VARCHAR(100) CHARACTER SET utf8mb4 PATH '$[2]',"
    " source_page VARCHAR(255) CHARACTER SET utf8mb4 PATH '$[3]',"
    " raw_data JSON PATH '$[4]', log_id BIGINT PATH '$[5]')) AS r"
    " ON DUPLICATE KEY UPDATE nickname = VALUES(nickname), domain = VALUES(domain),"
    " source_page = VALUES(source_page), raw_data = VALUES(raw_data), ingestion_log_id = VALUES(ingestion_log_id)"
)
ROWS_PER_STATEMENT = 500  # ~400 KB a statement, far below any max_allowed_packet default
STATEMENT_OVERHEAD = 64 * 1024  # the statement's text around the document, with room to spare
_DOCUMENT_LIMITS: weakref.WeakKeyDictionary[Connection, int] = weakref.WeakKeyDictionary()
#: The server refused the document: nesting deeper than its JSON limit (MariaDB: 32 levels, 4040)
#: or a failed JSON check (4025; MySQL 3140 for invalid JSON text).
JSON_REFUSED = frozenset({4040, 4025, 3140})
MAX_RAW_DEPTH = 24  # levels of raw_data kept as JSON: the rows array and a row take two of 32


@dataclass
class PageBatch:
    """One page's rows, ready to commit. ``rows`` are (uid, nickname, domain, source_page, raw)."""

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


class TaskLost(Exception):
    def __init__(self, task_id: int, reason: str) -> None:
        super().__init__(reason)
        self.task_id = task_id


def write_batch(conn: Connection, work: Sequence[TaskBatch]) -> tuple[list[TaskBatch], dict[int, str]]:
    """Commit ``work`` in one transaction; tasks whose claim is lost are left out (and the rest
    committed). Returns (committed task batches, {lost task id: reason})."""
    scheduler = TaskScheduler(conn, None, None)  # only the fence and the marker are used
    limit = document_limit(conn)
    pending = sorted(work, key=lambda batch: batch.claim.task_id)
    lost: dict[int, str] = {}
    while pending:
        try:
            run_transaction(conn, lambda cursor, batches=pending: _write(cursor, scheduler, batches, limit))
            return pending, lost
        except TaskLost as exc:
            lost[exc.task_id] = str(exc)
            pending = [batch for batch in pending if batch.claim.task_id != exc.task_id]
    return [], lost


def document_limit(conn: Connection) -> int:
    """The largest rows document one upsert may carry on this connection's server: pymysql sends
    it as a hex literal (twice its size) in a packet of at most ``max_allowed_packet`` bytes."""
    limit = _DOCUMENT_LIMITS.get(conn)
    if limit is None:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@max_allowed_packet AS packet")
            packet = int(cursor.fetchone()["packet"])
        limit = _DOCUMENT_LIMITS[conn] = max(1024, packet // 2 - STATEMENT_OVERHEAD)
    return limit


def _write(cursor: Any, scheduler: TaskScheduler, work: Sequence[TaskBatch], limit: int) -> None:
    newest: dict[str, tuple[Any, ...]] = {}
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
        for page in pages:
            log_id = log_ids[page.page_number]
            for uid, nickname, domain, source_page, raw in page.rows:
                newest[uid] = (uid, nickname, domain, source_page, raw, log_id)
    rows = [newest[uid] for uid in sorted(newest)]
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        _upsert_within(cursor, rows[start:start + ROWS_PER_STATEMENT], limit)
    # The fence last: the task rows (in id order) are locked from here to the commit only, so a
    # task handing its account back or ending does not wait for the whole batch. The guarantee
    # is the fence's own: nothing of this transaction commits unless every claim holds now, and
    # nobody can take a task over between this check and the commit.
    for batch in work:
        try:
            scheduler.check_claim(cursor, batch.claim)
        except ClaimLost as exc:
            raise TaskLost(batch.claim.task_id, str(exc)) from None
    for batch in work:
        if batch.marker > batch.current_marker:
            scheduler.set_progress(cursor, batch.claim, f"page={batch.marker}")


def _upsert_within(cursor: Any, rows: Sequence[tuple[Any, ...]], limit: int) -> None:
    """Upsert ``rows`` in statements whose document fits ``limit`` bytes, halving as needed (in
    uid order still). A single row larger than that could never be sent: it is stored with a
    note in place of its raw data, one warning line, rather than failing its batch for ever."""
    document = rows_json(rows)
    if len(document) <= limit:
        _upsert(cursor, rows, document)
    elif len(rows) > 1:
        middle = len(rows) // 2
        _upsert_within(cursor, rows[:middle], limit)
        _upsert_within(cursor, rows[middle:], limit)
    else:
        (uid, nickname, domain, source_page, _raw, log_id), = rows
        logger.warning("uid %s: its raw data (%d bytes as JSON) is more than one statement to MySQL can carry"
                       " (%d, from max_allowed_packet); the row is stored with a note in its place",
                       uid, len(document), limit)
        noted = (uid, nickname, domain, source_page, {"raw_data_omitted_bytes": len(document)}, log_id)
        _upsert(cursor, [noted], rows_json([noted]))


def _upsert(cursor: Any, rows: Sequence[tuple[Any, ...]], document: bytes) -> None:
    """One upsert statement; rows nested deeper than the server's JSON limit are stored with their
    deepest parts as JSON text rather than failing the batch on every retry (a failed statement
    leaves the transaction open, so it is sent again at once)."""
    try:
        cursor.execute(UPSERT_INFLUENCERS_FROM_JSON, (document,))
    except pymysql.err.MySQLError as exc:
        if not exc.args or exc.args[0] not in JSON_REFUSED:
            raise
        flattened = [(*row[:4], _limit_depth(row[4], MAX_RAW_DEPTH), *row[5:]) for row in rows]
        changed = [row[0] for row, flat in zip(rows, flattened, strict=True) if row != flat]
        logger.warning("%d row(s) nest deeper than MySQL's JSON limit; their parts below depth %d are stored as"
                       " JSON text (uids %s)", len(changed), MAX_RAW_DEPTH, changed[:5])
        cursor.execute(UPSERT_INFLUENCERS_FROM_JSON, (rows_json(flattened),))


def _limit_depth(value: Any, levels: int) -> Any:
    """``value`` with every container ``levels`` deep replaced by its JSON text."""
    if not isinstance(value, (dict, list, tuple)):
        return value
    if levels <= 0:
        return rows_json(value).decode("utf-8")
    if isinstance(value, dict):
        return {key: _limit_depth(item, levels - 1) for key, item in value.items()}
    return [_limit_depth(item, levels - 1) for item in value]


def rows_json(rows: Any) -> bytes:
    """The rows (or any value) as compact UTF-8 JSON. Values orjson refuses (integers beyond 64 bits,
    non-string keys, lone surrogates from a ``\\ud800`` escape) go through `json` after
    cleaning; NaN and infinity become null either way, as JSON has no literal for them and the
    server would refuse the whole batch."""
    try:
        return orjson.dumps(rows)
    except TypeError:
        return json.dumps(_clean(rows), ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_clean(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value
