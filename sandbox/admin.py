"""``/__admin/`` routes: counters, reset, the truth and runtime knobs, for tests and benchmarks.

No authentication: the sandbox binds to loopback by default and a crawler never needs these.
``/__admin/truth`` is the truth of the current growth day (``fans_growth`` and ``day``), so a
test that moves ``day`` with ``POST /__admin/config`` compares against what is served now.
``/__admin/stats`` adds to each account's counters its ``pages_today`` and the ``addresses`` and
``user_agents`` it used within the link window (``sandbox.linking``; empty while linking is off).
"""
from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.config import ConfigError
from sandbox.data import expected_rows

if TYPE_CHECKING:
    from sandbox.app import Site


_dumps = functools.partial(json.dumps, ensure_ascii=False)


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status, dumps=_dumps)


def _bad_request(message: str) -> web.Response:
    return _json({"error": {"code": "E_BAD_REQUEST", "message": message}}, status=400)


def add_admin_routes(app: web.Application, site: Site) -> None:
    async def stats(request: web.Request) -> web.Response:
        payload = site.stats.to_json()
        for username, counters in payload["accounts"].items():
            counters["pages_today"] = site.guard.pages_today(username)
            counters.update(site.linker.seen(username, site.knobs.link_window))
        payload["inserted"] = site.listing.inserted_uids()
        payload["listing_requests"] = site.listing.requests()
        payload["knobs"] = site.knobs.to_json()
        payload["api"] = site.settings.api
        return _json(payload)

    async def reset(request: web.Request) -> web.Response:
        site.reset()
        return _json({"ok": True})

    async def truth(request: web.Request) -> web.Response:
        settings = site.settings
        domain = request.query.get("domain", "")
        if domain not in settings.domains:
            return _bad_request(f"unknown domain {domain!r}")
        try:
            page_from = int(request.query.get("page_from", "1"))
            page_to = int(request.query.get("page_to", str(settings.pages)))
            items = expected_rows(domain, page_from, page_to, seed=settings.seed,
                                  pages=settings.pages, page_size=settings.page_size,
                                  fans_growth=site.knobs.fans_growth, day=site.knobs.day)
        except ValueError as exc:
            return _bad_request(str(exc))
        return _json({"items": items})

    async def get_config(request: web.Request) -> web.Response:
        return _json(site.knobs.to_json())

    async def post_config(request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ConfigError("expected a JSON object of knobs")
            site.apply_knobs(site.knobs.updated(changes))
        except ValueError as exc:  # ConfigError and JSON errors alike
            return _bad_request(str(exc))
        return _json(site.knobs.to_json())

    app.router.add_get("/__admin/stats", stats)
    app.router.add_post("/__admin/reset", reset)
    app.router.add_get("/__admin/truth", truth)
    app.router.add_get("/__admin/config", get_config)
    app.router.add_post("/__admin/config", post_config)
