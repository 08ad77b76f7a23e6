"""The export service's command line and terminal progress line (no database)."""
from __future__ import annotations

import io

import pytest

from exporter.service import DEFAULT_BATCH_SIZE, Progress, build_parser


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_run_defaults():
    args = build_parser().parse_args(["run"])
    assert (args.once, args.batch_size, args.worker_name) == (False, DEFAULT_BATCH_SIZE, "exporter")


@pytest.mark.parametrize("argv", [["run", "--batch-size", "0"], ["run", "--poll-interval", "-1"], []])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2


def test_progress_line_on_a_terminal_shows_rows_rate_account_and_quota():
    stream = FakeTty()
    progress = Progress(stream)
    progress.batch(7, "美妆", 2, 4000, 0)
    line = stream.getvalue().rsplit("\r", 1)[-1]
    assert "task 7 美妆" in line and "4000 rows" in line and "rows/s" in line
    assert "account 2" in line and "quota left 0" in line


def test_progress_is_silent_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream)
    progress.batch(7, "美妆", 2, 4000, 0)
    progress.clear()
    assert stream.getvalue() == ""
    assert progress.rows == 4000
