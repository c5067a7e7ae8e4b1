"""The benchmark workloads, written once against Twisted's API.

Each function takes the modules that provide ``reactor``, ``defer`` and
``protocol`` (loopscope's or Twisted's: they share the API), runs the
workload on a reactor that has never run, and returns the seconds it took,
measured inside the running loop (reactor start-up excluded).  A reactor runs
once per process, so each call happens in its own child process.
"""

from __future__ import annotations

from time import perf_counter
from types import ModuleType
from typing import Any

MESSAGE = b"x" * 64


def _run(reactor: Any) -> None:
    reactor.run(installSignalHandlers=False)


def timers(reactor: Any, defer: ModuleType, protocol: ModuleType, n: int) -> float:
    """``n`` callLater(0) scheduled at once; time until the last one ran."""
    left = n
    t0 = t1 = 0.0

    def tick() -> None:
        nonlocal left, t1
        left -= 1
        if not left:
            t1 = perf_counter()
            reactor.stop()

    def start() -> None:
        nonlocal t0
        call_later = reactor.callLater
        t0 = perf_counter()
        for _ in range(n):
            call_later(0, tick)

    reactor.callWhenRunning(start)
    _run(reactor)
    assert left == 0
    return t1 - t0


def chain(reactor: Any, defer: ModuleType, protocol: ModuleType, n: int) -> float:
    """One callLater(0) that reschedules itself ``n`` times (one per iteration)."""
    left = n
    t0 = t1 = 0.0
    call_later = reactor.callLater

    def step() -> None:
        nonlocal left, t1
        left -= 1
        if left:
            call_later(0, step)
        else:
            t1 = perf_counter()
            reactor.stop()

    def start() -> None:
        nonlocal t0
        t0 = perf_counter()
        call_later(0, step)

    reactor.callWhenRunning(start)
    _run(reactor)
    assert left == 0
    return t1 - t0


def deferred(reactor: Any, defer: ModuleType, protocol: ModuleType, n: int) -> float:
    """``n`` Deferreds, each with 10 callbacks, fired."""
    elapsed = 0.0
    results = []

    def inc(x: int) -> int:
        return x + 1

    def start() -> None:
        nonlocal elapsed
        Deferred = defer.Deferred
        t0 = perf_counter()
        for _ in range(n):
            d = Deferred()
            for _ in range(10):
                d.addCallback(inc)
            d.callback(0)
        elapsed = perf_counter() - t0
        d.addCallback(results.append)
        reactor.stop()

    reactor.callWhenRunning(start)
    _run(reactor)
    assert results == [10]
    return elapsed


def _serve(reactor: Any, protocol: ModuleType, server: type, client: type, clients: int) -> float:
    """Serve ``server`` on 127.0.0.1 and connect ``clients`` of ``client``, which disconnect
    when done; the seconds from the first connection to the last one lost.  The backlog
    holds every client: past it, a connection waits out a 1 s SYN retransmit, idle time
    that would swamp the measurement."""
    finished = 0
    t0 = t1 = 0.0

    class Counted(client):
        def connectionLost(self, reason: Any) -> None:
            nonlocal finished, t1
            finished += 1
            if finished == clients:
                t1 = perf_counter()
                reactor.stop()

    server_factory = protocol.Factory()
    server_factory.protocol = server
    client_factory = protocol.ClientFactory()
    client_factory.protocol = Counted

    def start() -> None:
        nonlocal t0
        listening = reactor.listenTCP(0, server_factory, backlog=clients, interface="127.0.0.1")
        t0 = perf_counter()
        for _ in range(clients):
            reactor.connectTCP("127.0.0.1", listening.getHost().port, client_factory)

    reactor.callWhenRunning(start)
    _run(reactor)
    assert finished == clients
    return t1 - t0


def echo(reactor: Any, defer: ModuleType, protocol: ModuleType, n: int, clients: int = 50) -> float:
    """``clients`` TCP clients ping-pong 64 bytes with an echo server, ``n`` round trips in all."""
    trips_each = n // clients

    class Echo(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(data)

    class Client(protocol.Protocol):
        def connectionMade(self) -> None:
            self.left = trips_each
            self.pending = len(MESSAGE)
            self.transport.write(MESSAGE)

        def dataReceived(self, data: bytes) -> None:
            self.pending -= len(data)
            if self.pending:
                return
            self.left -= 1
            if self.left:
                self.pending = len(MESSAGE)
                self.transport.write(MESSAGE)
            else:
                self.transport.loseConnection()

    return _serve(reactor, protocol, Echo, Client, clients)


#: The mixed workload's "database": 1000 keys, each with a 32-byte value.
STORE = {b"key%d" % i: b"%032d" % i for i in range(1000)}


def mixed(reactor: Any, defer: ModuleType, protocol: ModuleType, n: int, clients: int = 100) -> float:
    """A small line-protocol service: ``clients`` TCP clients kept open, ``n`` requests in all.

    Per request (``GET keyN``) the server parses the line, makes a Deferred with three
    callbacks (look the key up, format the reply, write it) and fires it at once or, for
    every other request, through ``callLater(0)``; a client sends its next request when
    the reply arrives.  TCP, Deferreds and timers in one loop, as a real server mixes them.
    """
    trips_each = n // clients
    served = 0
    call_later = reactor.callLater
    Deferred = defer.Deferred

    def lookup(key: bytes) -> bytes:
        return STORE[key]

    def format_reply(value: bytes) -> bytes:
        return b"200 %d %s\r\n" % (len(value), value)

    class Server(protocol.Protocol):
        def connectionMade(self) -> None:
            self.buffer = b""

        def dataReceived(self, data: bytes) -> None:
            nonlocal served
            self.buffer += data
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                method, key = line.rstrip(b"\r").split(b" ", 1)
                assert method == b"GET"
                d = Deferred()
                d.addCallback(lookup)
                d.addCallback(format_reply)
                d.addCallback(self.transport.write)
                served += 1
                if served % 2:
                    d.callback(key)
                else:
                    call_later(0, d.callback, key)

    class Client(protocol.Protocol):
        def connectionMade(self) -> None:
            self.left = trips_each
            self.buffer = b""
            self.key = 0
            self.request()

        def request(self) -> None:
            self.key = (self.key + 7) % len(STORE)
            self.transport.write(b"GET key%d\r\n" % self.key)

        def dataReceived(self, data: bytes) -> None:
            self.buffer += data
            if not self.buffer.endswith(b"\n"):
                return
            assert self.buffer == b"200 32 %032d\r\n" % self.key, self.buffer
            self.buffer = b""
            self.left -= 1
            if self.left:
                self.request()
            else:
                self.transport.loseConnection()

    elapsed = _serve(reactor, protocol, Server, Client, clients)
    assert served == trips_each * clients
    return elapsed


WORKLOADS = {"timers": timers, "chain": chain, "deferred": deferred, "echo": echo, "mixed": mixed}
