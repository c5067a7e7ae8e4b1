"""TCP for the reactor: listening ports, outgoing connectors, and the
connection transport that moves bytes between a socket and a protocol.

Every object here is a descriptor the reactor polls.  They set
``_reports_own_calls`` so the loop calls ``doRead``/``doWrite`` directly and
they report the user code they run (``Echo.dataReceived``, not
``Connection.doRead``) through ``reactor._call_user`` themselves.

Port, Connector and Connection are written for any stream socket family;
``reactor.unix`` reuses them for Unix sockets by overriding how sockets are
made and how addresses are named.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
from collections.abc import Callable
from typing import Any, cast
from typing import Protocol as TypingProtocol

from reactor import _instrument, defer, error, log
from reactor.address import IPv4Address, IPv6Address
from reactor.failure import Failure
from reactor.interfaces import IHalfCloseableProtocol
from reactor.protocol import BaseProtocol, Protocol

_log = logging.getLogger("reactor")

RECV_SIZE = 65536
"""Bytes asked of the kernel per read: big enough that a fast sender is
drained in few calls, small enough not to waste memory per connection."""

HIGH_WATER = 65536
"""Buffered outgoing bytes above which a registered streaming producer is
paused.  It is resumed once the buffer has drained into the kernel (the low
water mark is zero, as in Twisted): the kernel's own socket buffer, hundreds
of KiB on loopback, keeps the connection busy while the producer refills
ours, and a TCP socket turns writable only when a good share of that buffer
is free, so the first send after a pause nearly always takes all of ours and
a nonzero user-space mark would hardly ever be seen."""

ACCEPTS_PER_READ = 128
"""Connections accepted per readiness of a listening socket, so a flood of
connects cannot starve the rest of the loop."""

ACCEPT_RETRY_DELAY = 0.1
"""Seconds a port stops accepting after running out of descriptors or
memory.  The pending connections keep its socket readable, so retrying at
once would spin the loop (and the log) until something is freed."""

_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_OUT_OF_DESCRIPTORS = {errno.EMFILE, errno.ENFILE}


class _ReservedDescriptor:
    """One descriptor held back for when the process runs out of them.

    accept() failing with EMFILE leaves the connection in the kernel's
    queue: its peer would wait, connected but unanswered, until descriptors
    are freed — perhaps for ever.  With one descriptor in reserve a port can
    release it, accept the connection just to close it (the peer sees the
    close at once, as with Twisted), and take the reserve back.
    """

    def __init__(self) -> None:
        self._fd: int | None = None

    def reserve(self) -> None:
        """Hold a descriptor, if not holding one already and one is free."""
        if self._fd is None:
            try:
                self._fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass  # out of them already: the next release retries

    def available(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_reserved_descriptor = _ReservedDescriptor()  # one per process, shared by every port


def tcp_address(sockaddr: Any) -> IPv4Address | IPv6Address:
    """The address object for a socket address returned by the socket module.
    A link-local IPv6 host is named with its scope (``fe80::1%eth0``), as
    Twisted names it and as it was given to listenTCP/connectTCP."""
    if len(sockaddr) == 4:
        host = sockaddr[0]
        if sockaddr[3] and "%" not in host:
            host = socket.getnameinfo(sockaddr, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)[0]
        return IPv6Address("TCP", host, sockaddr[1], sockaddr[2], sockaddr[3])
    return IPv4Address("TCP", sockaddr[0], sockaddr[1])


def _family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _is_ip_literal(host: str) -> bool:
    """Whether ``host`` needs no name lookup (a lookup would block the loop);
    a scoped IPv6 address (``fe80::1%eth0``) is one."""
    try:
        _sockaddr(host, 0)
    except (OSError, UnicodeError):
        return False
    return True


def _sockaddr(host: str, port: int) -> tuple:
    """The socket address for a numeric ``host``: ``(host, port)`` for IPv4,
    ``(host, port, flowinfo, scope_id)`` for IPv6, so that a link-local
    address keeps the interface its ``%eth0`` names.  Never a DNS lookup
    (AI_NUMERICHOST); ``socket.gaierror`` if ``host`` is not numeric."""
    if _family_of(host) == socket.AF_INET:
        socket.inet_pton(socket.AF_INET, host)
        return (host, port)
    info = socket.getaddrinfo(host, port, socket.AF_INET6, socket.SOCK_STREAM, 0,
                              socket.AI_NUMERICHOST)
    address, _, flowinfo, scope_id = cast("tuple[str, int, int, int]", info[0][4])  # AF_INET6
    # The port as given: getaddrinfo refuses a negative one but wraps 65536
    # to 0 silently, where connect() refuses it, as for IPv4 (and Twisted).
    return (address, port, flowinfo, scope_id)


def service_port(port: int | str) -> int:
    """A port given as a number or as a service name (``"http"``), as
    Twisted's connectTCP accepts; ServiceNameUnknownError for an unknown name."""
    if not isinstance(port, str):
        return port
    try:
        return socket.getservbyname(port, "tcp")
    except OSError as exc:
        raise error.ServiceNameUnknownError(string=f"{exc} ({port!r})") from None


def connect_error(err: int) -> Exception:
    """The Twisted exception for a failed connect() with errno ``err``."""
    return error.getConnectError((err, os.strerror(err)))


def _do_nothing() -> None:
    """doRead/doWrite of an aborted connection: no more I/O, whatever the
    protocol calls (loseConnection, resumeProducing...) before it is told."""


class StreamSocket(TypingProtocol):
    """What a Connection needs of its socket: a connected stream socket, or
    a pipe that behaves as one (``reactor.process``)."""

    def fileno(self) -> int: ...
    def send(self, data: bytes | bytearray | memoryview, /) -> int: ...
    def recv(self, size: int, /) -> bytes: ...
    def shutdown(self, how: int, /) -> None: ...
    def setsockopt(self, level: int, option: int, value: int | bytes, /) -> None: ...
    def close(self) -> None: ...


def _log_prefix(obj: Any) -> str:
    """What ``obj`` calls itself in log lines: its logPrefix(), else its class name."""
    prefix = getattr(obj, "logPrefix", None)
    return prefix() if callable(prefix) else type(obj).__name__


def _name(f: Callable[..., Any]) -> str:
    return getattr(f, "__qualname__", repr(f))


class Connection:
    """A connected stream socket as a transport for one protocol.

    Writes go straight to the socket while nothing is queued; the rest waits
    in a bytearray (cheap to append to and to consume from the front) until
    the socket is writable.  ``loseConnection`` closes only once that buffer
    is flushed; ``abortConnection`` drops it and resets the connection.
    """

    _reports_own_calls = True
    _trace_id = None

    producer: Any = None
    streamingProducer = False
    producerPaused = False
    disconnecting = False
    disconnected = False
    _aborting = False
    _reading = False
    _writing = False
    _read_closed = False
    _write_disconnecting = False
    _write_disconnected = False
    _protocol_name = "NoneType"

    def __init__(self, reactor: Any, sock: StreamSocket, role: str, host: Any, peer: Any,
                 connector: Connector | None = None) -> None:
        self.reactor = reactor
        self.socket = sock
        self.fileno = sock.fileno
        self._fd = sock.fileno()
        self._role = role
        self._host = host
        self._peer = peer
        self.connector = connector
        self.protocol: Any = None
        self.connected = True
        self.bytes_in = 0
        self.bytes_out = 0
        self._buffer = bytearray()
        self._call_user = reactor._call_user

    def __repr__(self) -> str:
        return f"<{self._protocol_name} #{self._fd} {self._role} peer={self._peer}>"

    def logPrefix(self) -> str:
        """Log lines about this transport are prefixed with its protocol's name."""
        return self._protocol_name

    def _start(self, protocol: Any) -> None:
        """Attach ``protocol``, start reading and tell the protocol it is connected."""
        self.protocol = protocol
        self._protocol_name = type(protocol).__name__
        probe = _instrument.probe
        if probe is not None:
            probe.connection_opened(self, self._fd, self._role, self._host, self._peer)
        self.startReading()
        if getattr(type(protocol), "makeConnection", None) is BaseProtocol.makeConnection:
            # The stock makeConnection only attaches the transport: do that
            # here so that a trace names the user's connectionMade, not it.
            protocol.connected = 1
            protocol.transport = self
            self._call("read", protocol.connectionMade)
        else:
            self._call("read", protocol.makeConnection, self)

    def _call(self, kind: str, f: Callable[..., Any], *args: Any) -> None:
        """Run user code; if it raises, log it and drop the connection with
        that failure, as Twisted does for an exception escaping dataReceived."""
        try:
            self._call_user(kind, self, f, *args)
        except Exception as exc:  # noqa: BLE001 - user code's error is logged and ends the connection
            self._user_code_failed(f, exc)

    def _user_code_failed(self, f: Callable[..., Any], exc: Exception) -> None:
        log.err(exc, f"Unhandled error in {_name(f)} on {self!r}")
        self.connectionLost(Failure(exc))

    # -- reading -----------------------------------------------------------------
    def startReading(self) -> None:
        """Poll the socket for incoming data."""
        if not self._reading:
            self._reading = True
            self.reactor.addReader(self)

    def stopReading(self) -> None:
        """Stop polling for incoming data (the kernel buffers, then the peer waits)."""
        if self._reading:
            self._reading = False
            self.reactor.removeReader(self)

    def doRead(self) -> None:
        """The socket is readable: hand what arrived to the protocol."""
        if not self._reading:
            return
        try:
            data = self.socket.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.connectionLost(Failure(error.ConnectionLost(str(exc))))
            return
        if data:
            self.bytes_in += len(data)
            received = self.protocol.dataReceived
            try:  # _call() inlined: this is the hottest path of a busy server
                self._call_user("read", self, received, data)
            except Exception as exc:  # noqa: BLE001 - user code's error is logged and ends the connection
                self._user_code_failed(received, exc)
        else:
            self._read_eof()

    def _read_eof(self) -> None:
        """The peer closed its side.  A half-closeable protocol (one providing
        IHalfCloseableProtocol) keeps the connection open to finish writing;
        any other protocol sees the connection end cleanly."""
        if not IHalfCloseableProtocol.providedBy(self.protocol):
            self.connectionLost(Failure(error.ConnectionDone()))
            return
        self._read_closed = True
        self.stopReading()
        self._call("read", self.protocol.readConnectionLost)

    # -- the transport as a producer (the protocol's flow control) ----------------
    def pauseProducing(self) -> None:
        """Stop reading, so that a slow consumer slows the peer down."""
        self.stopReading()

    def resumeProducing(self) -> None:
        """Read again after pauseProducing (not once the read side is closed)."""
        if self.connected and not self.disconnecting and not self._read_closed:
            self.startReading()

    def stopProducing(self) -> None:
        """A consumer wants no more data at all: close the connection."""
        self.loseConnection()

    # -- writing -----------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Send ``data``, buffering what the socket will not take right now."""
        if isinstance(data, str):
            raise TypeError("Data must be bytes")
        if not self.connected or self._write_disconnected or not data:
            return
        buf = self._buffer
        if not buf and not self._writing:
            try:
                sent = self.socket.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0  # doWrite sends it once the socket is writable
            except OSError as exc:
                # The connection is broken.  The kernel reports why only once
                # (a read would now see a plain end of file), so keep it for
                # the protocol, told from the loop, not inside its write().
                self._lose_from_loop(error.ConnectionLost(str(exc)))
                return
            self.bytes_out += sent
            if sent == len(data):
                if self.producer is not None and not self.streamingProducer:
                    self.startWriting()  # a pull producer is asked for more by doWrite
                return
            buf += memoryview(data)[sent:]
        else:
            buf += data
        self.startWriting()
        if (len(buf) > HIGH_WATER and self.streamingProducer and not self.producerPaused
                and self.producer is not None):
            self.producerPaused = True
            self.producer.pauseProducing()

    def writeSequence(self, iovec: list[bytes]) -> None:
        """Send several byte strings, in order, as one write."""
        for data in iovec:
            if isinstance(data, str):
                raise TypeError("Data must be bytes")
        self.write(b"".join(iovec))

    def startWriting(self) -> None:
        """Poll the socket for writability (there is something to flush or do)."""
        if not self._writing:
            self._writing = True
            self.reactor.addWriter(self)

    def stopWriting(self) -> None:
        """Stop polling for writability."""
        if self._writing:
            self._writing = False
            self.reactor.removeWriter(self)

    def doWrite(self) -> None:
        """The socket is writable: flush the buffer, then do what was waiting
        for it to empty (feed a producer, close, or shut down the write side)."""
        if not self._writing:
            return
        buf = self._buffer
        if buf:
            try:
                sent = self.socket.send(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.connectionLost(Failure(error.ConnectionLost(str(exc))))
                return
            del buf[:sent]
            self.bytes_out += sent
            if buf:
                return
        self.stopWriting()
        producer = self.producer
        if producer is not None and (not self.streamingProducer or self.producerPaused):
            self.producerPaused = False
            self._call("write", producer.resumeProducing)
        elif self.disconnecting:
            self.connectionLost(Failure(error.ConnectionDone()))
        elif self._write_disconnecting and not self._write_disconnected:
            self._write_disconnected = True
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if IHalfCloseableProtocol.providedBy(self.protocol):
                self._call("write", self.protocol.writeConnectionLost)

    # -- the transport as a consumer ---------------------------------------------
    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """Let ``producer`` feed this transport without outrunning the peer.

        A streaming (push) producer is paused once more than HIGH_WATER bytes
        are buffered and resumed when the buffer has drained; a pull
        producer's ``resumeProducing`` is called each time the buffer empties."""
        if self.producer is not None:
            raise RuntimeError(
                f"Cannot register producer {producer!r}, because producer "
                f"{self.producer!r} was never unregistered.")
        if self.disconnected:
            producer.stopProducing()
            return
        self.producer = producer
        self.streamingProducer = bool(streaming)
        self.producerPaused = False
        if not streaming:
            producer.resumeProducing()
            # Asked again once the socket takes more, as Twisted asks after its
            # buffer flushes: what was written before registering may have
            # gone to the kernel at once, leaving nothing here to flush.
            if self.connected:
                self.startWriting()

    def stopConsuming(self) -> None:
        """Forget the producer and close once the buffer is flushed."""
        self.unregisterProducer()
        self.loseConnection()

    def unregisterProducer(self) -> None:
        """Forget the producer; a pending loseConnection can now complete."""
        self.producer = None
        self.producerPaused = False
        if self.connected and self.disconnecting:
            self.startWriting()

    # -- closing -------------------------------------------------------------------
    def loseConnection(self) -> None:
        """Close once everything written so far has been sent; no more reads."""
        if self.connected and not self.disconnecting:
            self.disconnecting = True
            self.stopReading()
            self.startWriting()

    def loseWriteConnection(self) -> None:
        """Half-close: flush, then send EOF, while still reading the peer."""
        if self.connected:
            self._write_disconnecting = True
            self.startWriting()

    def abortConnection(self) -> None:
        """Close now: drop buffered data and reset the connection.  The
        protocol hears ConnectionAborted on the next loop iteration, not from
        inside this call."""
        if self.disconnected or self._aborting:
            return
        self._aborting = True
        self._lose_from_loop(error.ConnectionAborted())

    def _lose_from_loop(self, reason: Exception) -> None:
        """No more I/O, whatever the protocol calls next; it hears ``reason``
        on the next loop iteration (never re-entrantly from its own call)."""
        self._write_disconnected = True
        self._buffer.clear()
        self.doRead = self.doWrite = _do_nothing  # type: ignore[method-assign]
        self.stopReading()
        self.stopWriting()
        self.reactor.callLater(0, self.connectionLost, Failure(reason))

    def connectionLost(self, reason: Failure) -> None:
        """Tear down: unregister, close the socket, stop the producer, then
        tell the protocol (and the client connector) why.  Safe to call twice."""
        if self.disconnected:
            return
        self.disconnected = True
        self.connected = False
        self.stopReading()
        self.stopWriting()
        self._close_socket(orderly=not self._aborting)
        producer = self.producer
        if producer is not None:
            self.producer = None
            self._call_quietly(producer.stopProducing)
        probe = _instrument.probe
        if probe is not None:
            probe.connection_closed(self, self._fd, reason, self.bytes_in, self.bytes_out)
        protocol, self.protocol = self.protocol, None
        # Released before it is told, as Twisted does: a transport that stays
        # referenced (by a connector kept for reconnecting, by user code) must
        # not keep its dead protocol and everything that hangs off it alive.
        self._call_quietly(protocol.connectionLost, reason)
        if self.connector is not None:
            self.connector._connection_lost(self, reason)

    def _call_quietly(self, f: Callable[..., Any], *args: Any) -> None:
        """Run user code during teardown: an exception is logged, nothing more."""
        try:
            self._call_user("read", self, f, *args)
        except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
            log.err(None, f"Unhandled error in {_name(f)} on {self!r}")

    def _close_socket(self, orderly: bool) -> None:
        sock = self.socket
        try:
            if orderly:
                sock.shutdown(socket.SHUT_RDWR)
            else:
                # Linger 0 makes close() send a reset instead of a FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        sock.close()

    # -- addresses -----------------------------------------------------------------
    def getPeer(self) -> Any:
        """The other end's address."""
        return self._peer

    def getHost(self) -> Any:
        """This end's address."""
        return self._host

    def getHandle(self) -> StreamSocket:
        """The underlying socket."""
        return self.socket

    def startTLS(self, contextFactory: Any, normal: bool = True) -> None:
        """Speak TLS from now on (``reactor.tls`` says how)."""
        from reactor import tls

        tls.start_tls(self, contextFactory, normal)


class TCPConnection(Connection):
    """A TCP connection: Nagle's algorithm off by default (as asyncio does),
    since an event-loop program writes whole messages and wants them sent now."""

    socket: socket.socket  # always a real one, with TCP's options

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            self.setTcpNoDelay(True)
        except OSError:
            pass  # the peer may already have reset it; reading will say so

    def getTcpNoDelay(self) -> bool:
        """Whether small writes are sent at once (Nagle's algorithm off)."""
        return bool(self.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    def setTcpNoDelay(self, enabled: bool) -> None:
        """Turn Nagle's algorithm off (True) or back on (False)."""
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(enabled))

    def getTcpKeepAlive(self) -> bool:
        """Whether the kernel probes an idle connection to detect a dead peer."""
        return bool(self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))

    def setTcpKeepAlive(self, enabled: bool) -> None:
        """Enable or disable keep-alive probes."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(enabled))


class Port:
    """A listening socket that accepts connections and gives each a protocol
    from the factory."""

    _reports_own_calls = True
    _trace_id = None
    transport_class: Callable[..., Connection] = TCPConnection
    connected = False
    _retry: Any = None

    @property
    def disconnected(self) -> bool:
        """Not listening (Twisted's name for the opposite of ``connected``)."""
        return not self.connected

    def __init__(self, reactor: Any, port: int | str, factory: Any, backlog: int = 50,
                 interface: str | None = "") -> None:
        self.reactor = reactor
        self.port = port
        self.factory = factory
        self.backlog = backlog
        self.interface = interface
        self.socket: socket.socket | None = None
        self._host: Any = None

    def __repr__(self) -> str:
        if not self.connected:
            return f"<{type(self.factory).__name__} (not listening)>"
        return f"<{type(self.factory).__name__} on {self._host}>"

    def logPrefix(self) -> str:
        """Log lines about this port are prefixed with its factory's name."""
        return type(self.factory).__name__

    def _make_socket(self) -> socket.socket:
        """Create and bind the listening socket (raises OSError)."""
        interface, port = self.interface or "", cast(int, self.port)  # a TCP port's
        sock = socket.socket(_family_of(interface), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(_sockaddr(interface, port) if _is_ip_literal(interface)
                      else (interface, port))
        except OSError:
            sock.close()
            raise
        return sock

    def _address(self, sockaddr: Any) -> Any:
        return tcp_address(sockaddr)

    def startListening(self) -> None:
        """Bind, listen and start accepting; CannotListenError if the address
        is taken or not ours."""
        try:
            sock = self._make_socket()
        except OSError as exc:
            raise error.CannotListenError(self.interface, self.port, exc) from exc
        try:
            sock.listen(self.backlog)
        except OSError as exc:
            sock.close()
            raise error.CannotListenError(self.interface, self.port, exc) from exc
        sock.setblocking(False)
        self.socket = sock
        self.fileno = sock.fileno
        self._host = self._bound_address(sock)
        self.factory.doStart()
        self.connected = True
        _reserved_descriptor.reserve()
        self.reactor.addReader(self)
        log.msg(f"{_log_prefix(self.factory)} starting on {self._listening_on()}")

    def _bound_address(self, sock: socket.socket) -> Any:
        """What getHost() reports once listening (the real port if 0 was asked)."""
        return self._address(sock.getsockname())

    def _listening_on(self) -> str:
        """How the start and close messages name this port (as Twisted's do)."""
        return str(self._host.port)

    def _closed_message(self) -> str:
        return f"(TCP Port {self._host.port} Closed)"

    def _listening_socket(self) -> socket.socket:
        """The socket, which exists from startListening on."""
        assert self.socket is not None, "not listening"
        return self.socket

    def doRead(self) -> None:
        """Accept the waiting connections (a bounded number per readiness)."""
        listening = self._listening_socket()
        for _ in range(ACCEPTS_PER_READ):
            if not self.connected:
                return  # a buildProtocol stopped listening
            try:
                sock, sockaddr = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS and _reserved_descriptor.available():
                    if self._close_one_waiting(exc):
                        continue
                    return  # none was waiting (accept fails on the descriptor first)
                if exc.errno in _OUT_OF_RESOURCES:
                    _log.error("%r could not accept a connection (%s); trying again in %s s",
                              self, exc, ACCEPT_RETRY_DELAY)
                    self.reactor.removeReader(self)
                    self._retry = self.reactor.callLater(ACCEPT_RETRY_DELAY, self._accept_again)
                else:
                    _log.error("%r could not accept a connection: %s", self, exc)
                return
            self._accepted(sock, sockaddr)

    def _close_one_waiting(self, exc: OSError) -> bool:
        """Out of descriptors: accept one waiting connection with the reserved
        descriptor and close it, so that its peer is not left waiting.
        Returns whether there was one."""
        _reserved_descriptor.release()
        try:
            sock, _ = self._listening_socket().accept()
        except OSError:
            return False  # none waiting, or another resource is short
        else:
            sock.close()
        finally:
            _reserved_descriptor.reserve()  # after the close, which freed it
        _log.error("%r could not accept a connection (%s): closed it", self, exc)
        return True

    def _accept_again(self) -> None:
        self._retry = None
        if self.connected:
            self.reactor.addReader(self)

    def _accepted(self, sock: socket.socket, sockaddr: Any) -> None:
        sock.setblocking(False)
        peer = self._address(sockaddr)
        try:
            # This end's own address: on a wildcard port ('' or '::') it says
            # which local address the peer reached, unlike the port's.
            host = self._address(sock.getsockname())
        except OSError:
            sock.close()  # already gone; nothing to hand to the factory
            return
        try:
            protocol = self.reactor._call_user("read", self, self.factory.buildProtocol, peer)
        except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
            log.err(None, f"Unhandled error in {type(self.factory).__qualname__}.buildProtocol")
            protocol = None
        if protocol is None:
            sock.close()
            return
        transport = self.transport_class(self.reactor, sock, "server", host, peer)
        transport._start(protocol)

    def stopListening(self) -> defer.Deferred:
        """Stop accepting and close the socket now (so the port can be reused
        at once); the returned Deferred has already fired — with the error,
        if the factory's stopFactory raised one (as Twisted reports it)."""
        try:
            self._stop()
        except Exception:  # noqa: BLE001 - any exception becomes the Failure, as in Twisted
            return defer.fail()
        return defer.succeed(None)

    loseConnection = stopListening

    def connectionLost(self, reason: Any) -> None:
        """The reactor is shutting down with this port still open."""
        self._stop()

    def _stop(self) -> None:
        if not self.connected:
            return
        self.connected = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self.reactor.removeReader(self)
        self._listening_socket().close()
        log.msg(self._closed_message())
        self.factory.doStop()

    def getHost(self) -> Any:
        """The address the port is bound to (with the real port if 0 was asked)."""
        return self._host


class _Attempt:
    """One connection attempt: a socket waiting for a non-blocking connect()."""

    _reports_own_calls = True
    _trace_id = None

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self.reactor = connector.reactor
        self.socket: socket.socket | None = None
        self._done = False
        self._writing = False

    def __repr__(self) -> str:
        return f"<connecting to {self.connector.getDestination()}>"

    def logPrefix(self) -> str:
        """Log lines about this attempt are prefixed with its factory's name."""
        return type(self.connector.factory).__name__

    def start(self, sockaddr: Any) -> None:
        """Begin connecting to ``sockaddr``; a failure to even start is
        reported from the loop (next iteration), never from inside connect()."""
        if self._done:
            return
        try:
            sock = self.connector._make_socket(sockaddr)
        except error.ConnectError as exc:
            self.reactor.callLater(0, self.fail, exc)
            return
        except OSError as exc:
            self.reactor.callLater(0, self.fail, error.getConnectError(exc))
            return
        self.socket = sock
        self.fileno = sock.fileno
        err = sock.connect_ex(sockaddr)
        if err in (0, errno.EINPROGRESS):
            self._writing = True
            self.reactor.addWriter(self)
        else:
            self.reactor.callLater(0, self.fail, connect_error(err))

    def resolve_then_start(self, host: str, port: int) -> None:
        """Look ``host`` up with ``reactor.resolve`` (in a pool thread: a
        lookup can block for seconds; or the installed resolver), then
        connect from the loop.  IPv4 from the default resolver, as Twisted's
        connectTCP; an installed resolver may answer with an IPv6 address."""

        def resolved(ip: str) -> None:
            try:
                sockaddr = _sockaddr(ip, port)
            except (OSError, UnicodeError):
                self.fail(error.DNSLookupError(f"address {host!r} not found: {ip!r}"))
            else:
                self.start(sockaddr)

        def failed(reason: Failure) -> None:
            value = reason.value
            if not isinstance(value, error.DNSLookupError):
                value = error.DNSLookupError(f"address {host!r} not found: {value}")
            self.fail(value)

        self.reactor.resolve(host).addCallbacks(resolved, failed)

    def doWrite(self) -> None:
        """connect() finished: succeeded, or failed with the socket's error."""
        if self._done:
            return
        sock = self.socket
        assert sock is not None, "doWrite before start"  # start() registers it
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.fail(connect_error(err))
            return
        try:
            peer = self.connector._address(sock.getpeername())
            host = self.connector._address(sock.getsockname())
        except OSError as exc:
            self.fail(connect_error(exc.errno or errno.ENOTCONN))
            return
        self._done = True
        self._unregister()
        self.connector._connected(self, sock, host, peer)

    def fail(self, exc: BaseException) -> None:
        """Give up: close the socket and tell the connector (timeout, refusal,
        stopConnecting)."""
        if self._done:
            return
        self._done = True
        self._unregister()
        if self.socket is not None:
            self.socket.close()
        self.connector._failed(self, Failure(exc))

    def connectionLost(self, reason: Any) -> None:
        """The reactor is shutting down mid-attempt."""
        self.fail(error.ConnectError(None, reason.getErrorMessage()))

    def _unregister(self) -> None:
        if self._writing:
            self._writing = False
            self.reactor.removeWriter(self)


class Connector:
    """Connects a ClientFactory to a TCP address, and can do so again.

    ``state`` is ``"disconnected"``, ``"connecting"`` or ``"connected"``.  A
    factory reconnects by calling ``connector.connect()`` from
    clientConnectionFailed/clientConnectionLost."""

    transport_class: Callable[..., Connection] = TCPConnection

    def __init__(self, reactor: Any, host: str, port: int | None, factory: Any,
                 timeout: float | None = 30, bindAddress: Any = None) -> None:
        self.reactor = reactor
        self.host = host
        self.port = port
        self.factory = factory
        self.timeout = timeout
        self.bindAddress = bindAddress
        self.state = "disconnected"
        self.transport: Any = None
        self._timeout_call: Any = None
        self._factory_started = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} to {self.getDestination()} {self.state}>"

    def _make_socket(self, sockaddr: Any) -> socket.socket:
        """A non-blocking socket for ``sockaddr``, bound to bindAddress if
        one was given (ConnectBindError if that fails)."""
        sock = socket.socket(_family_of(sockaddr[0]), socket.SOCK_STREAM)
        sock.setblocking(False)
        if self.bindAddress is not None:
            host, port = self.bindAddress[:2]
            try:
                # An IP literal through _sockaddr, so that a scoped link-local
                # one (fe80::1%eth0) keeps its interface, as when listening.
                sock.bind(_sockaddr(host, port) if _is_ip_literal(host) else self.bindAddress)
            except OSError as exc:
                sock.close()
                raise error.ConnectBindError(exc.errno, exc.strerror) from exc
        return sock

    def _address(self, sockaddr: Any) -> Any:
        return tcp_address(sockaddr)

    def _tcp_port(self) -> int:
        """The port of a TCP connector (a Unix one has none, and overrides
        every method that would ask)."""
        assert self.port is not None, "a TCP connector without a port"
        return self.port

    def _begin(self, attempt: _Attempt) -> None:
        """Start ``attempt`` towards this connector's destination."""
        if _is_ip_literal(self.host):
            attempt.start(_sockaddr(self.host, self._tcp_port()))
        else:
            attempt.resolve_then_start(self.host, self._tcp_port())

    def connect(self) -> None:
        """Start a connection attempt (the factory hears startedConnecting now,
        then either buildProtocol or clientConnectionFailed)."""
        if self.state != "disconnected":
            raise RuntimeError(f"can't connect in state {self.state!r}")
        self.state = "connecting"
        if not self._factory_started:
            self.factory.doStart()
            self._factory_started = True
        attempt = _Attempt(self)
        self.transport = attempt
        self._begin(attempt)
        if self.timeout is not None:
            self._timeout_call = self.reactor.callLater(
                self.timeout, attempt.fail, error.TimeoutError())
        self.factory.startedConnecting(self)

    def stopConnecting(self) -> None:
        """Abort the attempt in progress (clientConnectionFailed with UserError)."""
        if self.state != "connecting":
            raise error.NotConnectingError("we're not trying to connect")
        self.transport.fail(error.UserError())

    def disconnect(self) -> None:
        """Abort the attempt, or close the connection, whichever there is."""
        if self.state == "connecting":
            self.stopConnecting()
        elif self.state == "connected":
            self.transport.loseConnection()

    def getDestination(self) -> Any:
        """Where this connector connects to, as given (not resolved)."""
        if _family_of(self.host) == socket.AF_INET6:
            return IPv6Address("TCP", self.host, self._tcp_port())
        return IPv4Address("TCP", self.host, self._tcp_port())

    def _cancel_timeout(self) -> None:
        call = self._timeout_call
        self._timeout_call = None
        if call is not None and call.active():
            call.cancel()

    def _connected(self, attempt: _Attempt, sock: socket.socket, host: Any, peer: Any) -> None:
        """The attempt succeeded: build the protocol and start the transport."""
        self._cancel_timeout()
        self.state = "connected"
        try:
            protocol = self.reactor._call_user("write", attempt, self.factory.buildProtocol, peer)
        except Exception as exc:  # noqa: BLE001 - user code's error is logged; the loop goes on
            log.err(None, f"Unhandled error in {type(self.factory).__qualname__}.buildProtocol")
            sock.close()
            self._failed(attempt, Failure(exc))
            return
        transport = self.transport_class(self.reactor, sock, "client", host, peer, connector=self)
        self.transport = transport
        if protocol is None:
            # Refused by the factory: the connection is closed cleanly at once,
            # which the factory hears as clientConnectionLost.
            transport._start(Protocol())
            transport.loseConnection()
        else:
            transport._start(protocol)

    def _failed(self, attempt: _Attempt, reason: Failure) -> None:
        self._cancel_timeout()
        self.transport = None
        self.state = "disconnected"
        self._tell_factory(attempt, self.factory.clientConnectionFailed, reason)

    def _connection_lost(self, transport: Connection, reason: Failure) -> None:
        self.state = "disconnected"
        self._tell_factory(transport, self.factory.clientConnectionLost, reason)

    def _tell_factory(self, source: Any, f: Callable[..., Any], reason: Failure) -> None:
        """Report the outcome; unless the factory reconnected, it is no longer in use."""
        try:
            self.reactor._call_user("write", source, f, self, reason)
        except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
            log.err(None, f"Unhandled error in {_name(f)}")
        if self.state == "disconnected" and self._factory_started:
            self._factory_started = False
            self.factory.doStop()


def listen_tcp(reactor: Any, port: int, factory: Any, backlog: int = 50,
               interface: str = "") -> Port:
    """reactor.listenTCP: start listening and return the Port."""
    p = Port(reactor, port, factory, backlog, interface)
    p.startListening()
    return p


def connect_tcp(reactor: Any, host: str, port: int | str, factory: Any, timeout: float | None = 30,
                bindAddress: Any = None) -> Connector:
    """reactor.connectTCP: start connecting and return the Connector."""
    c = Connector(reactor, host, service_port(port), factory, timeout, bindAddress)
    c.connect()
    return c
