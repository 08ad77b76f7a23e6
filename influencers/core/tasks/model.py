"""Tasks as workers see them: the row, the claim, the conditions that make a task claimable."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from influencers.core.errors import InvalidArgument

TASK_TYPES = ("ingestion", "export")
TASK_STATES = ("pending", "in_progress", "paused", "completed", "failed")  # tasks.status
EXPORT_FORMATS = ("csv", "jsonl", "xlsx")
PURPOSE = {"ingestion": "ingesting", "export": "exporting"}
#: Invisible characters that are not format characters (category Cf: zero-width space and
#: joiners U+200B–U+200D, word joiner U+2060, BOM U+FEFF, soft hyphen U+00AD, the bidi controls
#: U+200E/F, U+202A–U+202E, U+2066–U+2069 are all Cf): Hangul fillers, the combining grapheme
#: joiner, Khmer's invisible vowels.
_INVISIBLE_IN_DOMAIN = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")
TASK_COLUMNS = (
    "id, task_type, domain, status, progress_marker, assigned_account_id, parent_id, is_parent, page_from,"
    " page_to, export_limit, export_format, exported_count, claimed_by, lease_token, attempts, max_attempts,"
    " last_error, created_at, updated_at, progress_cursor, export_filter"
)


@dataclass(frozen=True)
class Task:
    id: int
    task_type: str
    domain: str
    status: str
    progress_marker: str | None
    assigned_account_id: int | None
    parent_id: int | None
    is_parent: bool
    page_from: int | None
    page_to: int | None
    export_limit: int | None
    export_format: str | None
    exported_count: int
    claimed_by: str | None
    lease_token: str | None
    attempts: int
    max_attempts: int
    last_error: str | None
    created_at: Any = None
    updated_at: Any = None
    progress_cursor: str | None = None  # a cursor platform's position after the marker
    export_filter: str | None = None  # an export's selection as JSON (core/selection.py); None: every row

    @property
    def marker_value(self) -> int:
        """The number in `page=N` / `last_id=N`, 0 when there is no marker yet."""
        return parse_marker(self.progress_marker)


@dataclass(frozen=True)
class Claim:
    """What a worker holds while it runs a task: the fence token and the bound account."""

    task: Task
    lease_token: str
    account_id: int | None
    worker_id: str

    @property
    def task_id(self) -> int:
        return self.task.id


def claimable_conditions(alias: str = "") -> tuple[str, str]:
    """What a claim looks for, as (due paused, pending): paused by a worker with an auto-resume
    time that has passed (an operator's pause has none and waits for `resume`), or pending and
    not held back."""
    t = f"{alias}." if alias else ""
    return (f"{t}status = 'paused' AND {t}not_before IS NOT NULL AND {t}not_before <= UTC_TIMESTAMP(6)",
            f"{t}status = 'pending' AND ({t}not_before IS NULL OR {t}not_before <= UTC_TIMESTAMP(6))")


def claimable_sql(alias: str = "") -> str:
    """Either claimable condition, for queries that count or list claimable tasks."""
    paused, pending = claimable_conditions(alias)
    return f"({pending} OR {paused})"


def claimable_waiting(cursor: Any) -> bool:
    """Whether some task (of either type) could be claimed now if an account were free."""
    cursor.execute(f"SELECT 1 FROM tasks WHERE NOT is_parent AND {claimable_sql()} LIMIT 1")
    return cursor.fetchone() is not None


def tasks_brief(cursor: Any, task_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Task id → its type, domain, parent and whether it is a crawl's parent: what a message
    about the task names."""
    ids = sorted({int(task_id) for task_id in task_ids})
    if not ids:
        return {}
    cursor.execute("SELECT id, task_type, domain, parent_id, is_parent FROM tasks"
                   f" WHERE id IN ({', '.join(['%s'] * len(ids))})", ids)
    return {int(row["id"]): row for row in cursor.fetchall()}


def rows_ingested_by(cursor: Any, task_id: int) -> int:
    """Rows a crawl committed: the task's own pages and its subtasks'."""
    cursor.execute("SELECT id FROM tasks WHERE parent_id = %s", (task_id,))
    ids = [task_id, *(int(row["id"]) for row in cursor.fetchall())]
    # An IN list of ids walks the (task_id, page_number) key; an OR with a subquery would scan the log.
    cursor.execute("SELECT COALESCE(SUM(ingested_count), 0) AS n FROM ingestion_logs"
                   f" WHERE task_id IN ({', '.join(['%s'] * len(ids))})", ids)
    return int(cursor.fetchone()["n"])


def page_marker(page: int) -> str:
    """An ingestion task's progress marker: every page up to ``page`` is committed."""
    return f"page={page}"


def id_marker(last_id: int) -> str:
    """An export task's progress marker: every row up to id ``last_id`` is in a batch."""
    return f"last_id={last_id}"


def parse_marker(marker: str | None) -> int:
    """The number of a `page_marker` or `id_marker` (0 when there is none yet)."""
    if not marker or "=" not in marker:
        return 0
    try:
        return int(marker.split("=", 1)[1])
    except ValueError:
        return 0


def validate_domain(domain: str) -> str:
    """A domain (领域) name, NFKC-normalised (full-width `ＡＢ` is `AB`) and stripped: 1–100
    characters, nothing that hides or reorders text (so no name can look like another), no path
    separators, and no leading `-`.

    A name like `-rf` is refused, not rewritten: it would read as an option wherever an operator
    types it (`ls`, `rm`, `scrapy crawl -a`) and names the export directory; a rewritten name
    would no longer be the platform's domain.
    """
    value = unicodedata.normalize("NFKC", domain or "").strip()
    if not value or len(value) > 100:
        raise InvalidArgument(f"domain {domain!r} must be 1 to 100 characters")
    for char in value:
        problem = _refused_in_domain(char)
        if problem:
            raise InvalidArgument(f"domain {domain!r} holds U+{ord(char):04X}{_char_name(char)}, {problem}")
    if value.startswith("-"):
        raise InvalidArgument(f"domain {domain!r} must not start with '-' (it would read as a command-line option)")
    return value


def _refused_in_domain(char: str) -> str | None:
    """Why ``char`` may not be in a domain name, or None when it may."""
    if char in "/\\":
        return "a path separator"
    category = unicodedata.category(char)
    if category == "Cs":
        return "which is not valid UTF-8 text"
    if category == "Cf" or char in _INVISIBLE_IN_DOMAIN:
        return "an invisible or bidi control character (the name would look like another)"
    if category in ("Cc", "Zl", "Zp"):
        return "a control character"
    if category in ("Co", "Cn"):
        return "a private-use or unassigned character"
    return None


def _char_name(char: str) -> str:
    name = unicodedata.name(char, "")
    return f" {name}" if name else ""




def task_from_row(row: dict[str, Any]) -> Task:
    values = {name: row[name] for name in Task.__dataclass_fields__}
    values["is_parent"] = bool(values["is_parent"])
    return Task(**values)


#: Clears a claim (the SET list of an UPDATE): no holder, no fence token, no lease, not out on dispatch.
CLEAR_CLAIM = ("claimed_by = NULL, lease_token = NULL, lease_expires_at = NULL,"
                " dispatch_job = NULL, dispatch_node = NULL, dispatched_at = NULL")
