"""The fence: what every write made for a claim checks first, in the same transaction.

A claim carries a fence token (``lease_token``); `fence` locks the task row and raises
`ClaimLost` unless the claim still holds it, so a worker whose claim was lost (lease expired,
operator pause, crash recovery) cannot complete or overwrite a task someone else now holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from influencers.core.errors import ClaimLost
from influencers.core.tasks.model import Claim


@dataclass(frozen=True)
class Fenced:
    """What the fence read under the task's row lock."""

    account_id: int | None  # ``assigned_account_id``: the last account the task used
    progress_marker: str | None
    exported_count: int
    export_limit: int | None


def fence(cursor: Any, claim: Claim) -> Fenced:
    """Lock the task row inside the caller's transaction and raise ClaimLost unless ``claim``
    still holds it. Nothing the transaction writes for the claim can commit once another worker
    holds the task, and nobody can take it over between this check and the commit."""
    cursor.execute(
        "SELECT status, lease_token, assigned_account_id, progress_marker, exported_count, export_limit"
        " FROM tasks WHERE id = %s FOR UPDATE",
        (claim.task_id,),
    )
    row = cursor.fetchone()
    if row is None or row["status"] != "in_progress" or row["lease_token"] != claim.lease_token:
        raise ClaimLost(f"task {claim.task_id} is no longer held by {claim.worker_id}")
    return Fenced(row["assigned_account_id"], row["progress_marker"], row["exported_count"], row["export_limit"])


def move_marker(cursor: Any, claim: Claim, marker: str, *, exported: int | None = None,
                position: str | None = None) -> None:
    """Move the progress marker inside the caller's transaction, which `fence`d the claim and
    committed the work the marker covers; with it ``position``, a cursor platform's cursor of the
    page after the marker (None otherwise), so a resume on any node continues from both.

    A marker that moves also clears `attempts`: they count rounds lost *without* progress, so
    a long task that survives many crashes keeps going, while one that never gets further fails.
    """
    cursor.execute(  # `attempts` first: MySQL assigns left to right, so it compares the old marker
        "UPDATE tasks SET attempts = IF(progress_marker <=> %s, attempts, 0), progress_marker = %s,"
        " progress_cursor = %s, exported_count = exported_count + %s WHERE id = %s",
        (marker[:255], marker[:255], position, exported or 0, claim.task_id),
    )
