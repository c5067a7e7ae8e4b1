"""UDP: ``reactor.listenUDP(port, protocol)`` and ``DatagramProtocol``, as in
Twisted (``twisted.internet.udp``, ``protocol.DatagramProtocol``).

One socket, one protocol: ``datagramReceived(data, (host, port))`` for each
datagram, ``transport.write(data, (host, port))`` to send one.  After
``transport.connect(host, port)`` the socket talks to that peer only:
``write(data)`` needs no address, and an ICMP refusal of an earlier datagram
arrives as ``connectionRefused()``.

The port is a descriptor the reactor polls, and it reports itself to the
probe as a connection (role ``"udp"``, host its bound address, peer the
connected address or None) so a trace shows it beside TCP connections;
``datagramReceived`` runs as a ``"read"`` call naming the user's method.

Differences kept on purpose: a datagram the kernel has no buffer room for
(EAGAIN) is dropped, as the network would, instead of raising from
``write``; Twisted raises.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

from reactor import _instrument, defer, error, log
from reactor.address import IPv4Address, IPv6Address
from reactor.failure import Failure

_log = logging.getLogger("reactor")

MAX_THROUGHPUT = 256 * 1024
"""Bytes read per readiness of the socket before the loop gets control
back, so a flood of datagrams cannot starve the other descriptors."""

_READ_AGAIN = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.EMSGSIZE}
_REFUSED = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ENETRESET, errno.ETIMEDOUT}


class DatagramProtocol:
    """A protocol for datagrams; ``transport`` is its port while listening.

    ``startProtocol`` runs when the first port starts using it and
    ``stopProtocol`` after the last one stops (a protocol may serve several)."""

    transport: Any = None
    numPorts = 0
    noisy = True

    def logPrefix(self) -> str:
        """The name used for this protocol in log lines."""
        return type(self).__name__

    def makeConnection(self, transport: Any) -> None:
        """Attach ``transport`` and count it (startProtocol on the first)."""
        assert self.transport is None
        self.transport = transport
        self.doStart()

    def doStart(self) -> None:
        """A port starts using this protocol (called by makeConnection)."""
        if not self.numPorts:
            if self.noisy:
                _log.debug("Starting protocol %r", self)
            self.startProtocol()
        self.numPorts += 1

    def doStop(self) -> None:
        """A port stopped using this protocol."""
        assert self.numPorts > 0
        self.numPorts -= 1
        self.transport = None
        if not self.numPorts:
            if self.noisy:
                _log.debug("Stopping protocol %r", self)
            self.stopProtocol()

    def startProtocol(self) -> None:
        """Override to start (e.g. connect, send a first datagram)."""

    def stopProtocol(self) -> None:
        """Override to clean up once no port uses the protocol."""

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        """Override: one datagram from ``addr``."""

    def connectionRefused(self) -> None:
        """Connected mode only: the peer refused an earlier datagram (ICMP)."""


def _family(host: str) -> socket.AddressFamily | None:
    """AF_INET / AF_INET6 for an IP literal, None for anything else."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.split("%")[0])
        except OSError:
            continue
        return family
    return None


class UDPPort:
    """A bound UDP socket delivering datagrams to one protocol."""

    _reports_own_calls = True
    _trace_id = None
    connected = False  # as in Twisted: True while listening
    _stop_deferred: defer.Deferred | None = None

    def __init__(self, reactor: Any, port: int, protocol: Any, interface: str = "",
                 maxPacketSize: int = 8192) -> None:
        if interface:
            family = _family(interface)
            if family is None:
                raise error.InvalidAddressError(interface, "not an IPv4 or IPv6 address.")
        else:
            family = socket.AF_INET
        self.reactor = reactor
        self.port = port
        self.protocol = protocol
        self.interface = interface
        self.maxPacketSize = maxPacketSize
        self.addressFamily = family
        self.socket: socket.socket | None = None
        self._connectedAddr: tuple[str, int] | None = None
        self._fd = -1
        self.bytes_in = 0
        self.bytes_out = 0
        self._call_user = reactor._call_user

    def __repr__(self) -> str:
        where = self._host.port if self.connected else "not connected"
        return f"<{type(self.protocol).__name__} on {where} (UDP)>"

    def logPrefix(self) -> str:
        """Log lines about this port name its protocol."""
        return f"{type(self.protocol).__name__} (UDP)"

    def getHandle(self) -> socket.socket | None:
        """The socket."""
        return self.socket

    def _bound(self) -> socket.socket:
        """The socket, which exists from startListening on (listenUDP starts at once)."""
        assert self.socket is not None, "not listening"
        return self.socket

    def startListening(self) -> None:
        """Bind (CannotListenError if that fails), give the protocol its
        transport, and start reading."""
        try:
            sock = socket.socket(self.addressFamily, socket.SOCK_DGRAM)
        except OSError as exc:
            raise error.CannotListenError(self.interface, self.port, exc) from exc
        try:
            sock.bind((self.interface, self.port))
        except OSError as exc:
            sock.close()
            raise error.CannotListenError(self.interface, self.port, exc) from exc
        sock.setblocking(False)
        self.socket = sock
        self.fileno = sock.fileno
        self._fd = sock.fileno()
        self._host = self._address(sock.getsockname())
        self.connected = True
        self.protocol.makeConnection(self)
        self._report_opened()
        self.reactor.addReader(self)

    def _address(self, sockaddr: Any) -> IPv4Address | IPv6Address:
        if self.addressFamily == socket.AF_INET6:
            return IPv6Address("UDP", sockaddr[0], sockaddr[1])
        return IPv4Address("UDP", sockaddr[0], sockaddr[1])

    def _report_opened(self) -> None:
        probe = _instrument.probe
        if probe is not None and self.connected:
            peer = None if self._connectedAddr is None else self._address(self._connectedAddr)
            probe.connection_opened(self, self._fd, "udp", self._host, peer)

    # -- reading -------------------------------------------------------------------
    def doRead(self) -> None:
        """Deliver the waiting datagrams (up to MAX_THROUGHPUT bytes)."""
        received = 0
        sock = self._bound()
        while received < MAX_THROUGHPUT and self.connected:
            try:
                data, addr = sock.recvfrom(self.maxPacketSize)
            except OSError as exc:
                if exc.errno in _REFUSED and self._connectedAddr is not None:
                    self._call_protocol(self.protocol.connectionRefused)
                elif exc.errno not in _READ_AGAIN and exc.errno not in _REFUSED:
                    log.err(exc, f"{self.logPrefix()}: recvfrom failed")
                return
            received += len(data)
            self.bytes_in += len(data)
            if self.addressFamily == socket.AF_INET6:
                addr = addr[:2]  # (host, port), as Twisted gives
            self._call_protocol(self.protocol.datagramReceived, data, addr)

    def _call_protocol(self, f: Any, *args: Any) -> None:
        """Run user code; an exception is logged and the port goes on."""
        try:
            self._call_user("read", self, f, *args)
        except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
            log.err(None, f"Unhandled error in {getattr(f, '__qualname__', f)}")

    # -- writing -------------------------------------------------------------------
    def write(self, datagram: bytes, addr: tuple[str, int] | None = None) -> None:
        """Send one datagram to ``addr`` (an IP address and a port), or to
        the connected peer.  MessageLengthError if it is too big for UDP."""
        if self._connectedAddr is not None:
            if addr not in (None, self._connectedAddr):
                raise error.InvalidAddressError(addr, "the port is connected to another address")
            self._send(datagram, None)
            return
        if addr is None:
            raise error.InvalidAddressError(None, "write() needs an address when not connected")
        host = addr[0]
        family = socket.AF_INET if host == "<broadcast>" else _family(host)
        if family is None:
            raise error.InvalidAddressError(
                host, "write() only accepts IP addresses, not hostnames")
        if family != self.addressFamily:
            raise error.InvalidAddressError(
                host, f"IPv{4 if self.addressFamily == socket.AF_INET else 6} port write() "
                      f"called with an IPv{4 if family == socket.AF_INET else 6} address")
        self._send(datagram, addr)

    def _send(self, datagram: bytes, addr: tuple[str, int] | None) -> None:
        sock = self._bound()
        while True:
            try:
                if addr is None:
                    sent = sock.send(datagram)
                else:
                    sent = sock.sendto(datagram, addr)
            except InterruptedError:
                continue
            except BlockingIOError:
                return  # no buffer room: dropped, as on a congested network
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:
                    raise error.MessageLengthError("message too long") from exc
                if exc.errno == errno.ECONNREFUSED:
                    if addr is None:
                        self._call_protocol(self.protocol.connectionRefused)
                    return
                raise
            self.bytes_out += sent
            return

    def writeSequence(self, seq: Any, addr: tuple[str, int] | None = None) -> None:
        """Send the concatenation of ``seq`` as one datagram."""
        self.write(b"".join(seq), addr)

    def connect(self, host: str, port: int) -> None:
        """Talk to ``host:port`` only (an IP address: no lookups in the loop)."""
        if self._connectedAddr is not None:
            raise RuntimeError("already connected, reconnecting is not currently supported")
        if _family(host) is None:
            raise error.InvalidAddressError(host, "not an IPv4 or IPv6 address.")
        self._connectedAddr = (host, port)
        self._bound().connect((host, port))
        self._report_opened()  # again: the trace learns the peer

    # -- options -------------------------------------------------------------------
    def setBroadcastAllowed(self, enabled: bool) -> None:
        """Allow (or forbid) sending to broadcast addresses."""
        self._bound().setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, int(enabled))

    def getBroadcastAllowed(self) -> bool:
        """Whether broadcasting is allowed."""
        return bool(self._bound().getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST))

    def getHost(self) -> IPv4Address | IPv6Address:
        """The bound address (the real port when 0 was asked for)."""
        return self._host

    # -- stopping ------------------------------------------------------------------
    def stopListening(self) -> defer.Deferred | None:
        """Stop reading now and close on the next iteration; the Deferred
        fires once closed (None if the port was not listening)."""
        if not self.connected:
            return None
        if self._stop_deferred is None:
            self._stop_deferred = defer.Deferred()
            self.reactor.removeReader(self)
            self.reactor.callLater(0, self.connectionLost)
        return self._stop_deferred

    loseConnection = stopListening

    def connectionLost(self, reason: Any = None) -> None:
        """Close the socket and tell the protocol (doStop → stopProtocol)."""
        if not self.connected:
            return
        self.connected = False
        self.reactor.removeReader(self)
        if reason is None:
            reason = Failure(error.ConnectionDone())
        probe = _instrument.probe
        if probe is not None:
            probe.connection_closed(self, self._fd, reason, self.bytes_in, self.bytes_out)
        self._call_protocol(self.protocol.doStop)
        self._bound().close()
        d, self._stop_deferred = self._stop_deferred, None
        if d is not None:
            d.callback(None)


def listen_udp(reactor: Any, port: int, protocol: Any, interface: str = "",
               maxPacketSize: int = 8192) -> UDPPort:
    """reactor.listenUDP: bind and return the Port."""
    p = UDPPort(reactor, port, protocol, interface, maxPacketSize)
    p.startListening()
    return p
