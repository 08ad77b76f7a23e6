"""Search tokens (`influencers.core.searchterms`): the normalization's fast path for printable text
gives exactly what the character-by-character rule gives, for any text."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from influencers.core.searchterms import normalize, row_terms, tag_token


def by_character(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc"))


@settings(max_examples=2000)
@given(st.text(alphabet=st.characters(codec=None), max_size=12))
def test_normalize_is_the_character_rule(text):
    assert normalize(text) == by_character(text)


def test_the_cases_the_fast_path_must_not_take():
    for text in ("小\u200b美", "a\u00a0b", "x\u3000y", "a\u2028b", "\t x\x00", "a\u1680b\u0085c", "ＡＢ Ｃ"):
        assert normalize(text) == by_character(text)
    assert normalize("小 美\u200b酱") == "小美酱"


def test_a_tag_token_is_the_same_however_often_it_is_asked():
    assert tag_token("护肤") == tag_token("护肤") == tag_token(" 护肤 ")
    assert tag_token("护肤") != tag_token("彩妆")
    assert row_terms("小鹿", ["护肤"]).split() == ["g" + "小鹿".encode().hex(), tag_token("护肤")]
