"""Domain names, the subtask cap, URL redaction and the command-line value types (issue 18)."""

from __future__ import annotations

import argparse

import pytest

from influencers.argtypes import OneLineParser, positive_int, seconds, utf8_text
from influencers.core.errors import InvalidArgument
from influencers.core.redact import redact_text, redact_url
from influencers.core.tasks import validate_domain
from influencers.core.tasks.creating import MAX_SUBTASKS, TaskCreation, subtask_count


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("ＡＢ美妆", "AB美妆"),  # full-width letters
        ("ﬁtness", "fitness"),  # the ligature
        ("cafe\u0301", "café"),  # decomposed: composed
        ("母婴－亲子", "母婴-亲子"),  # a full-width '-' inside becomes '-', which is fine there
    ],
)
def test_domain_is_nfkc_normalised(given, stored):
    assert validate_domain(given) == stored


@pytest.mark.parametrize(
    ("domain", "fragment"),
    [
        ("美\u200b妆", "U+200B ZERO WIDTH SPACE"),
        ("美\u200c妆", "U+200C"),
        ("美\u200d妆", "U+200D"),
        ("美\u2060妆", "U+2060"),
        ("\ufeff美妆", "U+FEFF"),
        ("美\u00ad妆", "U+00AD SOFT HYPHEN"),
        ("美\u3164妆", "U+1160"),  # Hangul filler (NFKC turns U+3164 into U+1160)
        *[(f"美{chr(code)}妆", f"U+{code:04X}") for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))],
        ("\u200e美妆", "U+200E"),
        ("美妆\u200f", "U+200F"),
        ("美妆\x1b]8;;http://evil.example\x07", "U+001B"),
        ("美\n妆", "U+000A"),
        ("美\x7f妆", "U+007F"),
        ("美\u2028妆", "U+2028"),
        ("美\ue000妆", "private-use"),
        ("美\udcff妆", "not valid UTF-8"),
        ("../../etc", "path separator"),
        ("a\\b", "path separator"),
        ("-rf", "must not start with '-'"),
        ("－rf", "must not start with '-'"),  # full-width hyphen-minus: NFKC makes it '-'
        (" --help", "must not start with '-'"),
    ],
)
def test_domain_refused_with_one_clear_line(domain, fragment):
    with pytest.raises(InvalidArgument) as refused:
        validate_domain(domain)
    message = str(refused.value)
    assert fragment in message
    assert "\n" not in message and "\x1b" not in message and "\u202e" not in message  # safe to print


@pytest.mark.parametrize(("pages", "split", "fragment"), [
    (20_000, 1, "makes 20000 subtasks; at most 1000"),
    (MAX_SUBTASKS + 1, 1, f"at most {MAX_SUBTASKS}"),
    (100_001, 1000, "more than 100000 pages"),
])
def test_create_crawl_refuses_more_than_the_cap_before_touching_the_database(pages, split, fragment):
    creation = TaskCreation()
    creation.conn = None  # any statement would fail: the refusal comes first
    with pytest.raises(InvalidArgument, match=fragment):
        creation.create_crawl("美妆", pages, split)


def test_subtask_count():
    assert subtask_count(1000, 1) == MAX_SUBTASKS
    assert subtask_count(25, 10) == 3
    assert subtask_count(5, 10**12) == 1


def test_the_api_shares_the_cap():
    from influencers.api import schemas

    assert schemas.MAX_SUBTASKS is MAX_SUBTASKS


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pass@host:8800/x?q=1", "http://user:***@host:8800/x?q=1"),
        ("https://token@host/", "https://***@host/"),
        ("http://u:p%40ss@word@host", "http://u:***@host"),  # the last '@' ends the userinfo
        ("http://127.0.0.1:8800", "http://127.0.0.1:8800"),
        ("http://host/a@b", "http://host/a@b"),  # an '@' in the path is no userinfo
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_url_that_urlsplit_refuses():
    assert redact_url("http://user:pw@[::1") == "http://user:***@[::1"


def test_redact_text():
    text = "nodes http://a:s3cret@n1:6800 and https://tok@n2/ and mailto:x@y"
    assert redact_text(text) == "nodes http://a:***@n1:6800 and https://***@n2/ and mailto:x@y"


@pytest.mark.parametrize(("value", "fragment"), [
    ("inf", "'inf' is not a number of seconds"),
    ("-inf", "'-inf' is not a number of seconds"),
    ("nan", "'nan' is not a number of seconds"),  # was "must be more than 0"
    ("Infinity", "not a number of seconds"),
    ("1e300", "1e300 must be 86400 or less"),  # finite, but no clock function takes it
])
def test_seconds_refuses_what_no_wait_can_take(value, fragment):
    with pytest.raises(argparse.ArgumentTypeError, match=fragment):
        seconds(value)
    assert seconds("0.5") == 0.5 and seconds("86400") == 86400


def test_utf8_text_refuses_a_lone_surrogate():
    assert utf8_text("账号一") == "账号一"
    with pytest.raises(argparse.ArgumentTypeError, match="not valid UTF-8"):
        utf8_text("demo\udcff")


def test_one_line_parser_errors_are_one_line(capsys):
    parser = OneLineParser(prog="prog")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run").add_argument("--n", type=positive_int)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["run", "--n", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "prog run: error: argument --n: 0 must be 1 or more\n"
