"""An outage is two log lines (gone, back after how long) and a capped, doubling back-off."""

from __future__ import annotations

import logging

from influencers.core.outage import Outage, SharedOutage


def test_one_line_each_way_and_a_capped_doubling_back_off(caplog):
    now = [100.0]
    outage = Outage("MySQL", logging.getLogger("test.outage"), first=0.5, cap=4.0, clock=lambda: now[0])
    caplog.set_level(logging.DEBUG, logger="test.outage")

    delays = [outage.failed("connection refused") for _ in range(6)]
    now[0] = 112.5
    outage.recovered()
    outage.recovered()  # nothing more to say

    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [("WARNING", "MySQL unreachable (connection refused); retrying with back-off up to 4s"),
                     ("INFO", "MySQL reachable again after 12.5s")]
    assert not outage.ongoing and outage.failed("again") == 0.5  # a new outage starts from the first delay


def test_a_shared_outage_spaces_the_tries_of_every_caller_and_is_told_once(caplog):
    now = [0.0]
    shared = SharedOutage(Outage("MySQL", logging.getLogger("test.shared"), first=1.0, cap=4.0, clock=lambda: now[0]))
    caplog.set_level(logging.INFO, logger="test.shared")

    assert shared.wait_left() == 0.0  # no outage: every call may try
    assert shared.failed("refused") == 1.0  # a pipeline thread finds the server gone
    now[0] = 0.4
    assert shared.wait_left() == 0.6  # the claim thread fails fast instead of trying too
    now[0] = 1.0
    assert shared.wait_left() == 0.0
    assert shared.failed("refused") == 2.0  # the try was made and failed: the next is further out
    now[0] = 2.5
    assert shared.wait_left() == 0.5
    now[0] = 3.0
    shared.recovered()  # any thread's call reached the server
    assert shared.wait_left() == 0.0 and not shared.ongoing
    assert [r.getMessage() for r in caplog.records] == [
        "MySQL unreachable (refused); retrying with back-off up to 4s", "MySQL reachable again after 3.0s"]
