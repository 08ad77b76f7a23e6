"""uvicorn's h11 protocol with a deadline for reading each request.

uvicorn 0.54 (pinned) times out only an idle keep-alive connection *after* a response
(`timeout_keep_alive`); it has no header-read timeout. A client that connects and sends half a
request line, or trickles a header byte now and then, is held for ever, and enough of them use
up the process's file descriptors. Here a timer is armed whenever the server waits for a request
(on connect and after each response) and cancelled once the client has sent the whole request,
head and body; if it fires first the connection is closed. The app itself is not timed: a slow
database query still gets its answer.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)
#: The client's states in which the server is still reading its request.
READING = (h11.IDLE, h11.SEND_BODY)


class DeadlineH11Protocol(H11Protocol):
    """H11Protocol closing a connection whose request is not read within `read_timeout` s."""

    read_timeout: float = 10.0
    _read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_reading()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_reading()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _watch_reading(self) -> None:
        """Arm the deadline while a request is awaited or arriving; cancel it once read."""
        if self.transport.is_closing() or self.conn.their_state not in READING:
            self._cancel_deadline()
        elif self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout, self._on_deadline)

    def _cancel_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _on_deadline(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing() or self.conn.their_state not in READING:
            return
        logger.debug("closing a connection from %s: request not read within %s s", self.client, self.read_timeout)
        self.transport.close()


def deadline_protocol(read_timeout: float) -> type[DeadlineH11Protocol]:
    """The protocol class for `uvicorn.Config(http=...)` with this read deadline."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"read_timeout": read_timeout})
