"""The one neutralisation of text that ends up in a spreadsheet cell (CSV and XLSX, exports and
the CLI's ``--format csv``).

Scraped nicknames and bios, and account names, are chosen by someone else. A spreadsheet runs a
cell that starts with ``= + - @`` as a formula (``=HYPERLINK("http://evil.example", …)`` becomes a
live link), so such text must never reach a cell start as it is.

CSV has no types, so the text itself is changed: a ``'`` goes in front of every place where a
reader could start a cell with a formula. That is not only the start of the text:

* leading white space and control characters (``" =1"``, ``"\\x1f=1"``) are trimmed by the
  "trim spaces" import option and ignored by some readers, and a leading ``"`` is taken as a
  quote by a reader that splits at another separator than ours;
* the file is written with ``,``; opened with ``;`` or tab as separator, a cell starts after every
  ``;`` or tab inside a text, and a line break inside a text may end the record for such a reader
  (its quoting no longer lines up with ours). So the ``'`` also goes right after a ``;``, tab, CR
  or LF that is followed (after white space and quotes) by one of ``= + - @``. A ``,`` inside a
  text never starts a cell: our writer quotes it for a ``,`` reader, and other readers do not
  split at it (and JSON in ``raw_data`` stays valid JSON: its ``;`` only occur inside strings);
* a text starting with tab or CR is prefixed too (the classic list: ``= + - @``, tab, CR).

XLSX has types: a cell written as a string (``t="inlineStr"``) is shown as text whatever it
starts with, so its text is kept exactly (`xlsx_text`); only openpyxl's guess that a text
starting with ``=`` is a formula (or ``#N/A`` an error) has to be overridden.
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_TRIGGERS = "=+-@"
QUOTE = "'"

# White space (Unicode), C0/C1 controls and double quotes before the trigger do not help; a line
# break is a cell start of its own (the quote goes after the last one, next to the trigger).
_SKIPPABLE = r'(?:[^\S\r\n]|[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f"])*'
# A text that needs a quote in front.
_LEAD = re.compile(rf"[\t\r]|{_SKIPPABLE}[=+\-@]")
# A separator of another reader that a formula follows; CR LF is one line break (the quote goes after the LF).
_INNER = re.compile(rf"([;\t\n]|\r(?!\n))(?={_SKIPPABLE}[=+\-@])")


def neutralise(text: str) -> str:
    """``text`` for a CSV cell, with ``'`` put wherever a spreadsheet could start a formula
    (see the module docstring); text without such a place is returned as it is.

    Most text (and every JSON object in ``raw_data``) is decided by two cheap looks, its first
    character and whether it holds a separator at all: the exporter calls this for every cell.
    """
    if ";" in text or "\n" in text or "\t" in text or "\r" in text:
        return _neutralise_all(text)
    if text[:1].isalnum() or _LEAD.match(text) is None:  # the first check alone decides most text
        return text
    return QUOTE + text


def _neutralise_all(text: str) -> str:
    lead = _LEAD.match(text) is not None
    text = _INNER.sub(r"\1'", text)
    return QUOTE + text if lead else text


def csv_value(value: Any) -> Any:
    """A CLI value for a CSV cell: text neutralised, anything else as it is."""
    return neutralise(value) if isinstance(value, str) else value


def xlsx_text(sheet: Any, text: str) -> Any:
    """``text`` for an XLSX row of a write-only ``sheet``: the text itself when openpyxl stores it
    as a string anyway, else a cell forced to the string type (openpyxl would write ``=…`` as a
    formula and ``#N/A`` as an error value). The text is never changed."""
    if not text.startswith(("=", "#")):  # what openpyxl reads as formula or error starts so
        return text
    from openpyxl.cell import WriteOnlyCell  # imported here: only XLSX writers pay for openpyxl
    from openpyxl.cell.cell import ERROR_CODES

    if not (text.startswith("=") or text in ERROR_CODES):
        return text

    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"
    return cell
