"""Run the app under uvicorn on a socket we bind ourselves, so port 0 works and the real URL
is printed (`api serving http://127.0.0.1:PORT/`) for scripts and tests to read.

Logs: uvicorn's access log records method, path, query and status; bodies and headers (the
bearer token, account passwords) are never logged by anything here, and `logredact.RedactSecrets`
takes secret-looking query values and the API token out of every line.

Connections are bounded (`ServerLimits`): a request must be read within `request_read_timeout`
(`protocol.py`; uvicorn has no header timeout of its own), an idle keep-alive connection is
closed after `keep_alive`, a request head may not exceed `max_head_bytes`, and beyond
`max_connections` open connections a request is answered 503 at once.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import uvicorn

from influencers.api.app import create_app
from influencers.api.errors import ApiStartError
from influencers.api.protocol import deadline_protocol
from influencers.core.config import Config
from influencers.core.db import connect

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_FORMAT = '%(asctime)s %(levelname)s access: %(client_addr)s "%(request_line)s" %(status_code)s'


@dataclass(frozen=True)
class ServerLimits:
    """How long and how many clients the server holds; the defaults are the served values."""

    request_read_timeout: float = 10.0  # seconds from connect (or the last response) to a whole request
    keep_alive: int = 5  # seconds an idle keep-alive connection stays open
    max_head_bytes: int = 16 * 1024  # request line and headers (h11's incomplete-event limit)
    max_connections: int = 100  # open connections (and running requests) before 503


LIMITS = ServerLimits()


def log_config(api_token: str | None) -> dict[str, Any]:
    """uvicorn's dictConfig: access lines to stdout, the rest to stderr, secrets redacted in both."""
    redact = {"()": "influencers.api.logredact.RedactSecrets", "known": [api_token] if api_token else []}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": redact},
        "formatters": {
            "default": {"format": LOG_FORMAT},
            "access": {"()": "uvicorn.logging.AccessFormatter", "use_colors": False, "fmt": ACCESS_FORMAT},
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr",
                        "filters": ["redact"]},
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout",
                       "filters": ["redact"]},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "influencers": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }


def serve(config: Config, host: str, port: int, limits: ServerLimits = LIMITS) -> int:
    _check_database(config)
    sock = bind(host, port)
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(
        app, log_config=log_config(config.api_token), access_log=True, server_header=False, proxy_headers=False,
        http=deadline_protocol(limits.request_read_timeout), loop="asyncio", lifespan="off",
        timeout_graceful_shutdown=5, timeout_keep_alive=limits.keep_alive,
        h11_max_incomplete_event_size=limits.max_head_bytes, limit_concurrency=limits.max_connections,
    ))
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"api serving http://{shown}:{bound_port}/", flush=True)
    server.run(sockets=[sock])
    return 0


def bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        raise ApiStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _check_database(config: Config) -> None:
    """Fail at start, in one line, if MySQL is unreachable or has no schema."""
    conn = connect(config.mysql)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM tasks LIMIT 1")
    finally:
        conn.close()
