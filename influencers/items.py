"""What the spider hands to the pipeline.

`InfluencerItem` is one row of a listing page. `PageDone` closes a page: it follows the page's
rows and tells the pipeline the page is complete, so its rows, its `ingestion_logs` row and the
task's progress can be committed together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class InfluencerItem:
    uid: str | None
    nickname: str | None
    domain: str
    source_page: str | None
    raw_data: dict[str, Any] = field(default_factory=dict)
    task_id: int | None = None
    page_number: int | None = None


@dataclass(slots=True)
class PageDone:
    task_id: int
    page_number: int
    domain: str
    account_id: int | None
    source_url: str
    row_count: int  # rows the page carried (the pipeline counts what it keeps)
    started_at: datetime  # UTC, naive
    finished_at: datetime  # UTC, naive
