"""The HTTP API and the live dashboard: `python -m influencers api [--host] [--port]`.

A JSON layer over the same core the CLI uses (`tasks`, `accounts`, `reports`): no rule lives
here, only translation between HTTP and those calls. Importing this package stays cheap (no
FastAPI) so the CLI can register the command without loading the web stack.

    command.py   the `api` sub-command and the refuse-to-start rule
    server.py    binds the socket, runs uvicorn with logs that never show bodies or headers
    app.py       the FastAPI application factory
    auth.py      bearer token check (constant time)
    deps.py      one fresh MySQL connection per request
    availability.py  a MySQL outage: quick 503s, one log line when it starts and one when it ends
    query.py     unknown query parameters are a 422, not silently ignored
    errors.py    the JSON error shape, exception handlers, last-resort middleware
    schemas.py   request and response models (the OpenAPI document)
    routes/      one module per resource
    static/      the dashboard (no CDN: plain HTML, CSS and JS)
"""

from influencers.api.command import register

__all__ = ["register"]
