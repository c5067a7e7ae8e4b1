"""Unix stream sockets: ``listenUNIX`` / ``connectUNIX``.

The TCP machinery in ``reactor.tcp`` is family-neutral except for how a
socket is made and how an address is named; this module supplies those two
things for AF_UNIX, plus removing the socket file when the port stops (as
Twisted does, so the path can be listened on again).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from reactor import tcp
from reactor.address import UNIXAddress


def unix_address(sockaddr: str | bytes) -> UNIXAddress:
    """The address object for what ``getsockname``/``accept`` return."""
    return UNIXAddress(sockaddr or None)


def _in_filesystem(path: str) -> bool:
    """Abstract-namespace names (leading NUL) have no file to remove."""
    return not path.startswith("\0")


class UNIXPort(tcp.Port):
    """A listening Unix socket at ``path``."""

    transport_class = tcp.Connection

    def __init__(self, reactor: Any, path: str, factory: Any, backlog: int = 50) -> None:
        # Twisted reports a failed listen as CannotListenError(None, path, error).
        super().__init__(reactor, path, factory, backlog, interface=None)
        self.path = path

    def _make_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
        except OSError:
            sock.close()
            raise
        return sock

    def _address(self, sockaddr: Any) -> UNIXAddress:
        return unix_address(sockaddr)

    def _bound_address(self, sock: socket.socket) -> UNIXAddress:
        # The path as given: the kernel reports an abstract name as bytes.
        return UNIXAddress(self.path)

    def _listening_on(self) -> str:
        return repr(self.path)

    def _closed_message(self) -> str:
        return f"(UNIX Port {self.path} Closed)"

    def _stop(self) -> None:
        was_listening = self.connected
        try:
            super()._stop()
        finally:  # even if the factory's stopFactory raised
            if was_listening and _in_filesystem(self.path):
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass


class UNIXConnector(tcp.Connector):
    """Connects a ClientFactory to the Unix socket at ``path``."""

    transport_class = tcp.Connection

    def __init__(self, reactor: Any, path: str, factory: Any, timeout: float | None = 30) -> None:
        super().__init__(reactor, path, None, factory, timeout)
        self.path = path

    def _make_socket(self, sockaddr: Any) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        return sock

    def _address(self, sockaddr: Any) -> UNIXAddress:
        return unix_address(sockaddr)

    def _begin(self, attempt: Any) -> None:
        attempt.start(self.path)

    def getDestination(self) -> UNIXAddress:
        """The socket path this connector connects to."""
        return UNIXAddress(self.path)


def listen_unix(reactor: Any, path: str, factory: Any, backlog: int = 50) -> UNIXPort:
    """reactor.listenUNIX: start listening at ``path`` and return the port."""
    p = UNIXPort(reactor, path, factory, backlog)
    p.startListening()
    return p


def connect_unix(reactor: Any, path: str, factory: Any, timeout: float | None = 30) -> UNIXConnector:
    """reactor.connectUNIX: start connecting to ``path`` and return the connector."""
    c = UNIXConnector(reactor, path, factory, timeout)
    c.connect()
    return c
