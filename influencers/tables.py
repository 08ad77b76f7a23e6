"""Terminal tables that keep Chinese and emoji aligned (display width, not code points)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# tabulate measures cells with wcwidth when this is on, so 美妆 counts as four columns.
import tabulate as _tabulate_module
from tabulate import tabulate

_tabulate_module.WIDE_CHARS_MODE = True


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def render(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], fmt: str = "table") -> str:
    """`columns` is (key, header) pairs; fmt is table, csv or json."""
    keys = [key for key, _ in columns]
    if fmt == "json":
        return json.dumps([{key: _plain(row.get(key)) for key in keys} for row in rows], ensure_ascii=False, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(keys)
        writer.writerows([[_plain(row.get(key)) for key in keys] for row in rows])
        return buffer.getvalue().rstrip("\n")
    if not rows:
        return "(none)"
    body = [[_plain(row.get(key)) for key in keys] for row in rows]
    return tabulate(body, headers=[header for _, header in columns], tablefmt="simple", disable_numparse=True)
