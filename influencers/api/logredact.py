"""Secrets in URLs never reach the log.

uvicorn's access log writes the request line with its query string, and a client may put a
token or a password there (`?token=…`, `?access_token=…`, `?password=…`) even though the API
takes none. `RedactSecrets`, a filter on every handler of the server's log config, replaces the
value of every query parameter whose (percent-decoded) name looks like a secret with
`[redacted]`, and the configured API token wherever it appears, in the record's message and
arguments before any formatter sees them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

REDACTED = "[redacted]"
#: Names that look like a secret: token, access_token, api_key, password, passwd, secret, auth, sig...
SECRET_NAME = re.compile(r"token|passw|pwd|secret|key|auth|session|cookie|credential|signature|^sig$", re.IGNORECASE)
QUERY = re.compile(r"\?([^\s#\"]*)")
SEPARATOR = re.compile(r"([&;])")


def redact_query(text: str) -> str:
    """`/x?a=1&token=s3cret` -> `/x?a=1&token=[redacted]`, for every `?query` in the text."""
    return QUERY.sub(lambda match: "?" + _redact_pairs(match.group(1)), text)


def _redact_pairs(query: str) -> str:
    parts = SEPARATOR.split(query)
    for index in range(0, len(parts), 2):  # odd indexes are the separators themselves
        name, equals, _ = parts[index].partition("=")
        if equals and SECRET_NAME.search(unquote_plus(name)):
            parts[index] = f"{name}={REDACTED}"
    return "".join(parts)


class RedactSecrets(logging.Filter):
    """Rewrites a record's text so that no URL query secret and no known secret is written."""

    def __init__(self, known: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.known = tuple(secret for secret in known if secret)

    def redact(self, text: str) -> str:
        for secret in self.known:
            text = text.replace(secret, REDACTED)
        return redact_query(text)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True
