"""The MySQL pipeline's intake: a page item becomes a ready page, bad rows are left out or cut."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_twisted
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from influencers.core.errors import ConnectionLost
from influencers.core.outage import Outage, SharedOutage
from influencers.core.profile import Profile
from influencers.items import InfluencerPage
from influencers.pipelines.mysql import MySQLPipeline


class Stats:
    def __init__(self) -> None:
        self.values: Counter[str] = Counter()

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] += count


@pytest.fixture
def pipeline() -> MySQLPipeline:
    return MySQLPipeline(service=None, stats=Stats(), batch_items=1000, flush_interval=1.0, max_pending=5000,
                         writers=2)


def page(number: int, rows: list[Any], url: str = "http://x/p", task_id: int = 7) -> InfluencerPage:
    now = datetime(2026, 1, 1)
    return InfluencerPage(task_id=task_id, page_number=number, domain="游戏", account_id=1, source_url=url,
                          started_at=now, finished_at=now, rows=rows)


def row(uid: Any, nickname: Any = "小鹿") -> dict[str, Any]:
    return {"uid": uid, "nickname": nickname, "fans": 12}


def test_a_page_is_ready_with_its_rows_in_order(pipeline: MySQLPipeline) -> None:
    item = page(1, [row("a"), row("b")])
    assert pipeline.process_item(item) is item  # later pipelines and feeds still see the page
    (ready,) = pipeline._ready
    assert (ready.page_number, [r[0] for r in ready.rows]) == (1, ["a", "b"])
    assert ready.rows[0] == ("a", "小鹿", "游戏", "http://x/p", {"uid": "a", "nickname": "小鹿", "fans": 12},
                             Profile(fans=12))
    assert pipeline._ready_rows == 2


def test_an_empty_page_is_ready_at_once(pipeline: MySQLPipeline) -> None:
    pipeline.process_item(page(3, []))
    assert [(p.page_number, p.rows) for p in pipeline._ready] == [(3, [])]
    assert pipeline._ready_rows == 1  # an empty page still costs a log row


def test_rows_without_uid_are_left_out_with_one_line_and_counted(pipeline: MySQLPipeline, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="influencers.pipelines.mysql")
    pipeline.process_item(page(1, [row(None), row("   "), {"nickname": "无号"}, "not a row", row("ok"), row(42)]))
    (ready,) = pipeline._ready
    assert [r[0] for r in ready.rows] == ["ok", "42"]  # the page commits; ingested_count will be 2
    assert pipeline.stats.values["pipeline/dropped/missing_uid"] == 4
    (line,) = [r.getMessage() for r in caplog.records]
    assert "task 7 page 1: 4 row(s) without a uid" in line and "无号" in line


def test_values_too_long_for_their_column_are_cut(pipeline: MySQLPipeline) -> None:
    long_name = "超长昵称测试🎉" * 60
    raw = row("u" * 300, nickname=long_name)
    pipeline.process_item(page(1, [raw, row("n", nickname=12345)], url="http://x/" + "p" * 400))
    (uid, nickname, _domain, source_page, kept, _typed), (_, number_name, *_rest) = pipeline._ready[0].rows
    assert (len(uid), len(nickname), len(source_page)) == (255, 255, 255)
    assert nickname == long_name[:255] and kept["uid"] == "u" * 300  # raw_data keeps everything
    assert number_name == "12345"
    assert pipeline.stats.values["pipeline/truncated/nickname"] == 1
    assert pipeline.stats.values["pipeline/truncated/uid"] == 1


def test_other_items_pass_through(pipeline: MySQLPipeline) -> None:
    other = {"something": "else"}
    assert pipeline.process_item(other) is other
    assert pipeline._ready == []


def test_rows_reach_the_sql_only_as_hex_digits() -> None:
    """Nothing of a row's text is spliced into the statement except as hex digits, whatever it
    holds, so no escaping (and no character set or sql_mode) can get it wrong."""
    from influencers.core.profile import default_profile
    from influencers.core.rowvalues import row_values

    hostile = "'; DROP TABLE influencers; --\\ \x00 \u00e9 小美😀 \"\n"
    raw = {"nickname": hostile, "fans": 12, "region": hostile, "tags": [hostile]}
    values = row_values((hostile, hostile, "游戏", None, raw, default_profile(raw), 3))
    text = "_utf8mb4 X'([0-9a-f]+)'"
    match = re.fullmatch(rf"\({text},{text},{text},NULL,{text},3,12,{text},{text},0,NULL,{text},3,0,0,12\)", values)
    assert match, values
    uid, nickname, domain, raw_text, region, tags, _terms = (bytes.fromhex(group) for group in match.groups())
    assert uid.decode() == hostile == nickname.decode() and domain.decode() == "游戏"
    assert region.decode() == hostile.strip()
    assert json.loads(raw_text) == raw and json.loads(tags) == [hostile.strip()]


def test_raw_data_goes_as_compact_utf8_json_even_with_values_json_cannot_hold() -> None:
    from influencers.core.profile import EMPTY
    from influencers.core.rowvalues import raw_json, row_values

    assert raw_json({"fans": 12, "name": "小美😀"}) == '{"fans":12,"name":"小美😀"}'.encode()
    # NaN would fail MySQL's JSON check and stall the batch forever; huge ints, non-string keys
    # and lone surrogates are what orjson refuses.
    assert raw_json({"score": float("nan"), "big": 2**70, 3: [float("inf")], "s": "\ud800x"}) \
        == b'{"score":null,"big":1180591620717411303424,"3":[null],"s":"?x"}'
    assert row_values(("u2", "\ud800x", "游戏", None, {}, EMPTY, 4)).split(",")[1] == f"_utf8mb4 X'{b'?x'.hex()}'"


class DrainingService:
    def __init__(self, draining: set[int]) -> None:
        self._draining = draining

    def draining(self, task_id: int) -> bool:
        return task_id in self._draining


@pytest.mark.parametrize(("draining", "flushes"), [(set(), 0), ({7}, 1)])
def test_the_last_page_of_a_task_is_written_at_once(pipeline: MySQLPipeline, draining: set[int], flushes: int) -> None:
    """The service's flush at "all pages fetched" runs before Scrapy hands the last page to the
    pipeline; without this the task would wait for the next flush interval to complete."""
    calls: list[int] = []
    pipeline.service = DrainingService(draining)
    pipeline.flush_soon = lambda: calls.append(1)
    pipeline.process_item(page(1, [row("a")]))
    assert len(calls) == flushes


class RecordingService:
    """The service's side of `_write_some`: every page is ours and commits."""

    config = None

    def __init__(self) -> None:
        self.committed: list[int] = []
        self.by_task: dict[int, list[int]] = {}

    def draining(self, task_id: int) -> bool:
        return False

    def claim_for(self, task_id: int) -> Any:
        return SimpleNamespace(task_id=task_id)

    def marker_for(self, task_id: int, pages: list[int]) -> int:
        return 0

    def position_for(self, task_id: int, marker: int) -> str | None:
        return None

    def pages_committed(self, task_id: int, pages: list[int]) -> None:
        self.committed.extend(pages)
        self.by_task.setdefault(task_id, []).extend(pages)

    def writes_keeping_up(self, keeping_up: bool) -> None:
        pass


class HeldDatabase:
    """A database thread whose writes finish when the test says so."""

    def __init__(self) -> None:
        self.writes: list[list[int]] = []
        self.pending: list[Deferred] = []

    async def run(self, fn: Any, work: Any, *args: Any) -> Any:
        self.writes.append([page.page_number for batch in work for page in batch.pages])
        self.tasks = [batch.claim.task_id for batch in work]
        done: Deferred = Deferred()
        self.pending.append(done)
        await maybe_deferred_to_future(done)  # the flush loop runs as an asyncio task
        return work, {}

    async def finish(self) -> None:
        self.pending.pop(0).callback(None)
        for _ in range(3):  # the write's task resumes, and starts the next write as a task of its own
            await deferLater(reactor, 0, lambda: None)


@pytest_twisted.ensureDeferred
async def test_pages_that_arrive_during_a_write_wait_for_a_reason_to_be_written() -> None:
    """They used to be written the moment the write before them ended, so a crawl committed in
    batches of a few pages, a transaction each (bench/README.md, crawl)."""
    service = RecordingService()
    pipeline = MySQLPipeline(service=service, stats=Stats(), batch_items=4, flush_interval=1.0, max_pending=100,
                             writers=2)
    pipeline.dbs = [database := HeldDatabase()]
    pipeline.process_item(page(1, [row("a")]))
    pipeline.flush_soon()  # a reason: the flush interval, a task that holds something up, close
    await deferLater(reactor, 0, lambda: None)
    pipeline.process_item(page(2, [row("b")]))
    pipeline.process_item(page(3, [row("c")]))
    await database.finish()
    assert database.writes == [[1]]  # pages 2 and 3 wait: no request, no full batch
    pipeline.process_item(page(4, [row("d")]))
    pipeline.process_item(page(5, [row("e")]))  # four rows ready: a full batch goes at once
    await deferLater(reactor, 0, lambda: None)
    assert database.writes == [[1], [2, 3, 4, 5]]
    pipeline.process_item(page(6, [row("f")]))
    pipeline.flush_soon()  # asked for during a write: written right after it
    await database.finish()
    assert database.writes == [[1], [2, 3, 4, 5], [6]]
    await database.finish()
    await pipeline.flush()
    assert service.committed == [1, 2, 3, 4, 5, 6] and pipeline._ready == []


@pytest_twisted.ensureDeferred
async def test_two_writers_write_other_tasks_at_once_and_never_one_task_twice() -> None:
    """Two tasks' batches are written at once; a task's later pages wait for its batch in flight
    even with a writer free, so its pages commit in order and its marker only moves over
    committed pages."""
    service = RecordingService()
    pipeline = MySQLPipeline(service=service, stats=Stats(), batch_items=2, flush_interval=1.0, max_pending=100,
                             writers=2)
    pipeline.dbs = [first := HeldDatabase(), second := HeldDatabase()]
    for number in (1, 2):
        pipeline.process_item(page(number, [row(f"a{number}")], task_id=7))
    for number in (1, 2):
        pipeline.process_item(page(number, [row(f"b{number}")], task_id=8))
    for _ in range(3):
        await deferLater(reactor, 0, lambda: None)
    assert (first.writes, first.tasks, second.writes, second.tasks) == ([[1, 2]], [7], [[1, 2]], [8])
    for number in (3, 4):
        pipeline.process_item(page(number, [row(f"a{number}")], task_id=7))
    await second.finish()  # a writer is free, but task 7's pages 1-2 are still being written
    assert (first.writes, second.writes) == ([[1, 2]], [[1, 2]]) and len(pipeline._ready) == 2
    await first.finish()
    assert first.writes == [[1, 2], [3, 4]] and first.tasks == [7]  # taken up by the writer that freed task 7
    await first.finish()
    await pipeline.flush()
    assert service.by_task == {7: [1, 2, 3, 4], 8: [1, 2]} and pipeline._ready == []


@pytest_twisted.ensureDeferred
async def test_a_second_writer_starts_only_when_a_full_batch_waits() -> None:
    """While one write keeps up, another task's flushed pages wait for it rather than going as a
    small transaction of their own on the second writer."""
    service = RecordingService()
    pipeline = MySQLPipeline(service=service, stats=Stats(), batch_items=2, flush_interval=1.0, max_pending=100,
                             writers=2)
    pipeline.dbs = [first := HeldDatabase(), second := HeldDatabase()]
    for number in (1, 2):
        pipeline.process_item(page(number, [row(f"a{number}")], task_id=7))
    pipeline.process_item(page(1, [row("b1")], task_id=8))
    pipeline.flush_soon()  # e.g. task 8 is draining
    for _ in range(3):
        await deferLater(reactor, 0, lambda: None)
    assert (first.writes, second.writes) == ([[1, 2]], [])
    await first.finish()
    assert first.writes == [[1, 2], [1]] and first.tasks == [8]
    await first.finish()
    await pipeline.flush()
    assert service.by_task == {7: [1, 2], 8: [1]}


class UnreachableDatabase:
    """A database thread whose server is away until the test brings it back; its outage spaces
    the tries as the crawl's `SharedOutage` does."""

    def __init__(self) -> None:
        self.down = True
        self.tries = 0
        self.outage = SharedOutage(Outage("MySQL", logging.getLogger("test.pipeline"), first=0.2, cap=0.2))

    async def run(self, fn: Any, work: Any, *args: Any) -> Any:
        self.tries += 1
        if self.down:
            error = ConnectionLost("lost the connection to MySQL (is the server running?)")
            self.outage.failed(error)
            raise error
        self.outage.recovered()
        return work, {}


@pytest_twisted.ensureDeferred
async def test_an_unreachable_database_is_tried_again_after_its_back_off_not_in_a_loop(caplog) -> None:
    """A failed batch used to be tried again at every flush request and item, one ERROR line each:
    dozens a second while MySQL restarted. Now its pages wait for the outage's next try, quietly,
    and then commit in order."""
    caplog.set_level(logging.INFO, logger="influencers.pipelines.mysql")
    service = RecordingService()
    pipeline = MySQLPipeline(service=service, stats=Stats(), batch_items=2, flush_interval=1.0, max_pending=5,
                             writers=2)
    pipeline.dbs = [database := UnreachableDatabase()]
    pipeline.process_item(page(1, [row("a")]))
    pipeline.process_item(page(2, [row("b")]))  # a full batch: written at once, and it fails
    await deferLater(reactor, 0.01, lambda: None)
    assert database.tries == 1
    for number in (3, 4):  # more pages and flush requests within the back-off
        pipeline.process_item(page(number, [row(str(number))]))
        pipeline.flush_soon()
    held = Deferred.fromFuture(asyncio.ensure_future(pipeline.process_item(page(5, [row("e")]))))
    # (max_pending rows wait: the spider is held back)
    await deferLater(reactor, 0.1, lambda: None)
    assert database.tries == 1 and [p.page_number for p in pipeline._ready] == [1, 2, 3, 4, 5]
    await deferLater(reactor, 0.2, lambda: None)  # the next try is due: made by itself, fails again
    assert database.tries == 2
    database.down = False
    await held  # the retry commits; the spider goes on
    await Deferred.fromFuture(asyncio.ensure_future(pipeline.flush()))
    assert service.committed == [1, 2, 3, 4, 5] and pipeline._ready == []
    assert pipeline.stats.values["pipeline/batch_retries"] == 2 and not pipeline.stats.values["pipeline/batch_errors"]
    assert [r.getMessage() for r in caplog.records if r.name == "influencers.pipelines.mysql"] == []
