"""NetstringReceiver, the IntN receivers, StatefulStringProtocol and FileSender:
against Twisted's own classes on the same input, and over real sockets."""

from __future__ import annotations

import io
from typing import Any

import pytest
from collecting import Collect
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport
from twisted.protocols import basic as tbasic

from reactor import Reactor, basic, defer, error, protocol

pytestmark = pytest.mark.timeout(60)


def collecting(base: type) -> type:
    class Collector(base):
        def __init__(self) -> None:
            self.strings: list[bytes] = []

        def stringReceived(self, string: bytes) -> None:
            self.strings.append(string)

    return Collector


def feed(cls: type, chunks: list[bytes]) -> tuple[list[bytes], bool, bool]:
    """Strings, brokenPeer and whether the connection was dropped."""
    p = collecting(cls)()
    transport = StringTransport()
    p.makeConnection(transport)
    for chunk in chunks:
        if transport.disconnecting:
            break  # a real transport stops reading once it is closing
        p.dataReceived(chunk)
    return p.strings, bool(getattr(p, "brokenPeer", 0)), transport.disconnecting


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


payloads = st.lists(st.binary(max_size=40), max_size=8)
cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


@settings(max_examples=200, deadline=None)
@given(payloads, cuts)
def test_netstrings_split_anywhere_match_twisted(strings: list[bytes], where: list[int]) -> None:
    data = b"".join(b"%d:%s," % (len(s), s) for s in strings)
    chunks = split(data, where)
    ours = feed(basic.NetstringReceiver, chunks)
    assert ours == feed(tbasic.NetstringReceiver, chunks)
    assert ours[0] == strings


@pytest.mark.parametrize("data", [
    b"007:abcdefg,", b"3:abcd", b":abc,", b"abc", b"3abc,", b"100000:", b"1000000",
    b"99999", b"3:ab,,", b"0:,0:,x", b"-1:a,", b"2:ab,3:abc;",
])
def test_broken_netstrings_match_twisted(data: bytes) -> None:
    for chunks in ([data], [bytes([b]) for b in data]):
        assert feed(basic.NetstringReceiver, chunks) == feed(tbasic.NetstringReceiver, chunks)


@pytest.mark.parametrize("ours, theirs, width", [
    (basic.Int8StringReceiver, tbasic.Int8StringReceiver, 1),
    (basic.Int16StringReceiver, tbasic.Int16StringReceiver, 2),
    (basic.Int32StringReceiver, tbasic.Int32StringReceiver, 4),
])
@settings(max_examples=60, deadline=None)
@given(strings=st.lists(st.binary(max_size=200), max_size=6), where=cuts)
def test_intn_receivers_match_twisted(ours: type, theirs: type, width: int,
                                      strings: list[bytes], where: list[int]) -> None:
    strings = [s[: 2 ** (8 * width) - 1] for s in strings]
    data = b"".join(len(s).to_bytes(width, "big") + s for s in strings)
    chunks = split(data, where)
    assert feed(ours, chunks)[0] == feed(theirs, chunks)[0] == strings


def test_send_string_formats_match_twisted() -> None:
    for ours, theirs in [(basic.NetstringReceiver, tbasic.NetstringReceiver),
                         (basic.Int8StringReceiver, tbasic.Int8StringReceiver),
                         (basic.Int16StringReceiver, tbasic.Int16StringReceiver),
                         (basic.Int32StringReceiver, tbasic.Int32StringReceiver)]:
        written = []
        for cls in (ours, theirs):
            p, t = cls(), StringTransport()
            p.makeConnection(t)
            p.sendString(b"")
            p.sendString(b"hello")
            written.append(t.value())
        assert written[0] == written[1]
    p = basic.Int8StringReceiver()
    p.makeConnection(StringTransport())
    with pytest.raises(basic.StringTooLongError):
        p.sendString(b"x" * 256)


class Stateful(basic.StatefulStringProtocol, basic.NetstringReceiver):
    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    def proto_init(self, string: bytes) -> str:
        self.seen.append(("init", string))
        return "body"

    def proto_body(self, string: bytes) -> str:
        self.seen.append(("body", string))
        return "done" if string == b"bye" else "body"


def test_stateful_string_protocol_routes_by_state_and_closes_on_done() -> None:
    p, t = Stateful(), StringTransport()
    p.makeConnection(t)
    p.dataReceived(b"5:hello,3:one,3:bye,")
    assert p.seen == [("init", b"hello"), ("body", b"one"), ("body", b"bye")]
    assert p.state == "done" and t.disconnecting
    p.state = "nowhere"
    p.dataReceived(b"1:x,")  # no proto_nowhere: logged and ignored
    assert p.state == "nowhere"


# -- over real sockets ------------------------------------------------------------------------

class NetstringEcho(basic.NetstringReceiver):
    def stringReceived(self, string: bytes) -> None:
        self.sendString(string[::-1])


class NetstringClient(basic.NetstringReceiver):
    def __init__(self, strings: list[bytes]) -> None:
        self.to_send = strings
        self.replies: list[bytes] = []
        self.done = defer.Deferred()

    def connectionMade(self) -> None:
        for s in self.to_send:
            self.sendString(s)

    def stringReceived(self, string: bytes) -> None:
        self.replies.append(string)
        if len(self.replies) == len(self.to_send):
            self.done.callback(self.replies)


def test_netstrings_over_tcp(loop: Reactor, run_until: Any) -> None:
    port = loop.listenTCP(0, protocol.Factory.forProtocol(NetstringEcho), interface="127.0.0.1")
    strings = [b"a" * 50_000, b"", b"xyz" * 7000, b"end"]
    client = NetstringClient(strings)
    creator = protocol.ClientCreator(loop, lambda: client)
    run_until(creator.connectTCP("127.0.0.1", port.getHost().port))
    assert run_until(client.done) == [s[::-1] for s in strings]
    client.transport.loseConnection()
    port.stopListening()


class SendsFile(protocol.Protocol):
    content = bytes(range(256)) * 4000  # ~1 MB: many chunks, many pauses of the socket

    def connectionMade(self) -> None:
        sender = basic.FileSender()
        self.factory.transfer = sender.beginFileTransfer(io.BytesIO(self.content), self.transport,
                                                         transform=bytes.upper)
        self.factory.transfer.addCallback(self.finished)

    def finished(self, last: bytes) -> bytes:
        self.transport.loseConnection()
        return last


def test_file_sender_streams_a_file_over_tcp(loop: Reactor, run_until: Any) -> None:
    factory = protocol.Factory.forProtocol(SendsFile)
    port = loop.listenTCP(0, factory, interface="127.0.0.1")
    sink = Collect()
    run_until(protocol.ClientCreator(loop, lambda: sink).connectTCP("127.0.0.1",
                                                                    port.getHost().port))
    received = run_until(sink.done)
    assert received == SendsFile.content.upper()
    assert run_until(factory.transfer) == SendsFile.content.upper()[-1:]
    port.stopListening()


def test_file_sender_fails_when_the_consumer_stops() -> None:
    t = StringTransport()
    sender = basic.FileSender()
    d = sender.beginFileTransfer(io.BytesIO(b"x" * 100_000), t)
    assert t.producer is sender and not t.streaming
    sender.resumeProducing()
    assert len(t.value()) == basic.FileSender.CHUNK_SIZE
    outcome = []
    d.addErrback(outcome.append)
    sender.stopProducing()
    assert str(outcome[0].value) == "Consumer asked us to stop producing"


def test_file_sender_of_an_empty_file_ends_at_once() -> None:
    t = StringTransport()
    d = basic.FileSender().beginFileTransfer(io.BytesIO(b""), t)
    t.producer.resumeProducing()
    result = []
    d.addCallback(result.append)
    assert result == [b""] and t.producer is None


def test_netstring_peer_sending_garbage_is_dropped(loop: Reactor, run_until: Any) -> None:
    server = protocol.Factory.forProtocol(NetstringEcho)
    port = loop.listenTCP(0, server, interface="127.0.0.1")

    class Garbage(Collect):
        def connectionMade(self) -> None:
            self.transport.write(b"01:x,")

    g = Garbage()
    run_until(protocol.ClientCreator(loop, lambda: g).connectTCP("127.0.0.1",
                                                                 port.getHost().port))
    assert run_until(g.done) == b""  # closed by the server, nothing echoed
    assert g.reason.check(error.ConnectionDone)
    port.stopListening()
