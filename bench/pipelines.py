"""Item pipelines the benchmarks swap in for the project's (never used by the project itself)."""

from __future__ import annotations

from typing import Any

from influencers.extensions.ingestion import IngestionService
from influencers.items import InfluencerPage


class AckPipeline:
    """Persistence off: stores nothing and tells the ingestion service a page is committed the
    moment its ``InfluencerPage`` item arrives, so tasks still run to their end. What the crawl costs
    without the database (``-s ITEM_PIPELINES='{"bench.pipelines.AckPipeline": 300}'``)."""

    def __init__(self, service: IngestionService) -> None:
        self.service = service

    @classmethod
    def from_crawler(cls, crawler: Any) -> AckPipeline:
        return cls(IngestionService.of(crawler))

    def process_item(self, item: Any) -> Any:
        if isinstance(item, InfluencerPage):
            self.service.pages_committed(item.task_id, [item.page_number])
        return item
