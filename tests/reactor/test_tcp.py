"""TCP transports, ports and connectors over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.address import IPv4Address as TwistedIPv4Address

from reactor import Reactor, defer, error, protocol, tcp
from reactor.address import IPv6Address
from reactor.failure import Failure
from reactor.interfaces import IHalfCloseableProtocol, implementer

pytestmark = pytest.mark.timeout(30)


class Recorder(protocol.Protocol):
    """Collects everything that happens to it; ``lost`` fires once it is
    disconnected, ``reason`` being why (a Failure given to callback() would
    turn the Deferred into an errback, hence the separate attribute)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.events: list[str] = []
        self.made = defer.Deferred()
        self.lost = defer.Deferred()

    def connectionMade(self) -> None:
        self.events.append("made")
        self.made.callback(self)

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure) -> None:
        self.events.append("lost")
        self.reason = reason
        self.lost.callback(None)


class Server(protocol.Factory):
    """Hands out ``protocol_class`` instances and keeps them in ``built``; the
    Deferred ``first`` fires with the first one."""

    def __init__(self, protocol_class: type = Recorder) -> None:
        self.protocol = protocol_class
        self.built: list[Any] = []
        self.first = defer.Deferred()

    def buildProtocol(self, addr: Any) -> Any:
        p = protocol.Factory.buildProtocol(self, addr)
        p.addr = addr
        self.built.append(p)
        if len(self.built) == 1:
            self.first.callback(p)
        return p


class Client(protocol.ClientFactory):
    """Records what the connector reports; ``failed``/``lost`` fire when it
    reports that, ``reason`` being the failure."""

    def __init__(self, protocol_class: type = Recorder) -> None:
        self.protocol = protocol_class
        self.built: list[Any] = []
        self.events: list[str] = []
        self.failed = defer.Deferred()
        self.lost = defer.Deferred()

    def startedConnecting(self, connector: Any) -> None:
        self.events.append("startedConnecting")

    def buildProtocol(self, addr: Any) -> Any:
        self.events.append("buildProtocol")
        p = protocol.ClientFactory.buildProtocol(self, addr)
        self.built.append(p)
        return p

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.events.append("clientConnectionFailed")
        self.reason = reason
        self.failed.callback(None)

    def clientConnectionLost(self, connector: Any, reason: Failure) -> None:
        self.events.append("clientConnectionLost")
        self.reason = reason
        self.lost.callback(None)


def reason_of(run_until: Any, who: Any, event: str = "lost") -> Failure:
    """Wait for ``who``'s ``lost`` (or ``failed``) Deferred; return the reason."""
    run_until(getattr(who, event))
    return who.reason


def listen(loop: Reactor, factory: Any) -> Any:
    return loop.listenTCP(0, factory, interface="127.0.0.1")


def connected_pair(loop: Reactor, run_until: Any, server_protocol: type = Recorder,
                   client_protocol: type = Recorder) -> tuple[Any, Any, Any]:
    """A server and a client protocol connected over loopback, and the port."""
    server = Server(server_protocol)
    port = listen(loop, server)
    client = Client(client_protocol)
    loop.connectTCP("127.0.0.1", port.getHost().port, client)
    s = run_until(server.first)
    while not client.built:
        loop.iterate(0.01)
    run_until(client.built[0].made)
    return s, client.built[0], port


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (just released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connect_accept_and_addresses(loop: Reactor, run_until: Any) -> None:
    s, c, port = connected_pair(loop, run_until)
    run_until(c.made)
    host = port.getHost()
    assert (host.type, host.host) == ("TCP", "127.0.0.1") and host.port > 0
    # Same fields and repr as Twisted's address type.
    assert repr(host) == repr(TwistedIPv4Address("TCP", "127.0.0.1", host.port))
    assert c.transport.getPeer() == host == s.transport.getHost()
    assert c.transport.getHost() == s.transport.getPeer() == s.addr
    assert s.factory.built == [s] and s.connected and c.connected
    assert s.events == c.events == ["made"]
    assert c.transport.getTcpNoDelay() is True
    c.transport.setTcpNoDelay(False)
    assert c.transport.getTcpNoDelay() is False
    c.transport.setTcpKeepAlive(True)
    assert c.transport.getTcpKeepAlive() is True


def test_write_and_writeSequence_keep_order_and_loseConnection_flushes(
        loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    expected = bytearray()
    for i in range(200):
        piece = bytes([i % 251]) * (i * 97)
        if i % 3:
            c.transport.write(piece)
        else:
            c.transport.writeSequence([piece, b"|", piece[:5]])
            piece = piece + b"|" + piece[:5]
        expected += piece
    big = bytes(range(256)) * 16384  # 4 MiB: far more than the socket takes at once
    c.transport.write(big)
    expected += big
    c.transport.loseConnection()
    c.transport.write(b"after loseConnection, still sent")
    expected += b"after loseConnection, still sent"
    reason = reason_of(run_until, s)
    assert reason.check(error.ConnectionDone)
    assert bytes(s.data) == bytes(expected)
    assert reason_of(run_until, c).check(error.ConnectionDone)
    assert not c.transport.connected and c.transport.disconnected


def test_write_rejects_str(loop: Reactor, run_until: Any) -> None:
    _, c, _ = connected_pair(loop, run_until)
    with pytest.raises(TypeError):
        c.transport.write("text")


def test_peer_close_is_connection_done(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    s.transport.write(b"bye")
    s.transport.loseConnection()
    assert reason_of(run_until, c).check(error.ConnectionDone)
    assert bytes(c.data) == b"bye"
    assert c.events == ["made", "lost"]


def test_abortConnection_drops_buffer_and_resets(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    c.transport.write(b"x" * (8 << 20))
    c.transport.abortConnection()
    sent = c.transport.bytes_out
    assert c.events == ["made"]  # told on the next iteration, not inside abortConnection
    c.transport.abortConnection()  # a second abort is harmless
    c.transport.loseConnection()  # and so is anything else: the buffer is gone
    c.transport.loseWriteConnection()
    c.transport.resumeProducing()
    c.transport.write(b"more")
    reason = reason_of(run_until, c)
    assert reason.check(error.ConnectionAborted)
    assert c.transport.bytes_out == sent
    assert reason_of(run_until, s).check(error.ConnectionLost)
    assert len(s.data) < 8 << 20


def test_peer_reset_while_writing_is_connection_lost(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    c.transport.pauseProducing()  # not reading: the reset is found by the send
    c.transport.write(b"y" * (16 << 20))
    assert c.transport._writing
    s.transport.abortConnection()
    reason = reason_of(run_until, c)
    assert reason.check(error.ConnectionLost) and not reason.check(error.ConnectionAborted)
    c.transport.write(b"ignored once the connection is gone")
    assert c.transport.bytes_out < 16 << 20


def test_stopProducing_closes_the_transport(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    c.transport.stopProducing()
    assert reason_of(run_until, s).check(error.ConnectionDone)


def test_loseConnection_after_abort_still_reports_the_abort(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    c.transport.abortConnection()
    c.transport.loseConnection()
    # loseConnection registered it for writing again: the loop may dispatch a
    # write event to it within this iteration; that must not end it cleanly.
    c.transport.doWrite()
    c.transport.doRead()
    assert reason_of(run_until, c).check(error.ConnectionAborted)
    assert reason_of(run_until, s).check(error.ConnectionLost)


@implementer(IHalfCloseableProtocol)
class HalfCloseServer(Recorder):
    """Answers once the client has finished sending (EOF), then closes."""

    def readConnectionLost(self) -> None:
        self.events.append("readConnectionLost")
        self.transport.write(b"reply to " + bytes(self.data))
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.events.append("writeConnectionLost")


@implementer(IHalfCloseableProtocol)
class HalfCloseClient(Recorder):
    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport.write(b"request")
        self.transport.loseWriteConnection()

    def dataReceived(self, data: bytes) -> None:
        self.events.append("data")
        super().dataReceived(data)

    def readConnectionLost(self) -> None:
        self.events.append("readConnectionLost")
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.events.append("writeConnectionLost")


def test_half_close(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until, HalfCloseServer, HalfCloseClient)
    assert reason_of(run_until, c).check(error.ConnectionDone)
    assert reason_of(run_until, s).check(error.ConnectionDone)
    assert bytes(c.data) == b"reply to request"
    assert s.events == ["made", "readConnectionLost", "lost"]
    assert c.events[:2] == ["made", "writeConnectionLost"]
    assert c.events[-2:] == ["readConnectionLost", "lost"]


class UndeclaredHalfCloseServer(Recorder):
    """Has readConnectionLost but does not declare IHalfCloseableProtocol."""

    def readConnectionLost(self) -> None:
        self.events.append("readConnectionLost")


def test_half_close_needs_a_declaration_not_a_method_name(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until, UndeclaredHalfCloseServer, HalfCloseClient)
    assert reason_of(run_until, s).check(error.ConnectionDone)
    assert s.events == ["made", "lost"]  # closed like any protocol, as on Twisted


def test_half_close_declared_with_zope_for_twisted_is_recognised(
        loop: Reactor, run_until: Any) -> None:
    from twisted.internet.interfaces import IHalfCloseableProtocol as TwistedHalfCloseable
    from zope.interface import implementer as zope_implementer

    server = zope_implementer(TwistedHalfCloseable)(
        type("ZopeDeclared", (UndeclaredHalfCloseServer,), {}))
    s, c, _ = connected_pair(loop, run_until, server, HalfCloseClient)
    for _ in range(500):
        if len(s.events) > 1:
            break
        loop.iterate(0.01)
    assert s.events == ["made", "readConnectionLost"]  # kept open after EOF
    s.transport.loseConnection()
    assert reason_of(run_until, s).check(error.ConnectionDone)


def test_loseWriteConnection_to_plain_protocol_ends_it_cleanly(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until, Recorder, HalfCloseClient)
    assert reason_of(run_until, s).check(error.ConnectionDone)
    assert bytes(s.data) == b"request"


def test_connection_refused(loop: Reactor, run_until: Any) -> None:
    client = Client()
    connector = loop.connectTCP("127.0.0.1", closed_port(), client)
    assert connector.state == "connecting"
    assert client.events == ["startedConnecting"]
    reason = reason_of(run_until, client, "failed")
    assert reason.check(error.ConnectionRefusedError)
    assert client.events == ["startedConnecting", "clientConnectionFailed"]
    assert connector.state == "disconnected" and client.numPorts == 0


def full_backlog_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket that never accepts, its backlog filled so further
    connects hang in SYN_SENT (the kernel drops their SYNs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.create_connection(server.getsockname(), timeout=2)
    return server, [filler]


def test_connect_timeout(loop: Reactor, run_until: Any) -> None:
    server, fillers = full_backlog_listener()
    try:
        client = Client()
        connector = loop.connectTCP("127.0.0.1", server.getsockname()[1], client, timeout=0.3)
        reason = reason_of(run_until, client, "failed")
        assert reason.check(error.TimeoutError)
        assert connector.state == "disconnected" and client.built == []
    finally:
        for s in [server, *fillers]:
            s.close()


def test_stopConnecting_and_disconnect(loop: Reactor, run_until: Any) -> None:
    server, fillers = full_backlog_listener()
    try:
        client = Client()
        connector = loop.connectTCP("127.0.0.1", server.getsockname()[1], client, timeout=None)
        loop.iterate(0.05)
        assert connector.state == "connecting"
        connector.disconnect()
        reason = reason_of(run_until, client, "failed")
        assert reason.check(error.UserError)
        with pytest.raises(error.NotConnectingError):
            connector.stopConnecting()
        assert connector.getDestination() == tcp.IPv4Address(
            "TCP", "127.0.0.1", server.getsockname()[1])
    finally:
        for s in [server, *fillers]:
            s.close()


def test_connector_reconnects_and_disconnects(loop: Reactor, run_until: Any) -> None:
    server = Server()
    port = listen(loop, server)
    client = Client()
    connector = loop.connectTCP("127.0.0.1", port.getHost().port, client)
    first = run_until(server.first)
    assert connector.state == "connected"
    with pytest.raises(RuntimeError):
        connector.connect()
    connector.disconnect()
    assert reason_of(run_until, client).check(error.ConnectionDone)
    assert reason_of(run_until, first).check(error.ConnectionDone)
    assert connector.state == "disconnected"
    client.lost = defer.Deferred()
    connector.connect()
    while len(server.built) < 2:
        loop.iterate(0.01)
    assert len(client.built) == 2


def test_connect_by_name_resolves_off_the_loop(loop: Reactor, run_until: Any) -> None:
    server = Server()
    port = listen(loop, server)
    client = Client()
    loop.connectTCP("localhost", port.getHost().port, client)
    s = run_until(server.first)
    assert s.addr.host == "127.0.0.1"


def test_unknown_host_fails(loop: Reactor, run_until: Any) -> None:
    client = Client()
    loop.connectTCP("no-such-host.invalid", 80, client)
    reason = reason_of(run_until, client, "failed")
    assert reason.check(error.DNSLookupError)
    assert "no-such-host.invalid" in reason.getErrorMessage()


def test_ipv6_loopback(loop: Reactor, run_until: Any) -> None:
    server = Server()
    port = loop.listenTCP(0, server, interface="::1")
    client = Client()
    connector = loop.connectTCP("::1", port.getHost().port, client)
    s = run_until(server.first)
    while not client.built:
        loop.iterate(0.01)
    assert isinstance(port.getHost(), tcp.IPv6Address)
    assert s.transport.getHost() == port.getHost() == connector.getDestination()
    assert client.built[0].transport.getPeer() == port.getHost()


def test_connectTCP_bindAddress(loop: Reactor, run_until: Any) -> None:
    server = Server()
    port = listen(loop, server)
    local = closed_port()
    client = Client()
    loop.connectTCP("127.0.0.1", port.getHost().port, client, bindAddress=("127.0.0.1", local))
    assert run_until(server.first).addr == tcp.IPv4Address("TCP", "127.0.0.1", local)
    taken = Client()
    loop.connectTCP("127.0.0.1", port.getHost().port, taken,
                    bindAddress=("127.0.0.1", port.getHost().port))
    assert reason_of(run_until, taken, "failed").check(error.ConnectBindError)


def test_buildProtocol_None_refuses(loop: Reactor, run_until: Any) -> None:
    class Refuse(protocol.Factory):
        def buildProtocol(self, addr: Any) -> None:
            return None

    port = listen(loop, Refuse())
    client = Client()
    loop.connectTCP("127.0.0.1", port.getHost().port, client)
    while not client.built:
        loop.iterate(0.01)
    assert reason_of(run_until, client.built[0]).check(error.ConnectionDone)


def test_client_factory_refusing_closes_and_reports_lost(loop: Reactor, run_until: Any) -> None:
    class Refuse(Client):
        def buildProtocol(self, addr: Any) -> None:
            return None

    server = Server()
    port = listen(loop, server)
    client = Refuse()
    loop.connectTCP("127.0.0.1", port.getHost().port, client)
    assert reason_of(run_until, client).check(error.ConnectionDone)
    assert reason_of(run_until, run_until(server.first)).check(error.ConnectionDone)


def test_exception_in_dataReceived_drops_the_connection(
        loop: Reactor, run_until: Any, caplog: pytest.LogCaptureFixture) -> None:
    class Boom(Recorder):
        def dataReceived(self, data: bytes) -> None:
            raise ValueError("bad input")

    s, c, _ = connected_pair(loop, run_until, Boom)
    c.transport.write(b"hello")
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reason = reason_of(run_until, s)
    assert reason.check(ValueError) and reason.getErrorMessage() == "bad input"
    assert "Boom.dataReceived" in caplog.text and "ValueError: bad input" in caplog.text
    assert reason_of(run_until, c).check(error.ConnectionDone)


def test_exception_in_connectionLost_is_logged(
        loop: Reactor, run_until: Any, caplog: pytest.LogCaptureFixture) -> None:
    class Boom(Recorder):
        def connectionLost(self, reason: Failure) -> None:
            super().connectionLost(reason)
            raise RuntimeError("teardown")

    s, c, _ = connected_pair(loop, run_until, Boom)
    c.transport.loseConnection()
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reason_of(run_until, s)
    assert "RuntimeError: teardown" in caplog.text
    assert s.transport.disconnected


def test_transport_pause_and_resume_reading(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    s.transport.pauseProducing()
    c.transport.write(b"held back")
    for _ in range(5):
        loop.iterate(0.01)
    assert s.data == b""
    s.transport.resumeProducing()
    while s.data != b"held back":
        loop.iterate(0.01)


class StreamingProducer:
    """Writes ``chunk`` on every loop turn while not paused, until ``total``."""

    def __init__(self, loop: Reactor, transport: Any, chunk: int, total: int) -> None:
        self.loop, self.transport, self.chunk, self.total = loop, transport, chunk, total
        self.sent = 0
        self.paused = False
        self.pauses = 0
        self.resumes = 0
        self.max_buffered = 0
        self.done = defer.Deferred()
        transport.registerProducer(self, True)
        loop.callLater(0, self.produce)

    def produce(self) -> None:
        if self.paused or self.sent >= self.total:
            return
        data = bytes([(self.sent // self.chunk) % 256]) * self.chunk
        self.transport.write(data)
        self.sent += len(data)
        self.max_buffered = max(self.max_buffered, len(self.transport._buffer))
        if self.sent >= self.total:
            self.transport.unregisterProducer()
            self.transport.loseConnection()
            self.done.callback(None)
        else:
            self.loop.callLater(0, self.produce)

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        self.resumes += 1
        self.paused = False
        self.loop.callLater(0, self.produce)

    def stopProducing(self) -> None:
        self.paused = True


def test_streaming_producer_is_paused_by_a_slow_reader(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    c.transport.pauseProducing()  # the client reads nothing for now
    chunk, total = 16384, 32 << 20
    producer = StreamingProducer(loop, s.transport, chunk, total)
    while not producer.paused:
        loop.iterate(0.001)
    for _ in range(20):  # the reader still reads nothing: production stays bounded
        loop.iterate(0.005)
    assert producer.sent < total
    assert len(s.transport._buffer) <= tcp.HIGH_WATER + chunk
    c.transport.resumeProducing()
    assert reason_of(run_until, c).check(error.ConnectionDone)
    assert producer.pauses >= 1 and producer.resumes >= 1
    assert producer.max_buffered <= tcp.HIGH_WATER + chunk
    assert len(c.data) == total
    expected = b"".join(bytes([i % 256]) * chunk for i in range(total // chunk))
    assert c.data == expected


class PullProducer:
    """Writes one numbered line each time it is asked, ``count`` times."""

    def __init__(self, transport: Any, count: int) -> None:
        self.transport, self.count, self.asked = transport, count, 0
        self.stopped = False

    def resumeProducing(self) -> None:
        self.asked += 1
        if self.asked > self.count:
            self.transport.unregisterProducer()
            return
        self.transport.write(b"line %d\n" % self.asked)

    def stopProducing(self) -> None:
        self.stopped = True


def test_pull_producer_and_loseConnection_waits_for_it(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    producer = PullProducer(s.transport, 50)
    s.transport.registerProducer(producer, False)
    with pytest.raises(RuntimeError):
        s.transport.registerProducer(producer, False)
    s.transport.loseConnection()  # completes only after the producer unregisters
    assert reason_of(run_until, c).check(error.ConnectionDone)
    assert c.data == b"".join(b"line %d\n" % i for i in range(1, 51))
    assert producer.asked == 51 and not producer.stopped


def test_connection_loss_stops_the_producer(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    producer = PullProducer(s.transport, 10**9)
    s.transport.registerProducer(producer, False)
    c.transport.abortConnection()
    reason_of(run_until, s)
    assert producer.stopped
    late = PullProducer(s.transport, 1)
    s.transport.registerProducer(late, True)  # registering on a dead transport stops it at once
    assert late.stopped


class CountingFactory(protocol.Factory):
    protocol = Recorder

    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0

    def startFactory(self) -> None:
        self.starts += 1

    def stopFactory(self) -> None:
        self.stops += 1


def test_factory_start_stop_counting_and_stopListening(loop: Reactor, run_until: Any) -> None:
    factory = CountingFactory()
    p1 = listen(loop, factory)
    p2 = listen(loop, factory)
    assert (factory.starts, factory.stops, factory.numPorts) == (1, 0, 2)
    with pytest.raises(error.CannotListenError):
        loop.listenTCP(p1.getHost().port, factory, interface="127.0.0.1")
    assert factory.numPorts == 2
    assert run_until(p1.stopListening()) is None
    assert (factory.starts, factory.stops) == (1, 0)
    run_until(p2.stopListening())
    run_until(p2.stopListening())  # stopping twice is harmless
    assert (factory.starts, factory.stops, factory.numPorts) == (1, 1, 0)
    client = Client()
    loop.connectTCP("127.0.0.1", p1.getHost().port, client)  # the port really closed
    assert reason_of(run_until, client, "failed").check(error.ConnectionRefusedError)


def test_shutdown_closes_connections_ports_and_factories(loop: Reactor, run_until: Any) -> None:
    factory = CountingFactory()
    port = listen(loop, factory)
    client = Client()
    loop.connectTCP("127.0.0.1", port.getHost().port, client)
    while not client.built or not factory.numPorts:
        loop.iterate(0.01)
    run_until(client.built[0].made)
    loop.callLater(0, loop.stop)
    loop.run(installSignalHandlers=False)
    assert client.built[0].lost.called
    assert factory.stops == 1 and not port.connected
    assert client.events[-1] == "clientConnectionLost" and client.numPorts == 0


class Hangup(protocol.Protocol):
    def connectionMade(self) -> None:
        self.transport.loseConnection()


def test_reconnecting_client_factory_retries_until_stopped(loop: Reactor, run_until: Any) -> None:
    server = Server(Hangup)
    port = listen(loop, server)
    done = defer.Deferred()

    class Again(protocol.ReconnectingClientFactory):
        protocol = Recorder
        initialDelay = 0.01
        maxDelay = 0.05
        clock = loop
        losses = 0

        def clientConnectionLost(self, connector: Any, reason: Failure) -> None:
            self.losses += 1
            if self.losses == 3:
                self.stopTrying()
                done.callback(connector)
            protocol.ReconnectingClientFactory.clientConnectionLost(self, connector, reason)

    factory = Again()
    loop.connectTCP("127.0.0.1", port.getHost().port, factory)
    connector = run_until(done)
    for _ in range(10):
        loop.iterate(0.01)
    assert len(server.built) == 3 and factory.losses == 3
    assert connector.state == "disconnected" and factory.numPorts == 0


def test_reconnecting_client_factory_gives_up_after_maxRetries(loop: Reactor, run_until: Any) -> None:
    failures: list[Failure] = []

    class Again(protocol.ReconnectingClientFactory):
        protocol = Recorder
        initialDelay = 0.005
        maxDelay = 0.02
        maxRetries = 2
        clock = loop

        def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
            failures.append(reason)
            protocol.ReconnectingClientFactory.clientConnectionFailed(self, connector, reason)

    factory = Again()
    loop.connectTCP("127.0.0.1", closed_port(), factory)
    while len(failures) < 3:
        loop.iterate(0.01)
    for _ in range(10):
        loop.iterate(0.01)
    assert len(failures) == 3 and all(f.check(error.ConnectionRefusedError) for f in failures)
    assert factory.retries == 3 and factory._callID is None


# -- Unix sockets share the machinery ---------------------------------------------
def test_unix_socket_connection(loop: Reactor, run_until: Any, tmp_path: Any) -> None:
    from twisted.internet.address import UNIXAddress as TwistedUNIXAddress

    from reactor.unix import UNIXAddress

    path = str(tmp_path / "sock")
    server = Server()
    port = loop.listenUNIX(path, server)
    assert port.getHost() == UNIXAddress(path)
    assert repr(port.getHost()) == repr(TwistedUNIXAddress(path))
    with pytest.raises(error.CannotListenError):
        loop.listenUNIX(path, server)
    client = Client()
    connector = loop.connectUNIX(path, client)
    assert connector.getDestination() == UNIXAddress(path)
    s = run_until(server.first)
    while not client.built:
        loop.iterate(0.01)
    c = client.built[0]
    assert c.transport.getPeer() == s.transport.getHost() == UNIXAddress(path)
    assert c.transport.getHost() == s.transport.getPeer() == UNIXAddress(None)
    c.transport.write(b"over a unix socket" * 10000)
    c.transport.loseConnection()
    assert reason_of(run_until, s).check(error.ConnectionDone)
    assert s.data == b"over a unix socket" * 10000
    assert reason_of(run_until, client).check(error.ConnectionDone)
    run_until(port.stopListening())
    assert not (tmp_path / "sock").exists()  # removed, so the path can be reused
    again = Client()
    loop.connectUNIX(path, again)
    assert reason_of(run_until, again, "failed").check(error.ConnectError)


def test_unix_connect_refused(loop: Reactor, run_until: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "not-listening")
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(path)  # the file exists, nobody listens
        client = Client()
        loop.connectUNIX(path, client)
        assert reason_of(run_until, client, "failed").check(error.ConnectionRefusedError)


# -- what the tracer sees ------------------------------------------------------------
def test_probe_sees_connections_and_the_protocol_methods(loop: Reactor, run_until: Any) -> None:
    from reactor import _instrument

    class Seen(_instrument.Probe):
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, Any]] = []
            self.opened: list[tuple[Any, int, str, Any, Any]] = []
            self.closed: list[tuple[Any, int, Any, int, int]] = []

        def call_begin(self, kind: str, f: Any, source: Any) -> None:
            self.calls.append((kind, f.__qualname__, source))

        def connection_opened(self, *args: Any) -> None:
            self.opened.append(args)

        def connection_closed(self, *args: Any) -> None:
            self.closed.append(args)

    probe = Seen()
    _instrument.install(probe)
    try:
        s, c, port = connected_pair(loop, run_until)
        c.transport.write(b"12345")
        while s.data != b"12345":
            loop.iterate(0.01)
        s.transport.write(b"abc")
        s.transport.loseConnection()
        reason_of(run_until, c)
    finally:
        _instrument.uninstall()
    assert ("read", "Server.buildProtocol", port) in probe.calls
    assert [kind for kind, name, _ in probe.calls if name == "Client.buildProtocol"] == ["write"]
    assert ("read", "Recorder.dataReceived", s.transport) in probe.calls
    assert ("read", "Recorder.dataReceived", c.transport) in probe.calls
    assert ("read", "Recorder.connectionLost", c.transport) in probe.calls
    assert ("read", "Recorder.connectionMade", s.transport) in probe.calls
    assert sorted(role for _, _, role, _, _ in probe.opened) == ["client", "server"]
    for transport, fd, _role, host, peer in probe.opened:
        assert transport._trace_id is None and fd > 0
        assert (host, peer) == (transport.getHost(), transport.getPeer())
    closed = {t._role: (reason, n_in, n_out) for t, _, reason, n_in, n_out in probe.closed}
    assert closed["server"][0].check(error.ConnectionDone) and closed["server"][1:] == (5, 3)
    assert closed["client"][0].check(error.ConnectionDone) and closed["client"][1:] == (3, 5)


def test_exception_in_buildProtocol_or_connectionMade(
        loop: Reactor, run_until: Any, caplog: pytest.LogCaptureFixture) -> None:
    class BadFactory(protocol.Factory):
        def buildProtocol(self, addr: Any) -> None:
            raise KeyError("no protocol")

    class BadStart(Recorder):
        def connectionMade(self) -> None:
            super().connectionMade()
            raise RuntimeError("cannot start")

    bad_factory = listen(loop, BadFactory())
    bad_start = Server(BadStart)
    bad_start_port = listen(loop, bad_start)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        first = Client()
        loop.connectTCP("127.0.0.1", bad_factory.getHost().port, first)
        second = Client()
        loop.connectTCP("127.0.0.1", bad_start_port.getHost().port, second)
        # Each client sees its connection closed; each listening port carries on.
        reason_of(run_until, first)
        assert reason_of(run_until, run_until(bad_start.first)).check(RuntimeError)
        reason_of(run_until, second)
    assert "KeyError: 'no protocol'" in caplog.text and "RuntimeError: cannot start" in caplog.text
    assert bad_factory.connected and bad_start_port.connected
    third = Client()
    loop.connectTCP("127.0.0.1", bad_start_port.getHost().port, third)
    while len(bad_start.built) < 2:
        loop.iterate(0.01)


def test_stopConnecting_during_name_lookup(loop: Reactor, run_until: Any) -> None:
    server = Server()
    port = listen(loop, server)
    client = Client()
    connector = loop.connectTCP("localhost", port.getHost().port, client)
    connector.stopConnecting()  # the lookup is still running in a pool thread
    assert reason_of(run_until, client, "failed").check(error.UserError)
    for _ in range(20):  # the lookup's answer arrives and is ignored
        loop.iterate(0.01)
    assert server.built == [] and client.built == [] and connector.state == "disconnected"


def test_shutdown_while_connecting_fails_the_attempt(loop: Reactor, run_until: Any) -> None:
    server, fillers = full_backlog_listener()
    try:
        client = Client()
        loop.connectTCP("127.0.0.1", server.getsockname()[1], client, timeout=None)
        loop.callLater(0.05, loop.stop)
        loop.run(installSignalHandlers=False)
        assert client.events == ["startedConnecting", "clientConnectionFailed"]
        assert client.reason.check(error.ConnectError) and client.numPorts == 0
    finally:
        for s in [server, *fillers]:
            s.close()


def test_client_factory_errors_are_logged(
        loop: Reactor, run_until: Any, caplog: pytest.LogCaptureFixture) -> None:
    class BadBuild(Client):
        def buildProtocol(self, addr: Any) -> Any:
            raise LookupError("cannot build")

    class BadFailed(Client):
        def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
            super().clientConnectionFailed(connector, reason)
            raise ArithmeticError("in clientConnectionFailed")

    port = listen(loop, Server())
    with caplog.at_level(logging.ERROR, logger="reactor"):
        bad_build = BadBuild()
        loop.connectTCP("127.0.0.1", port.getHost().port, bad_build)
        assert reason_of(run_until, bad_build, "failed").check(LookupError)
        bad_failed = BadFailed()
        loop.connectTCP("127.0.0.1", closed_port(), bad_failed)
        reason_of(run_until, bad_failed, "failed")
    assert "LookupError: cannot build" in caplog.text
    assert "ArithmeticError: in clientConnectionFailed" in caplog.text
    assert bad_build.numPorts == bad_failed.numPorts == 0


# -- the same program on Twisted and on ours ---------------------------------------
def test_scenarios_see_the_same_events_as_on_twisted() -> None:
    """tcp_scenarios.py runs close/abort/error/half-close/refusal/timeout
    scenarios; on each reactor, each end must see the same events in the
    same order."""
    root = Path(__file__).resolve().parents[2]
    script = Path(__file__).with_name("tcp_scenarios.py")
    env = dict(os.environ, PYTHONPATH=str(root))
    runs = {}
    for runtime in ("twisted", "ours"):
        done = subprocess.run([sys.executable, str(script), runtime], env=env, cwd=root,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        runs[runtime] = json.loads(done.stdout)
    assert len(runs["twisted"]) == 7

    def by_end(log: list[str]) -> tuple[list[str], list[str]]:
        # Each end's order is behaviour; how the two ends interleave is timing.
        server = [e for e in log if e.startswith("server:")]
        return server, [e for e in log if not e.startswith("server:")]

    for title, log in runs["twisted"].items():
        assert by_end(runs["ours"][title]) == by_end(log), title


def test_an_overridden_makeConnection_is_called(loop: Reactor, run_until: Any) -> None:
    class Wrapping(Recorder):
        def makeConnection(self, transport: Any) -> None:
            self.wrapped = transport
            super().makeConnection(transport)

    s, c, _ = connected_pair(loop, run_until, Wrapping)
    assert s.wrapped is s.transport and s.events == ["made"] and s.connected
    assert c.transport is not None and c.connected


def test_out_of_descriptors_closes_the_waiting_peers_then_recovers(
        loop: Reactor, run_until: Any, caplog: pytest.LogCaptureFixture) -> None:
    """As Twisted: a connection that cannot be accepted for want of a
    descriptor is accepted with a reserved one and closed, so its peer hears
    at once instead of waiting in the kernel's queue."""
    import resource

    server = Server()
    port = listen(loop, server)
    clients = [socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
               for _ in range(6)]  # complete in the kernel's backlog, not yet accepted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = {int(fd) for fd in os.listdir("/proc/self/fd")}
    free = [fd for fd in range(max(in_use) + 3) if fd not in in_use]
    try:
        # A new descriptor takes the lowest free number below the limit:
        # leave room for exactly two.
        resource.setrlimit(resource.RLIMIT_NOFILE, (free[1] + 1, hard))
        with caplog.at_level(logging.ERROR, logger="reactor"):
            for _ in range(20):
                loop.iterate(0.002)
        accepted_while_short = len(server.built)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert 0 < accepted_while_short < 6
    closed = 0
    for c in clients:
        c.settimeout(0.2)
        try:
            closed += c.recv(1) == b""
        except ConnectionResetError:
            closed += 1
        except TimeoutError:
            pass  # accepted: its protocol keeps it open
        c.close()
    assert closed == 6 - accepted_while_short
    complaints = [r for r in caplog.records if "could not accept" in r.getMessage()]
    assert len(complaints) == closed
    late = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
    while len(server.built) <= accepted_while_short:  # descriptors are back
        loop.iterate(0.01)
    late.close()


# -- parity with Twisted found by bench/conformance.py ------------------------------

def test_a_transport_releases_its_protocol_once_the_connection_is_lost(
        loop: Reactor, run_until: Any) -> None:
    import gc
    import weakref

    s, c, _ = connected_pair(loop, run_until)
    transport = c.transport
    gone = weakref.ref(c)
    c.transport.loseConnection()
    run_until(c.lost)
    client_factory = c.factory
    del c
    client_factory.built.clear()
    gc.collect()
    assert transport.protocol is None and gone() is None
    assert repr(transport).startswith("<Recorder #")  # still named in logs


def test_connect_tcp_takes_a_service_name_as_port(loop: Reactor, run_until: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server()
    port = listen(loop, server)
    real = socket.getservbyname
    monkeypatch.setattr(socket, "getservbyname", lambda name, proto: (
        port.getHost().port if (name, proto) == ("http", "tcp") else real(name, proto)))
    loop.connectTCP("127.0.0.1", "http", Client())
    assert run_until(server.first).addr.host == "127.0.0.1"
    with pytest.raises(error.ServiceNameUnknownError) as raised:
        loop.connectTCP("127.0.0.1", "no-such-service-here", Client())
    assert "'no-such-service-here'" in str(raised.value)


def _link_local_address() -> str | None:
    """A link-local IPv6 address of this machine with its scope, if any."""
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hex_address, _, _, scope, _, name = line.split()
        if scope == "20":  # link scope
            groups = [hex_address[i:i + 4] for i in range(0, 32, 4)]
            return socket.inet_ntop(socket.AF_INET6, bytes.fromhex("".join(groups))) + "%" + name
    return None


def test_a_scoped_link_local_address_is_a_literal_kept_with_its_interface() -> None:
    index = socket.if_nametoindex("lo")
    assert tcp._is_ip_literal("fe80::1%lo")
    assert tcp._sockaddr("fe80::1%lo", 80) == ("fe80::1", 80, 0, index)
    assert tcp.tcp_address(("fe80::1", 80, 0, index)) == \
        IPv6Address("TCP", "fe80::1%lo", 80, 0, index)


def test_listen_and_connect_on_a_scoped_link_local_address(loop: Reactor, run_until: Any) -> None:
    address = _link_local_address()
    if address is None:
        pytest.skip("this machine has no link-local IPv6 address")
    server = Server()
    port = loop.listenTCP(0, server, interface=address)
    assert port.getHost().host == address
    loop.connectTCP(address, port.getHost().port, Client())
    assert run_until(server.first).transport.getHost().host == address
    # A client bound to the scoped address keeps its interface too (Twisted's
    # test_addresses binds so).
    bound = socket.socket(socket.AF_INET6)
    bound.bind(tcp._sockaddr(address, 0))
    free = bound.getsockname()[1]
    bound.close()
    bound_client = Client()
    loop.connectTCP(address, port.getHost().port, bound_client, bindAddress=(address, free))
    while len(server.built) < 2 and not bound_client.failed.called:
        loop.iterate(0.01)
    assert "clientConnectionFailed" not in bound_client.events
    assert server.built[1].addr.port == free  # the peer is the bound address


def test_stop_listening_reports_a_failing_stop_factory_in_its_deferred(
        loop: Reactor, run_until: Any) -> None:
    class Failing(Server):
        def stopFactory(self) -> None:
            raise RuntimeError("cannot stop")

    port = listen(loop, Failing())
    number = port.getHost().port
    d = port.stopListening()
    with pytest.raises(RuntimeError, match="cannot stop"):
        run_until(d)
    assert port.disconnected and "not listening" in repr(port)
    again = loop.listenTCP(number, Server(), interface="127.0.0.1")  # the port is free
    assert str(number) in repr(again)


def test_write_sequence_refuses_text_as_twisted_does(loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    with pytest.raises(TypeError, match="^Data must be bytes$"):
        c.transport.writeSequence([b"ok", "not bytes"])
    with pytest.raises(TypeError, match="^Data must be bytes$"):
        c.transport.write("not bytes")


def test_a_port_logs_when_it_starts_and_closes_as_twisted_does(loop: Reactor) -> None:
    from reactor import log

    seen: list[dict] = []
    log.addObserver(seen.append)
    try:
        port = listen(loop, Server())
        number = port.getHost().port
        port.stopListening()
    finally:
        log.removeObserver(seen.append)
    assert [e["message"] for e in seen] == [(f"Server starting on {number}",),
                                            (f"(TCP Port {number} Closed)",)]


class ChunkProducer:
    """A pull producer writing ``chunks`` one per resumeProducing, then
    unregistering and closing."""

    def __init__(self, transport: Any, chunks: list[bytes]) -> None:
        self.transport = transport
        self.chunks = list(chunks)
        self.resumed = 0

    def resumeProducing(self) -> None:
        self.resumed += 1
        if self.chunks:
            self.transport.write(self.chunks.pop(0))
        else:
            self.transport.unregisterProducer()
            self.transport.loseConnection()

    def stopProducing(self) -> None:
        pass


def test_a_pull_producer_registered_after_an_immediate_write_is_resumed_to_the_end(
        loop: Reactor, run_until: Any) -> None:
    s, c, _ = connected_pair(loop, run_until)
    s.transport.write(b"head;")  # goes straight to the socket: nothing is queued
    producer = ChunkProducer(s.transport, [b"one;", b"two;", b"three;"])
    s.transport.registerProducer(producer, False)
    run_until(c.lost)
    assert bytes(c.data) == b"head;one;two;three;"
    assert producer.resumed == 4


def test_a_pull_producer_is_asked_again_after_a_write_that_went_out_at_once(
        loop: Reactor, run_until: Any) -> None:
    """Twisted asks a pull producer once on registering and again when the
    transport can take more; a write just before registering must not stop
    the second call (Twisted's AbortConnectionTests.test_resumeProducingAbort)."""
    s, c, _ = connected_pair(loop, run_until)
    asked: list[bool] = []

    class Pull:
        def resumeProducing(self) -> None:
            asked.append(registering)
            if len(asked) == 2:
                c.transport.abortConnection()

        def stopProducing(self) -> None:
            asked.append(False)

    c.transport.write(b"x" * 1000)  # small: the kernel takes it all at once
    registering = True
    c.transport.registerProducer(Pull(), False)
    registering = False
    run_until(c.lost)
    assert asked[:2] == [True, False]
    assert c.reason.check(error.ConnectionAborted)
    run_until(s.lost)
    assert s.reason.check(error.ConnectionLost)


def test_a_write_into_a_reset_connection_reports_the_reset_not_an_end_of_file(
        loop: Reactor, run_until: Any) -> None:
    """The kernel reports a reset once: to the write that meets it, after
    which reads see an end of file.  The protocol still hears ConnectionLost
    (as from Twisted), from the loop rather than inside its write()."""
    s, c, _ = connected_pair(loop, run_until)
    s.transport.abortConnection()
    run_until(s.lost)
    while not c.lost.called:
        c.transport.write(b"GOODBYE")
        assert c.events == ["made"]  # never told from inside write()
        loop.iterate(0.01)
    assert c.reason.check(error.ConnectionLost)
    assert not c.reason.check(error.ConnectionDone)


def test_an_ipv6_port_out_of_range_is_refused_not_wrapped_to_zero(
        loop: Reactor, run_until: Any) -> None:
    """getaddrinfo wraps 65536 to 0 (a connection refused by port 0); the
    port is kept as given so that connect() refuses it, as for IPv4."""
    assert tcp._sockaddr("::1", 65536)[1] == 65536
    with pytest.raises(socket.gaierror):
        tcp._sockaddr("::1", -1)
    for host in ("127.0.0.1", "::1"):
        with pytest.raises(OverflowError, match="port must be 0-65535"):
            loop.connectTCP(host, 65536, Client())


def test_write_after_the_connection_is_lost_does_nothing(loop: Reactor, run_until: Any) -> None:
    """Twisted's test_writeAfterDisconnect, on loopscope alone."""
    s, c, _ = connected_pair(loop, run_until)
    c.transport.loseConnection()
    run_until(c.lost)
    run_until(s.lost)
    sent = c.transport.bytes_out
    c.transport.write(b"some bytes to get lost")
    c.transport.writeSequence([b"some", b"more"])
    assert c.transport.bytes_out == sent and not c.transport._buffer


def test_resume_producing_after_the_connection_is_lost_does_not_read(
        loop: Reactor, run_until: Any) -> None:
    """Twisted's test_resumeProducingWhileDisconnected, on loopscope alone."""
    s, c, _ = connected_pair(loop, run_until)
    transport = s.transport
    transport.connectionLost(Failure(Exception("dummy")))
    assert transport not in loop.getReaders()
    transport.resumeProducing()
    assert transport not in loop.getReaders()
    run_until(c.lost)


def test_an_attempt_on_a_reactor_that_never_ran_fails_at_teardown(loop: Reactor) -> None:
    """connectTCP connects at once (its socket is bound and connecting when
    it returns), so discarding the reactor unrun ends the attempt with
    clientConnectionFailed, where Twisted would not have started it."""
    client = Client()
    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))
    free = bound.getsockname()[1]
    bound.close()
    connector = loop.connectTCP("127.0.0.1", closed_port(), client,
                                bindAddress=("127.0.0.1", free))
    assert connector.transport.socket.getsockname()[1] == free
    loop._disconnect_all()
    assert client.events == ["startedConnecting", "clientConnectionFailed"]
    assert client.reason.check(error.ConnectError)
