"""The CLI's output of rows: terminal tables that keep Chinese and emoji aligned (display width,
not code points), CSV and JSON.

Nicknames, usernames and bios are chosen by others, so both text formats meant for people are
made harmless here: a table escapes control characters (an ESC or OSC sequence would drive the
operator's terminal: retitle it, plant a hidden link, rewrite what is shown) and bidi controls
(text that reads in another order than it is), and CSV goes through the project's one
spreadsheet neutralisation (`influencers.core.spreadsheet`). JSON escapes what it must itself.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# tabulate measures cells with wcwidth when this is on, so 美妆 counts as four columns.
import tabulate as _tabulate_module
from tabulate import tabulate

from influencers.core.spreadsheet import csv_value

_tabulate_module.WIDE_CHARS_MODE = True

# C0 controls but the line break (tabulate lays a multi-line cell out: the export report's paths),
# DEL, C1 controls (U+009B is a CSI on its own), bidi marks, embeddings, overrides and isolates,
# line and paragraph separators.
_TERMINAL_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every character a terminal would act on written out (``\\x1b``, ``\\u202e``)."""
    return _TERMINAL_UNSAFE.sub(_escape, text)


#: What `json.dumps(ensure_ascii=False)` leaves raw of that: DEL, C1 controls, bidi and separators.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_text(data: Any) -> str:
    """``data`` as indented JSON that keeps Chinese readable but writes every character a terminal
    would act on as a ``\\uXXXX`` escape (still the same JSON for a parser)."""
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _table_cell(value: Any) -> Any:
    value = _plain(value)
    return visible(value) if isinstance(value, str) else value


def render(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], fmt: str = "table") -> str:
    """`columns` is (key, header) pairs; fmt is table, csv or json."""
    keys = [key for key, _ in columns]
    if fmt == "json":
        return json_text([{key: _plain(row.get(key)) for key in keys} for row in rows])
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(keys)
        writer.writerows([[csv_value(_plain(row.get(key))) for key in keys] for row in rows])
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return "(none)"
    body = [[_table_cell(row.get(key)) for key in keys] for row in rows]
    return tabulate(body, headers=[header for _, header in columns], tablefmt="simple", disable_numparse=True)
