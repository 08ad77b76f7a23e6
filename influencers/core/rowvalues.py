"""A row of the pipeline's upsert as SQL text: every value a hex literal (``_utf8mb4 X'e5b08f'``).

`bytes.hex` is C, while pymysql escapes every string in Python, and a hex literal needs no
escaping at all, whatever the bytes, the connection's character set or ``NO_BACKSLASH_ESCAPES``;
the introducer makes it text (MySQL reads no JSON from a binary string). `influencers.core.store`
sends them; this module only spells them.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from influencers.core.searchterms import row_terms

MAX_RAW_DEPTH = 24  # levels of raw_data kept as JSON, well inside the server's limit of 32


def row_values(row: tuple[Any, ...]) -> str:
    """``(uid, nickname, domain, source_page, raw, profile, log_id)`` as one row of the upsert's
    VALUES, in `UPSERT_COLUMNS` order. A new row with fans gets its first history row (its
    ``fans_log_id`` is its crawl), its first fans and no growth yet."""
    uid, nickname, domain, source_page, raw, profile, log_id = row
    log_id = int(log_id)
    if profile.fans is None:
        fans, fans_log_id, growth = "NULL", "0", "NULL"
    else:
        fans, fans_log_id, growth = str(int(profile.fans)), str(log_id), "0"
    tags = f"_utf8mb4 X'{raw_json(list(profile.tags)).hex()}'" if profile.tags else "NULL"
    return (f"({_text(uid)},{_text(nickname)},{_text(domain)},{_text(source_page)},"
            f"_utf8mb4 X'{raw_json(raw).hex()}',{log_id},{fans},{_text(profile.region)},{tags},"
            f"{int(profile.has_contact)},{_text(profile.profile_url)},{_text(row_terms(nickname, profile.tags))},"
            f"{fans_log_id},{growth},{growth},{fans})")


def _text(value: str | None) -> str:
    """A hex literal of the text's UTF-8 (lone surrogates, which no column can hold, become '?')."""
    return "NULL" if value is None else f"_utf8mb4 X'{value.encode('utf-8', 'replace').hex()}'"


def limit_depth(value: Any, levels: int) -> Any:
    """``value`` with every container ``levels`` deep replaced by its JSON text."""
    if not isinstance(value, (dict, list, tuple)):
        return value
    if levels <= 0:
        return raw_json(value).decode("utf-8")
    if isinstance(value, dict):
        return {key: limit_depth(item, levels - 1) for key, item in value.items()}
    return [limit_depth(item, levels - 1) for item in value]


def raw_json(value: Any) -> bytes:
    """A row's raw data (or any value) as compact UTF-8 JSON. Values orjson refuses (integers
    beyond 64 bits, non-string keys, lone surrogates from a ``\\ud800`` escape) go through `json`
    after cleaning; NaN and infinity become null either way, as JSON has no literal for them and
    the server would refuse the whole batch."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(_clean(value), ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_clean(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value
