"""The bundled demo (``python -m tracer.demo``, used by ``loopscope demo``).

A tiny key-value service and three clients on 127.0.0.1, running for about ten seconds, so the
live dashboard has something real to show.  Most of the time the loop is healthy (clients send a
request every 100-300 ms), but now and then it is blocked in each of the ways loopscope
finds:

* ``SNAPSHOT`` makes the server write a snapshot synchronously in ``dataReceived`` (sleeps);
* a client parses the server's big ``STATS`` reply in a Deferred callback, slowly;
* a ``compact`` timer does CPU-bound work on the loop thread;
* backups run in the thread pool (``deferToThread``): slow, but they do not block the loop;
* one audit Deferred fails and nobody handles the failure; its message is a deliberate
  demonstration of hostile trace text (markup and a terminal escape), which a viewer must show
  as plain text.
"""

from __future__ import annotations

import gc
import random
import sys
import time

import tracer
from reactor import basic, defer, protocol, reactor, task, threads


class KeyValueServer(basic.LineReceiver):
    """``SET k v`` / ``GET k`` / ``STATS`` / ``SNAPSHOT``, one command per line."""

    delimiter = b"\n"

    def lineReceived(self, line: bytes) -> None:
        command, _, rest = line.decode().partition(" ")
        store = self.factory.store
        if command == "SET":
            key, _, value = rest.partition(" ")
            store[key] = value
            self.sendLine(b"OK")
        elif command == "GET":
            self.sendLine(store.get(rest, "").encode())
        elif command == "STATS":
            self.sendLine(" ".join(f"{k}={v}" for k, v in sorted(store.items())).encode())
        elif command == "SNAPSHOT":
            write_snapshot_synchronously(store)
            self.sendLine(b"SAVED")
        else:
            self.sendLine(b"ERR unknown command")


def write_snapshot_synchronously(store: dict) -> None:
    """The bug: blocking I/O on the loop thread (stands in for a synchronous fsync)."""
    time.sleep(0.25)


class Client(basic.LineReceiver):
    """Sends commands; each reply fires the Deferred of the oldest outstanding command."""

    delimiter = b"\n"

    def connectionMade(self) -> None:
        self.waiting: list[defer.Deferred] = []
        self.factory.ready.callback(self)

    def command(self, text: str) -> defer.Deferred:
        d = defer.Deferred()
        self.waiting.append(d)
        self.sendLine(text.encode())
        return d

    def lineReceived(self, line: bytes) -> None:
        if self.waiting:
            self.waiting.pop(0).callback(line)


def parse_stats(reply: bytes) -> dict:
    """Far too slow for the loop thread: re-parses the reply for 150 ms."""
    stats: dict = {}
    deadline = time.perf_counter() + 0.15
    while time.perf_counter() < deadline:
        stats = dict(item.split(b"=", 1) for item in reply.split() if b"=" in item)
    return stats


def compact() -> int:
    """A CPU-bound timer: 120 ms of work on the loop thread."""
    total = 0
    deadline = time.perf_counter() + 0.12
    while time.perf_counter() < deadline:
        total += sum(i * i for i in range(200))
    return total


def backup(n: int) -> str:
    """Slow work done properly, in a pool thread."""
    time.sleep(0.3)
    return f"backup {n} done"


def audit() -> None:
    """Starts an audit whose failure nobody handles."""
    d = defer.Deferred()
    d.addCallback(lambda result: result)
    d.errback(PermissionError("audit refused (demonstration: this text carries markup and a "
                              "terminal escape, shown as plain text) [bold red]root[/] "
                              "[@click=app.quit]click[/] \x1b[2J"))
    del d
    gc.collect()


class Demo:
    """Drives the clients and the misbehaviours on a schedule."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.clients: list[Client] = []
        self.rng = random.Random(42)
        self.backups = 0

    def start(self) -> None:
        factory = protocol.Factory()
        factory.protocol = KeyValueServer
        factory.store = {}  # type: ignore[attr-defined]  # Twisted's idiom: state for protocols
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        for _ in range(3):
            client_factory = protocol.ClientFactory()
            client_factory.protocol = Client
            client_factory.ready = defer.Deferred()  # type: ignore[attr-defined]  # as above
            client_factory.ready.addCallback(self.clients.append)  # type: ignore[attr-defined]
            reactor.connectTCP("127.0.0.1", port.getHost().port, client_factory)
        task.LoopingCall(self.traffic).start(0.1, now=False)
        for at, what in [(1.0, self.snapshot), (2.0, self.stats), (3.0, compact), (3.5, self.backup),
                         (4.0, self.backup), (5.0, audit), (6.0, self.snapshot), (7.0, self.stats),
                         (8.0, compact), (8.5, self.backup)]:
            if at < self.duration:
                reactor.callLater(at, what)
        reactor.callLater(self.duration, reactor.stop)

    def traffic(self) -> None:
        """Healthy background load: a few quick SET/GET commands."""
        for client in self.clients:
            if self.rng.random() < 0.6:
                key = f"k{self.rng.randrange(20)}"
                client.command(f"SET {key} {self.rng.randrange(1000)}")
                client.command(f"GET {key}")

    def snapshot(self) -> None:
        tracer.mark("snapshot requested")
        if self.clients:
            self.clients[0].command("SNAPSHOT")

    def stats(self) -> None:
        if self.clients:
            self.clients[1 % len(self.clients)].command("STATS").addCallback(parse_stats)

    def backup(self) -> None:
        self.backups += 1
        threads.deferToThread(backup, self.backups).addCallback(tracer.mark)


def main(argv: list[str] | None = None) -> None:
    """Run the demo; an optional argument is its duration in seconds (default 10)."""
    args = sys.argv[1:] if argv is None else argv
    duration = float(args[0]) if args else 10.0
    Demo(duration).start()
    reactor.run()


if __name__ == "__main__":
    main()
