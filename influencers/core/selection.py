"""A selection of influencers: the filters a search, a saved search and an export share, as SQL.

One spelling of each filter serves `search` (the CLI, the API and the dashboard) and the exporter
(`start_export --fans-min …`), so an export takes exactly the rows its search showed. A selection
is stored as JSON with its export task (``tasks.export_filter``) and by name in
``saved_searches``, the table this module owns.

Text (``q``) and tags go through the fulltext index of ``search_terms`` (`searchterms`), then are
checked on the row itself; the region matches as a prefix (``广东`` finds ``广东·深圳``); numbers
are ranges on typed columns.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from pymysql.connections import Connection

from influencers.core.errors import InvalidArgument
from influencers.core.searchterms import tag_query, text_query

STATUSES = ("pending_export", "exported")
NAME_MAX = 100
TEXT_MAX = 100
NUMBER_MAX = 10**15  # a bound on numeric filters that JSON numbers (doubles) hold exactly


@dataclass(frozen=True)
class Selection:
    """Filters; None (or False for ``has_contact``) means "any"."""

    domain: str | None = None
    q: str | None = None
    uid: str | None = None
    fans_min: int | None = None
    fans_max: int | None = None
    region: str | None = None
    tag: str | None = None
    has_contact: bool = False
    status: str | None = None
    growth_7d_min: int | None = None
    growth_30d_min: int | None = None

    def __post_init__(self) -> None:
        for name in ("domain", "q", "uid", "region", "tag"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > TEXT_MAX
                                      or "\x00" in value):
                raise InvalidArgument(f"{name}: a non-empty text of at most {TEXT_MAX} characters")
        for name in ("fans_min", "fans_max", "growth_7d_min", "growth_30d_min"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or abs(value) > NUMBER_MAX):
                raise InvalidArgument(f"{name}: a whole number from -{NUMBER_MAX} to {NUMBER_MAX}")
        if not isinstance(self.has_contact, bool):
            raise InvalidArgument("has_contact: true or false")
        if self.status is not None and self.status not in STATUSES:
            raise InvalidArgument(f"status: one of {', '.join(STATUSES)}")

    @property
    def filters(self) -> dict[str, Any]:
        """The filters that are set, by name (what is stored and shown)."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value not in (None, False)}

    def describe(self) -> str:
        """One line for `status`, `task show` and logs: ``fans_min=10000 region=广东``."""
        return " ".join(f"{key}={json.dumps(value, ensure_ascii=False) if isinstance(value, str) and ' ' in value else value}"
                        for key, value in self.filters.items()) or "all rows"

    def to_json(self) -> str:
        return json.dumps(self.filters, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Selection:
        """The selection stored as ``text`` (None or empty: every row). InvalidArgument if it is not one."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidArgument("a stored selection is not JSON") from None
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Any) -> Selection:
        if not isinstance(data, dict):
            raise InvalidArgument("a selection is a JSON object of filters")
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidArgument(f"unknown filter {unknown[0]!r} (filters: {', '.join(sorted(names))})")
        return cls(**data)

    @property
    def has_text(self) -> bool:
        """Whether it filters by text or tag (checked on the row, found through the fulltext index)."""
        return self.q is not None or self.tag is not None

    @property
    def has_fulltext(self) -> bool:
        """Whether the fulltext index can narrow it (a tag, or a text of two characters or more)."""
        return self.tag is not None or (self.q is not None and text_query(self.q) is not None)

    @property
    def on_fans_index(self) -> bool:
        """Whether the fans index (``ix_influencers_fans``: fans, id, domain, nickname) holds
        every column its filters test, so a walk of it never reads a row to test one."""
        return (self.uid, self.region, self.tag, self.status, self.growth_7d_min, self.growth_30d_min) == (
            None, None, None, None, None, None) and not self.has_contact

    def text_checks(self) -> tuple[str, list[Any]]:
        """The text and tag filters checked on the row itself (no index), and their parameters."""
        conditions, params = [], []
        if self.q is not None:
            conditions.append("i.nickname LIKE %s")
            params.append(like_pattern(self.q))
        if self.tag is not None:
            conditions.append("JSON_CONTAINS(i.tags, JSON_QUOTE(%s))")
            params.append(self.tag.strip())
        return " AND ".join(conditions) or "TRUE", params

    def where(self, *, fulltext: bool = True, text: bool = True) -> tuple[str, list[Any]]:
        """The selection as SQL conditions on ``influencers i`` and their parameters. Without
        ``fulltext`` the text and tag filters are checked on the row alone, for a walk in id order
        (an export) that must not first collect every match of a common tag; without ``text`` they
        are left out (`text_checks` has them)."""
        conditions: list[str] = []
        params: list[Any] = []

        def add(condition: str, *values: Any) -> None:
            conditions.append(condition)
            params.extend(values)

        if self.domain is not None:
            add("i.domain = %s", self.domain)
        if self.uid is not None:
            add("i.uid = %s", self.uid)
        if text and self.has_text:
            checks, values = self.text_checks()
            add(checks, *values)
            terms = [term for term in (text_query(self.q) if self.q is not None else None,
                                       tag_query(self.tag) if self.tag is not None else None) if term]
            if terms and fulltext:
                add("MATCH (i.search_terms) AGAINST (%s IN BOOLEAN MODE)", " ".join(terms))
        if self.fans_min is not None:
            add("i.fans >= %s", self.fans_min)
        if self.fans_max is not None:
            add("i.fans <= %s", self.fans_max)
        if self.region is not None:
            add("i.region LIKE %s", f"{like_escape(self.region.strip())}%")
        if self.has_contact:
            add("i.has_contact = TRUE")
        if self.status is not None:
            add("i.status = %s", self.status)
        if self.growth_7d_min is not None:
            add("i.growth_7d >= %s", self.growth_7d_min)
        if self.growth_30d_min is not None:
            add("i.growth_30d >= %s", self.growth_30d_min)
        return " AND ".join(conditions) or "TRUE", params


def like_pattern(text: str) -> str:
    """The LIKE pattern of a nickname search: ``text`` anywhere in the nickname."""
    return f"%{like_escape(text.strip())}%"


def like_escape(text: str) -> str:
    """``text`` as a LIKE pattern matching itself (``\\`` is LIKE's default escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- saved searches ----------------------------------------------------------------------------

_SAVED = "SELECT name, filter, created_at, updated_at FROM saved_searches"


def check_name(name: str) -> str:
    """A saved search's name, trimmed: 1 to ``NAME_MAX`` visible characters (no controls)."""
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > NAME_MAX or any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise InvalidArgument(f"a saved search's name is 1 to {NAME_MAX} characters, none of them a control")
    return name


def save(conn: Connection, name: str, selection: Selection) -> dict[str, Any]:
    """Save (or replace) the search ``name``; returns it as `saved` lists it."""
    name = check_name(name)
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO saved_searches (name, filter) VALUES (%s, %s)"
                       " ON DUPLICATE KEY UPDATE filter = VALUES(filter)", (name, selection.to_json()))
        cursor.execute(f"{_SAVED} WHERE name = %s", (name,))
        row = cursor.fetchone()
    conn.commit()
    return row


def load(conn: Connection, name: str) -> Selection | None:
    with conn.cursor() as cursor:
        cursor.execute("SELECT filter FROM saved_searches WHERE name = %s", (check_name(name),))
        row = cursor.fetchone()
    conn.commit()
    return None if row is None else Selection.from_json(row["filter"])


def saved(conn: Connection) -> list[dict[str, Any]]:
    """Every saved search: name, filter (JSON text), created_at, updated_at; by name."""
    with conn.cursor() as cursor:
        cursor.execute(f"{_SAVED} ORDER BY name")
        rows = list(cursor.fetchall())
    conn.commit()
    return rows


def delete(conn: Connection, name: str) -> bool:
    with conn.cursor() as cursor:
        removed = cursor.execute("DELETE FROM saved_searches WHERE name = %s", (check_name(name),))
    conn.commit()
    return bool(removed)
