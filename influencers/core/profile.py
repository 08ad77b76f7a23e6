"""What the system understands of an influencer: the typed fields a site adapter maps a platform
row into (`SiteAdapter.profile`), stored in typed, indexed columns beside the row's ``raw_data``.

Platforms name the same things differently (``fans``, ``follower_count``, ``粉丝数``…), give
numbers as text (``"1.2万"``, ``"3,400"``) and tags as lists or comma-separated text. The default
mapping, `default_profile`, reads the names common platforms use; an adapter whose platform says
it otherwise overrides `SiteAdapter.profile`. Whatever a row holds, the mapping never raises: a
value it cannot read is left out (None), and the row is stored all the same, its raw data whole.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

REGION_MAX = 100
PROFILE_URL_MAX = 1024
TAG_MAX = 64
TAGS_MAX = 20
FANS_MAX = 2**63 - 1

FANS_KEYS = ("fans", "fans_count", "follower_count", "followers", "followers_count", "粉丝数", "粉丝")
REGION_KEYS = ("region", "location", "city", "ip_location", "province", "地区", "所在地")
TAG_KEYS = ("tags", "labels", "categories", "category", "标签")
URL_KEYS = ("profile_url", "homepage", "url", "主页")
CONTACT_KEYS = ("contact", "contacts", "wechat", "email", "phone", "mobile", "联系方式")

_UNITS = {"万": 10_000, "w": 10_000, "亿": 100_000_000, "k": 1_000, "m": 1_000_000}
_NUMBER = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(万|w|亿|k|m)?\+?$", re.IGNORECASE)
_TAG_SPLIT = re.compile(r"[,，、;；|/#\s]+")


@dataclass(frozen=True, slots=True)
class Profile:
    """An influencer's typed fields; None where the platform did not say."""

    fans: int | None = None
    region: str | None = None
    tags: tuple[str, ...] = ()
    has_contact: bool = False
    profile_url: str | None = None


EMPTY = Profile()


def default_profile(row: Mapping[str, Any]) -> Profile:
    """The typed fields of a platform row under the common names (see the module docstring)."""
    return Profile(
        fans=parse_count(_first(row, FANS_KEYS)),
        region=_short_text(_first(row, REGION_KEYS), REGION_MAX),
        tags=parse_tags(_first(row, TAG_KEYS)),
        has_contact=any(_has_value(row.get(key)) for key in CONTACT_KEYS),
        profile_url=_short_text(_first(row, URL_KEYS), PROFILE_URL_MAX),
    )


def profiles_of(rows: Iterable[Any], profile: Callable[[Mapping[str, Any]], Profile]) -> tuple[list[Profile], int]:
    """``profile`` of every row, and how many rows it failed on: such a row gets the empty
    profile (stored all the same, its raw data whole), so one odd row never costs its page."""
    profiles: list[Profile] = []
    failed = 0
    for row in rows:
        try:
            result = profile(row) if isinstance(row, Mapping) else EMPTY
            profiles.append(result if isinstance(result, Profile) else EMPTY)
        except Exception:  # noqa: BLE001 - an adapter's mapping of one odd row must not lose the page
            failed += 1
            profiles.append(EMPTY)
    return profiles, failed


def parse_count(value: Any) -> int | None:
    """A non-negative count from a number or text such as ``"3,400"``, ``"1.2万"`` or ``"5w+"``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= FANS_MAX else None
    if isinstance(value, float):
        return int(value) if 0 <= value < FANS_MAX else None  # NaN fails both comparisons
    if isinstance(value, str):
        match = _NUMBER.match(value.strip().replace(",", "").replace("，", ""))
        if match:
            number = float(match.group(1)) * _UNITS.get((match.group(2) or "").lower(), 1)
            return int(number) if number < FANS_MAX else None
    return None


def parse_tags(value: Any) -> tuple[str, ...]:
    """Tags from a list (of texts, or of dicts with a ``name``) or from separated text; trimmed,
    without repeats, each at most ``TAG_MAX`` characters, at most ``TAGS_MAX`` of them."""
    if isinstance(value, str):
        items: list[Any] = _TAG_SPLIT.split(value)
    elif isinstance(value, (list, tuple)):
        items = [item.get("name") if isinstance(item, Mapping) else item for item in value]
    else:
        return ()
    tags: dict[str, None] = {}
    for item in items:
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            tag = str(item).strip()[:TAG_MAX]
            if tag:
                tags[tag] = None
    return tuple(tags)[:TAGS_MAX]


def _first(row: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = row.get(key)
        if value is not None and value != "":
            return value
    return None


def _short_text(value: Any, limit: int) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text[:limit] or None
    return None


def _has_value(value: Any) -> bool:
    """Whether a contact field holds anything: a non-blank text, or a dict/list holding one."""
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, Mapping):
        return any(_has_value(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_value(item) for item in value)
    return isinstance(value, int) and not isinstance(value, bool)
