"""Credentials out of URLs before they reach a log line or a message.

`INFLUENCERS_SITE_URL`, `--scrapyd` and similar settings may carry `user:password@`; whatever
prints such a URL prints `redact_url(url)` instead, which keeps the user and masks the
password (`http://user:***@host/`), so the operator still sees which login was meant.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
#: `scheme://userinfo@` anywhere in a text: the fallback for strings urlsplit refuses.
_USERINFO = re.compile(r"(?P<prefix>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s@]*)@")


def redact_url(url: str) -> str:
    """``url`` with the password of its `user:password@` part masked (the user is kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced `[` in the host: mask by pattern instead
        return redact_text(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """Every `scheme://user:password@` in ``text`` with its password masked."""
    def mask(match: re.Match[str]) -> str:
        userinfo = match["userinfo"]
        masked = f"{userinfo.split(':', 1)[0]}:{MASK}" if ":" in userinfo else MASK
        return f"{match['prefix']}{masked}@"

    return _USERINFO.sub(mask, text)
