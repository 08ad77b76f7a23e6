"""The crawl progress line: on for a terminal, off otherwise, numbers from the stats."""

from __future__ import annotations

import io

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from influencers.extensions.progress import CrawlProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_when_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with pytest.raises(NotConfigured):
        CrawlProgress.from_crawler(get_crawler(settings_dict={"PROGRESS_ENABLED": None}))


def test_line_reads_the_pipeline_stats(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    crawler = get_crawler(settings_dict={"PROGRESS_ENABLED": None})
    crawler.stats.open_spider()
    progress = CrawlProgress.from_crawler(crawler)
    for name, value in {"pipeline/pages": 12, "pipeline/items": 240, "ingest/pages_fetched": 13,
                        "ingest/tasks_completed": 1}.items():
        crawler.stats.set_value(name, value)
    progress.show()
    shown = terminal.getvalue()
    assert "12 pages committed (13 fetched), 240 influencers" in shown and "1 tasks done" in shown
    assert shown.startswith("\r")


def test_forced_off_even_on_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", Terminal())
    with pytest.raises(NotConfigured):
        CrawlProgress.from_crawler(get_crawler(settings_dict={"PROGRESS_ENABLED": False}))
