"""Defences against requests a web page makes the operator's browser send.

- DNS rebinding: a page on `evil.example` whose name later resolves to 127.0.0.1 reaches the API
  from the browser as same-origin, but its requests still say `Host: evil.example`. Without
  INFLUENCERS_API_TOKEN nothing else stands in its way, so `LoopbackHostMiddleware` answers only
  requests whose Host is a loopback name or address (421 otherwise, 400 for a missing or malformed
  Host). With a token the bearer check already keeps such a page out, and the API may be reached
  by any name.
- Cross-site forms: a `<form method=post>` on any site can POST to the API without a CORS
  preflight, but only as `application/x-www-form-urlencoded`, `multipart/form-data` or
  `text/plain`. `require_json` refuses (415) a state-changing request that does not say
  `Content-Type: application/json` — an empty body included — which a page can only send after
  a preflight this API never grants. It runs after the token check, so a caller without the
  token still learns only 401.
"""

from __future__ import annotations

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from influencers.api.command import is_loopback
from influencers.api.errors import ApiError, error_response

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_MEDIA_TYPE = "application/json"


async def require_json(request: Request) -> None:
    """415 for a state-changing request that is not declared JSON (a form cannot declare it)."""
    if request.method not in STATE_CHANGING:
        return
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise ApiError(415, "unsupported_media_type",
                       f"{request.method} needs Content-Type: {JSON_MEDIA_TYPE}, also with an empty body")


def host_name(value: str) -> str | None:
    """The name or address of a Host header (`[::1]:8900` -> `::1`); None when malformed."""
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name
    name, colon, port = value.partition(":")
    if colon and not port.isdigit():  # also a bare IPv6 address, which Host must bracket
        return None
    return name or None


def loopback_host(headers: list[tuple[bytes, bytes]]) -> bool | None:
    """True for one loopback Host header, False for a foreign one, None for none/several/garbage."""
    hosts = [value for name, value in headers if name == b"host"]
    if len(hosts) != 1:
        return None
    try:
        name = host_name(hosts[0].decode("ascii").strip())
    except UnicodeDecodeError:
        return None
    return None if name is None else is_loopback(name)


class LoopbackHostMiddleware:
    """Answers only requests addressed to a loopback name (no-token mode only; see module doc)."""

    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verdict = loopback_host(list(scope.get("headers") or []))
        if verdict is None:
            response = error_response(400, "bad_host", "the request needs exactly one well-formed Host header")
        elif not verdict:
            response = error_response(
                421, "misdirected_request",
                "without INFLUENCERS_API_TOKEN this API answers only requests addressed to localhost,"
                " 127.0.0.0/8 or [::1] (the Host header names another host)")
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
