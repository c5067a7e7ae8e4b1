"""Exceptions the reactor and its transports raise, named and shaped as in Twisted.

Code written for ``twisted.internet.error`` catches the same names here, so a
port only changes the import.  ``CONNECTION_DONE`` and ``CONNECTION_LOST`` are
the instances a descriptor returns from ``doRead``/``doWrite`` to say it ended.
"""

from __future__ import annotations

import errno
import socket


def _describe(self: BaseException) -> str:
    """The first line of the class docstring plus the args, the way Twisted
    prints these errors ("Connection was closed cleanly: Connection done.")."""
    text = (type(self).__doc__ or type(self).__name__).strip().splitlines()[0].rstrip(".")
    if self.args:
        text += ": " + " ".join(str(a) for a in self.args)
    return text + "."


class _Described(Exception):
    """An error whose ``str`` is built by :func:`_describe`."""

    __str__ = _describe


class BindError(_Described):
    """An error occurred binding to an interface."""


class CannotListenError(BindError):
    """This gets raised by a call to startListening, when the object cannot start listening."""

    def __init__(self, interface: str | None, port: int | str,
                 socketError: BaseException | str) -> None:
        BindError.__init__(self, interface, port, socketError)
        self.interface = interface
        self.port = port
        self.socketError = socketError

    def __str__(self) -> str:
        iface = self.interface or "any"
        return f"Couldn't listen on {iface}:{self.port}: {self.socketError}."


class ConnectError(Exception):
    """An error occurred while connecting."""

    def __init__(self, osError: object = None, string: object = "") -> None:
        self.osError = osError
        Exception.__init__(self, string)

    def __str__(self) -> str:
        text = (self.__doc__ or type(self).__name__).strip().splitlines()[0].rstrip(".")
        if self.osError:
            text = f"{text}: {self.osError}"
        if self.args[0]:
            text = f"{text}: {self.args[0]}"
        return text + "."


class ConnectBindError(ConnectError):
    """Couldn't bind."""


class UnknownHostError(ConnectError):
    """Hostname couldn't be looked up."""


class DNSLookupError(IOError):
    """DNS lookup failed."""

    __str__ = _describe


class NoRouteError(ConnectError):
    """No route to host."""


class ConnectionRefusedError(ConnectError):
    """Connection was refused by other side."""


class TCPTimedOutError(ConnectError):
    """TCP connection timed out."""


class BadFileError(ConnectError):
    """File used for UNIX socket is no good."""


class ServiceNameUnknownError(ConnectError):
    """Service name given as port is unknown."""


class UserError(ConnectError):
    """User aborted connection."""


class TimeoutError(UserError):
    """User timeout caused connection failure."""


class SSLError(ConnectError):
    """An SSL error occurred."""


class MessageLengthError(_Described):
    """Message is too long to send."""


class InvalidAddressError(ValueError):
    """An invalid address was specified (neither IPv4 nor IPv6, or the
    other one of the two than expected)."""

    def __init__(self, address: object, message: str) -> None:
        super().__init__(address, message)
        self.address = address
        self.message = message


class ConnectingCancelledError(Exception):
    """An ``Exception`` that will be raised when an ``IStreamClientEndpoint`` is cancelled."""

    def __init__(self, address: object) -> None:
        Exception.__init__(self, address)
        self.address = address


class NotConnectingError(_Described, RuntimeError):
    """The Connector was not connecting when it was asked to stop connecting."""


class NotListeningError(_Described, RuntimeError):
    """The Port was not listening when it was asked to stop listening."""


class ConnectionClosed(_Described):
    """Connection was closed, whether cleanly or non-cleanly."""


class ConnectionLost(ConnectionClosed):
    """Connection to the other side was lost in a non-clean fashion."""


class ConnectionAborted(ConnectionLost):
    """Connection was aborted locally, using abortConnection."""


class ConnectionDone(ConnectionClosed):
    """Connection was closed cleanly."""


class ConnectionFdescWentAway(ConnectionLost):
    """Uh."""  # Twisted's own (in)famous docstring for a descriptor whose fd vanished


class AlreadyCalled(ValueError):
    """Tried to cancel an already-called event."""

    __str__ = _describe


class AlreadyCancelled(ValueError):
    """Tried to cancel an already-cancelled event."""

    __str__ = _describe


class ReactorNotRunning(RuntimeError):
    """Error raised when trying to stop a reactor which is not running."""


class ReactorNotRestartable(RuntimeError):
    """Error raised when trying to run a reactor which was stopped."""


class ReactorAlreadyRunning(RuntimeError):
    """Error raised when trying to start the reactor multiple times."""


_CONNECT_ERRORS: dict[int, type[ConnectError]] = {
    errno.ENETUNREACH: NoRouteError,
    errno.EHOSTUNREACH: NoRouteError,
    errno.ECONNREFUSED: ConnectionRefusedError,
    errno.ETIMEDOUT: TCPTimedOutError,
}


def getConnectError(e: BaseException | tuple) -> ConnectError:
    """Map an OS-level connect failure (an exception, or an ``(errno,
    message)`` tuple) to the matching ConnectError, as Twisted does, so
    clientConnectionFailed sees ConnectionRefusedError rather than OSError."""
    args = e.args if isinstance(e, BaseException) else e
    try:
        number, string = args
    except (TypeError, ValueError):
        return ConnectError(string=e)
    if isinstance(e, socket.gaierror):
        return UnknownHostError(number, string)
    return _CONNECT_ERRORS.get(number, ConnectError)(number, string)


CONNECTION_DONE = ConnectionDone("Connection done")
CONNECTION_LOST = ConnectionLost("Connection lost")


class NoProtocol(Exception):
    """The factory given to a client endpoint returned None from buildProtocol."""


class ProcessDone(ConnectionDone):
    """A process has ended without apparent errors.

    Given to ``processEnded`` (wrapped in a Failure) when the exit code is 0.
    """

    def __init__(self, status: int) -> None:
        Exception.__init__(self, "process finished with exit code 0")
        self.exitCode = 0
        self.signal = None
        self.status = status


class ProcessTerminated(ConnectionLost):
    """A process has ended with a probable error condition.

    ``exitCode`` is the exit code (None if a signal ended it), ``signal`` the
    signal number (None if it exited), ``status`` the raw wait status.
    """

    def __init__(self, exitCode: int | None = None, signal: int | None = None,
                 status: int | None = None) -> None:
        self.exitCode = exitCode
        self.signal = signal
        self.status = status
        text = "process ended"
        if exitCode is not None:
            text += f" with exit code {exitCode}"
        if signal is not None:
            text += f" by signal {signal}"
        Exception.__init__(self, text)


class ProcessExitedAlready(Exception):
    """The process has already exited: the operation can no longer be done."""

