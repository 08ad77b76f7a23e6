"""Fulltext tokens for nickname and tag search that work for Chinese.

Chinese is not written with spaces, so the server's fulltext parser (which splits on spaces and
punctuation) sees a whole nickname as one word, and MariaDB has no n-gram parser. Each nickname is
therefore indexed as its character bigrams (``小鹿酱`` → ``小鹿``, ``鹿酱``), every bigram written as
one token the default parser keeps whole: ``g`` and the hex of its UTF-8 (``ge5b08fe9b9bf``), which
is also longer than the parser's minimum token size and is no stop word. A search for a text of
two or more characters asks for all of its bigrams (``+g… +g…`` in boolean mode); the row's
nickname is then checked to hold the text itself, as the bigrams of ``abcd`` also match ``abXbcd``.
Tags are tokens too: ``t`` and a hash of the tag (a tag may be longer than the parser's maximum
token size); the tags column is checked as well.

Tokens are made of the text NFKC-normalized, case-folded, without spaces and invisible format
characters, so the index finds ``小\u200b美酱`` for ``小美``; the row's own check is then
``nickname LIKE '%小美%'`` under the column's collation (case-insensitive), which the zero-width
character fails: a search finds the text as it is written, the tokens only narrow the rows.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Iterable

MAX_QUERY_BIGRAMS = 16  # a longer text is found by its first 16 bigrams, then checked whole


def normalize(text: str) -> str:
    """``text`` as it is indexed and searched: NFKC, case-folded, without spaces and format characters."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if folded.isprintable():  # no control, format or separator character but the ASCII space: C speed
        return folded.replace(" ", "")
    return "".join(ch for ch in folded if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc"))


def bigram_tokens(text: str) -> list[str]:
    """The distinct bigram tokens of ``text``, in order (none for fewer than two characters)."""
    chars = normalize(text)
    seen: dict[str, None] = {}
    for first, second in zip(chars, chars[1:], strict=False):
        seen["g" + (first + second).encode("utf-8", "replace").hex()] = None
    return list(seen)


@functools.lru_cache(maxsize=4096)
def tag_token(tag: str) -> str:
    """The token of one tag: ``t`` and 16 hex digits of its normalized text's BLAKE2b hash.
    Remembered: a platform's tags are a few hundred words that every page repeats."""
    return "t" + hashlib.blake2b(normalize(tag).encode("utf-8", "replace"), digest_size=8).hexdigest()


def row_terms(nickname: str | None, tags: Iterable[str]) -> str:
    """The ``search_terms`` value of a row: its nickname's bigrams and its tags, space-separated."""
    tokens = bigram_tokens(nickname) if nickname else []
    tokens.extend(tag_token(tag) for tag in tags)
    return " ".join(tokens)


def text_query(text: str) -> str | None:
    """The boolean-mode query that finds nicknames holding ``text``; None when ``text`` has fewer
    than two characters to index (it is then found by a scan of the nickname alone)."""
    tokens = bigram_tokens(text)[:MAX_QUERY_BIGRAMS]
    return " ".join("+" + token for token in tokens) or None


def tag_query(tag: str) -> str:
    return "+" + tag_token(tag)
