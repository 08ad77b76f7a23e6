"""Export file formats, path policy and atomic publish (no database)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from exporter.errors import ExportPathError
from exporter.writers import (
    COLUMNS,
    batch_path,
    final_of_temp,
    iter_temp_files,
    neutralise,
    publish,
    safe_domain,
    temp_path,
    write_rows,
)

REPO = Path(__file__).resolve().parents[2]

HOSTILE = [
    "=HYPERLINK(\"http://evil\",\"x\")",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "line1\nline2",
    "cr\r\nlf",
    'say "hi", then, leave',
    "美妆达人😀👩‍👩‍👧",
    "zero\u200bwidth\u200d\ufeffjoin",
    " leading and trailing ",
    "'already quoted",
    "",
]


def hostile_rows() -> list[dict]:
    rows = []
    for i, text in enumerate(HOSTILE, start=1):
        rows.append({
            "id": i,
            "uid": f"uid-{i}" if i % 2 else text or "x",
            "nickname": text,
            "domain": "美妆",
            "source_page": text,
            "ingested_at": dt.datetime(2024, 5, 1, 12, 0, i),
            "raw_data": json.dumps({"bio": text, "fans": -i}, ensure_ascii=False),
        })
    return rows


@pytest.mark.parametrize("text", ["=1", "+1", "-1", "@x", "\tx", "\rx"])
def test_formula_prefixes_are_neutralised(text):
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("text", ["美妆", "a=b", "", "1-2", "'=x"])
def test_other_text_is_left_alone(text):
    assert neutralise(text) == text


@pytest.mark.parametrize("text", [" =x", "\n=x"])
def test_formula_behind_white_space_is_neutralised(text):  # issue 18: "trim spaces" on import
    assert neutralise(text) != text and neutralise(text).replace("'", "") == text


def _expected_sheet_text(value):
    return neutralise(value) if isinstance(value, str) else value


def test_csv_has_bom_and_round_trips_hostile_strings():
    rows = hostile_rows()
    buf = io.BytesIO()
    assert write_rows("csv", buf, rows) == len(rows)
    data = buf.getvalue()
    assert data.startswith(b"\xef\xbb\xbf")
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    header, *body = list(reader)
    assert tuple(header) == COLUMNS
    assert len(body) == len(rows)
    for row, cells in zip(rows, body, strict=True):
        got = dict(zip(COLUMNS, cells, strict=True))
        assert got["nickname"] == _expected_sheet_text(row["nickname"])
        assert got["source_page"] == _expected_sheet_text(row["source_page"])
        assert got["uid"] == _expected_sheet_text(row["uid"])
        assert json.loads(got["raw_data"]) == json.loads(row["raw_data"])
        assert got["id"] == str(row["id"])
        for value in cells:  # nothing a spreadsheet would evaluate
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_xlsx_round_trips_hostile_strings(tmp_path):  # text kept exactly, as typed strings (issue 18)
    rows = hostile_rows() + [{"id": 99, "uid": "ctl", "nickname": "bell\x07nul\x00", "raw_data": None}]
    path = tmp_path / "x.xlsx"
    with open(path, "wb") as fh:
        write_rows("xlsx", fh, rows)
    book = load_workbook(path, read_only=True)
    sheet = book.worksheets[0]
    header, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
    typed = [[cell.data_type for cell in r] for r in sheet.iter_rows(min_row=2)]
    assert tuple(header) == COLUMNS
    assert len(body) == len(rows)
    for row, cells, types in zip(rows[:-1], body[:-1], typed[:-1], strict=True):
        got = dict(zip(COLUMNS, cells, strict=True))
        assert got["nickname"] == (row["nickname"] or None)
        assert got["source_page"] == (row["source_page"] or None)
        assert got["id"] == row["id"]
        assert got["ingested_at"] == row["ingested_at"]
        assert json.loads(got["raw_data"]) == json.loads(row["raw_data"])
        for value, data_type in zip(cells, types, strict=False):
            if isinstance(value, str):  # a string cell is text, never a formula, whatever it starts with
                assert data_type == "s", (value, data_type)
    # XML cannot carry control characters: they become U+FFFD instead of failing the export
    last = dict(zip(COLUMNS, body[-1], strict=False))  # trailing empty cells are not stored
    assert last["nickname"] == "bell\ufffdnul\ufffd"


def test_jsonl_round_trips_exactly():
    rows = hostile_rows()
    buf = io.BytesIO()
    write_rows("jsonl", buf, rows)
    lines = buf.getvalue().decode("utf-8").split("\n")
    assert lines[-1] == ""
    assert len(lines) - 1 == len(rows)
    for row, line in zip(rows, lines[:-1], strict=True):
        got = json.loads(line)
        assert got["nickname"] == row["nickname"]  # JSON is not a spreadsheet: kept verbatim
        assert got["raw_data"] == json.loads(row["raw_data"])
        assert got["ingested_at"] == row["ingested_at"].isoformat()


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown export format"):
        write_rows("pdf", io.BytesIO(), [])


# --------------------------------------------------------------------------- paths

HOSTILE_DOMAINS = ["../../etc", "a/b", "\x00", "..", ".", "", "a\\b", "/abs", "~root", "x" * 500,
                   "美妆/../../..", "C:\\Windows", ".hidden", "emoji😀", "tab\there"]


def test_plain_domain_names_stay_readable():
    assert safe_domain("美妆") == "美妆"
    assert safe_domain("游戏") == "游戏"
    assert safe_domain("food-2024_v1") == "food-2024_v1"


@pytest.mark.parametrize("domain", HOSTILE_DOMAINS)
def test_hostile_domain_cannot_leave_the_export_dir(tmp_path, domain):
    root = tmp_path / "exports"
    root.mkdir()
    name = safe_domain(domain)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".") and name not in (".", "..")
    assert len(name.encode()) < 100
    path = batch_path(root, domain, dt.date(2024, 5, 1), task_id=1, seq=1, account_id=2,
                      first_id=1, last_id=9, fmt="csv")
    assert path.parent.parent.parent == root
    assert os.path.commonpath([root, path.resolve()]) == str(root)
    assert publish(path, "csv", [{"id": 1, "uid": "u"}], export_dir=root) == 1
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [path]


def test_distinct_domains_get_distinct_directories():
    names = {safe_domain(d) for d in HOSTILE_DOMAINS + ["a_b", "a/b", "a\\b", "a:b"]}
    assert len(names) == len(set(HOSTILE_DOMAINS + ["a_b", "a/b", "a\\b", "a:b"]))


def test_symlinked_domain_directory_is_refused(tmp_path):
    root, outside = tmp_path / "exports", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "美妆").symlink_to(outside)
    with pytest.raises(ExportPathError):
        batch_path(root, "美妆", dt.date(2024, 5, 1), task_id=1, seq=1, account_id=1,
                   first_id=1, last_id=2, fmt="csv")


def test_file_name_tells_task_order_account_and_range(tmp_path):
    path = batch_path(tmp_path, "美妆", dt.date(2024, 5, 1), task_id=7, seq=2, account_id=3,
                      first_id=4001, last_id=8000, fmt="xlsx")
    assert path == tmp_path / "美妆" / "2024-05-01" / "task7_part0002_acct3_id4001-8000.xlsx"


# --------------------------------------------------------------------------- publish


def test_publish_is_atomic_and_leaves_no_temp(tmp_path):
    final = tmp_path / "d" / "2024-05-01" / "f.csv"
    assert publish(final, "csv", hostile_rows(), export_dir=tmp_path) == len(HOSTILE)
    assert final.read_bytes().startswith(b"\xef\xbb\xbf")
    assert list(iter_temp_files(tmp_path)) == []


def test_failed_write_leaves_old_file_untouched_and_no_temp(tmp_path):
    final = tmp_path / "d" / "2024-05-01" / "f.jsonl"
    publish(final, "jsonl", [{"id": 1, "uid": "old"}], export_dir=tmp_path)
    before = final.read_bytes()

    def exploding():
        yield {"id": 2, "uid": "new"}
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        publish(final, "jsonl", exploding(), export_dir=tmp_path)
    assert final.read_bytes() == before
    assert list(iter_temp_files(tmp_path)) == []


def test_temp_names_are_hidden_unique_and_map_back(tmp_path):
    final = tmp_path / "d" / "day" / "task1_part0001_acct1_id1-2.csv"
    a, b = temp_path(final), temp_path(final)
    assert a != b and a.parent == final.parent and a.name.startswith(".")
    assert final_of_temp(a) == final
    assert final_of_temp(final) is None
    final.parent.mkdir(parents=True)
    a.write_bytes(b"partial")
    assert list(iter_temp_files(tmp_path)) == [a]


def test_republishing_csv_gives_identical_bytes(tmp_path):
    final = tmp_path / "d" / "day" / "f.csv"
    publish(final, "csv", hostile_rows(), export_dir=tmp_path)
    first = final.read_bytes()
    publish(final, "csv", hostile_rows(), export_dir=tmp_path)
    assert final.read_bytes() == first


_MEMORY_PROBE = """
import datetime as dt, resource, sys
from exporter.writers import write_rows
n = int(sys.argv[1])
rows = ({"id": i, "uid": f"u{i}", "nickname": "美妆达人😀" * 3, "domain": "美妆",
         "source_page": "http://x/p?page=1", "ingested_at": dt.datetime(2024, 1, 1),
         "raw_data": '{"fans": 123, "region": "上海"}'} for i in range(n))
with open(sys.argv[2], "wb") as fh:
    write_rows("xlsx", fh, rows)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_xlsx_memory_stays_flat(tmp_path):
    def peak_kb(n):
        out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(n), str(tmp_path / f"{n}.xlsx")],
                             cwd=REPO, capture_output=True, text=True, check=True)
        return int(out.stdout)

    small, large = peak_kb(1_000), peak_kb(20_000)
    # an in-memory workbook grows by ~100 MB for 20k rows; write-only mode stays put
    assert large - small < 15 * 1024, (small, large)


_SLOW_WRITER = """
import sys, time
from pathlib import Path
from exporter.writers import publish

def rows():
    for i in range(100_000):
        if i == 50:
            print("writing", flush=True)
        if i >= 50:
            time.sleep(0.01)
        yield {"id": i, "uid": f"u{i}"}

publish(Path(sys.argv[1]), "csv", rows(), export_dir=Path(sys.argv[2]))
"""


def test_sigkill_mid_write_never_leaves_a_partial_final_file(tmp_path):
    final = tmp_path / "d" / "day" / "f.csv"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(final), str(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait(timeout=10)
    assert not final.exists()
    assert len(list(iter_temp_files(tmp_path))) == 1  # what recovery removes
