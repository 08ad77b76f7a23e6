"""The dispatcher and a MySQL outage, with fakes: one line each way, capped back-off, records
left by the outage for jobs never scheduled withdrawn through their job id."""

from __future__ import annotations

import logging
import threading

import pymysql
import pytest

from influencers.core.errors import ConnectionLost
from influencers.dispatch import (
    OUTAGE_BACKOFF_CAP,
    Dispatch,
    Dispatcher,
    Node,
    NodeError,
    NodeState,
)

NODE = Node("http://n1", 2)


class Database:
    """Whether MySQL is up; the connection and ledger below fail while it is not."""

    def __init__(self) -> None:
        self.up = True

    def check(self) -> None:
        if not self.up:
            raise ConnectionLost("lost the connection to MySQL (is the server running?)", 2013)


class FakeConnection:
    def __init__(self, database: Database) -> None:
        self.database = database

    def ping(self, reconnect: bool = False) -> None:
        self.database.check()

    def connect(self) -> None:
        if not self.database.up:
            raise pymysql.err.OperationalError(2003, "Can't connect to MySQL server")


class FakeLedger:
    """Subtasks 1.. claimable; `records` is the dispatch record of each subtask (task -> job id)."""

    def __init__(self, database: Database, tasks: int = 1) -> None:
        self.database = database
        self.conn = FakeConnection(database)
        self.claimable = list(range(1, tasks + 1))
        self.records: dict[int, str] = {}
        self.withdrawn: list[tuple[int, str, str]] = []
        self.break_after_reserve = False  # the commit goes through, the answer is lost

    def outstanding(self) -> list[Dispatch]:
        self.database.check()
        return [Dispatch(task, job, NODE.url, 1.0) for task, job in self.records.items()]

    def idle_accounts(self) -> int:
        self.database.check()
        return 5

    def candidates(self, limit: int) -> list[int]:
        self.database.check()
        return [task for task in self.claimable if task not in self.records][:limit]

    def reserve(self, task_id: int, node: Node, job_id: str) -> Dispatch | None:
        self.database.check()
        self.records[task_id] = job_id
        if self.break_after_reserve:
            self.database.up = False
            self.database.check()
        return Dispatch(task_id, job_id, node.url, 0.0)

    def node_down(self, node: Node, problem: str) -> None:
        self.database.check()

    def node_up(self, node: Node) -> None:
        self.database.check()

    def withdraw(self, dispatch: Dispatch, reason: str) -> bool:
        self.database.check()
        if self.records.get(dispatch.task_id) != dispatch.job_id:  # the fence: this record only
            return False
        del self.records[dispatch.task_id]
        self.withdrawn.append((dispatch.task_id, dispatch.job_id, reason))
        return True


class FakeScheduler:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.recoveries = 0

    def recover(self) -> int:
        self.database.check()
        self.recoveries += 1
        return 0


class FakeClient:
    def __init__(self) -> None:
        self.scheduled: list[str] = []
        self.refuse = False
        self.before_refusing = lambda: None

    def status(self, node: Node, project: str) -> NodeState:
        return NodeState(node, running=0, pending=0, jobs={job: "pending" for job in self.scheduled})

    def schedule(self, node: Node, project: str, job_id: str, arguments: dict[str, str]) -> None:
        if self.refuse:
            self.before_refusing()
            raise NodeError("schedule.json: HTTP 503")
        self.scheduled.append(job_id)


class Waits(threading.Event):
    """A stop event that does not sleep: it records each wait and runs `between(n)` after the n-th."""

    def __init__(self, between, stop_after: int) -> None:
        super().__init__()
        self.delays: list[float] = []
        self.between = between
        self.stop_after = stop_after

    def wait(self, timeout: float | None = None) -> bool:
        self.delays.append(timeout)
        self.between(len(self.delays))
        return len(self.delays) >= self.stop_after


@pytest.fixture
def setup():
    database = Database()
    now = [1000.0]
    ledger, scheduler, client = FakeLedger(database), FakeScheduler(database), FakeClient()
    dispatcher = Dispatcher(ledger, scheduler, client, [NODE], clock=lambda: now[0])
    return database, now, ledger, scheduler, client, dispatcher


def test_an_outage_is_one_line_each_way_with_capped_back_off_then_the_rounds_go_on(setup, caplog):
    database, now, ledger, scheduler, client, dispatcher = setup
    ledger.claimable = []
    database.up = False

    def between(waits: int) -> None:
        now[0] += 1
        database.up = waits >= 8  # down for eight tries

    caplog.set_level(logging.DEBUG, logger="influencers.dispatch")
    stop = Waits(between, stop_after=10)
    assert dispatcher.run(0.5, stop) == 0

    assert stop.delays[:8] == [0.5, 1.0, 2.0, 4.0, 8.0, OUTAGE_BACKOFF_CAP, OUTAGE_BACKOFF_CAP, OUTAGE_BACKOFF_CAP]
    assert stop.delays[8:] == [0.5, 0.5]  # rounds every interval again
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert [level for level, _ in lines] == ["WARNING", "INFO"], lines
    assert lines[0][1].startswith("MySQL unreachable (lost the connection to MySQL")
    assert lines[1][1] == "MySQL reachable again after 8.0s"


def test_once_waits_out_an_outage_and_then_runs_its_round(setup):
    database, now, ledger, scheduler, client, dispatcher = setup
    database.up = False
    stop = Waits(lambda waits: setattr(database, "up", waits >= 3), stop_after=100)
    assert dispatcher.run(0.5, stop, once=True) == 0
    assert len(stop.delays) == 3
    assert client.scheduled == [ledger.records[1]]


def test_a_record_whose_commit_lost_its_answer_is_withdrawn_through_its_job_id(setup):
    database, now, ledger, scheduler, client, dispatcher = setup
    ledger.break_after_reserve = True
    with pytest.raises(ConnectionLost):
        dispatcher.run_round()
    lost_job = ledger.records[1]
    assert client.scheduled == []

    database.up, ledger.break_after_reserve = True, False
    result = dispatcher.run_round()
    assert ledger.withdrawn == [(1, lost_job, "the connection to MySQL broke while the handing-over was recorded;"
                                               " the job was never scheduled")]
    assert result.withdrawn == [(1, ledger.withdrawn[0][2])]
    ((task, job, _),) = result.dispatched
    assert (task, ledger.records[1], client.scheduled) == (1, job, [job])  # sent again, to one job
    assert dispatcher.run_round().withdrawn == []  # withdrawn once, not every round


def test_a_failed_schedule_the_outage_kept_from_being_withdrawn_is_withdrawn_once_mysql_is_back(setup):
    database, now, ledger, scheduler, client, dispatcher = setup
    client.refuse = True
    client.before_refusing = lambda: setattr(database, "up", False)  # MySQL goes during schedule.json
    with pytest.raises(ConnectionLost):
        dispatcher.run_round()
    unsent = ledger.records[1]

    database.up, client.refuse = True, False
    result = dispatcher.run_round()
    assert ledger.withdrawn == [(1, unsent, f"schedule.json on {NODE.url} failed: schedule.json: HTTP 503")]
    assert [task for task, _, _ in result.dispatched] == [1]
    assert ledger.records[1] != unsent and client.scheduled == [ledger.records[1]]


def test_a_record_a_job_has_since_consumed_is_left_alone(setup):
    database, now, ledger, scheduler, client, dispatcher = setup
    ledger.break_after_reserve = True
    with pytest.raises(ConnectionLost):
        dispatcher.run_round()
    database.up, ledger.break_after_reserve = True, False
    ledger.records[1] = "task1-claimed-by-another"  # e.g. another dispatcher's job claimed the subtask
    ledger.claimable = []
    assert dispatcher.run_round().withdrawn == []
    assert ledger.records == {1: "task1-claimed-by-another"}


