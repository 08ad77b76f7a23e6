"""An outage is two log lines (gone, back after how long) and a capped, doubling back-off."""

from __future__ import annotations

import logging

from influencers.core.outage import Outage


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
