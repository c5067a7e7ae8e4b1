"""Unix stream sockets: ``listenUNIX`` / ``connectUNIX``.

The TCP machinery in ``reactor.tcp`` is family-neutral except for how a
socket is made and how an address is named; this module supplies those two
things for AF_UNIX, plus removing the socket file when the port stops (as
Twisted does, so the path can be listened on again).

``listenUNIX(wantPID=True)`` also holds a lock file ``<path>.lock`` naming
this process (``reactor.lockfile``): a second server on the same path is
refused while the first runs, and a socket file left by a crashed one is
removed.  ``connectUNIX(checkPID=True)`` fails with BadFileError unless a
live process holds that lock.
"""

from __future__ import annotations

import os
import socket
import stat
from typing import Any

from reactor import error, tcp
from reactor.address import UNIXAddress
from reactor.lockfile import FilesystemLock, isLocked


def unix_address(sockaddr: str | bytes) -> UNIXAddress:
    """The address object for what ``getsockname``/``accept`` return."""
    return UNIXAddress(sockaddr or None)


def _in_filesystem(path: str) -> bool:
    """Abstract-namespace names (leading NUL) have no file to remove."""
    return not path.startswith("\0")


class UNIXPort(tcp.Port):
    """A listening Unix socket at ``path``."""

    transport_class = tcp.Connection
    lockFile: FilesystemLock | None = None

    def __init__(self, reactor: Any, path: str, factory: Any, backlog: int = 50,
                 mode: int = 0o666, wantPID: bool = False) -> None:
        # Twisted reports a failed listen as CannotListenError(None, path, error).
        super().__init__(reactor, path, factory, backlog, interface=None)
        self.path = path
        self.mode = mode
        self.wantPID = wantPID

    def startListening(self) -> None:
        """Take the PID lock if asked to, then bind and listen."""
        if self.wantPID:
            self._take_lock()
        try:
            super().startListening()
        except BaseException:
            self._release_lock()
            raise

    def _take_lock(self) -> None:
        lock = FilesystemLock(_lock_name(self.path))
        if not lock.lock():
            raise error.CannotListenError(None, self.path, "Cannot acquire lock")
        self.lockFile = lock
        if not lock.clean:
            # The last owner died without cleaning up: its socket file is in
            # the way of bind().  Only a socket is removed (not a file named
            # by mistake).
            try:
                if stat.S_ISSOCK(os.stat(self.path).st_mode):
                    os.unlink(self.path)
            except OSError:
                pass  # bind() will say what is wrong

    def _release_lock(self) -> None:
        if self.lockFile is not None:
            self.lockFile.unlock()
            self.lockFile = None

    def _make_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            if _in_filesystem(self.path):
                os.chmod(self.path, self.mode)
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
            if was_listening:
                self._release_lock()


class UNIXConnector(tcp.Connector):
    """Connects a ClientFactory to the Unix socket at ``path``."""

    transport_class = tcp.Connection

    def __init__(self, reactor: Any, path: str, factory: Any, timeout: float | None = 30,
                 checkPID: bool = False) -> None:
        super().__init__(reactor, path, None, factory, timeout)
        self.path = path
        self.checkPID = checkPID

    def _make_socket(self, sockaddr: Any) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        return sock

    def _address(self, sockaddr: Any) -> UNIXAddress:
        return unix_address(sockaddr)

    def _begin(self, attempt: Any) -> None:
        if self.checkPID and not isLocked(_lock_name(self.path)):
            # Reported from the loop, as every failure to start connecting.
            self.reactor.callLater(0, attempt.fail, error.BadFileError(None, self.path))
            return
        attempt.start(self.path)

    def getDestination(self) -> UNIXAddress:
        """The socket path this connector connects to."""
        return UNIXAddress(self.path)


def _lock_name(path: str | bytes) -> str | bytes:
    if isinstance(path, bytes):
        return path + b".lock"
    return path + ".lock"


def listen_unix(reactor: Any, path: str, factory: Any, backlog: int = 50, mode: int = 0o666,
                wantPID: bool = False) -> UNIXPort:
    """reactor.listenUNIX: start listening at ``path`` and return the port."""
    p = UNIXPort(reactor, path, factory, backlog, mode, wantPID)
    p.startListening()
    return p


def connect_unix(reactor: Any, path: str, factory: Any, timeout: float | None = 30,
                 checkPID: bool = False) -> UNIXConnector:
    """reactor.connectUNIX: start connecting to ``path`` and return the connector."""
    c = UNIXConnector(reactor, path, factory, timeout, checkPID)
    c.connect()
    return c
