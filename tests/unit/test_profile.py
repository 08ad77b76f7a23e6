"""Typed fields from platform rows (`default_profile`) and the fulltext tokens of search."""

from __future__ import annotations

import math

import pytest

from influencers.core.profile import EMPTY, Profile, default_profile, parse_count, parse_tags, profiles_of
from influencers.core.searchterms import bigram_tokens, normalize, row_terms, tag_token, text_query


@pytest.mark.parametrize(("value", "count"), [
    (12, 12), ("3,400", 3400), ("1.2万", 12000), ("5w+", 50000), ("2亿", 200_000_000), ("1.5k", 1500),
    (" 7 ", 7), (12.9, 12), (-1, None), ("-5", None), ("很多", None), (True, None), (None, None),
    (math.nan, None), (math.inf, None), (2**70, None), ("9" * 40, None), ([], None),
])
def test_counts_as_platforms_write_them(value, count) -> None:
    assert parse_count(value) == count


def test_tags_from_lists_dicts_and_separated_text() -> None:
    assert parse_tags(["彩妆", " 护肤 ", "彩妆", "", None, 3, True]) == ("彩妆", "护肤", "3")
    assert parse_tags("彩妆,护肤、测评 #好物") == ("彩妆", "护肤", "测评", "好物")
    assert parse_tags([{"name": "美食"}, {"id": 1}]) == ("美食",)
    assert parse_tags({"a": 1}) == () and len(parse_tags([str(i) for i in range(50)])) == 20
    assert parse_tags(["长" * 100]) == ("长" * 64,)


def test_the_common_names_of_a_platform_row() -> None:
    row = {"uid": "u1", "粉丝数": "1.2万", "location": "  广东·深圳 ", "labels": "彩妆,护肤",
           "contact": {"wechat": None, "email": " "}, "phone": "138", "homepage": "https://x/u1"}
    assert default_profile(row) == Profile(fans=12000, region="广东·深圳", tags=("彩妆", "护肤"), has_contact=True,
                                           profile_url="https://x/u1")
    assert default_profile({"uid": "u2", "contact": {"wechat": None, "email": ""}}) == EMPTY
    assert default_profile({"fans": {"nested": 1}, "region": ["x"], "tags": 5, "url": 7}) == Profile(profile_url="7")


def test_a_mapping_that_raises_costs_the_row_its_fields_not_the_page() -> None:
    def picky(row):
        if row.get("uid") == "bad":
            raise KeyError("fans")
        return default_profile(row)

    profiles, failed = profiles_of([{"uid": "a", "fans": 1}, {"uid": "bad"}, "not a row", {"uid": "c"}], picky)
    assert failed == 1 and profiles == [Profile(fans=1), EMPTY, EMPTY, EMPTY]


def test_bigrams_are_tokens_the_fulltext_parser_keeps_whole() -> None:
    assert normalize("ＡＢ小\u200b鹿 酱") == "ab小鹿酱"
    tokens = bigram_tokens("小鹿酱小鹿")
    assert tokens == ["g" + "小鹿".encode().hex(), "g" + "鹿酱".encode().hex(), "g" + "酱小".encode().hex()]
    assert all(token.isalnum() and token.isascii() and 3 <= len(token) <= 84 for token in tokens)
    assert bigram_tokens("x") == [] and text_query("x") is None
    assert text_query("鹿酱") == "+g" + "鹿酱".encode().hex()
    assert tag_token("彩妆") == tag_token("彩妆 ") != tag_token("护肤") and len(tag_token("长" * 64)) == 17
    assert row_terms("🍑小鹿", ["AI"]).split() == [*bigram_tokens("🍑小鹿"), tag_token("ai")]
    assert row_terms(None, []) == ""
