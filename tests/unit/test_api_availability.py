"""The API's view of a MySQL outage, with a fake clock: quick refusals during the back-off, one
log line each way, and Retry-After saying when the next attempt is due."""

from __future__ import annotations

import logging

import pytest

from influencers.api.availability import DatabaseBackingOff, DatabaseGate
from influencers.core.errors import ConnectionLost, DatabaseUnavailable

LOG = logging.getLogger("test.api.availability")


@pytest.fixture
def clock():
    return [500.0]


@pytest.fixture
def gate(clock):
    return DatabaseGate(LOG, cap=4.0, clock=lambda: clock[0])


def test_requests_go_through_while_mysql_answers(gate):
    gate.check()
    gate.reached()
    gate.check()


def test_after_a_failure_requests_are_refused_at_once_until_the_back_off_ends(gate, clock):
    gate.failed(DatabaseUnavailable("db", 3306, "connection refused"))
    with pytest.raises(DatabaseBackingOff) as refused:
        gate.check()
    assert str(refused.value) == "cannot reach MySQL at db:3306: connection refused (next attempt in 0.5s)"
    assert isinstance(refused.value, DatabaseUnavailable)  # answered like the failure itself: 503
    assert gate.retry_after() == 1
    clock[0] += 0.5
    gate.check()  # the next attempt may go

    for expected in (1.0, 2.0, 4.0, 4.0):  # capped, doubling
        gate.failed(ConnectionLost("lost the connection to MySQL (is the server running?)", 2013))
        assert gate.retry_after() == expected
        clock[0] += expected - 0.1
        with pytest.raises(DatabaseBackingOff):
            gate.check()
        clock[0] += 0.1
        gate.check()


def test_refusals_do_not_lengthen_the_back_off(gate, clock):
    gate.failed(DatabaseUnavailable("db", 3306, "connection refused"))
    for _ in range(5):
        with pytest.raises(DatabaseBackingOff) as refused:
            gate.check()
        gate.failed(refused.value)
    clock[0] += 0.5
    gate.check()


def test_one_line_when_the_outage_starts_and_one_when_a_request_reaches_mysql_again(gate, clock, caplog):
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    for _ in range(3):
        gate.failed(DatabaseUnavailable("db", 3306, "connection refused"))
    clock[0] += 7.5
    gate.reached()
    gate.reached()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [
        ("WARNING", "MySQL unreachable (cannot reach MySQL at db:3306: connection refused); retrying with back-off up to 4s"),
        ("INFO", "MySQL reachable again after 7.5s"),
    ]
    gate.check()
