"""Scrapyd nodes as the dispatcher sees them: their URLs and credentials, what each says it is
running, and its JSON API over `requests` with timeouts; every failure is one `NodeError` line,
and node URLs in messages never carry credentials."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import requests

from influencers.core.errors import InfluencersError, InvalidArgument

SPIDER = "influencers"
DEFAULT_SLOTS = 2
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
SCHEDULE_TIMEOUT = 30.0  # schedule.json may run `scrapy list` first on a freshly started node


class NodeError(InfluencersError):
    """A Scrapyd node did not answer as expected."""


class AnswerLost(NodeError):
    """The request may have reached the node but its answer was lost (a job may be queued)."""


# -- nodes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One Scrapyd node: its URL without credentials (for messages) and its basic auth."""

    url: str
    slots: int
    auth: tuple[str, str] | None = field(default=None, repr=False)

    def endpoint(self, name: str) -> str:
        return f"{self.url}/{name}"


def parse_node(url: str, slots: int, default_auth: tuple[str, str] | None = None) -> Node:
    """`http://user:pass@host:6800[/prefix]` -> Node; credentials in the URL win over the default."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"--scrapyd {strip_credentials(url)!r} must be an http(s) URL like http://host:6800")
    try:
        port = parts.port
    except ValueError:
        raise InvalidArgument(f"--scrapyd {strip_credentials(url)!r}: the port is not a number") from None
    if slots < 1:
        raise InvalidArgument("--slots must be 1 or more")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port else host
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else default_auth
    return Node(url=base, slots=slots, auth=auth)


def strip_credentials(url: str) -> str:
    """The URL with any `user:password@` removed, for messages."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def pair_slots(urls: Sequence[str], slots: Sequence[int] | None) -> list[int]:
    """One `--slots` for every node, or one per `--scrapyd` in the same order."""
    if not slots:
        return [DEFAULT_SLOTS] * len(urls)
    if len(slots) == 1:
        return [slots[0]] * len(urls)
    if len(slots) == len(urls):
        return list(slots)
    raise InvalidArgument(f"give --slots once, or once per --scrapyd ({len(urls)}), not {len(slots)} times")


@dataclass
class NodeState:
    """What a node said this round."""

    node: Node
    running: int
    pending: int
    jobs: dict[str, str]  # our project's job id -> pending | running | finished
    promised: int = 0  # jobs handed to it during this round

    @property
    def free(self) -> int:
        return self.node.slots - self.running - self.pending - self.promised


def choose_node(states: Iterable[NodeState]) -> NodeState | None:
    """The node with the most free slots; ties go to the one with fewer jobs, then the first."""
    best: NodeState | None = None
    for state in states:
        if state.free <= 0:
            continue
        if best is None or (state.free, -(state.running + state.pending + state.promised)) > (
            best.free, -(best.running + best.pending + best.promised)
        ):
            best = state
    return best


class ScrapydClient:
    """Scrapyd's JSON API over `requests`, with timeouts; every failure is one `NodeError` line."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self.session = session or requests.Session()

    def status(self, node: Node, project: str) -> NodeState:
        daemon = self._call(node, "GET", "daemonstatus.json", {})
        jobs = self._call(node, "GET", "listjobs.json", {"project": project})
        known = {job["id"]: state for state in ("pending", "running", "finished") for job in jobs.get(state, [])}
        return NodeState(node, running=int(daemon.get("running", 0)), pending=int(daemon.get("pending", 0)), jobs=known)

    def schedule(self, node: Node, project: str, job_id: str, arguments: dict[str, str]) -> None:
        data = {"project": project, "spider": SPIDER, "jobid": job_id, **arguments}
        self._call(node, "POST", "schedule.json", data, read_timeout=SCHEDULE_TIMEOUT)

    def _call(self, node: Node, method: str, name: str, params: dict[str, str], *,
              read_timeout: float = READ_TIMEOUT) -> dict[str, Any]:
        key = "data" if method == "POST" else "params"
        try:
            response = self.session.request(method, node.endpoint(name), auth=node.auth,
                                            timeout=(CONNECT_TIMEOUT, read_timeout), **{key: params})
        except requests.exceptions.ConnectTimeout:
            raise NodeError(f"{name}: no connection within {CONNECT_TIMEOUT:g}s") from None
        except requests.exceptions.ReadTimeout:
            raise AnswerLost(f"{name}: no answer within {read_timeout:g}s") from None
        except requests.exceptions.ConnectionError as exc:
            problem = _connection_problem(exc)
            if problem is None:  # dropped after the request went out
                raise AnswerLost(f"{name}: the connection broke before the answer") from None
            raise NodeError(f"{name}: {problem}") from None
        except requests.exceptions.RequestException as exc:
            raise NodeError(f"{name}: {type(exc).__name__}") from None
        return parse_answer(name, response.status_code, response.content)


def parse_answer(name: str, status_code: int, body: bytes) -> dict[str, Any]:
    """Scrapyd's JSON answer, or a NodeError naming what is wrong with it."""
    if status_code == 401:
        raise NodeError(f"{name}: HTTP 401 Unauthorized (check the node's username and password)")
    if status_code != 200:
        raise NodeError(f"{name}: HTTP {status_code}")
    try:
        answer = json.loads(body)
    except ValueError:
        raise NodeError(f"{name}: the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise NodeError(f"{name}: the answer is not a JSON object")
    if answer.get("status") != "ok":
        message = str(answer.get("message") or "no message").strip().splitlines()
        raise NodeError(f"{name}: {(message[-1] if message else 'error')[:200]}")
    return answer


def _connection_problem(exc: BaseException) -> str | None:
    """What kept the request from reaching the node; None if it may have been sent."""
    text = repr(exc)
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "unknown host"
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused (is scrapyd running?)"
    return None
