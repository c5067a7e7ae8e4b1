"""TLS on the standard ``ssl`` module: ``reactor.listenSSL``,
``reactor.connectSSL``, ``transport.startTLS`` and the ``ssl:`` endpoints,
as in Twisted but without pyOpenSSL.

A context is an ``ssl.SSLContext``, or any object whose ``getContext()``
returns one (Twisted's contextFactory shape).  ``None`` means
``ssl.create_default_context()`` for a client (system CAs, hostname checked)
and is refused for a server, which needs a certificate.

The TLS connection is the TCP connection itself (``TLSConnection`` is a
``tcp.TCPConnection``): bytes read from the socket go into an
``ssl.SSLObject`` through memory BIOs, so the handshake and every record are
processed in the loop without ever blocking, and what the protocol writes
is encrypted into the same send buffer, flow control and producers included.
A trace therefore shows a TLS connection like a TCP one (its descriptor
typed ``TLSConnection``), naming the protocol's own methods.

As in Twisted: ``connectionMade`` comes at once, what is written before the
handshake completes is sent after it, and ``handshakeCompleted()`` is called
on a protocol that has it.  ``loseConnection`` sends close_notify and then
closes; a peer's close_notify is answered and ends the connection with
ConnectionDone; a TCP close without close_notify (a truncation) is
ConnectionLost; a failed handshake or a bad record ends it with the
``ssl.SSLError``.  Difference kept on purpose: after sending close_notify we
close without waiting for the peer's (allowed by RFC 8446 §6.1), where
Twisted waits for it.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reactor import defer, error, tcp
from reactor.failure import Failure


def _context(contextFactory: Any, server_side: bool) -> ssl.SSLContext:
    """The ``ssl.SSLContext`` for ``contextFactory`` (see the module docstring)."""
    if contextFactory is None:
        if server_side:
            raise TypeError("a TLS server needs a context with its certificate")
        return ssl.create_default_context()
    if isinstance(contextFactory, ssl.SSLContext):
        return contextFactory
    get_context = getattr(contextFactory, "getContext", None)
    if get_context is not None:
        context = get_context()
        if isinstance(context, ssl.SSLContext):
            return context
        raise TypeError(f"{contextFactory!r}.getContext() returned {context!r}, not an "
                        "ssl.SSLContext (pyOpenSSL contexts are not supported)")
    raise TypeError(f"expected an ssl.SSLContext or an object with getContext(), "
                    f"not {contextFactory!r}")


if TYPE_CHECKING:
    _ConnectionBase = tcp.Connection  # what the mixin is always mixed into
else:
    _ConnectionBase = object


class TLSMixin(_ConnectionBase):
    """TLS over a stream ``tcp.Connection``; mixed in before the connection
    class.  ``_setup_tls`` must run before the connection reads."""

    _handshake_done = False
    _tls_closing = False     # close_notify sent (or being answered): no more writes
    _peer_said_goodbye = False
    _lose_when_ready = False  # loseConnection waits for the handshake or the producer

    def _setup_tls(self, context: ssl.SSLContext, server_side: bool,
                   server_hostname: str | None) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = context.wrap_bio(self._incoming, self._outgoing,
                                           server_side=server_side,
                                           server_hostname=None if server_side else server_hostname)
        self._pending: list[bytes] = []  # written before the handshake completed

    def _start(self, protocol: Any) -> None:
        super()._start(protocol)
        if not self.disconnected:
            self._pump()  # a client sends its hello now

    # -- reading ----------------------------------------------------------------------
    def doRead(self) -> None:
        """Feed what the socket has to TLS; deliver what it decrypts."""
        if not self._reading:
            return
        try:
            raw = self.socket.recv(tcp.RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.connectionLost(Failure(error.ConnectionLost(str(exc))))
            return
        if not raw:
            self._raw_eof()
            return
        self.bytes_in += len(raw)
        self._incoming.write(raw)
        self._pump()

    def _pump(self) -> None:
        """Advance the handshake, then decrypt and deliver every complete
        record; send whatever TLS wants sent (handshake, alerts, tickets)."""
        tls = self.ssl_object
        if not self._handshake_done:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush_tls()
                return
            except ssl.SSLError as exc:
                self._tls_failed(exc)
                return
            self._handshake_completed()
            if self.disconnected:
                return
        received = self.protocol.dataReceived
        while not (self.disconnected or self.disconnecting):
            try:
                data = tls.read(tcp.RECV_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                data = b""
            except ssl.SSLError as exc:
                self._tls_failed(exc)
                return
            if not data:  # the peer's close_notify
                self._peer_said_goodbye = True
                self._close_tls()  # answered, then the connection closes
                return
            try:
                self._call_user("read", self, received, data)
            except Exception as exc:  # noqa: BLE001 - user code's error is logged and ends the connection
                self._user_code_failed(received, exc)
                return
        self._flush_tls()

    def _handshake_completed(self) -> None:
        """Send what waited for the handshake, then tell the protocol (which
        may close: what it wrote before is out first)."""
        self._handshake_done = True
        self._flush_tls()
        pending, self._pending = self._pending, []
        for data in pending:
            self.write(data)
        listener = getattr(self.protocol, "handshakeCompleted", None)
        if callable(listener):
            self._call("read", listener)
        if self._lose_when_ready:
            self.loseConnection()

    def _raw_eof(self) -> None:
        """The peer closed TCP: clean only after a close_notify either way."""
        if self._peer_said_goodbye or self._tls_closing:
            self.connectionLost(Failure(error.ConnectionDone()))
        else:
            self.connectionLost(Failure(error.ConnectionLost(
                "the peer closed the connection without a TLS close_notify")))

    def _tls_failed(self, exc: ssl.SSLError) -> None:
        """The handshake or a record failed: send TLS's alert if the socket
        takes it now, and end the connection with the SSL error."""
        alert = self._outgoing.read()
        if alert:
            try:
                self.socket.send(alert)
            except OSError:
                pass
        self.connectionLost(Failure(exc))

    # -- writing ----------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Encrypt and send ``data`` (queued until the handshake completes)."""
        if isinstance(data, str):
            raise TypeError("Data must be bytes, not str")
        if not data or not self.connected or self._tls_closing:
            return
        if not self._handshake_done:
            self._pending.append(bytes(data))
            return
        self.ssl_object.write(data)
        self._flush_tls()

    def _flush_tls(self) -> None:
        """Hand TLS's outgoing bytes to the socket (through the send buffer)."""
        raw = self._outgoing.read()
        if raw:
            super().write(raw)

    # -- closing --------------------------------------------------------------------
    def loseConnection(self) -> None:
        """Send close_notify once everything written is encrypted, then close.
        Before the handshake completes with nothing written: abort, as Twisted."""
        if not self.connected or self.disconnecting or self._tls_closing:
            return
        if not self._handshake_done:
            if self._pending:
                self._lose_when_ready = True
            else:
                self.abortConnection()
            return
        if self.producer is not None:
            self._lose_when_ready = True  # unregisterProducer closes
            return
        self._close_tls()

    def unregisterProducer(self) -> None:
        super().unregisterProducer()
        if self._lose_when_ready and self._handshake_done:
            self.loseConnection()

    def _close_tls(self) -> None:
        self._tls_closing = True
        self._lose_when_ready = False
        try:
            self.ssl_object.unwrap()
        except ssl.SSLError:
            pass  # SSLWantReadError: our close_notify is out, the peer's not in yet
        self._flush_tls()
        super().loseConnection()

    def getPeerCertificate(self) -> dict[str, Any] | None:
        """The peer's certificate as ``ssl.SSLObject.getpeercert()`` gives it
        (Twisted gives a pyOpenSSL X509; empty dict if unverified, None
        before the handshake or if the peer sent none)."""
        return self.ssl_object.getpeercert()


class TLSConnection(TLSMixin, tcp.TCPConnection):
    """A TLS connection over TCP (listenSSL, connectSSL, startTLS on TCP)."""

    def __init__(self, *args: Any, tls_context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if tls_context is not None:
            self._setup_tls(tls_context, self._role == "server", server_hostname)


_tls_classes: dict[type, type] = {tcp.TCPConnection: TLSConnection}


def _tls_class(cls: type) -> type:
    """The TLS version of a connection class (Unix connections get one too)."""
    tls_cls = _tls_classes.get(cls)
    if tls_cls is None:
        tls_cls = _tls_classes[cls] = type(f"TLS{cls.__name__}", (TLSMixin, cls), {})
    return tls_cls


def start_tls(transport: Any, contextFactory: Any, normal: bool = True) -> None:
    """``transport.startTLS``: from now on the connection speaks TLS; what was
    written before is sent in the clear first.  The server side of the TCP
    connection is the TLS server, or the client with ``normal=False``."""
    if isinstance(transport, TLSMixin):
        raise RuntimeError("TLS is already started on this connection")  # noqa: TRY004 - a state
    server_side = (transport._role == "server") == bool(normal)
    # The name to check the server's certificate against: the one connected
    # to (not the resolved address); a Unix socket has none.
    connector = transport.connector
    host = getattr(transport._peer, "host", None)
    if host is not None and connector is not None:
        host = connector.host
    transport.__class__ = _tls_class(type(transport))
    transport._setup_tls(_context(contextFactory, server_side), server_side, host)
    transport._pump()


# -- listening and connecting ------------------------------------------------------------

def listen_ssl(reactor: Any, port: int, factory: Any, contextFactory: Any, backlog: int = 50,
               interface: str = "") -> tcp.Port:
    """reactor.listenSSL: a TCP port whose connections speak TLS as servers."""
    p = tcp.Port(reactor, port, factory, backlog, interface)
    p.transport_class = functools.partial(TLSConnection,
                                          tls_context=_context(contextFactory, True))
    p.startListening()
    return p


def connect_ssl(reactor: Any, host: str, port: int, factory: Any, contextFactory: Any,
                timeout: float | None = 30, bindAddress: Any = None) -> tcp.Connector:
    """reactor.connectSSL: a TCP connector whose connection speaks TLS as a
    client, checking the certificate against ``host`` if the context says so."""
    c = tcp.Connector(reactor, host, port, factory, timeout, bindAddress)
    c.transport_class = functools.partial(TLSConnection, server_hostname=host,
                                          tls_context=_context(contextFactory, False))
    c.connect()
    return c


# -- endpoints -----------------------------------------------------------------------------

class SSL4ServerEndpoint:
    """Listen for TLS over TCP/IPv4 (``reactor.listenSSL``)."""

    def __init__(self, reactor: Any, port: int, sslContextFactory: Any, backlog: int = 50,
                 interface: str = "") -> None:
        self._reactor = reactor
        self._port = port
        self._sslContextFactory = sslContextFactory
        self._backlog = backlog
        self._interface = interface

    def listen(self, protocolFactory: Any) -> defer.Deferred:
        """A Deferred of the listening port."""
        return defer.maybeDeferred(self._reactor.listenSSL, self._port, protocolFactory,
                                   self._sslContextFactory, backlog=self._backlog,
                                   interface=self._interface)


class SSL4ClientEndpoint:
    """Connect with TLS over TCP (``reactor.connectSSL``)."""

    def __init__(self, reactor: Any, host: str, port: int, sslContextFactory: Any,
                 timeout: float = 30, bindAddress: Any = None) -> None:
        self._reactor = reactor
        self._host = host
        self._port = port
        self._sslContextFactory = sslContextFactory
        self._timeout = timeout
        self._bindAddress = bindAddress

    def connect(self, protocolFactory: Any) -> defer.Deferred:
        """A Deferred of the connected protocol (fired before the handshake
        completes, as in Twisted)."""
        from reactor.endpoints import _connect_with

        return _connect_with(self._reactor, protocolFactory, lambda f: self._reactor.connectSSL(
            self._host, self._port, f, self._sslContextFactory, timeout=self._timeout,
            bindAddress=self._bindAddress))


def server_endpoint_from_args(reactor: Any, port: str, privateKey: str = "server.pem",
                              certKey: str | None = None, interface: str = "",
                              backlog: str = "50", **unsupported: str) -> SSL4ServerEndpoint:
    """``ssl:PORT:privateKey=KEY.pem[:certKey=CERT.pem][:interface=ADDR][:backlog=N]``;
    the certificate (with its chain after it) defaults to the key's file,
    as in Twisted.  Twisted's other arguments (extraCertChain,
    dhParameters...) are refused: ValueError."""
    if unsupported:
        raise ValueError(f"unsupported ssl: server arguments: {', '.join(sorted(unsupported))}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certKey or privateKey, privateKey)
    return SSL4ServerEndpoint(reactor, int(port), context, int(backlog), interface)


def client_endpoint_from_args(reactor: Any, host: str, port: int, caCertsDir: str | None = None,
                              certKey: str | None = None, privateKey: str | None = None,
                              timeout: int = 30, bindAddress: Any = None,
                              **unsupported: str) -> SSL4ClientEndpoint:
    """``ssl:HOST:PORT[:caCertsDir=DIR][:certKey=CERT.pem[:privateKey=KEY.pem]]``:
    the server's certificate is checked against HOST, with the system's CAs
    or every ``*.pem`` in caCertsDir (as Twisted reads it)."""
    if unsupported:
        raise ValueError(f"unsupported ssl: client arguments: {', '.join(sorted(unsupported))}")
    if caCertsDir is None:
        context = ssl.create_default_context()
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname and certificate checked
        for pem in sorted(Path(caCertsDir).glob("*.pem")):
            try:
                context.load_verify_locations(cafile=str(pem))
            except ssl.SSLError:
                continue  # not a certificate: ignored, as Twisted does
    if certKey is not None:
        context.load_cert_chain(certKey, privateKey)
    return SSL4ClientEndpoint(reactor, host, port, context, timeout, bindAddress)
