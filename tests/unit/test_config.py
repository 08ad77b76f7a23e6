from __future__ import annotations

import pytest

from influencers.core.config import Config, parse_mysql_url
from influencers.core.errors import ConfigError


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


@pytest.mark.parametrize(
    ("url", "mode"),
    [
        ("mysql://root@127.0.0.1/x", "disabled"),  # loopback: no TLS context to build per connection
        ("mysql://root@localhost/x", "disabled"),
        ("mysql://root@[::1]/x", "disabled"),
        ("mysql://root@db.internal/x", "preferred"),  # elsewhere: pymysql's default
        ("mysql://root@10.0.0.1/x?tls=required", "required"),
        ("mysql://root@127.0.0.1/x?tls=PREFERRED", "preferred"),
        ("mysql://root@db/x?tls=disabled", "disabled"),
    ],
)
def test_tls_mode_by_host_and_option(url, mode):
    assert parse_mysql_url(url).tls_mode == mode


@pytest.mark.parametrize("url", ["mysql://root@db/x?tls=maybe", "mysql://root@db/x?ssl=1", "mysql://root@db/x?tls=on&x=1"])
def test_unknown_url_options_are_refused(url):
    with pytest.raises(ConfigError, match=r"\?tls=auto\|disabled\|preferred\|required"):
        parse_mysql_url(url)


@pytest.mark.parametrize("url", ["mysql://us%20er:p%40ss%2Fw%3Ard@10.0.0.1:3307/db?tls=required",
                                 "mysql://root:@[::1]:3306/influencers", "mysql://root:x@127.0.0.1:3306/a_b$"])
def test_connection_url_reads_back_as_the_same_settings(url):
    settings = parse_mysql_url(url)
    assert parse_mysql_url(settings.connection_url) == settings
