"""The MySQL pipeline's buffering: pages close on their marker, bad rows are dropped or cut."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from scrapy.exceptions import DropItem

from influencers.items import InfluencerItem, PageDone
from influencers.pipelines.mysql import MySQLPipeline


class Stats:
    def __init__(self) -> None:
        self.values: Counter[str] = Counter()

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] += count


@pytest.fixture
def pipeline() -> MySQLPipeline:
    return MySQLPipeline(service=None, stats=Stats(), batch_items=1000, flush_interval=1.0, max_pending=5000)


def row(uid: str | None, page: int = 1, nickname: str = "小鹿") -> InfluencerItem:
    return InfluencerItem(uid=uid, nickname=nickname, domain="游戏", source_page="http://x/p", raw_data={"uid": uid},
                          task_id=7, page_number=page)


def done(page: int, rows: int) -> PageDone:
    now = datetime(2026, 1, 1)
    return PageDone(task_id=7, page_number=page, domain="游戏", account_id=1, source_url="http://x/p",
                    row_count=rows, started_at=now, finished_at=now)


def test_a_page_is_ready_when_its_marker_and_all_its_rows_are_in(pipeline: MySQLPipeline) -> None:
    pipeline.process_item(row("a"))
    pipeline.process_item(done(1, 2))
    assert pipeline._ready == []  # one row still missing
    pipeline.process_item(row("b"))
    (ready,) = pipeline._ready
    assert (ready.page_number, [r[0] for r in ready.rows]) == (1, ["a", "b"])


def test_rows_after_the_marker_still_close_the_page(pipeline: MySQLPipeline) -> None:
    pipeline.process_item(done(2, 1))
    pipeline.process_item(row("c", page=2))
    assert [p.page_number for p in pipeline._ready] == [2]


def test_an_empty_page_is_ready_at_once(pipeline: MySQLPipeline) -> None:
    pipeline.process_item(done(3, 0))
    assert [(p.page_number, p.rows) for p in pipeline._ready] == [(3, [])]


def test_a_row_without_uid_is_dropped_with_its_reason_and_counted(pipeline: MySQLPipeline) -> None:
    with pytest.raises(DropItem, match="missing uid"):
        pipeline.process_item(row(None))
    with pytest.raises(DropItem):
        pipeline.process_item(row("   "))
    pipeline.process_item(row("ok"))
    pipeline.process_item(done(1, 3))
    (ready,) = pipeline._ready
    assert [r[0] for r in ready.rows] == ["ok"]  # the page closes; ingested_count will be 1
    assert pipeline.stats.values["pipeline/dropped/missing_uid"] == 2


def test_values_too_long_for_their_column_are_cut(pipeline: MySQLPipeline) -> None:
    long_name = "超长昵称测试🎉" * 60
    item = row("u" * 300, nickname=long_name)
    item.source_page = "http://x/" + "p" * 400
    pipeline.process_item(item)
    pipeline.process_item(done(1, 1))
    uid, nickname, _domain, source_page, raw = pipeline._ready[0].rows[0]
    assert (len(uid), len(nickname), len(source_page)) == (255, 255, 255)
    assert nickname == long_name[:255] and raw == {"uid": "u" * 300}  # raw_data keeps everything
    assert pipeline.stats.values["pipeline/truncated/nickname"] == 1


def test_other_items_pass_through(pipeline: MySQLPipeline) -> None:
    other = {"something": "else"}
    assert pipeline.process_item(other) is other
