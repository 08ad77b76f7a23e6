"""Captchas a client can solve (``--captcha-solvable``) over real HTTP, in both API styles: a
captcha fate challenges the account until it answers the arithmetic question; with the knob
off a captcha stays a one-off."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from parsel import Selector

from sandbox.captcha import make_challenge
from tests.fixtures.sandbox import Reply, SandboxClient, SandboxServer

pytestmark = pytest.mark.timeout(60)
QUESTION = re.compile(r"^([1-9]) \+ ([1-9])$")


@pytest.fixture
def site(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    sandbox.reset()
    yield sandbox
    sandbox.reset()


class V2:
    """A client of /api/v2 holding one account's token."""

    def __init__(self, server: SandboxServer, username: str) -> None:
        self.http = SandboxClient(server.url)
        body = self.http.request("POST", "/api/v2/login", json_body={
            "username": username, "password": f"sandbox-{username}"}).json()
        assert body["code"] == 0, body
        self.token = body["data"]["token"]

    def page(self, domain: str = "美妆") -> dict[str, Any]:
        reply = self.http.request("GET", f"/api/v2/influencers?{urlencode({'domain': domain})}",
                                  headers={"X-Auth-Token": self.token})
        assert reply.status == 200, reply.text[:200]
        return reply.json()

    def verify(self, challenge_id: Any, answer: Any, token: str | None = None) -> Reply:
        return self.http.request("POST", "/api/v2/verify",
                                 json_body={"challenge_id": challenge_id, "answer": answer},
                                 headers={"X-Auth-Token": self.token if token is None else token})


def answer(challenge: dict[str, str]) -> int:
    match = QUESTION.match(challenge["question"])
    assert match, challenge
    return int(match[1]) + int(match[2])


def v1_challenge(client: SandboxClient, domain: str = "美妆") -> dict[str, str]:
    """The challenge of a JSON listing answered with the captcha."""
    reply = client.listing(domain)
    assert reply.status == 200
    body = reply.json()
    assert body["error"]["code"] == "E_CAPTCHA" and body["captcha"] is True, body
    assert set(body["challenge"]) == {"id", "question"}
    return body["challenge"]


def v2_challenge(api: V2) -> dict[str, str]:
    body = api.page()
    assert body["code"] == 40302 and body["msg"] == "请完成安全验证", body
    assert "/api/v2/verify?ticket=" in body["verify_url"]
    assert set(body["challenge"]) == {"id", "question"}
    return body["challenge"]


def counters(server: SandboxServer, username: str = "demo1") -> dict[str, Any]:
    return server.admin_stats()["accounts"][username]


# -- form-page (/api/v1, /square, POST /captcha) ----------------------------------------


def test_v1_a_captcha_challenges_the_account_until_it_answers(site):
    site.configure(captcha_rate=1.0, captcha_solvable=True)
    client = site.logged_in("demo1")
    first = v1_challenge(client)
    assert first == make_challenge(42, "demo1", 1).to_json()  # seed 42: reproducible
    site.configure(captcha_rate=0.0)  # from now on only the challenge answers with captchas

    assert v1_challenge(client, "游戏") == first  # still challenged, same question
    page = Selector(text=client.listing("美妆", 1, "html").text)
    assert page.css("#captcha::attr(data-code)").get() == "E_CAPTCHA"
    assert page.css("#captcha::attr(data-challenge-id)").get() == first["id"]
    assert page.css("#captcha span.question::text").get() == first["question"]
    assert page.css("#captcha-form::attr(action)").get() == "/captcha"
    assert page.css("input[name=challenge_id]::attr(value)").get() == first["id"]
    assert not page.css("table")

    wrong = client.answer_captcha(first["id"], answer(first) + 1)
    assert wrong.status == 403
    assert wrong.json() == {"error": {"code": "E_CAPTCHA_WRONG", "message": "验证码错误"}}
    second = v1_challenge(client)  # still challenged; the answered question is retired
    assert second["id"] != first["id"]
    assert client.answer_captcha(first["id"], answer(first)).status == 403  # an old id

    right = client.answer_captcha(second["id"], answer(second))
    assert (right.status, right.json()) == (200, {"ok": True})
    for form in ("json", "html"):
        assert client.listing("美妆", 2, form).status == 200
    assert client.listing("美妆", 2).json()["items"] == site.truth("美妆", 2, 2)
    stats = counters(site)
    assert (stats["captchas"], stats["captchas_solved"], stats["captchas_failed"]) == (4, 1, 2)
    assert stats["logins"] == 1  # the session stayed valid throughout


def test_v1_the_html_form_posts_the_answer(site):
    site.configure(captcha_rate=1.0, captcha_solvable=True)
    client = site.logged_in("demo2")
    page = Selector(text=client.listing("母婴", 3, "html").text)
    site.configure(captcha_rate=0.0)
    question = page.css("#captcha span.question::text").get()
    fields = {i.attrib["name"]: i.attrib.get("value", "") for i in page.css("#captcha-form input")}
    fields["answer"] = str(answer({"question": question}))
    assert client.request("POST", "/captcha", form=fields).json() == {"ok": True}
    assert client.listing("母婴", 3).json()["items"] == site.truth("母婴", 3, 3)


def test_v1_one_accounts_challenge_is_its_own(site):
    site.configure(captcha_rate=1.0, captcha_solvable=True)
    demo1, demo2 = site.logged_in("demo1"), site.logged_in("demo2")
    challenge = v1_challenge(demo1)
    site.configure(captcha_rate=0.0)
    assert demo2.listing("美妆").json()["items"] == site.truth("美妆", 1, 1)
    assert demo2.answer_captcha(challenge["id"], answer(challenge)).status == 403
    assert v1_challenge(demo1) == challenge  # another account's attempt changed nothing
    assert site.client().answer_captcha(challenge["id"], answer(challenge)).status == 401
    assert counters(site, "demo2")["captchas_failed"] == 1
    assert counters(site, "demo2")["captchas"] == 0


def test_v1_knob_off_a_captcha_is_a_one_off(site):
    site.configure(captcha_rate=1.0)
    client = site.logged_in("demo1")
    assert client.listing("美妆").json() == {
        "error": {"code": "E_CAPTCHA", "message": "请完成安全验证"}, "captcha": True}
    page = Selector(text=client.listing("美妆", 1, "html").text)
    assert page.css("#captcha::attr(data-code)").get() == "E_CAPTCHA"
    assert page.css("#captcha::attr(data-challenge-id)").get() is None
    site.configure(captcha_rate=0.0)
    assert client.listing("美妆").status == 200
    assert "items" in client.listing("美妆").json()
    refused = client.answer_captcha("anything", 7)
    assert (refused.status, refused.json()["error"]["code"]) == (403, "E_CAPTCHA_WRONG")


def test_switching_the_knob_off_lifts_every_challenge(site):
    site.configure(captcha_rate=1.0, captcha_solvable=True)
    client = site.logged_in("demo1")
    v1_challenge(client)
    site.configure(captcha_rate=0.0, captcha_solvable=False)
    assert "items" in client.listing("美妆").json()
    site.configure(captcha_solvable=True)
    assert "items" in client.listing("美妆").json()


# -- token-cursor (/api/v2, POST /api/v2/verify) ----------------------------------------


def test_v2_a_captcha_challenges_the_account_until_it_answers(token_cursor_site):
    site = token_cursor_site
    site.configure(captcha_rate=1.0, captcha_solvable=True)
    api = V2(site, "demo1")
    first = v2_challenge(api)
    assert first == make_challenge(42, "demo1", 1).to_json()
    site.configure(captcha_rate=0.0)
    assert v2_challenge(api) == first

    wrong = api.verify(first["id"], answer(first) + 1)
    assert wrong.status == 200
    assert wrong.json() == {"code": 40303, "msg": "captcha answer wrong"}
    second = v2_challenge(api)
    assert second["id"] != first["id"]
    assert api.verify(first["id"], answer(first)).json()["code"] == 40303  # an old id
    assert api.verify("no-such-id", 3).json()["code"] == 40303
    assert v2_challenge(api) == second  # an unknown id leaves the question in place

    assert api.verify(second["id"], answer(second)).json() == {"code": 0}
    body = api.page()
    assert body["code"] == 0
    assert body["data"]["items"] == site.truth("美妆", 1, 1)
    stats = counters(site)
    assert (stats["captchas"], stats["captchas_solved"], stats["captchas_failed"]) == (4, 1, 3)
    assert stats["logins"] == 1


def test_v2_one_accounts_challenge_is_its_own_and_spans_both_styles(token_cursor_site):
    site = token_cursor_site
    site.configure(captcha_rate=1.0, captcha_solvable=True)
    demo1, demo2 = V2(site, "demo1"), V2(site, "demo2")
    challenge = v2_challenge(demo1)
    site.configure(captcha_rate=0.0)
    assert demo2.page()["code"] == 0
    assert demo2.verify(challenge["id"], answer(challenge)).json()["code"] == 40303

    browser = site.logged_in("demo1")  # the same account through /api/v1 is challenged too
    assert v1_challenge(browser) == challenge
    assert browser.answer_captcha(challenge["id"], answer(challenge)).json() == {"ok": True}
    assert demo1.page()["code"] == 0


def test_v2_refusals_of_the_answer(token_cursor_site):
    site = token_cursor_site
    site.configure(captcha_rate=1.0, captcha_solvable=True)
    api = V2(site, "demo1")
    challenge = v2_challenge(api)
    assert api.verify(challenge["id"], answer(challenge), token="not-a-token").json() == {
        "code": 40101, "msg": "token expired"}
    malformed = api.http.request("POST", "/api/v2/verify", json_body=[1],
                                 headers={"X-Auth-Token": api.token})
    assert malformed.json() == {"code": 40000, "msg": "参数错误"}
    assert api.verify(challenge["id"], True).json()["code"] == 40303  # not a number
    assert counters(site)["captchas_failed"] == 1


def test_v2_knob_off_a_captcha_is_a_one_off(token_cursor_site):
    site = token_cursor_site
    site.configure(captcha_rate=1.0)
    api = V2(site, "demo1")
    body = api.page()
    assert body["code"] == 40302 and "challenge" not in body
    assert set(body) == {"code", "msg", "verify_url"}
    site.configure(captcha_rate=0.0)
    assert api.page()["code"] == 0
    assert api.verify("anything", 7).json() == {"code": 40303, "msg": "captcha answer wrong"}
