"""Process lifecycle: bind, announce the URL, serve until SIGTERM/SIGINT, shut down cleanly.

The URL line is the only thing ever written to stdout, so a parent process (the test fixture,
the bench script) can start the sandbox on ``--port 0`` and read where it listens.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from sandbox.app import Site, build_app

log = logging.getLogger(__name__)


class ListenError(OSError):
    """The sandbox could not listen on the requested address."""


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(site: Site, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve ``site`` until SIGTERM or SIGINT; ``announce`` receives the URL line once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(build_app(site), access_log=None, handle_signals=False,
                           shutdown_timeout=1.0)
    await runner.setup()
    try:
        tcp = web.TCPSite(runner, host, port, backlog=1024)
        try:
            await tcp.start()
        except OSError as exc:
            raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        bound_host, bound_port = runner.addresses[0][:2]
        log.info("listening on %s", _url(bound_host, bound_port))
        announce(f"sandbox serving {_url(bound_host, bound_port)}")
        await stop.wait()
        log.info("signal received, shutting down")
    finally:
        await runner.cleanup()
