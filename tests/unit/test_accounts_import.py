"""`accounts import`'s reading of a CSV file: every bad record found, each as one line that
never quotes a password or a proxy URL; the good ones validated as `accounts add` would."""

from __future__ import annotations

import pytest

from influencers.cli_accounts import MAX_IMPORT_ROWS, ImportRow, parse_import

PASSWORD = "Pw-导入-9e1f"
PROXY_PASSWORD = "ProxyPw-77aa"


def test_a_file_with_a_header_and_optional_fields():
    text = ("username,password,proxy,user_agent,daily_export_limit\r\n"
            f"账号一,{PASSWORD},http://u:{PROXY_PASSWORD}@proxy.example:3128,Mozilla/5.0 (X11),150\r\n"
            "demo2,pw2,,,\r\n"
            "demo3, pw3\r\n"  # the space after the comma is skipped
            '"demo,4","p,w4", https://p.example ,  UA  , 0\r\n'
            "\r\n")
    rows, problems = parse_import(text)
    assert problems == []
    assert rows == [
        ImportRow(2, "账号一", PASSWORD, f"http://u:{PROXY_PASSWORD}@proxy.example:3128", "Mozilla/5.0 (X11)", 150),
        ImportRow(3, "demo2", "pw2", None, None, 4000),
        ImportRow(4, "demo3", "pw3", None, None, 4000),
        ImportRow(5, "demo,4", "p,w4", "https://p.example:443", "UA", 0),
    ]
    assert PASSWORD not in repr(rows) and PROXY_PASSWORD not in repr(rows)


def test_the_header_is_optional_and_an_account_may_be_called_username_after_the_first_line():
    rows, problems = parse_import("a,pw\nusername,password\n")
    assert problems == [] and [row.username for row in rows] == ["a", "username"]
    rows, problems = parse_import("USERNAME , Password\na,pw\n")
    assert problems == [] and [row.username for row in rows] == ["a"]


def test_every_bad_record_is_one_line_and_no_secret_is_quoted():
    text = "\n".join([
        "username,password,proxy,user_agent,daily_export_limit",  # 1
        f"good,{PASSWORD}",                                        # 2
        "nopw,",                                                    # 3
        f"badproxy,{PASSWORD},socks5://u:{PROXY_PASSWORD}@h:1080",  # 4
        f"good,{PASSWORD}",                                         # 5: twice in the file
        f"badlimit,{PASSWORD},,,-1",                                # 6
        f"{PASSWORD},{PASSWORD},,,1_000",                            # 7 (a password typed into the username)
        f",{PASSWORD}",                                             # 8
        f"many,{PASSWORD},,,1,extra,{PASSWORD}",                     # 9
        f"badua,{PASSWORD},,ua\u202e,",                             # 10
        f"x,{PASSWORD},http://u:{PROXY_PASSWORD}@h:3128,,99999999999",  # 11
        f"inpool,{PASSWORD}",                                       # 12
        f"both,,ftp://u:{PROXY_PASSWORD}@h",                        # 13: two problems, one line
        f"fine,{PASSWORD},,,٣",                                      # 14: an Arabic-Indic digit
    ]) + "\n"
    rows, problems = parse_import(text, in_pool={"inpool"})
    lines = dict(problems)
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert [row.line for row in rows] == [2]
    assert lines[3] == "empty password"
    assert "SOCKS proxies are not supported" in lines[4]
    assert lines[5] == "username 'good' is also on line 2"
    assert "daily_export_limit must be a whole number" in lines[6]
    assert "daily_export_limit" in lines[7]
    assert "username must be 1 to 255 characters" in lines[8]
    assert "7 fields, expected at most 5" in lines[9]
    assert lines[10].startswith("user agent: ")
    assert "daily_export_limit" in lines[11]
    assert lines[12] == "username 'inpool' is already in the pool"
    assert "empty password" in lines[13] and "http:// or https://" in lines[13]
    for line in lines.values():
        assert PROXY_PASSWORD not in line and "\n" not in line
        assert PASSWORD not in line.replace(f"username {PASSWORD!r}", "")  # only ever a username quoted as one


def test_line_numbers_count_the_lines_of_a_quoted_field():
    rows, problems = parse_import('a,"pass\nword"\nb,\n')
    assert [row.line for row in rows] == [1] and rows[0].password == "pass\nword"
    assert problems == [(3, "empty password")]


def test_broken_quoting_stops_the_reading_and_says_where():
    rows, problems = parse_import('a,pw\nb,"unterminated\n')
    assert [row.line for row in rows] == [1]
    assert len(problems) == 1 and problems[0][0] == 2 and "not valid CSV" in problems[0][1]


def test_too_many_accounts_in_one_file():
    rows, problems = parse_import("".join(f"u{n},pw\n" for n in range(MAX_IMPORT_ROWS + 5)))
    assert len(rows) == MAX_IMPORT_ROWS
    assert problems == [(MAX_IMPORT_ROWS + 1, f"more than {MAX_IMPORT_ROWS} accounts in one file: split it")]


@pytest.mark.parametrize("text", ["", "\n\n", "username,password\n"])
def test_nothing_to_import(text):
    assert parse_import(text) == ([], [])
