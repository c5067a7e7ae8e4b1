"""reactor.endpoints: the endpoint classes over real sockets, and the strings
parsed as Twisted parses them."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from collecting import Collect
from twisted.internet import endpoints as tendpoints

from reactor import Reactor, endpoints, error, protocol

pytestmark = pytest.mark.timeout(30)


class Hello(protocol.Protocol):
    def connectionMade(self) -> None:
        self.transport.write(b"hello from " + self.factory.name)
        self.transport.loseConnection()


def hello_factory(name: bytes) -> protocol.Factory:
    f = protocol.Factory.forProtocol(Hello)
    f.name = name
    return f


def round_trip(run_until: Any, server: Any, client: Any) -> bytes:
    port = run_until(server.listen(hello_factory(b"server")))
    reader = Collect()
    connected = run_until(endpoints.connectProtocol(client, reader))
    assert connected is reader and reader.transport is not None
    data = run_until(reader.done)
    port.stopListening()
    return data


def test_tcp4_endpoints(loop: Reactor, run_until: Any) -> None:
    server = endpoints.TCP4ServerEndpoint(loop, 0, interface="127.0.0.1")
    port = run_until(server.listen(hello_factory(b"tcp4")))
    client = endpoints.TCP4ClientEndpoint(loop, "127.0.0.1", port.getHost().port)
    reader = Collect()
    assert run_until(endpoints.connectProtocol(client, reader)) is reader
    assert run_until(reader.done) == b"hello from tcp4"
    port.stopListening()


def test_tcp4_client_endpoint_resolves_a_name(loop: Reactor, run_until: Any) -> None:
    port = loop.listenTCP(0, hello_factory(b"named"), interface="127.0.0.1")
    client = endpoints.TCP4ClientEndpoint(loop, "localhost", port.getHost().port)
    p = run_until(client.connect(protocol.Factory.forProtocol(Collect)))
    assert run_until(p.done) == b"hello from named"
    port.stopListening()


def test_tcp6_endpoints(loop: Reactor, run_until: Any) -> None:
    server = endpoints.TCP6ServerEndpoint(loop, 0, interface="::1")
    port = run_until(server.listen(hello_factory(b"tcp6")))
    assert port.getHost().host == "::1"
    client = endpoints.TCP6ClientEndpoint(loop, "::1", port.getHost().port)
    reader = Collect()
    run_until(endpoints.connectProtocol(client, reader))
    assert run_until(reader.done) == b"hello from tcp6"
    assert reader.transport.getPeer().host == "::1"
    port.stopListening()


def test_tcp6_client_endpoint_looks_names_up_for_ipv6(loop: Reactor, run_until: Any) -> None:
    # A host that is not an IPv6 literal is looked up, in the thread pool, and a failed lookup
    # reaches the caller. "127.0.0.1" has no IPv6 address on any machine (getaddrinfo answers
    # at once, without asking DNS), where "localhost" may have one.
    client = endpoints.TCP6ClientEndpoint(loop, "127.0.0.1", 1)
    with pytest.raises(socket.gaierror):
        run_until(client.connect(protocol.Factory.forProtocol(Collect)))


def test_unix_endpoints(loop: Reactor, run_until: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "sock")
    server = endpoints.UNIXServerEndpoint(loop, path, mode=0o600, wantPID=True)
    port = run_until(server.listen(hello_factory(b"unix")))
    assert os.path.lexists(path + ".lock")
    client = endpoints.UNIXClientEndpoint(loop, path, checkPID=True)
    p = run_until(client.connect(protocol.Factory.forProtocol(Collect)))
    assert run_until(p.done) == b"hello from unix"
    port.stopListening()


def test_string_endpoints_round_trip(loop: Reactor, run_until: Any, tmp_path: Any) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    number = probe.getsockname()[1]
    probe.close()
    data = round_trip(run_until,
                      endpoints.serverFromString(loop, f"tcp:{number}:interface=127.0.0.1"),
                      endpoints.clientFromString(loop, f"tcp:127.0.0.1:{number}:timeout=5"))
    assert data == b"hello from server"
    data = round_trip(run_until,
                      endpoints.serverFromString(loop, f"tcp6:{number}:interface=\\:\\:1"),
                      endpoints.clientFromString(loop, f"tcp6:host=\\:\\:1:port={number}"))
    assert data == b"hello from server"
    path = endpoints.quoteStringArgument(str(tmp_path / "a:b"))
    data = round_trip(run_until, endpoints.serverFromString(loop, f"unix:{path}:mode=600"),
                      endpoints.clientFromString(loop, f"unix:path={path}:lockfile=1"))
    assert data == b"hello from server"


def test_listen_failure_is_a_failed_deferred(loop: Reactor, run_until: Any) -> None:
    port = loop.listenTCP(0, hello_factory(b"x"), interface="127.0.0.1")
    taken = endpoints.TCP4ServerEndpoint(loop, port.getHost().port, interface="127.0.0.1")
    with pytest.raises(error.CannotListenError):
        run_until(taken.listen(hello_factory(b"y")))
    port.stopListening()


def test_connect_failure_refusal_and_no_protocol(loop: Reactor, run_until: Any) -> None:
    port = loop.listenTCP(0, hello_factory(b"x"), interface="127.0.0.1")
    number = port.getHost().port
    client = endpoints.TCP4ClientEndpoint(loop, "127.0.0.1", number)

    class Refuses(protocol.Factory):
        def buildProtocol(self, addr: Any) -> None:
            return None

    with pytest.raises(error.NoProtocol):
        run_until(client.connect(Refuses()))
    port.stopListening()
    with pytest.raises(error.ConnectionRefusedError):
        run_until(client.connect(protocol.Factory.forProtocol(Collect)))


def test_cancelling_a_connect_gives_connecting_cancelled(loop: Reactor, run_until: Any) -> None:
    port = loop.listenTCP(0, hello_factory(b"x"), interface="127.0.0.1")
    client = endpoints.TCP4ClientEndpoint(loop, "127.0.0.1", port.getHost().port)
    factory = protocol.Factory.forProtocol(Collect)
    d = client.connect(factory)
    d.cancel()
    with pytest.raises(error.ConnectingCancelledError) as info:
        run_until(d)
    assert info.value.address.port == port.getHost().port
    port.stopListening()


def test_the_deferred_fires_after_connection_made_and_before_data(loop: Reactor,
                                                                  run_until: Any) -> None:
    port = loop.listenTCP(0, hello_factory(b"early"), interface="127.0.0.1")
    seen: list[str] = []

    class Watch(Collect):
        def connectionMade(self) -> None:
            seen.append("made")

        def dataReceived(self, data: bytes) -> None:
            seen.append("data")
            super().dataReceived(data)

    client = endpoints.TCP4ClientEndpoint(loop, "127.0.0.1", port.getHost().port)
    d = client.connect(protocol.Factory.forProtocol(Watch))
    d.addCallback(lambda p: seen.append("fired") or p)
    p = run_until(d)
    run_until(p.done)
    assert seen[:2] == ["made", "fired"] and "data" in seen
    port.stopListening()


# -- strings parsed as Twisted parses them ------------------------------------------------------

SERVER_STRINGS = [
    "tcp:80", "tcp:8080:interface=127.0.0.1", "tcp:8080:backlog=7:interface=10.0.0.1",
    "tcp:port=81", "tcp6:80", "tcp6:80:interface=\\:\\:1:backlog=3", "tcp6:port=90",
    "unix:/var/run/finger", "unix:/var/run/finger:mode=660", "unix:/tmp/x:lockfile=0:backlog=9",
    "unix:address=/tmp/y", "unix:/tmp/a\\:b", "tcp:80:interface=a=b",
]

CLIENT_STRINGS = [
    "tcp:example.com:80", "tcp:host=example.com:port=80", "tcp:host=example.com:80",
    "tcp:example.com:port=80", "tcp:example.com:80:timeout=9:bindAddress=10.0.0.2",
    "unix:/var/foo/bar", "unix:path=/var/foo/bar:lockfile=1:timeout=9",
    "unix:/var/foo/bar:lockfile=0", "unix:/tmp/a\\:b\\\\c",
]


def attributes(endpoint: Any) -> tuple[str, dict]:
    return type(endpoint).__name__, {k: v for k, v in vars(endpoint).items() if k != "_reactor"}


@pytest.mark.parametrize("description", SERVER_STRINGS)
def test_server_strings_parse_as_in_twisted(loop: Reactor, description: str) -> None:
    from twisted.internet import reactor as treactor

    ours = attributes(endpoints.serverFromString(loop, description))
    theirs = attributes(tendpoints.serverFromString(treactor, description))
    assert ours == theirs


@pytest.mark.parametrize("description", CLIENT_STRINGS)
def test_client_strings_parse_as_in_twisted(loop: Reactor, description: str) -> None:
    from twisted.internet import reactor as treactor

    ours = attributes(endpoints.clientFromString(loop, description))
    theirs = attributes(tendpoints.clientFromString(treactor, description))
    assert ours == theirs


def test_tcp6_client_strings_and_bad_strings(loop: Reactor) -> None:
    e = endpoints.clientFromString(loop, "tcp6:\\:\\:1:80:timeout=3")
    assert isinstance(e, endpoints.TCP6ClientEndpoint)
    assert (e._host, e._port, e._timeout) == ("::1", 80, 3)
    with pytest.raises(ValueError, match="Unknown endpoint type: 'bogus'"):
        endpoints.serverFromString(loop, "bogus:80")
    with pytest.raises(ValueError, match="Unknown endpoint type"):
        endpoints.clientFromString(loop, "bogus:host=a:port=1")
    with pytest.raises(ValueError):
        endpoints.serverFromString(loop, "tcp:eighty")
    with pytest.raises(TypeError):
        endpoints.clientFromString(loop, "tcp:host=a")  # no port


def test_quote_string_argument_matches_twisted() -> None:
    for text in ["C:/key.pem", "a\\b:c", "plain"]:
        assert endpoints.quoteStringArgument(text) == tendpoints.quoteStringArgument(text)
