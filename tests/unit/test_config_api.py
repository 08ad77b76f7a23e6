"""INFLUENCERS_API_TOKEN: optional, validated at start, never in a repr."""

from __future__ import annotations

import pytest

from influencers.core.config import Config
from influencers.core.errors import ConfigError

TOKEN = "tok-0123456789abcdef-XYZ"


def test_token_is_optional():
    assert Config.from_env({}).api_token is None
    assert Config.from_env({"INFLUENCERS_API_TOKEN": "   "}).api_token is None


def test_token_is_read_and_stripped():
    assert Config.from_env({"INFLUENCERS_API_TOKEN": f"  {TOKEN}\n"}).api_token == TOKEN


def test_token_never_in_repr():
    config = Config.from_env({"INFLUENCERS_API_TOKEN": TOKEN})
    assert TOKEN not in repr(config)
    assert TOKEN not in str(config)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("short", "at least 16 characters"),
        ("has a space inside of it", "printable ASCII"),
        ("令牌令牌令牌令牌令牌令牌令牌令牌", "printable ASCII"),
    ],
)
def test_malformed_token_names_the_variable_without_echoing_it(value, fragment):
    with pytest.raises(ConfigError) as error:
        Config.from_env({"INFLUENCERS_API_TOKEN": value})
    message = str(error.value)
    assert message.startswith("INFLUENCERS_API_TOKEN")
    assert fragment in message
    assert value not in message
    assert "\n" not in message
