"""A protocol that keeps what it receives, shared by the tests of the public API."""

from __future__ import annotations

from typing import Any

from reactor import defer, protocol


class Collect(protocol.Protocol):
    """Keeps the bytes received; ``done`` fires with them when the connection
    ends, ``reason`` being why.  ``tag`` tells instances apart."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.data = bytearray()
        self.done = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        self.reason = reason
        self.done.callback(bytes(self.data))
