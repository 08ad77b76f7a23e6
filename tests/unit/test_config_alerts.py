"""INFLUENCERS_ALERT_*: URLs split where a new URL starts (a comma inside one stays), defaults,
bad values named by variable and position, never echoed (a URL carries its webhook key)."""

from __future__ import annotations

import pytest

from influencers.core.config import Config
from influencers.core.errors import ConfigError


def alerts(**env: str):
    return Config.from_env(env).alerts


def test_defaults_send_nowhere_once_an_hour_after_five_minutes():
    settings = alerts()
    assert (settings.urls, settings.window, settings.outage_after) == ((), 3600.0, 300.0)


def test_urls_split_on_spaces_and_on_commas_that_start_a_url():
    settings = alerts(INFLUENCERS_ALERT_URLS=" json://a/b,dingtalk://tok\n mailtos://u:p@x?to=a@b.cn,c@d.cn ")
    assert settings.urls == ("json://a/b", "dingtalk://tok", "mailtos://u:p@x?to=a@b.cn,c@d.cn")


def test_urls_and_their_keys_stay_out_of_repr():
    config = Config.from_env({"INFLUENCERS_ALERT_URLS": "wecombot://s3cret-k3y"})
    assert "s3cret-k3y" not in repr(config) and "s3cret-k3y" not in repr(config.alerts)


@pytest.mark.parametrize(("variable", "value", "fragment"), [
    ("INFLUENCERS_ALERT_URLS", "json://ok/1 s3cret-k3y", "item 2 is not a URL"),
    ("INFLUENCERS_ALERT_WINDOW", "0", "at least 1 seconds"),
    ("INFLUENCERS_ALERT_WINDOW", "inf", "at least 1 seconds"),
    ("INFLUENCERS_ALERT_OUTAGE_AFTER", "five", "must be a number of seconds"),
])
def test_bad_values_name_the_variable_and_never_echo_a_url(variable, value, fragment):
    with pytest.raises(ConfigError) as caught:
        Config.from_env({variable: value})
    assert str(caught.value).startswith(variable) and fragment in str(caught.value)
    assert "s3cret-k3y" not in str(caught.value)
