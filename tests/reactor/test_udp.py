"""reactor.listenUDP and DatagramProtocol over real sockets on 127.0.0.1 / ::1."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from reactor import Reactor, defer, error, protocol, udp

pytestmark = pytest.mark.timeout(30)


class Echo(udp.DatagramProtocol):
    def __init__(self) -> None:
        self.events: list[str] = []

    def startProtocol(self) -> None:
        self.events.append("start")

    def stopProtocol(self) -> None:
        self.events.append("stop")

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        self.transport.write(datagram.upper(), addr)


class Collector(udp.DatagramProtocol):
    """Fires ``got`` once ``wanted`` datagrams arrived; ``refused`` on an ICMP refusal."""

    def __init__(self, wanted: int = 1) -> None:
        self.wanted = wanted
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []
        self.got = defer.Deferred()
        self.refused = defer.Deferred()

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.append((datagram, addr))
        if len(self.datagrams) == self.wanted:
            self.got.callback(self.datagrams)

    def connectionRefused(self) -> None:
        if not self.refused.called:
            self.refused.callback(None)


def test_datagram_protocol_is_importable_from_protocol() -> None:
    assert protocol.DatagramProtocol is udp.DatagramProtocol
    with pytest.raises(AttributeError):
        protocol.NoSuchThing  # noqa: B018


def test_echo_between_two_ports(loop: Reactor, run_until: Any) -> None:
    echo = Echo()
    server = loop.listenUDP(0, echo, interface="127.0.0.1")
    assert echo.events == ["start"] and echo.transport is server
    host = server.getHost()
    assert (host.type, host.host) == ("UDP", "127.0.0.1") and host.port > 0
    client_protocol = Collector(wanted=3)
    client = loop.listenUDP(0, client_protocol, interface="127.0.0.1")
    for word in (b"one", b"two", b"three"):
        client.write(word, ("127.0.0.1", host.port))
    got = run_until(client_protocol.got)
    assert sorted(d for d, _ in got) == [b"ONE", b"THREE", b"TWO"]
    assert {a for _, a in got} == {("127.0.0.1", host.port)}
    assert run_until(server.stopListening()) is None
    assert echo.events == ["start", "stop"] and echo.transport is None
    client.stopListening()
    # Closed: the port number is free again.
    again = loop.listenUDP(host.port, Echo(), interface="127.0.0.1")
    run_until(again.stopListening())


def test_connected_mode_write_and_refusal(loop: Reactor, run_until: Any) -> None:
    target = loop.listenUDP(0, Echo(), interface="127.0.0.1")
    number = target.getHost().port
    c = Collector()
    port = loop.listenUDP(0, c, interface="127.0.0.1")
    port.connect("127.0.0.1", number)
    with pytest.raises(RuntimeError):
        port.connect("127.0.0.1", number)
    port.write(b"ping")
    assert run_until(c.got) == [(b"PING", ("127.0.0.1", number))]
    run_until(target.stopListening())
    # Nobody listens now: the kernel answers with ICMP port unreachable,
    # which a connected socket reports on its next operation.
    port.write(b"anyone?")
    run_until(c.refused)
    port.stopListening()


def test_bad_addresses_and_sizes(loop: Reactor, run_until: Any) -> None:
    port = loop.listenUDP(0, udp.DatagramProtocol(), interface="127.0.0.1")
    with pytest.raises(error.InvalidAddressError):
        port.write(b"x", ("localhost", 9))
    with pytest.raises(error.InvalidAddressError):
        port.write(b"x", ("::1", 9))
    with pytest.raises(error.InvalidAddressError):
        port.connect("localhost", 9)
    with pytest.raises(error.MessageLengthError):
        port.write(b"x" * 70_000, ("127.0.0.1", 9))
    with pytest.raises(error.InvalidAddressError):
        loop.listenUDP(0, udp.DatagramProtocol(), interface="localhost")
    with pytest.raises(error.CannotListenError):
        loop.listenUDP(port.getHost().port, udp.DatagramProtocol(), interface="127.0.0.1")
    run_until(port.stopListening())
    assert port.stopListening() is None  # not listening any more


def test_max_packet_size_truncates(loop: Reactor, run_until: Any) -> None:
    c = Collector()
    port = loop.listenUDP(0, c, interface="127.0.0.1", maxPacketSize=10)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"0123456789abcdef", ("127.0.0.1", port.getHost().port))
    assert run_until(c.got)[0][0] == b"0123456789"
    port.stopListening()


def test_ipv6_and_broadcast_option(loop: Reactor, run_until: Any) -> None:
    echo = loop.listenUDP(0, Echo(), interface="::1")
    assert echo.getHost().host == "::1"
    c = Collector()
    port = loop.listenUDP(0, c, interface="::1")
    port.writeSequence([b"v", b"6"], ("::1", echo.getHost().port))
    data, addr = run_until(c.got)[0]
    assert data == b"V6" and addr == ("::1", echo.getHost().port)
    with pytest.raises(error.InvalidAddressError):
        port.write(b"x", ("127.0.0.1", 9))
    assert not port.getBroadcastAllowed()
    port.setBroadcastAllowed(True)
    assert port.getBroadcastAllowed()
    echo.stopListening()
    port.stopListening()


def test_an_exception_in_datagram_received_is_logged_and_reading_goes_on(
        loop: Reactor, run_until: Any, caplog: Any) -> None:
    class Fragile(Collector):
        def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
            if datagram == b"bad":
                raise ValueError("bad datagram")
            super().datagramReceived(datagram, addr)

    f = Fragile()
    port = loop.listenUDP(0, f, interface="127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"bad", ("127.0.0.1", port.getHost().port))
        s.sendto(b"good", ("127.0.0.1", port.getHost().port))
    assert run_until(f.got)[0][0] == b"good"
    assert "bad datagram" in caplog.text
    port.stopListening()


def test_shutdown_closes_udp_ports(loop: Reactor) -> None:
    echo = Echo()
    port = loop.listenUDP(0, echo, interface="127.0.0.1")
    loop.callLater(0, loop.stop)
    loop.run(installSignalHandlers=False)
    assert echo.events == ["start", "stop"] and not port.connected
