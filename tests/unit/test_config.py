from __future__ import annotations

import pytest

from influencers.config import Config, parse_mysql_url
from influencers.errors import ConfigError


def test_defaults_point_at_local_mysql_and_shanghai():
    config = Config.from_env({})
    assert config.mysql.display == "mysql://root@127.0.0.1:3306/influencers"
    assert config.tz_name == "Asia/Shanghai"
    assert config.utc_offset == "+08:00"
    assert config.site_url == "http://127.0.0.1:8800"
    assert str(config.export_dir) == "exports"


def test_password_never_in_repr():
    config = Config.from_env({"INFLUENCERS_MYSQL_URL": "mysql://u:s3cr%40t@db:3307/x", "INFLUENCERS_SECRET_KEY": "k" * 44})
    assert config.mysql.password == "s3cr@t"
    assert "s3cr" not in repr(config)
    assert "k" * 44 not in repr(config)
    assert config.mysql.port == 3307


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("INFLUENCERS_MYSQL_URL", "postgres://x/y", "must look like mysql://"),
        ("INFLUENCERS_MYSQL_URL", "mysql://root@host:notaport/db", "port"),
        ("INFLUENCERS_MYSQL_URL", "mysql://root@host:3306/", "names no database"),
        ("INFLUENCERS_MYSQL_URL", "mysql://root@host/db`; DROP", "letters, digits"),
        ("INFLUENCERS_TZ", "Mars/Olympus", "unknown time zone"),
        ("INFLUENCERS_SITE_URL", "ftp://x", "http(s) URL"),
    ],
)
def test_malformed_settings_name_the_variable(variable, value, fragment):
    with pytest.raises(ConfigError) as error:
        Config.from_env({variable: value})
    message = str(error.value)
    assert message.startswith(variable)
    assert fragment in message
    assert "\n" not in message


def test_other_zone_offsets():
    assert Config.from_env({"INFLUENCERS_TZ": "UTC"}).utc_offset == "+00:00"
    assert Config.from_env({"INFLUENCERS_TZ": "Asia/Kolkata"}).utc_offset == "+05:30"


def test_url_decoding():
    settings = parse_mysql_url("mysql://us%20er:p%3Aw@10.0.0.1/influencers")
    assert (settings.user, settings.password, settings.host, settings.port) == ("us er", "p:w", "10.0.0.1", 3306)
