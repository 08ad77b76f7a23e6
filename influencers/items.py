"""What the spider hands to the pipeline: one `InfluencerPage` item per listing page.

A page, not an influencer, is the item because a page is what commits: its rows, its
`ingestion_logs` row and the task's progress marker go in together or not at all. It is also
what a crawler can afford: every item is a trip through the spider middlewares, the item
pipelines and the ``item_scraped`` signal, and one trip per row would cost the crawler more CPU
than the page's database write. ``item_scraped_count`` in the stats therefore counts pages; the
pipeline counts rows (``pipeline/items``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from influencers.core.profile import Profile


@dataclass(slots=True)
class InfluencerPage:
    task_id: int
    page_number: int
    domain: str
    account_id: int | None
    source_url: str
    started_at: datetime  # UTC, naive
    finished_at: datetime  # UTC, naive
    #: The platform's rows as the site adapter parsed them: dicts, each with a ``uid`` (and
    #: usually a ``nickname``); the whole dict is stored as ``raw_data``.
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: Each row's typed fields (`SiteAdapter.profile`), in the order of ``rows``; None: the
    #: pipeline maps them with `default_profile`.
    profiles: list[Profile] | None = None
