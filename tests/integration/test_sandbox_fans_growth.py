"""``--fans-growth`` over real HTTP: moving ``day`` at runtime changes the fans every listing
serves (JSON, HTML, cursor API) and the truth, by exactly ``day`` seeded daily amounts."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from sandbox.data import daily_fans_growth, expected_rows
from tests.fixtures.sandbox import SandboxServer, rows_from_html

pytestmark = pytest.mark.timeout(60)

DOMAIN = "美妆"
PAGES = 3
SEED = 42


@pytest.fixture
def growing(start_sandbox: Any) -> SandboxServer:
    return start_sandbox(api="token-cursor", pages=PAGES, fans_growth=True)


def _v2_rows(server: SandboxServer) -> list[dict[str, Any]]:
    """Every row of DOMAIN through the cursor API, following next_cursor."""
    client = server.client()
    login = client.request("POST", "/api/v2/login",
                           json_body={"username": "demo2", "password": "sandbox-demo2"}).json()
    headers = {"X-Auth-Token": login["data"]["token"]}
    rows: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = urlencode({"domain": DOMAIN, "cursor": cursor})
        body = client.request("GET", f"/api/v2/influencers?{query}", headers=headers).json()
        assert body["code"] == 0, body
        rows += body["data"]["items"]
        if not body["data"]["has_more"]:
            return rows
        cursor = body["data"]["next_cursor"]


def _served(server: SandboxServer) -> dict[str, list[dict[str, Any]]]:
    """Page 2 as the JSON API and the HTML render serve it, and the whole cursor walk."""
    client = server.logged_in("demo1")
    return {
        "json": client.listing(DOMAIN, 2).json()["items"],
        "html": rows_from_html(client.listing(DOMAIN, 2, form="html").text),
        "v2": _v2_rows(server),
    }


def _fans_after(rows: list[dict[str, Any]], day: int) -> list[int]:
    return [max(0, r["fans"] + day * daily_fans_growth(SEED, r["uid"], r["fans"])) for r in rows]


def test_day_8_changes_fans_by_exactly_8_daily_amounts_everywhere(growing):
    knobs = growing.client().get("/__admin/config").json()
    assert (knobs["fans_growth"], knobs["day"]) == (True, 0)
    before = _served(growing)
    assert before["json"] == before["html"] == expected_rows(DOMAIN, 2, 2, pages=PAGES)
    assert before["v2"] == expected_rows(DOMAIN, pages=PAGES) == growing.truth(DOMAIN)

    assert growing.configure(day=8)["day"] == 8
    assert growing.client().get("/__admin/config").json()["day"] == 8
    after = _served(growing)
    for form in ("json", "html", "v2"):
        assert [r["uid"] for r in after[form]] == [r["uid"] for r in before[form]]
        assert [r["fans"] for r in after[form]] == _fans_after(before[form], 8), form
        unchanged = [{**r, "fans": 0} for r in after[form]]
        assert unchanged == [{**r, "fans": 0} for r in before[form]], form
    assert any(a["fans"] != b["fans"] for a, b in zip(after["v2"], before["v2"], strict=True))
    assert any(a["fans"] == b["fans"] for a, b in zip(after["v2"], before["v2"], strict=True))
    assert after["json"] == after["html"] == growing.truth(DOMAIN, 2, 2)
    assert after["v2"] == growing.truth(DOMAIN) == expected_rows(
        DOMAIN, pages=PAGES, fans_growth=True, day=8)

    growing.configure(day=0)  # cached pages of day 0 come back, not day 8's
    assert _served(growing) == before


def test_without_the_switch_the_day_changes_nothing(sandbox):
    sandbox.reset()
    try:
        client = sandbox.logged_in("demo1")
        before = client.listing(DOMAIN, 1).json()["items"]
        assert sandbox.configure(day=8)["fans_growth"] is False
        assert client.listing(DOMAIN, 1).json()["items"] == before == sandbox.truth(DOMAIN, 1, 1)
        sandbox.configure(fans_growth=True)  # switched on at runtime, too
        grown = client.listing(DOMAIN, 1).json()["items"]
        assert [r["fans"] for r in grown] == _fans_after(before, 8)
        assert grown == sandbox.truth(DOMAIN, 1, 1)
    finally:
        sandbox.reset()
    assert sandbox.client().get("/__admin/config").json()["day"] == 0
