"""The owner of the ``tasks`` table: every statement that changes it, and every status word.

`model` (the row, the claim, what is claimable), `fence` (the check every write for a claim makes
first), `scheduler` (create, claim, lease, recover, finish, the account relay), `dispatches` (the
dispatcher's record of which subtask went to which Scrapyd job). Everyone else imports from here.
"""

from influencers.core.tasks.dispatches import (
    Dispatch,
    dispatch_candidates,
    outstanding_dispatches,
    record_dispatch,
    withdraw_dispatch,
)
from influencers.core.tasks.fence import Fenced, fence, move_marker
from influencers.core.tasks.model import (
    EXPORT_FORMATS,
    PURPOSE,
    TASK_STATES,
    TASK_TYPES,
    Claim,
    Task,
    claimable_conditions,
    claimable_sql,
    id_marker,
    page_marker,
    parse_marker,
    validate_domain,
)
from influencers.core.tasks.scheduler import TaskScheduler, count_unfinished, pause_window

__all__ = [
    "EXPORT_FORMATS", "PURPOSE", "TASK_STATES", "TASK_TYPES", "Claim", "Dispatch", "Fenced", "Task", "TaskScheduler",
    "claimable_conditions", "claimable_sql", "count_unfinished", "dispatch_candidates", "fence", "id_marker",
    "move_marker", "outstanding_dispatches", "page_marker", "parse_marker", "pause_window",
    "record_dispatch", "validate_domain", "withdraw_dispatch",
]
