"""`influencers.progress`: bars on a terminal only (a pseudo-terminal here), nothing anywhere else."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import termios
import threading

import pytest

from exporter.service import Progress
from influencers import progress


@pytest.fixture
def terminal():
    """The writing end of a 120-column pseudo-terminal as a text stream, and a function that reads
    what it got."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    stream = open(slave, "w", encoding="utf-8", closefd=True)  # noqa: SIM115 - closed below

    def received() -> str:
        stream.flush()
        data = b""
        while select.select([master], [], [], 0.2)[0]:
            data += os.read(master, 65536)
        return data.decode("utf-8")

    try:
        yield stream, received
    finally:
        stream.close()
        os.close(master)


def test_off_a_terminal_a_bar_writes_nothing():
    stream = io.StringIO()
    with progress.bar("filling typed fields", total=10, stream=stream, delay=0) as bar:
        bar.update(3)
        bar.refresh()
        bar.clear()
    assert bar.disable and stream.getvalue() == ""


def test_the_default_stream_is_standard_error_as_it_is_when_the_bar_is_made(capsys):
    with progress.bar("importing accounts", total=2, unit="account", delay=0) as bar:
        bar.update(2)
    assert bar.disable  # pytest's captured stderr is no terminal
    assert capsys.readouterr() == ("", "")


def test_on_a_terminal_a_bar_shows_its_description_count_and_unit_then_clears_itself(terminal):
    stream, received = terminal
    with progress.bar("filling typed fields", total=2000, stream=stream, delay=0) as bar:
        bar.update(1000)
        bar.refresh()
        drawn = received()
        assert not bar.disable
    assert "filling typed fields" in drawn and "1000/2000" in drawn and "50%" in drawn and "row/s" in drawn
    cleared = received()
    assert cleared.endswith("\r") and cleared.strip() == ""  # leave=False: the line is blanked, the cursor back


def test_work_shorter_than_the_delay_leaves_the_terminal_untouched(terminal):
    stream, received = terminal
    with progress.bar("importing accounts", total=3, unit="account", stream=stream) as bar:
        bar.update(3)
        assert not bar.disable
    assert received() == ""


def test_a_total_that_was_too_low_turns_into_a_counter(terminal):
    stream, received = terminal
    with progress.bar("filling typed fields", total=10, stream=stream, delay=0) as bar:
        bar.update(25)
        bar.refresh()
        drawn = received()
    assert "25row" in drawn.rsplit("\r", 1)[-1].replace(" ", "")


def test_a_bar_starts_no_thread(terminal):
    stream, _ = terminal
    before = set(threading.enumerate())
    with progress.bar("exporting rows", total=5, stream=stream, delay=0) as bar:
        bar.update(5)
        assert set(threading.enumerate()) == before


def test_the_exporters_once_bar_counts_batches_and_names_the_task_on_a_terminal(terminal):
    stream, received = terminal
    line = Progress(stream)
    line.expect(5000)
    line.batch(7, "美妆", 2, 2000, 100)
    line.draw()
    drawn = received()
    assert "exporting rows" in drawn and "2000/5000" in drawn and "task 7 美妆, account 2, quota left 100" in drawn
    line.close()
    assert line.bar is None
    cleared = received()
    assert cleared.endswith("\r") and cleared.strip() == ""  # drawn before its delay, cleared all the same


def test_the_exporters_progress_stays_silent_off_a_terminal():
    stream = io.StringIO()
    line = Progress(stream)
    line.expect(5000)
    line.batch(7, "美妆", 2, 2000, 100)
    line.draw()
    line.close()
    assert line.bar is None and stream.getvalue() == "" and line.rows == 2000
