"""Descriptor sets: add/remove rules, ending descriptors, fd reuse, shutdown."""

from __future__ import annotations

import logging
import socket

import pytest

from reactor import Reactor, error, interfaces
from reactor.failure import Failure


def run(r: Reactor) -> None:
    r.run(installSignalHandlers=False)


class Recorder(interfaces.IReadWriteDescriptor):
    """A raw descriptor on one end of a socketpair that records what the loop does."""

    def __init__(self, sock: socket.socket, on_read=None, on_write=None) -> None:
        self.sock = sock
        self.reads = 0
        self.writes = 0
        self.lost: list[Failure] = []
        self.on_read = on_read
        self.on_write = on_write
        self.gone = False

    def fileno(self) -> int:
        return -1 if self.gone else self.sock.fileno()

    def doRead(self):
        self.reads += 1
        return self.on_read() if self.on_read else self.sock.recv(100) and None

    def doWrite(self):
        self.writes += 1
        return self.on_write() if self.on_write else None

    def connectionLost(self, reason: Failure) -> None:
        self.lost.append(reason)


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_fresh_reactor_watches_nothing_of_the_users(loop: Reactor) -> None:
    assert loop.getReaders() == [] and loop.getWriters() == []
    assert loop.removeAll() == []


def test_add_is_idempotent_and_remove_is_tolerant(loop: Reactor, pair) -> None:
    d = Recorder(pair[0])
    loop.removeReader(d)
    loop.removeWriter(d)
    loop.addReader(d)
    loop.addReader(d)
    assert loop.getReaders() == [d]
    pair[1].send(b"x")
    loop.iterate(1)
    assert d.reads == 1
    loop.removeReader(d)
    loop.removeReader(d)
    assert loop.getReaders() == []


def test_reader_and_writer_are_called_for_readiness(loop: Reactor, pair) -> None:
    d = Recorder(pair[0])
    loop.addWriter(d)
    loop.iterate(1)
    assert d.writes == 1 and d.reads == 0
    loop.removeWriter(d)
    loop.addReader(d)
    pair[1].send(b"hello")
    loop.iterate(1)
    assert d.reads == 1 and d.writes == 1
    assert loop.getReaders() == [d] and loop.getWriters() == []
    loop.removeReader(d)


def test_connection_done_return_ends_the_descriptor(loop: Reactor, pair) -> None:
    d = Recorder(pair[0], on_read=lambda: error.CONNECTION_DONE)
    loop.addReader(d)
    loop.addWriter(d)
    pair[1].send(b"x")
    loop.iterate(1)
    assert loop.getReaders() == [] and loop.getWriters() == []
    assert d.writes == 0  # ended by doRead: no doWrite afterwards
    assert len(d.lost) == 1 and d.lost[0].check(error.ConnectionDone)


def test_connection_lost_return_from_do_write_ends_it(loop: Reactor, pair) -> None:
    d = Recorder(pair[0], on_write=lambda: error.CONNECTION_LOST)
    loop.addWriter(d)
    loop.iterate(1)
    assert loop.getWriters() == []
    assert len(d.lost) == 1 and d.lost[0].check(error.ConnectionLost)
    assert d.lost[0].value is error.CONNECTION_LOST


def test_exception_in_do_read_is_logged_and_ends_it(loop: Reactor, pair, caplog) -> None:
    def boom():
        raise RuntimeError("bad read")

    d = Recorder(pair[0], on_read=boom)
    loop.addReader(d)
    pair[1].send(b"x")
    with caplog.at_level(logging.ERROR, logger="reactor"):
        loop.iterate(1)
    assert loop.getReaders() == []
    assert d.lost[0].check(RuntimeError)
    assert "bad read" in caplog.text and "Traceback" in caplog.text


def test_exception_in_connection_lost_is_logged(loop: Reactor, pair, caplog) -> None:
    class Fragile(Recorder):
        def connectionLost(self, reason):
            raise KeyError("lost badly")

    d = Fragile(pair[0], on_read=lambda: error.CONNECTION_DONE)
    loop.addReader(d)
    pair[1].send(b"x")
    with caplog.at_level(logging.ERROR, logger="reactor"):
        loop.iterate(1)
    assert "lost badly" in caplog.text
    assert loop.getReaders() == []


def test_fileno_minus_one_at_dispatch_drops_it(loop: Reactor, pair) -> None:
    d = Recorder(pair[0])
    loop.addReader(d)
    d.gone = True
    pair[1].send(b"x")
    loop.iterate(1)
    assert d.reads == 0
    assert loop.getReaders() == []
    assert d.lost[0].check(error.ConnectionLost)


def test_fileno_minus_one_when_added_drops_it_next_iteration(loop: Reactor, pair) -> None:
    d = Recorder(pair[0])
    d.gone = True
    loop.addReader(d)
    loop.iterate(0)
    assert loop.getReaders() == []
    assert len(d.lost) == 1 and d.lost[0].check(error.ConnectionLost)


def test_descriptor_on_reused_fd_replaces_the_stale_one(loop: Reactor) -> None:
    a, b = socket.socketpair()
    old = Recorder(a)
    loop.addReader(old)
    fd = a.fileno()
    a.close()  # closed without removeReader: the kernel forgets the fd
    c, e = socket.socketpair()
    try:
        if c.fileno() != fd:
            c, e = e, c
        assert c.fileno() == fd  # the OS hands the lowest free number back
        new = Recorder(c)
        loop.addReader(new)
        assert loop.getReaders() == [new]
        e.send(b"x")
        loop.iterate(1)
        assert new.reads == 1 and old.reads == 0
        loop.removeReader(new)
    finally:
        for s in (b, c, e):
            s.close()


def test_remove_after_fd_closed_is_tolerated(loop: Reactor) -> None:
    a, b = socket.socketpair()
    d = Recorder(a)
    loop.addReader(d)
    loop.addWriter(d)
    a.close()
    loop.removeWriter(d)
    loop.removeReader(d)
    assert loop.getReaders() == [] and loop.getWriters() == []
    b.close()


def test_remove_all_returns_each_descriptor_once(loop: Reactor, pair) -> None:
    x = Recorder(pair[0])
    y = Recorder(pair[1])
    loop.addReader(x)
    loop.addWriter(x)
    loop.addWriter(y)
    removed = loop.removeAll()
    assert sorted(map(id, removed)) == sorted(map(id, [x, y]))
    assert loop.getReaders() == [] and loop.getWriters() == []
    loop.iterate(0)
    assert x.writes == 0 and y.writes == 0


def test_shutdown_tells_every_remaining_descriptor(loop: Reactor, pair) -> None:
    x = Recorder(pair[0])
    y = Recorder(pair[1])
    loop.addReader(x)
    loop.addWriter(x)
    loop.addWriter(y)
    y.on_write = lambda: None
    loop.callLater(0, loop.stop)
    run(loop)
    for d in (x, y):
        assert len(d.lost) == 1 and d.lost[0].value is error.CONNECTION_LOST
    assert loop.getReaders() == [] and loop.getWriters() == []


def test_descriptor_removed_earlier_in_iteration_is_not_called(loop: Reactor) -> None:
    a1, b1 = socket.socketpair()
    a2, b2 = socket.socketpair()
    first = Recorder(a1)
    second = Recorder(a2)
    # Whichever runs first removes the other: exactly one doRead happens.
    first.on_read = lambda: loop.removeReader(second)
    second.on_read = lambda: loop.removeReader(first)
    loop.addReader(first)
    loop.addReader(second)
    b1.send(b"x")
    b2.send(b"x")
    loop.iterate(1)
    assert first.reads + second.reads == 1
    for s in (a1, b1, a2, b2):
        s.close()


def test_truthy_non_exception_return_still_ends_it(loop: Reactor, pair) -> None:
    d = Recorder(pair[0], on_read=lambda: "stop please")
    loop.addReader(d)
    pair[1].send(b"x")
    loop.iterate(1)
    assert loop.getReaders() == []
    assert d.lost[0].check(error.ConnectionLost)


def test_interfaces_are_subclassable_and_duck_typed() -> None:
    class MySocket(interfaces.IReadDescriptor):
        def fileno(self):
            return 3

        def doRead(self):
            return None

        def connectionLost(self, reason):
            pass

    class Duck:
        def fileno(self):
            return 3

        def doRead(self):
            return None

        def connectionLost(self, reason):
            pass

        def logPrefix(self):
            return "duck"

    assert MySocket().logPrefix() == "MySocket"
    assert interfaces.IReadDescriptor.providedBy(MySocket())
    assert interfaces.IReadDescriptor.providedBy(Duck())
    assert not interfaces.IWriteDescriptor.providedBy(Duck())
    assert issubclass(interfaces.IPushProducer, interfaces.IProducer)
    with pytest.raises(NotImplementedError):
        interfaces.IReadDescriptor().doRead()
