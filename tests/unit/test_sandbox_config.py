"""Sandbox settings: the profile table, flag overrides, validation and bad-argument exits."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.cli import parse_args
from sandbox.config import PROFILES, ConfigError, Knobs, SiteSettings, load_accounts

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_clean_profile_has_no_misbehaviour_and_hostile_has_all_of_it():
    assert PROFILES["clean"] == Knobs()
    hostile = PROFILES["hostile"]
    assert (hostile.rate_limit, hostile.daily_page_cap, hostile.ban_after, hostile.shift_every) \
        == (5, 200, 20, 50)
    assert min(hostile.captcha_rate, hostile.error_rate, hostile.slow_rate,
               hostile.malformed_rate) > 0
    realistic = PROFILES["realistic"]
    assert realistic.shift_every == 0
    assert not realistic.ban_accounts
    assert realistic.ban_after > 0


def test_flags_override_single_knobs_of_the_profile():
    options = parse_args(["--profile", "hostile", "--rate-limit", "0", "--captcha-rate", "0.5",
                          "--ban-accounts", "demo3,demo4", "--port", "0", "--pages", "3"])
    assert options.knobs.rate_limit == 0
    assert options.knobs.captcha_rate == 0.5
    assert options.knobs.ban_accounts == {"demo3", "demo4"}
    assert options.knobs.daily_page_cap == PROFILES["hostile"].daily_page_cap
    assert options.settings.pages == 3
    assert options.port == 0
    defaults = parse_args([])
    assert defaults.port == 8800
    assert defaults.host == "127.0.0.1"
    assert defaults.knobs == Knobs()
    assert defaults.knobs.session_ttl == 3600
    assert [a.username for a in defaults.settings.accounts] == [f"demo{i}" for i in range(1, 9)]


def test_account_linking_is_off_by_default_and_switched_by_flags():
    defaults = parse_args([]).knobs
    assert not defaults.link_accounts
    assert defaults.link_window == 300
    assert all(not profile.link_accounts for profile in PROFILES.values())
    on = parse_args(["--link-accounts", "--link-window", "2.5"]).knobs
    assert on.link_accounts
    assert on.link_window == 2.5
    assert not parse_args(["--link-accounts", "--no-link-accounts"]).knobs.link_accounts
    assert Knobs().updated({"link_accounts": True, "link_window": "60"}) == Knobs(
        link_accounts=True, link_window=60.0)
    assert Knobs(link_accounts=True).to_json()["link_accounts"] is True
    for bad in ({"link_accounts": "yes"}, {"link_accounts": 1}, {"link_window": 0},
                {"link_window": -1}):
        with pytest.raises(ConfigError):
            Knobs().updated(bad)


def test_solvable_captchas_are_off_by_default_and_switched_by_flags():
    assert not parse_args([]).knobs.captcha_solvable
    assert all(not profile.captcha_solvable for profile in PROFILES.values())
    assert parse_args(["--captcha-solvable"]).knobs.captcha_solvable
    assert not parse_args(["--captcha-solvable", "--no-captcha-solvable"]).knobs.captcha_solvable
    on = parse_args(["--profile", "hostile", "--captcha-solvable"]).knobs
    assert on.captcha_rate == PROFILES["hostile"].captcha_rate
    assert Knobs().updated({"captcha_solvable": True}) == Knobs(captcha_solvable=True)
    assert Knobs(captcha_solvable=True).to_json()["captcha_solvable"] is True
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError):
            Knobs().updated({"captcha_solvable": bad})


def test_knob_updates_are_validated():
    knobs = Knobs().updated({"captcha_rate": "0.25", "ban_accounts": "demo1, demo2", "slow_ms": 5})
    assert knobs.captcha_rate == 0.25
    assert knobs.ban_accounts == {"demo1", "demo2"}
    for bad in ({"captcha_rate": 1.5}, {"nope": 1}, {"retry_after": 0}, {"slow_ms": 1.5},
                {"rate_limit": -1}, {"session_ttl": 0}, {"error_rate": True}):
        with pytest.raises(ConfigError):
            Knobs().updated(bad)
    with pytest.raises(ConfigError, match="unknown accounts"):
        SiteSettings().check_knobs(Knobs(ban_accounts=frozenset({"ghost"})))
    with pytest.raises(ConfigError):
        SiteSettings(domains=("美妆", "美妆"))


def test_accounts_file(tmp_path):
    good = tmp_path / "accounts.json"
    good.write_text(json.dumps([{"username": "alice", "password": "pw"}]), encoding="utf-8")
    assert [a.username for a in load_accounts(good)] == ["alice"]
    assert "pw" not in repr(load_accounts(good))
    bad = tmp_path / "bad.json"
    for content in ("[]", "{", '[{"username": "a"}]', '[{"username":"a","password":"b"},'
                    '{"username":"a","password":"c"}]'):
        bad.write_text(content, encoding="utf-8")
        with pytest.raises(ConfigError):
            load_accounts(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_accounts(tmp_path / "missing.json")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", [
    ["--captcha-rate", "2"],
    ["--profile", "nasty"],
    ["--pages", "many"],
    ["--ban-accounts", "ghost"],
    ["--link-window", "0"],
    ["--link-accounts", "yes"],
    ["--captcha-solvable", "yes"],
    ["--accounts", "/nonexistent/accounts.json"],
])
def test_bad_arguments_exit_2_with_one_line(args):
    done = subprocess.run([sys.executable, "-m", "sandbox", "--port", "0", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("sandbox: error: ")
