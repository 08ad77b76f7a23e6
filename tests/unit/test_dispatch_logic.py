"""The dispatcher's pure parts: node URLs and credentials, slots, node choice, verdicts, answers."""

from __future__ import annotations

import pytest

from influencers.core.config import Config
from influencers.core.errors import InvalidArgument
from influencers.dispatch import (
    Dispatch,
    Node,
    NodeError,
    NodeState,
    choose_node,
    dispatch_reason,
    nodes_from_args,
    pair_slots,
    parse_answer,
    parse_dispatch_reason,
    parse_node,
    strip_credentials,
    verdict,
)


def state(url: str, slots: int, running: int = 0, pending: int = 0, jobs: dict[str, str] | None = None) -> NodeState:
    return NodeState(Node(url, slots), running=running, pending=pending, jobs=jobs or {})


def test_credentials_in_the_url_become_basic_auth_and_leave_the_url():
    node = parse_node("http://ops:p%40ss%3Aw@10.0.0.5:6800/", 3)
    assert node.url == "http://10.0.0.5:6800"
    assert node.auth == ("ops", "p@ss:w")
    assert "p@ss" not in repr(node)
    assert node.endpoint("schedule.json") == "http://10.0.0.5:6800/schedule.json"


def test_a_url_without_credentials_takes_the_default_and_keeps_its_prefix():
    node = parse_node("https://scrapyd.example/cluster/a/", 1, ("env-user", "env-pass"))
    assert node.url == "https://scrapyd.example/cluster/a"
    assert node.auth == ("env-user", "env-pass")
    assert parse_node("http://127.0.0.1:6800", 1).auth is None


@pytest.mark.parametrize("url", ["127.0.0.1:6800", "ftp://host:6800", "http://", "http://u:secret@host:notaport"])
def test_malformed_urls_are_refused_without_echoing_a_password(url):
    with pytest.raises(InvalidArgument) as caught:
        parse_node(url, 1)
    assert "secret" not in str(caught.value)


def test_strip_credentials():
    assert strip_credentials("http://u:secret@h:6800/x") == "http://h:6800/x"
    assert strip_credentials("http://h:6800") == "http://h:6800"


def test_slots_once_for_all_or_once_per_node():
    assert pair_slots(["a", "b"], None) == [2, 2]
    assert pair_slots(["a", "b"], [4]) == [4, 4]
    assert pair_slots(["a", "b"], [4, 1]) == [4, 1]
    with pytest.raises(InvalidArgument):
        pair_slots(["a", "b", "c"], [4, 1])


def test_environment_credentials_come_through_config():
    config = Config.from_env({"SCRAPYD_USERNAME": "ops", "SCRAPYD_PASSWORD": "pw%1"})
    first, second = nodes_from_args(["http://h1:6800", "http://me:mine@h2:6800"], [3], config)
    assert first.auth == ("ops", "pw%1")
    assert second.auth == ("me", "mine")
    assert "pw%1" not in repr(config)
    assert nodes_from_args(["http://h1:6800"], None, Config.from_env({}))[0].auth is None


def test_the_node_with_most_free_slots_wins_and_ties_spread():
    a, b = state("a", 2), state("b", 2)
    picks = []
    for _ in range(4):
        chosen = choose_node([a, b])
        chosen.promised += 1
        picks.append(chosen.node.url)
    assert picks == ["a", "b", "a", "b"]
    assert choose_node([a, b]) is None


def test_running_and_pending_jobs_take_slots():
    assert choose_node([state("a", 2, running=1, pending=1), state("b", 1, pending=1)]) is None
    assert choose_node([state("a", 4, running=1), state("b", 2)]).node.url == "a"
    assert choose_node([state("a", 3, running=1), state("b", 2)]).node.url == "b"  # same room, fewer jobs


def test_dispatch_reason_round_trips():
    node = Node("http://127.0.0.1:6801", 1, ("u", "secret"))
    reason = dispatch_reason("task7-0a1b2c3d", node)
    assert "secret" not in reason
    assert parse_dispatch_reason(reason) == ("task7-0a1b2c3d", "http://127.0.0.1:6801")
    assert parse_dispatch_reason("pages 1-10 of task 3") is None
    assert parse_dispatch_reason(None) is None


def dispatch(age: float = 1.0, node: str = "http://n1") -> Dispatch:
    return Dispatch(task_id=7, job_id="task7-x", node_url=node, age=age)


def test_a_job_still_queued_or_running_keeps_its_dispatch_however_old():
    for where in ("pending", "running"):
        states = {"http://n1": state("http://n1", 1, jobs={"task7-x": where})}
        assert verdict(dispatch(age=10_000), states, grace=60) is None


def test_a_finished_job_ends_its_dispatch_at_once():
    states = {"http://n1": state("http://n1", 1, jobs={"task7-x": "finished"})}
    assert "ended without claiming" in verdict(dispatch(age=0.5), states, grace=60)


def test_an_unknown_job_ends_its_dispatch_only_after_the_grace():
    states = {"http://n1": state("http://n1", 1)}
    assert verdict(dispatch(age=5), states, grace=60) is None
    assert "unknown to http://n1" in verdict(dispatch(age=61), states, grace=60)


def test_a_silent_node_says_nothing_about_its_jobs():
    assert verdict(dispatch(age=10_000), {}, grace=60) is None


def test_scrapyd_answers():
    assert parse_answer("x.json", 200, b'{"status": "ok", "running": 1}')["running"] == 1
    cases = {
        (401, b"Unauthorized"): "HTTP 401 Unauthorized",
        (503, b"busy"): "HTTP 503",
        (200, b"<html>"): "not JSON",
        (200, b"[1]"): "not a JSON object",
        (200, b"{\"status\": \"error\", \"message\": \"no such project\"}"): "no such project",
    }
    for (code, body), expected in cases.items():
        with pytest.raises(NodeError) as caught:
            parse_answer("listjobs.json", code, body)
        assert expected in str(caught.value)
        assert str(caught.value).startswith("listjobs.json: ")
