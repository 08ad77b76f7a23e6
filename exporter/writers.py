"""Export file formats, the export path policy and the atomic publish of one file.

Formats (one row per influencer, columns ``COLUMNS``):

* ``csv``   UTF-8 with a BOM (Excel detects it and shows Chinese), RFC 4180 quoting, CRLF rows;
            a ``raw_data`` JSON object is written as the database holds it (the pipeline stores
            compact UTF-8 JSON), other values are decoded and re-encoded compactly.
* ``jsonl`` one JSON object per line, UTF-8, ``raw_data`` kept as a nested object.
* ``xlsx``  openpyxl in write-only mode: rows stream to disk, memory stays flat.

Spreadsheet safety is `influencers.core.spreadsheet`'s, the one neutralisation of the project: in
CSV a ``'`` goes wherever a reader could start a formula (``= + - @`` after leading white space,
and after a ``;``, tab or line break inside a text); in XLSX text is kept exactly and written as a
typed string, which no spreadsheet runs. XLSX holds at most 32,767 characters a cell: a longer
value is cut, and one WARNING per file names the rows.

Rows are mappings (missing keys are empty) or sequences in ``COLUMNS`` order; the exporter streams
tuples straight from its cursor, so the CSV path does one cheap conversion per cell and hands
whole batches to the C ``csv`` writer.

Paths: ``<export dir>/<safe domain>/<local quota date>/task<T>_part<NNNN>_acct<A>_id<first>-<last>.<fmt>``.
The domain goes through :func:`safe_domain` and the result is checked to stay inside the export
directory. A file appears under its final name only complete: it is written to a hidden temporary
name in the same directory, fsynced, renamed over the final name and the directory is fsynced.
Files hold contact data: they are created 0600 and the directories the exporter makes 0700.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from exporter.errors import ExportCountMismatch, ExportPathError
from influencers.core.spreadsheet import neutralise, xlsx_text
from influencers.core.store import EXPORT_COLUMNS

logger = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl", "xlsx")
COLUMNS = EXPORT_COLUMNS

XLSX_MAX_CELL = 32767
FILE_MODE = 0o600  # contact data: the operator's, nobody else's
DIR_MODE = 0o700
# XML 1.0 cannot carry these control characters; openpyxl raises on them.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

TEMP_SUFFIX = ".tmp"
WRITE_BUFFER = 1 << 20  # bytes; fewer write() calls for multi-megabyte batch files
_TEMP_NAME = re.compile(r"^\.(?P<final>.+)\.[0-9a-f]{8}\.tmp$")
_BATCH_NAME = re.compile(r"^task\d+_part(?P<part>\d{4,9})_acct\d+_id\d+-\d+\.[a-z]+$")
_DOMAIN_UNSAFE = re.compile(r"[^\w.-]")
_DOMAIN_MAX = 40


# --------------------------------------------------------------------------- cells


def _raw_json(value: Any) -> Any:
    """``raw_data`` as a Python object (MariaDB returns JSON columns as text)."""
    if value is None or not isinstance(value, (str, bytes)):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _raw_text(value: Any) -> str | None:
    obj = _raw_json(value)
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _csv_cell(value: Any) -> Any:
    """A CSV cell: numbers stay numbers, dates in ISO form, None empty, text neutralised; text
    first (the common case) without a chain of isinstance checks."""
    if type(value) is str:
        return neutralise(value)
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return neutralise(str(value))


def _raw_csv_text(value: Any) -> str | None:
    """``raw_data`` for a CSV cell: a JSON object's text as stored, anything else (numbers,
    strings, ``\\u`` escapes, invalid text) through ``_raw_text``; `_csv_cell` neutralises both."""
    if type(value) is str and value[:1] == "{" and "\\u" not in value:
        return value
    return _raw_text(value)


def _as_tuple(row: Mapping[str, Any] | tuple) -> tuple:
    if type(row) is tuple:
        return row
    if isinstance(row, Mapping):
        return tuple(row.get(col) for col in COLUMNS)
    return tuple(row)


# --------------------------------------------------------------------------- writers


class _CsvWriter:
    def __init__(self, fh: BinaryIO) -> None:
        # The BOM by hand: TextIOWrapper encodes "utf-8" in C, "utf-8-sig" in Python on every write.
        fh.write(codecs.BOM_UTF8)
        self._text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text)
        self._csv.writerow(COLUMNS)

    def write_all(self, rows: Iterable[Mapping[str, Any] | tuple]) -> int:
        count = 0
        cell, raw = _csv_cell, _raw_csv_text

        def cells() -> Iterator[tuple]:
            nonlocal count
            for row in rows:
                id_, uid, nickname, domain, source_page, ingested_at, raw_data = _as_tuple(row)
                count += 1
                yield (cell(id_), cell(uid), cell(nickname), cell(domain), cell(source_page), cell(ingested_at),
                       cell(raw(raw_data)))

        self._csv.writerows(cells())
        return count

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


class _JsonlWriter:
    def __init__(self, fh: BinaryIO) -> None:
        self._text = io.TextIOWrapper(fh, encoding="utf-8", newline="\n")

    def write(self, row: tuple) -> None:
        obj = {}
        for col, value in zip(COLUMNS, row, strict=True):
            if col == "raw_data":
                value = _raw_json(value)
            elif isinstance(value, (dt.datetime, dt.date)):
                value = value.isoformat()
            obj[col] = value
        self._text.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        self._text.write("\n")

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


class _XlsxWriter:
    """Text is written as typed strings, exactly (`xlsx_text`), except what XLSX cannot hold: XML's
    illegal control characters become U+FFFD and a value over `XLSX_MAX_CELL` characters is cut;
    the cut rows are named in one WARNING when the file is closed."""

    _CUT_IDS_SHOWN = 10

    def __init__(self, fh: BinaryIO, name: str) -> None:
        from openpyxl import Workbook  # imported here: only xlsx exports pay for it

        self._fh = fh
        self._name = name
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("influencers")
        self._sheet.append(COLUMNS)
        self._cut: list[tuple[Any, str]] = []  # (row id, column) of every value cut

    def _cell(self, value: Any, row_id: Any, column: str) -> Any:
        if value is None or isinstance(value, (bool, int, float, dt.date)):  # dt.datetime is a dt.date
            return value
        text = _XML_ILLEGAL.sub("\ufffd", str(value))
        if len(text) > XLSX_MAX_CELL:
            text = text[:XLSX_MAX_CELL]
            self._cut.append((row_id, column))
        return xlsx_text(self._sheet, text)

    def write(self, row: tuple) -> None:
        row_id = row[0]
        self._sheet.append([
            self._cell(_raw_text(value) if col == "raw_data" else value, row_id, col)
            for col, value in zip(COLUMNS, row, strict=True)
        ])

    def close(self) -> None:
        self._book.save(self._fh)
        if self._cut:
            shown = ", ".join(f"{row_id} ({column})" for row_id, column in self._cut[:self._CUT_IDS_SHOWN])
            more = len(self._cut) - self._CUT_IDS_SHOWN
            logger.warning("%s: %d value(s) longer than the XLSX cell limit of %d characters were cut: row id %s%s;"
                           " the CSV and JSONL formats keep them whole", self._name, len(self._cut), XLSX_MAX_CELL,
                           shown, f" and {more} more" if more > 0 else "")


_WRITERS = {"csv": _CsvWriter, "jsonl": _JsonlWriter, "xlsx": _XlsxWriter}


def write_rows(fmt: str, fh: BinaryIO, rows: Iterable[Mapping[str, Any] | tuple], *, name: str = "export file") -> int:
    """Write ``rows`` (mappings, or tuples in ``COLUMNS`` order) to the open binary file ``fh`` in
    format ``fmt``; return the row count. ``name`` is the file's name in log lines."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    writer = _XlsxWriter(fh, name) if fmt == "xlsx" else _WRITERS[fmt](fh)
    if hasattr(writer, "write_all"):
        count = writer.write_all(rows)
    else:
        count = 0
        for row in rows:
            writer.write(_as_tuple(row))
            count += 1
    writer.close()
    return count


# --------------------------------------------------------------------------- paths


def safe_domain(domain: str) -> str:
    """A single, harmless path component for ``domain`` (``美妆`` stays ``美妆``).

    Anything but letters, digits, ``_ . -`` becomes ``_``; leading/trailing dots go; a leading
    ``-`` becomes ``_`` (a directory ``-rf`` reads as an option to ``rm``, ``ls``, ``tar``); a name
    that had to change gets a short hash of the original so two domains never share a directory.
    """
    name = unicodedata.normalize("NFC", domain)
    cleaned = _DOMAIN_UNSAFE.sub("_", name).strip(".")[:_DOMAIN_MAX]
    if cleaned.startswith("-"):
        cleaned = "_" + cleaned[1:]
    if cleaned != domain or not cleaned:
        digest = hashlib.sha256(domain.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"{cleaned or 'domain'}~{digest}"
    return cleaned


def batch_file_name(
    *, task_id: int, seq: int, account_id: int, first_id: int, last_id: int, fmt: str
) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    return f"task{task_id}_part{seq:04d}_acct{account_id}_id{first_id}-{last_id}.{fmt}"


def part_of(file_name: str) -> int | None:
    """The part number in a batch file name (`batch_file_name`), or None if it is not one. The
    part is the one piece of a batch's name that ``export_logs`` has no column for."""
    match = _BATCH_NAME.match(file_name)
    return int(match.group("part")) if match else None


def batch_path(
    export_dir: Path,
    domain: str,
    local_date: dt.date,
    *,
    task_id: int,
    seq: int,
    account_id: int,
    first_id: int,
    last_id: int,
    fmt: str,
) -> Path:
    """The absolute final path of one batch file; raises ExportPathError if it would escape."""
    root = Path(os.path.abspath(export_dir))
    name = batch_file_name(
        task_id=task_id, seq=seq, account_id=account_id, first_id=first_id, last_id=last_id, fmt=fmt
    )
    path = root / safe_domain(domain) / local_date.isoformat() / name
    ensure_inside(root, path)
    return path


def ensure_inside(root: Path, path: Path) -> None:
    """Raise ExportPathError unless ``path`` (symlinks resolved) lies under ``root``."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root or real == real_root:
        raise ExportPathError(f"export path {str(path)!r} is outside the export directory {str(root)!r}")


def temp_path(final: Path) -> Path:
    """A fresh hidden temporary name beside ``final`` (unique per writer)."""
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def final_of_temp(path: Path) -> Path | None:
    """The final path a temporary file was being written for, or None if it is not one of ours."""
    match = _TEMP_NAME.match(path.name)
    return path.with_name(match.group("final")) if match else None


def iter_temp_files(export_dir: Path) -> Iterable[Path]:
    """Every temporary export file under ``export_dir`` (two levels: domain/date)."""
    root = Path(export_dir)
    if not root.is_dir():
        return
    for path in root.glob(f"*/*/.*{TEMP_SUFFIX}"):
        if final_of_temp(path) is not None:
            yield path


# --------------------------------------------------------------------------- publish


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(root: Path, directory: Path) -> None:
    """mkdir -p below ``root``, fsyncing each parent whose entries changed."""
    missing = []
    current = directory
    while current != root and not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        _fsync_dir(path.parent)


def publish(
    final: Path,
    fmt: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    export_dir: Path | None = None,
    expect: int | None = None,
) -> int:
    """Write ``rows`` so that ``final`` either does not change or appears complete.

    temp file in the same directory → flush + fsync → ``os.replace`` → fsync the directory.
    A killed writer leaves at most a hidden ``.*.tmp`` file, never a partial ``final``. With
    ``expect``, a row count that differs raises before the rename. Returns the rows written.
    The file is created `FILE_MODE` (0600), directories made here `DIR_MODE` (0700).
    """
    final = Path(final)
    if export_dir is not None:
        root = Path(os.path.abspath(export_dir))
        ensure_inside(root, final)
        root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        _make_dirs(root, final.parent)
    else:
        final.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        # O_EXCL: a fresh file, never one planted under the temp name; 0600 from the start.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
        with os.fdopen(fd, "wb", buffering=WRITE_BUFFER) as fh:
            count = write_rows(fmt, fh, rows, name=str(final))
            fh.flush()
            os.fsync(fh.fileno())
        if expect is not None and count != expect:
            raise ExportCountMismatch(f"{final.name}: wrote {count} rows, the batch has {expect}")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)
    return count
