"""Endpoints, as Twisted's ``twisted.internet.endpoints``: where to listen or
connect, as an object (``TCP4ServerEndpoint(reactor, 8080)``) or a string
(``serverFromString(reactor, "tcp:8080:interface=127.0.0.1")``), so that
programs take their addresses from configuration.

A server endpoint's ``listen(factory)`` gives a Deferred of the listening
port; a client endpoint's ``connect(factory)`` a Deferred of the connected
protocol (cancel it to abandon the attempt).  ``connectProtocol`` connects
one protocol instance.

Strings: ``prefix:arg:arg:key=value...``, a backslash escaping the next
character (``quoteStringArgument`` adds them).  Prefixes: ``tcp``, ``tcp6``,
``unix`` and ``ssl`` (``reactor.tls`` says what its arguments are).  Twisted
has no ``tcp6:`` client string; here it makes a TCP6ClientEndpoint with
the arguments of ``tcp:``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from reactor import defer, error
from reactor.defer import Deferred
from reactor.protocol import ClientFactory, Factory
from reactor.threads import deferToThreadPool
from reactor.tls import (  # noqa: F401 (endpoints of this module, defined with TLS)
    SSL4ClientEndpoint,
    SSL4ServerEndpoint,
    client_endpoint_from_args,
    server_endpoint_from_args,
)


class _EndpointFactory(ClientFactory):
    """Connects for a client endpoint: builds the protocol with the user's
    factory and fires the endpoint's Deferred with it once it is connected.

    The protocol is not wrapped (unlike Twisted's endpoints), so traces and
    tracebacks name the user's methods.  The Deferred fires from the loop just
    after connectionMade, before any data can be delivered to the protocol.
    """

    noisy = False
    _connector: Any = None
    _pending: Any = None
    _protocol: Any = None

    def __init__(self, reactor: Any, wrapped: Any) -> None:
        self._reactor = reactor
        self._wrapped = wrapped
        self.deferred = Deferred(self._cancel)

    def startedConnecting(self, connector: Any) -> None:
        self._connector = connector

    def doStart(self) -> None:
        self._wrapped.doStart()

    def doStop(self) -> None:
        self._wrapped.doStop()

    def buildProtocol(self, addr: Any) -> Any:
        try:
            p = self._wrapped.buildProtocol(addr)
            if p is None:
                raise error.NoProtocol()
        except BaseException:  # noqa: BLE001 - any exception becomes the Failure, as in Twisted
            self.deferred.errback()
            return None
        self._protocol = p
        self._pending = self._reactor.callLater(0, self._connected)
        return p

    def _connected(self) -> None:
        self._pending = None
        self.deferred.callback(self._protocol)

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        if not self.deferred.called:
            self.deferred.errback(reason)

    def _cancel(self, d: Deferred) -> None:
        """Abandon the attempt: ConnectingCancelledError, as in Twisted.  If
        the connection was just made (the Deferred not yet fired), it is aborted."""
        connector = self._connector
        d.errback(error.ConnectingCancelledError(connector.getDestination()))
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
            self._protocol.transport.abortConnection()
        else:
            connector.stopConnecting()


def _connect_with(reactor: Any, factory: Any, connect: Callable[[Any], Any]) -> Deferred:
    """Start ``connect(endpoint_factory)``; the Deferred of the protocol."""
    endpoint_factory = _EndpointFactory(reactor, factory)
    try:
        connect(endpoint_factory)
    except Exception:  # noqa: BLE001 - any exception becomes the Failure, as in Twisted
        return defer.fail()
    return endpoint_factory.deferred


class TCP4ServerEndpoint:
    """Listen on a TCP port over IPv4 (``interface`` "" is every address)."""

    def __init__(self, reactor: Any, port: int, backlog: int = 50, interface: str = "") -> None:
        self._reactor = reactor
        self._port = port
        self._backlog = backlog
        self._interface = interface

    def listen(self, protocolFactory: Any) -> Deferred:
        """A Deferred of the listening port (CannotListenError if taken)."""
        return defer.maybeDeferred(self._reactor.listenTCP, self._port, protocolFactory,
                                   backlog=self._backlog, interface=self._interface)


class TCP6ServerEndpoint(TCP4ServerEndpoint):
    """Listen on a TCP port over IPv6 (``interface`` "::" is every address)."""

    def __init__(self, reactor: Any, port: int, backlog: int = 50, interface: str = "::") -> None:
        super().__init__(reactor, port, backlog, interface)


class TCP4ClientEndpoint:
    """Connect over TCP to ``host`` (a name is looked up in the thread pool)."""

    def __init__(self, reactor: Any, host: str, port: int, timeout: float = 30,
                 bindAddress: Any = None) -> None:
        self._reactor = reactor
        self._host = host
        self._port = port
        self._timeout = timeout
        self._bindAddress = bindAddress

    def connect(self, protocolFactory: Any) -> Deferred:
        """A Deferred of the connected protocol."""
        return self._connect_to(self._host, protocolFactory)

    def _connect_to(self, host: str, protocolFactory: Any) -> Deferred:
        return _connect_with(self._reactor, protocolFactory, lambda f: self._reactor.connectTCP(
            host, self._port, f, timeout=self._timeout, bindAddress=self._bindAddress))


class TCP6ClientEndpoint(TCP4ClientEndpoint):
    """Connect over TCP to an IPv6 ``host``: a literal, or a name looked up
    for its IPv6 addresses (getaddrinfo in the reactor's thread pool)."""

    def connect(self, protocolFactory: Any) -> Deferred:
        """A Deferred of the connected protocol (the first IPv6 address)."""
        try:
            socket.inet_pton(socket.AF_INET6, self._host)
        except OSError:
            pass
        else:
            return self._connect_to(self._host, protocolFactory)
        d = deferToThreadPool(self._reactor, self._reactor.getThreadPool(),
                              socket.getaddrinfo, self._host, 0, socket.AF_INET6)
        d.addCallback(lambda infos: infos[0][4][0])
        return d.addCallback(self._connect_to, protocolFactory)


class UNIXServerEndpoint:
    """Listen on a Unix socket path (see ``reactor.listenUNIX``)."""

    def __init__(self, reactor: Any, address: str, backlog: int = 50, mode: int = 0o666,
                 wantPID: bool = False) -> None:
        self._reactor = reactor
        self._address = address
        self._backlog = backlog
        self._mode = mode
        self._wantPID = wantPID

    def listen(self, protocolFactory: Any) -> Deferred:
        """A Deferred of the listening port."""
        return defer.maybeDeferred(self._reactor.listenUNIX, self._address, protocolFactory,
                                   backlog=self._backlog, mode=self._mode,
                                   wantPID=self._wantPID)


class UNIXClientEndpoint:
    """Connect to a Unix socket path (see ``reactor.connectUNIX``)."""

    def __init__(self, reactor: Any, path: str, timeout: float = 30,
                 checkPID: bool = False) -> None:
        self._reactor = reactor
        self._path = path
        self._timeout = timeout
        self._checkPID = checkPID

    def connect(self, protocolFactory: Any) -> Deferred:
        """A Deferred of the connected protocol."""
        return _connect_with(self._reactor, protocolFactory, lambda f: self._reactor.connectUNIX(
            self._path, f, timeout=self._timeout, checkPID=self._checkPID))


def connectProtocol(endpoint: Any, protocol: Any) -> Deferred:
    """Connect ``protocol`` (an instance) through ``endpoint``; a Deferred of it."""

    class OneShotFactory(Factory):
        def buildProtocol(self, addr: Any) -> Any:
            return protocol

    return endpoint.connect(OneShotFactory())


# -- strings ---------------------------------------------------------------------------------

def quoteStringArgument(argument: str) -> str:
    """Escape ``argument`` for an endpoint string (backslashes and colons)."""
    return argument.replace("\\", "\\\\").replace(":", "\\:")


def _parse(description: str | bytes) -> tuple[list[str], dict[str, str]]:
    """``"a:b:k=v=w:c"`` -> ``(["a", "b", "c"], {"k": "v=w"})``: fields split
    on ``:``, a field's first ``=`` splits a keyword from its value, and a
    backslash takes the next character literally."""
    if isinstance(description, bytes):
        description = description.decode("utf-8", "surrogateescape")
    args: list[str] = []
    kw: dict[str, str] = {}
    key: str | None = None
    current: list[str] = []
    chars = iter(description)

    def end_field() -> None:
        if key is None:
            args.append("".join(current))
        else:
            kw[key] = "".join(current)

    for c in chars:
        if c == "\\":
            current.append(next(chars, ""))
        elif c == ":":
            end_field()
            key, current = None, []
        elif c == "=" and key is None:
            key, current = "".join(current), []
        else:
            current.append(c)
    end_field()
    return args, kw


def _server_tcp(reactor: Any, port: str, interface: str = "", backlog: str = "50") -> Any:
    return TCP4ServerEndpoint(reactor, int(port), int(backlog), interface)


def _server_tcp6(reactor: Any, port: str, backlog: str = "50", interface: str = "::") -> Any:
    return TCP6ServerEndpoint(reactor, int(port), int(backlog), interface)


def _server_unix(reactor: Any, address: str, mode: str = "666", backlog: str = "50",
                 lockfile: str = "1") -> Any:
    return UNIXServerEndpoint(reactor, address, int(backlog), int(mode, 8),
                              bool(int(lockfile)))


def _server_ssl(reactor: Any, *args: str, **kw: str) -> Any:
    return server_endpoint_from_args(reactor, *args, **kw)


def _client_host_port(args: list[str], kw: dict[str, Any]) -> dict[str, Any]:
    """tcp/tcp6/ssl client arguments: host and port, positional or not."""
    if len(args) == 2:
        kw["host"], kw["port"] = args[0], args[1]
    elif len(args) == 1:
        kw["port" if "host" in kw else "host"] = args[0]
    elif args:
        raise TypeError(f"too many positional arguments: {args!r}")
    if "port" in kw:
        kw["port"] = int(kw["port"])
    if "timeout" in kw:
        kw["timeout"] = int(kw["timeout"])
    if "bindAddress" in kw:
        kw["bindAddress"] = (kw["bindAddress"], 0)
    return kw


def _client_tcp(reactor: Any, *args: str, **kw: Any) -> Any:
    return TCP4ClientEndpoint(reactor, **_client_host_port(list(args), kw))


def _client_tcp6(reactor: Any, *args: str, **kw: Any) -> Any:
    return TCP6ClientEndpoint(reactor, **_client_host_port(list(args), kw))


def _client_unix(reactor: Any, *args: str, **kw: Any) -> Any:
    if len(args) == 1:
        kw["path"] = args[0]
    elif args:
        raise TypeError(f"too many positional arguments: {args!r}")
    if "lockfile" in kw:
        kw["checkPID"] = bool(int(kw.pop("lockfile")))
    if "timeout" in kw:
        kw["timeout"] = int(kw["timeout"])
    return UNIXClientEndpoint(reactor, **kw)


def _client_ssl(reactor: Any, *args: str, **kw: Any) -> Any:
    return client_endpoint_from_args(reactor, **_client_host_port(list(args), kw))


_SERVERS: dict[str, Callable[..., Any]] = {
    "tcp": _server_tcp, "tcp6": _server_tcp6, "unix": _server_unix, "ssl": _server_ssl}
_CLIENTS: dict[str, Callable[..., Any]] = {
    "tcp": _client_tcp, "tcp6": _client_tcp6, "unix": _client_unix, "ssl": _client_ssl}


def _endpoint(table: dict[str, Callable[..., Any]], reactor: Any,
              description: str | bytes) -> Any:
    args, kw = _parse(description)
    kind = args.pop(0)
    make = table.get(kind.lower())
    if make is None:
        raise ValueError(f"Unknown endpoint type: '{kind.lower()}'")
    return make(reactor, *args, **kw)


def serverFromString(reactor: Any, description: str | bytes) -> Any:
    """A server endpoint from a string: ``tcp:PORT[:interface=ADDR][:backlog=N]``,
    ``tcp6:PORT[:interface=ADDR]...``, ``unix:PATH[:mode=OCTAL][:lockfile=0|1]``
    (lockfile defaults to 1, as in Twisted), ``ssl:PORT:privateKey=...``.
    ValueError for an unknown prefix, TypeError/ValueError for bad arguments."""
    return _endpoint(_SERVERS, reactor, description)


def clientFromString(reactor: Any, description: str | bytes) -> Any:
    """A client endpoint from a string: ``tcp:HOST:PORT[:timeout=S][:bindAddress=ADDR]``
    (``host=``/``port=`` keywords also work), ``tcp6:`` alike,
    ``unix:PATH[:timeout=S][:lockfile=0|1]``, ``ssl:HOST:PORT...``."""
    return _endpoint(_CLIENTS, reactor, description)
