"""Framing protocols in reactor.basic, checked against Twisted's own where it helps."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.protocols import basic as twisted_basic

from reactor import Reactor, basic, defer, protocol


class FakeTransport:
    """The part of a transport that framing protocols touch, in memory."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.disconnecting = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written += data

    def writeSequence(self, seq: Any) -> None:
        self.written += b"".join(seq)

    def loseConnection(self) -> None:
        self.disconnecting = True

    def pauseProducing(self) -> None:
        self.reading = False

    def resumeProducing(self) -> None:
        self.reading = True

    def stopProducing(self) -> None:
        self.loseConnection()


def recording(cls: type) -> type:
    """A subclass of a line protocol that logs every line and overflow."""

    class Recording(cls):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.log: list[tuple[str, bytes]] = []

        def lineReceived(self, line: bytes) -> None:
            self.log.append(("line", line))

        def lineLengthExceeded(self, line: bytes) -> Any:
            self.log.append(("exceeded", line))
            return cls.lineLengthExceeded(self, line)

    return Recording


def connect(p: Any) -> FakeTransport:
    t = FakeTransport()
    p.makeConnection(t)
    return t


def feed(p: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        if getattr(p.transport, "disconnecting", False):
            break
        p.dataReceived(chunk)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


def test_lines_split_across_reads_and_split_delimiter() -> None:
    p = recording(basic.LineReceiver)()
    connect(p)
    feed(p, [b"hel", b"lo\r", b"\nwor", b"ld\r\n\r\nlast"])
    assert p.log == [("line", b"hello"), ("line", b"world"), ("line", b"")]
    assert p.clearLineBuffer() == b"last"
    assert p.clearLineBuffer() == b""


def test_custom_delimiter_and_sendLine() -> None:
    class Unix(basic.LineReceiver):
        delimiter = b"\n"

    p = recording(Unix)()
    t = connect(p)
    feed(p, [b"a\nb\n\nc"])
    assert p.log == [("line", b"a"), ("line", b"b"), ("line", b"")]
    p.sendLine(b"out")
    assert t.written == b"out\n"


def test_max_length() -> None:
    class Short(basic.LineReceiver):
        MAX_LENGTH = 5

    p = recording(Short)()
    t = connect(p)
    feed(p, [b"12345\r\n"])
    assert p.log == [("line", b"12345")] and not t.disconnecting
    feed(p, [b"123456\r\nrest"])
    assert p.log[-1] == ("exceeded", b"123456\r\nrest") and t.disconnecting

    p = recording(Short)()
    t = connect(p)
    feed(p, [b"123456"])  # no delimiter yet, but no longer than MAX_LENGTH + len(delimiter)
    assert p.log == []
    feed(p, [b"7"])
    assert p.log == [("exceeded", b"1234567")] and t.disconnecting


def test_raw_mode_and_back() -> None:
    class Headers(basic.LineReceiver):
        def __init__(self) -> None:
            self.lines: list[bytes] = []
            self.body = b""

        def lineReceived(self, line: bytes) -> None:
            self.lines.append(line)
            if line == b"":
                self.setRawMode()

        def rawDataReceived(self, data: bytes) -> None:
            self.body += data
            if b"END" in self.body:
                body, _, rest = self.body.partition(b"END")
                self.body = body
                self.setLineMode(rest)

    p = Headers()
    connect(p)
    feed(p, [b"Host: x\r\n\r\nbod", b"y bytes\r\n", b"moreEND", b"after\r\nnext\r\n"])
    assert p.lines == [b"Host: x", b"", b"after", b"next"]
    assert p.body == b"body bytes\r\nmore"


def test_loseConnection_in_lineReceived_stops_delivery() -> None:
    class Quit(basic.LineReceiver):
        def __init__(self) -> None:
            self.lines: list[bytes] = []

        def lineReceived(self, line: bytes) -> None:
            self.lines.append(line)
            if line == b"quit":
                self.transport.loseConnection()

    p = Quit()
    connect(p)
    p.dataReceived(b"a\r\nquit\r\nb\r\n")
    assert p.lines == [b"a", b"quit"]


def test_paused_line_receiver_holds_lines_until_resumed() -> None:
    p = recording(basic.LineReceiver)()
    t = connect(p)
    p.pauseProducing()
    assert not t.reading
    p.dataReceived(b"one\r\ntwo\r\n")
    assert p.log == []
    p.resumeProducing()
    assert t.reading and p.log == [("line", b"one"), ("line", b"two")]


def test_raw_data_and_lines_need_overriding() -> None:
    p = basic.LineReceiver()
    connect(p)
    with pytest.raises(NotImplementedError):
        p.dataReceived(b"line\r\n")


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    tail=st.sampled_from([b"", b"\r", b"partial", b"x" * 30]),
    cuts=st.lists(st.integers(min_value=0, max_value=500), max_size=8),
)
def test_line_receiver_matches_twisted(lines: list[bytes], tail: bytes, cuts: list[int]) -> None:
    """However the stream is cut into reads, ours delivers exactly what Twisted's does."""
    data = b"".join(line + b"\r\n" for line in lines) + tail
    chunks = split_at(data, cuts)
    for ours_cls, theirs_cls in [(basic.LineReceiver, twisted_basic.LineReceiver),
                                 (basic.LineOnlyReceiver, twisted_basic.LineOnlyReceiver)]:
        ours, theirs = recording(ours_cls)(), recording(theirs_cls)()
        for p in (ours, theirs):
            p.MAX_LENGTH = 10
            connect(p)
            feed(p, chunks)
        assert ours.log == theirs.log
        assert ours.transport.disconnecting == theirs.transport.disconnecting


class Strings(basic.Int32StringReceiver):
    def __init__(self) -> None:
        self.strings: list[bytes] = []
        self.too_long: list[int] = []

    def stringReceived(self, string: bytes) -> None:
        self.strings.append(string)

    def lengthLimitExceeded(self, length: int) -> None:
        self.too_long.append(length)
        super().lengthLimitExceeded(length)


@settings(max_examples=100, deadline=None)
@given(strings=st.lists(st.binary(max_size=40), max_size=10),
       cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=10))
def test_int32_strings_survive_any_split(strings: list[bytes], cuts: list[int]) -> None:
    sender = Strings()
    t = connect(sender)
    for s in strings:
        sender.sendString(s)
    receiver = Strings()
    connect(receiver)
    feed(receiver, split_at(bytes(t.written), cuts))
    assert receiver.strings == strings


def test_int_n_limits() -> None:
    receiver = Strings()
    receiver.MAX_LENGTH = 10
    t = connect(receiver)
    receiver.dataReceived(b"\x00\x00\x00\x03abc\x00\x00\x00\x0bdefghijklmno")
    assert receiver.strings == [b"abc"] and receiver.too_long == [11] and t.disconnecting

    small = basic.Int8StringReceiver()
    connect(small)
    with pytest.raises(basic.StringTooLongError):
        small.sendString(b"x" * 256)
    small.sendString(b"x" * 255)
    assert small.transport.written[:1] == b"\xff"


def test_line_receiver_over_tcp(loop: Reactor, run_until: Any) -> None:
    """An echo of lines over a real connection, sent a byte at a time."""

    class Upper(basic.LineReceiver):
        def lineReceived(self, line: bytes) -> None:
            self.sendLine(line.upper())

    got = defer.Deferred()

    class Collect(basic.LineReceiver):
        def connectionMade(self) -> None:
            for byte in b"alpha\r\nbeta\r\ngamma\r\n":
                self.transport.write(bytes([byte]))
            self.lines: list[bytes] = []

        def lineReceived(self, line: bytes) -> None:
            self.lines.append(line)
            if len(self.lines) == 3:
                got.callback(self.lines)

    port = loop.listenTCP(0, protocol.Factory.forProtocol(Upper), interface="127.0.0.1")
    loop.connectTCP("127.0.0.1", port.getHost().port,
                    protocol.ClientFactory.forProtocol(Collect))
    assert run_until(got) == [b"ALPHA", b"BETA", b"GAMMA"]


def _recvd_program(module: Any) -> tuple[list[bytes], list[bytes]]:
    """Strings received, and what ``recvd`` showed, when stringReceived reads
    ``recvd`` and once replaces it (the old idiom Twisted still supports)."""

    class Receiver(module.Int16StringReceiver):
        def __init__(self) -> None:
            self.strings: list[bytes] = []
            self.seen: list[bytes] = []

        def stringReceived(self, string: bytes) -> None:
            self.strings.append(string)
            self.seen.append(self.recvd)
            if string == b"aaaaa":
                self.recvd = b"\x00\x05ccccc" + self.recvd[7:]

    r = Receiver()
    r.makeConnection(FakeTransport())
    r.dataReceived(b"\x00\x05aaaaa\x00\x05bbbbb\x00\x02dd\x00")
    r.dataReceived(b"\x01e")
    return r.strings, r.seen + [r.recvd]


def test_intn_recvd_reads_and_replaces_the_unparsed_bytes_as_twisted_does() -> None:
    assert _recvd_program(basic) == _recvd_program(twisted_basic)
    strings, _ = _recvd_program(basic)
    assert strings == [b"aaaaa", b"ccccc", b"dd", b"e"]
