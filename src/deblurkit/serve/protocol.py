"""uvicorn's HTTP/1.1 protocol with a deadline on request headers.

uvicorn times out idle keep-alive connections, and the app times out stalled bodies, but
nothing ends a connection that opens and never finishes its request line and headers: a
few dozen such clients fill `limit_concurrency` and every other client gets 503, with no
token needed (the token is checked after the headers). Here a connection waiting for a
request's headers (h11's IDLE state for the client) gets `seconds` to send them; then it
is answered 408 and closed, and its slot is free again.
"""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class HeaderDeadlineProtocol(H11Protocol):
    header_seconds: float = 20.0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()  # the next request on this connection: the same deadline

    def _arm_header_deadline(self) -> None:
        if not self.transport.is_closing():
            self.loop.call_later(self.header_seconds, self._header_deadline)

    def _header_deadline(self) -> None:
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return  # closed already, or the headers came (bodies have their own timeout)
        if self.cycle is not None and not self.cycle.response_complete:
            return
        self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()


def with_header_deadline(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for uvicorn.Config(http=...), with its header deadline."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_seconds": float(seconds)})
