"""The export service's command line and terminal progress line (no database)."""
from __future__ import annotations

import io

import pytest

from exporter import service as service_module
from exporter.service import DEFAULT_BATCH_SIZE, ExporterSettings, ExportService, Progress, build_parser
from influencers.core.config import Config
from influencers.core.errors import TransactionConflict


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


def test_a_mysql_error_that_outlasts_its_retries_is_one_line_and_the_service_goes_on(tmp_path, monkeypatch, caplog):
    """A reserve whose lock waits outlast every retry raised out of `run` (exit 1); now the task is
    given back at the next turn and the service tries again after a pause."""
    monkeypatch.setattr(service_module, "ERROR_BACKOFF_SECONDS", 0.01)
    config = Config.from_env({"INFLUENCERS_EXPORT_DIR": str(tmp_path / "exports")})
    service = ExportService(config, ExporterSettings(once=True), progress=Progress(io.StringIO()))
    ticks = iter([TransactionConflict("MySQL error 1205: Lock wait timeout exceeded", 1205), False])

    def tick() -> bool:
        outcome = next(ticks)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(service, "startup_recovery", lambda: None)
    monkeypatch.setattr(service, "tick", tick)
    monkeypatch.setattr(service, "work_left", lambda: False)
    assert service.run() == 0
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["MySQL error: MySQL error 1205: Lock wait timeout exceeded; trying again in 0s"]
