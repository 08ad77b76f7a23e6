"""An account's identity on the wire: its proxy, user agent and headers on every request it sends.

Platforms link the accounts of one operator by what their requests have in common (one address,
one user agent); each account therefore carries its own `Identity` (`influencers.core.identities`),
and every request the account middleware sends for it — the login, every listing page, and the
browser context of its ``js`` pages — goes out dressed in it (`dress`). A request that moves to
another account is undressed first (`undress`): nothing of one account's proxy, credentials or
headers may ride along on a request of another.

A failure between us and an account's proxy (the proxy refuses the connection, asks for
credentials with 407, a tunnel or TLS handshake through it fails, a timeout) is the proxy's, not
the platform's and not the account's standing with it: `proxy_fault` names it, and the middleware
takes the account out of rotation for a back-off instead of banning it or counting a platform
outage.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from scrapy import Request
from scrapy.http import Response

from influencers.core.account_model import Identity
from influencers.core.redact import redact_text

#: The header names the middleware set on a request for its account (identity and session), so
#: a request moving to another account loses exactly those.
META_DRESSED = "influencers_dressed_headers"
#: Meta keys a request carries for its account's proxy and browser context.
PROXY_STAMPS = ("proxy", "_auth_proxy", "playwright_context_kwargs")
PROXY_AUTH_REQUIRED = 407


def dress(request: Request, identity: Identity, session_headers: dict[str, str] | None = None) -> None:
    """Put ``identity`` (and the session's headers) on ``request``, in place."""
    meta = request.meta
    names: list[str] = list(meta.get(META_DRESSED, ()))
    if identity.proxy_url:
        meta["proxy"] = identity.proxy_url
    headers = dict(identity.headers)
    if identity.user_agent:
        headers["User-Agent"] = identity.user_agent
    headers.update(session_headers or {})
    for name, value in headers.items():
        request.headers[name] = value
        names.append(name)
    meta[META_DRESSED] = names
    if meta.get("playwright"):
        meta["playwright_context_kwargs"] = browser_context(identity)


def undress(meta: dict[str, Any], headers: Any) -> None:
    """Take off what `dress` put on (``meta`` and ``headers`` of a request about to be copied)."""
    for name in meta.pop(META_DRESSED, ()):
        headers.pop(name, None)
    headers.pop("Proxy-Authorization", None)
    for key in PROXY_STAMPS:
        meta.pop(key, None)


def browser_context(identity: Identity) -> dict[str, Any]:
    """Playwright's ``new_context`` arguments for the account's own browser context."""
    kwargs: dict[str, Any] = {}
    if identity.proxy_url:
        parts = urlsplit(identity.proxy_url)
        proxy = {"server": f"{parts.scheme}://{parts.hostname}:{parts.port}"}
        if parts.username:
            proxy["username"] = unquote(parts.username)
            proxy["password"] = unquote(parts.password or "")
        kwargs["proxy"] = proxy
    if identity.user_agent:
        kwargs["user_agent"] = identity.user_agent
    if identity.headers:
        kwargs["extra_http_headers"] = dict(identity.headers)
    return kwargs


def proxy_fault(request: Request, *, exception: BaseException | None = None, response: Response | None = None,
                transport_errors: tuple[type[BaseException], ...] = ()) -> str | None:
    """Why this failure is the proxy's (None: the request used no proxy, or it is not)."""
    if not request.meta.get("proxy"):
        return None
    if response is not None:
        return "the proxy refused our credentials (HTTP 407)" if response.status == PROXY_AUTH_REQUIRED else None
    if exception is not None and isinstance(exception, transport_errors):
        text = redact_text(str(exception).splitlines()[0])[:200] if str(exception) else ""
        return f"{type(exception).__name__}{': ' + text if text else ''}"
    return None
