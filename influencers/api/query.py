"""Unknown or repeated query parameters are an error, not silently ignored: `?stat=paused` (a
typo for `state`) would otherwise return every task. The allowed names per operation are read from the
OpenAPI document, so they are exactly what the document says."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request

from influencers.api.errors import ApiError

Operations = list[tuple[re.Pattern[str], str, frozenset[str]]]


async def reject_unknown_query(request: Request) -> None:
    if not request.query_params:
        return
    allowed = allowed_query(request.app, request.method, request.url.path)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        expected = ", ".join(sorted(allowed)) or "none"
        message = f"query.{unknown[0]}: unknown parameter (this operation takes: {expected})"
        raise ApiError(422, "invalid_request", message)
    # Every parameter is a single value: `?domain=a&domain=b` is ambiguous, not "the last one".
    repeated = sorted(name for name in set(request.query_params) if len(request.query_params.getlist(name)) > 1)
    if repeated:
        raise ApiError(422, "invalid_request", f"query.{repeated[0]}: given more than once")


def allowed_query(app: FastAPI, method: str, path: str) -> frozenset[str]:
    for pattern, operation_method, names in _operations(app):
        if operation_method == method.lower() and pattern.fullmatch(path):
            return names
    return frozenset()


def _operations(app: FastAPI) -> Operations:
    """(path regex, method, query names) for every documented operation, literal paths first."""
    cached: Operations | None = getattr(app.state, "query_operations", None)
    if cached is None:
        cached = []
        for path, methods in sorted(app.openapi()["paths"].items(), key=lambda item: item[0].count("{")):
            pattern = re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)))
            for method, spec in methods.items():
                names = frozenset(p["name"] for p in spec.get("parameters", []) if p.get("in") == "query")
                cached.append((pattern, method, names))
        app.state.query_operations = cached
    return cached
