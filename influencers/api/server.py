"""Run the app under uvicorn on a socket we bind ourselves, so port 0 works and the real URL
is printed (`api serving http://127.0.0.1:PORT/`) for scripts and tests to read.

Logs: uvicorn's access log records method, path, query and status; bodies and headers (the
bearer token, account passwords) are never logged by anything here.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from influencers.api.app import create_app
from influencers.api.errors import ApiStartError
from influencers.core.config import Config
from influencers.core.db import connect

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {"format": LOG_FORMAT},
        "access": {"()": "uvicorn.logging.AccessFormatter", "use_colors": False,
                   "fmt": '%(asctime)s %(levelname)s access: %(client_addr)s "%(request_line)s" %(status_code)s'},
    },
    "handlers": {
        "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        "influencers": {"handlers": ["default"], "level": "INFO", "propagate": False},
    },
}


def serve(config: Config, host: str, port: int) -> int:
    _check_database(config)
    sock = bind(host, port)
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(
        app, log_config=LOG_CONFIG, access_log=True, server_header=False, proxy_headers=False,
        http="h11", loop="asyncio", lifespan="off", timeout_graceful_shutdown=5,
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
