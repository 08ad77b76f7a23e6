"""`python -m influencers api [--host 127.0.0.1] [--port 8900]`.

Without INFLUENCERS_API_TOKEN the API runs only on a loopback address (open to local users,
with a warning in the log); on any other address it refuses to start with one line.
Importing this module loads no web framework: the CLI registers the command cheaply.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
from typing import Any

from influencers.argtypes import port_number
from influencers.core.errors import ConfigError

logger = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8900


def register(commands: Any) -> None:
    """Add the `api` sub-command to the CLI's sub-parsers."""
    api = commands.add_parser("api", help="serve the HTTP API and the dashboard")
    api.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    api.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                     help=f"port (default {DEFAULT_PORT}; 0 picks a free one and prints it)")
    api.set_defaults(handler=cmd_api)


def cmd_api(args: argparse.Namespace, ctx: Any) -> int:
    check_binding(args.host, ctx.config.api_token)
    if ctx.config.api_token is None:
        logger.warning("INFLUENCERS_API_TOKEN is not set: the API on %s is open to every local user", args.host)
    from influencers.api.server import serve  # the web stack loads only for this command

    return serve(ctx.config, args.host, args.port)


def check_binding(host: str, token: str | None) -> None:
    """The refuse-to-start rule: no token, no listening beyond loopback."""
    if token is None and not is_loopback(host):
        raise ConfigError(
            "INFLUENCERS_API_TOKEN",
            f"not set, so the API will not listen on {host}: set a token or use --host 127.0.0.1",
        )


def is_loopback(host: str) -> bool:
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False

