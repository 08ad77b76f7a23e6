"""Whether the server's InnoDB buffer pool holds the ``influencers`` table's indexes.

A new row enters most of its indexes at places spread over the whole index: the fans order
(`ix_influencers_fans`), the fulltext words of its nickname and tags, and the uid index when a
platform's uids come in no order. While the buffer pool holds those indexes, such an insert costs
what it costs on an empty table. Once they outgrow it, each insert first reads its index page from
disk (MariaDB 10.11 no longer buffers secondary-index changes), so a crawl of new rows slows as
the table grows. The row data itself need not fit: new rows are appended at the end of the primary
key, and an export reads pages in id order.

`index_fit` says where a database stands; `db status` prints it, and a crawl warns once at start
when the pool is too small. The README's "Sizing MariaDB" says how to set the pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pymysql.connections import Connection

from influencers.core.errors import DatabaseError

logger = logging.getLogger(__name__)

_SIZES = ("SELECT @@innodb_buffer_pool_size AS pool, COALESCE(SUM(INDEX_LENGTH), 0) AS indexes"
          " FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'influencers'")
# The fulltext index lives in tables of its own (FTS_…_INDEX_1 … 6), which information_schema.TABLES
# does not list; reading their sizes needs the PROCESS privilege, so without it they are left out.
_FULLTEXT_SIZE = ("SELECT COALESCE(SUM(FILE_SIZE), 0) AS size FROM information_schema.INNODB_SYS_TABLESPACES"
                  " WHERE NAME LIKE CONCAT(REPLACE(DATABASE(), '_', '\\_'), '/FTS\\_%\\_INDEX\\_%')")


@dataclass(frozen=True)
class IndexFit:
    """The buffer pool's size and the indexes a new row is inserted into, in bytes."""

    pool_bytes: int
    index_bytes: int
    fulltext_counted: bool = True

    @property
    def holds(self) -> bool:
        return self.pool_bytes >= self.index_bytes

    def line(self) -> str:
        indexes = f"{mebibytes(self.index_bytes)} of influencers indexes"
        if not self.fulltext_counted:
            indexes += " (the fulltext index not counted: its size needs the PROCESS privilege)"
        if self.holds:
            return f"buffer pool {mebibytes(self.pool_bytes)}: holds the {indexes}"
        return (f"buffer pool {mebibytes(self.pool_bytes)} is smaller than the {indexes}: each new row reads"
                " index pages from disk and crawls slow as the table grows; raise innodb_buffer_pool_size"
                " (README: Sizing MariaDB)")


def mebibytes(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def index_fit(conn: Connection) -> IndexFit:
    """The buffer pool against the secondary and fulltext indexes of ``influencers`` (InnoDB's
    own estimates, as ``information_schema`` gives them)."""
    with conn.cursor() as cursor:
        cursor.execute(_SIZES)
        row = cursor.fetchone()
        pool, indexes = int(row["pool"]), int(row["indexes"])
        try:
            cursor.execute(_FULLTEXT_SIZE)
            fulltext, counted = int(cursor.fetchone()["size"]), True
        except DatabaseError:
            fulltext, counted = 0, False
    conn.commit()
    return IndexFit(pool, indexes + fulltext, counted)


def warn_if_outgrown(conn: Connection) -> IndexFit:
    """`index_fit`, with one warning line when the pool does not hold the indexes."""
    fit = index_fit(conn)
    if not fit.holds:
        logger.warning("MariaDB's %s", fit.line())
    return fit
