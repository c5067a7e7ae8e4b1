"""A connection's bytes in and out grow in the trace while it is open (``bytes`` events), on
loopscope's reactor, asyncio and Twisted, and the model (so the Descriptors view) follows them.

Each program runs under ``loopscope run``: a client on 127.0.0.1 sends 2,000 bytes every
40 ms, fifteen times, to a server that echoes them, then closes.  The writer samples the
counts with each 100 ms flush, so the client's counts are seen several times on the way up.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from recording import record_app
from tracer.bytecounts import PER_FLUSH, ByteCounts
from tracer.model import TraceModel
from tracer.reader import read_trace

SENDS, CHUNK = 15, 2000
TOTAL = SENDS * CHUNK

ON_A_REACTOR = '''
from {reactor} import reactor
from {protocol} import ClientFactory, Factory, Protocol

CHUNK, SENDS = b"x" * {chunk}, {sends}


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class Sender(Protocol):
    def connectionMade(self):
        self.sent = 0
        self.send()

    def send(self):
        if self.sent == SENDS:
            self.transport.loseConnection()
            return
        self.sent += 1
        self.transport.write(CHUNK)
        reactor.callLater(0.04, self.send)

    def dataReceived(self, data):
        pass

    def connectionLost(self, reason):
        reactor.callLater(0.3, reactor.stop)


class Senders(ClientFactory):
    protocol = Sender


server = Factory()
server.protocol = Echo
port = reactor.listenTCP(0, server, interface="127.0.0.1")
reactor.connectTCP("127.0.0.1", port.getHost().port, Senders())
reactor.run()
'''

ON_ASYNCIO = '''
import asyncio

CHUNK, SENDS = b"x" * {chunk}, {sends}


async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(SENDS):
        writer.write(CHUNK)
        await writer.drain()
        await reader.readexactly(len(CHUNK))
        await asyncio.sleep(0.04)
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.3)
    server.close()
    await server.wait_closed()


asyncio.run(main())
'''

PROGRAMS = {
    "reactor": ON_A_REACTOR.format(reactor="reactor", protocol="reactor.protocol",
                                   chunk=CHUNK, sends=SENDS),
    "twisted": ON_A_REACTOR.format(reactor="twisted.internet", protocol="twisted.internet.protocol",
                                   chunk=CHUNK, sends=SENDS),
    "asyncio": ON_ASYNCIO.format(chunk=CHUNK, sends=SENDS),
}


@pytest.fixture(params=sorted(PROGRAMS))
def runtime(request: pytest.FixtureRequest) -> str:
    if request.param == "twisted" and importlib.util.find_spec("twisted") is None:
        pytest.fail("Twisted is a test dependency and is not installed")
    return request.param


@pytest.mark.usefixtures("probe_impl")
def test_a_connections_bytes_grow_in_the_trace_while_it_is_open(tmp_path: Path, runtime: str) -> None:
    path = record_app(tmp_path, PROGRAMS[runtime])
    events = list(read_trace(str(path))[1])
    client = next(e for e in events if e["ev"] == "conn" and e.get("role") == "client")
    fd = client["fd"]
    opened = events.index(client)
    closed = next(i for i, e in enumerate(events)
                  if i > opened and e["ev"] == "close" and e["fd"] == fd)
    samples = [(e["in"], e["out"]) for e in events[opened:closed]
               if e["ev"] == "bytes" and e["fd"] == fd]
    # 0.6 s of sending, sampled every 100 ms: seen on the way up, never going down.
    assert len(set(samples)) >= 3, samples
    assert samples == sorted(samples), samples
    assert all(0 <= b <= TOTAL for pair in samples for b in pair), samples
    assert any(0 < pair[1] < TOTAL for pair in samples), samples
    close = events[closed]
    assert (close["in"], close["out"]) == (TOTAL, TOTAL), close

    model = TraceModel.load(str(path))
    index = next(i for i in range(len(model))
                 if model.event(i)["ev"] == "bytes" and model.event(i)["fd"] == fd
                 and 0 < model.event(i)["out"] < TOTAL)
    sample = model.event(index)
    info = model.state_at(index + 1).descriptors[fd]
    assert (info.bytes_in, info.bytes_out) == (sample["in"], sample["out"])
    assert fd not in model.state_at(len(model)).descriptors  # closed: gone from the view


def test_counts_are_written_when_they_change_and_a_bounded_number_at_a_time() -> None:
    counts = ByteCounts()
    moving = {fd: [0, 0] for fd in range(PER_FLUSH + 10)}
    for fd, pair in moving.items():
        counts.watch(fd, lambda pair=pair: (pair[0], pair[1]))
    first = counts.changed(1, counts.watched())
    assert [e["fd"] for e in first] == list(range(PER_FLUSH))   # the rest wait for the next flush
    assert [e["fd"] for e in counts.changed(2, counts.watched())] == list(range(PER_FLUSH, PER_FLUSH + 10))
    assert counts.changed(3, counts.watched()) + counts.changed(4, counts.watched()) == []  # a round
    moving[5][0] = 100
    moved = counts.changed(5, counts.watched()) + counts.changed(6, counts.watched())  # the next
    assert [(e["t"], e["fd"], e["in"], e["out"]) for e in moved] == [(5, 5, 100, 0)]


def test_a_counter_that_fails_or_whose_connection_is_gone_writes_nothing() -> None:
    counts = ByteCounts()

    def broken() -> tuple[int, int]:
        raise RuntimeError("the app's object")
    counts.watch(3, broken)
    counts.watch(4, lambda: None)
    counts.watch(5, lambda: (1, 2))
    counts.forget(5)
    assert counts.changed(1, counts.watched()) == []


def test_a_connection_opened_after_the_drain_waits_for_the_next_flush() -> None:
    """The writer asks which connections are open before it drains the buffer: one opened
    after that (its ``conn`` not written yet), or an fd reused by a new connection since, is
    not sampled, so that no ``bytes`` line comes before its ``conn``."""
    counts = ByteCounts()
    counts.watch(3, lambda: (1, 1))
    counts.watch(4, lambda: (2, 2))
    open_before = counts.watched()
    counts.watch(5, lambda: (3, 3))     # opened after the drain
    counts.forget(4)
    counts.watch(4, lambda: (4, 4))     # closed, and its fd reused
    assert [e["fd"] for e in counts.changed(1, open_before)] == [3]
    assert sorted(e["fd"] for e in counts.changed(2, counts.watched())) == [4, 5]
