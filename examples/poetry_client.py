"""Seed program 2: a Protocol + ClientFactory client fetching poems from
several servers at once.

The point of the seed: the application never touches a socket.  The reactor
reads; ``dataReceived`` gets whatever bytes arrived from whichever server;
``connectionLost`` says a poem is complete; ``clientConnectionFailed`` says a
server could not be reached.  All downloads progress together on one thread.

So that it runs alone, the program first starts its own slow poetry servers
on 127.0.0.1 (ephemeral ports; each sends its poem a few bytes at a time) and
also asks one address where nothing listens, to show a failed connection.

    python examples/poetry_client.py
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Any

from reactor import reactor
from reactor.protocol import ClientFactory, Factory, Protocol

POEMS = [
    b"The Red Wheelbarrow\n\nso much depends\nupon\n\na red wheel\nbarrow\n\n"
    b"glazed with rain\nwater\n\nbeside the white\nchickens\n",
    b"Fog\n\nThe fog comes\non little cat feet.\n\nIt sits looking\nover harbor and city\n"
    b"on silent haunches\nand then moves on.\n",
    b"Dust of Snow\n\nThe way a crow\nShook down on me\nThe dust of snow\nFrom a hemlock tree\n\n"
    b"Has given my heart\nA change of mood\nAnd saved some part\nOf a day I had rued.\n",
]


# -- the servers (stand-ins for remote poetry servers) -------------------------------
class SlowPoetryServer(Protocol):
    """Sends the factory's poem in small pieces on a timer, then hangs up."""

    CHUNK = 16
    INTERVAL = 0.01

    def connectionMade(self) -> None:
        self.remaining = self.factory.poem
        self.send_some()

    def send_some(self) -> None:
        if not self.remaining:
            self.transport.loseConnection()
            return
        self.transport.write(self.remaining[:self.CHUNK])
        self.remaining = self.remaining[self.CHUNK:]
        self.call = reactor.callLater(self.INTERVAL, self.send_some)

    def connectionLost(self, reason: Any) -> None:
        if self.remaining and self.call.active():
            self.call.cancel()


def start_poetry_server(poem: bytes) -> int:
    """Serve ``poem`` on 127.0.0.1; return the port."""
    factory = Factory.forProtocol(SlowPoetryServer)
    factory.poem = poem
    return reactor.listenTCP(0, factory, interface="127.0.0.1").getHost().port


def unused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the client (the seed program proper) -------------------------------------------
class PoetryProtocol(Protocol):
    """Collects one poem; the poem is complete when the server hangs up."""

    poem = b""
    task_num = 0

    def dataReceived(self, data: bytes) -> None:
        self.poem += data
        print(f"Task {self.task_num}: got {len(data)} bytes of poetry from {self.transport.getPeer()}")

    def connectionLost(self, reason: Any) -> None:
        self.factory.poem_finished(self.task_num, self.poem)


class PoetryClientFactory(ClientFactory):
    """One factory for every download; stops the reactor when all are done."""

    protocol = PoetryProtocol

    def __init__(self, poetry_count: int) -> None:
        self.poetry_count = poetry_count
        self.poems: dict[int, bytes] = {}
        self.failures = 0
        self.tasks = 0

    def buildProtocol(self, address: Any) -> PoetryProtocol:
        proto = ClientFactory.buildProtocol(self, address)
        self.tasks += 1
        proto.task_num = self.tasks
        return proto

    def poem_finished(self, task_num: int, poem: bytes) -> None:
        self.poems[task_num] = poem
        self.maybe_done()

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        print(f"Failed to connect to: {connector.getDestination()}: {reason.getErrorMessage()}")
        self.failures += 1
        self.maybe_done()

    def maybe_done(self) -> None:
        if len(self.poems) + self.failures == self.poetry_count:
            reactor.stop()


def main(argv: list[str]) -> int:
    if argv:
        print("usage: python examples/poetry_client.py (takes no arguments)", file=sys.stderr)
        return 2
    addresses = [("127.0.0.1", start_poetry_server(poem)) for poem in POEMS]
    addresses.append(("127.0.0.1", unused_port()))
    factory = PoetryClientFactory(len(addresses))
    for host, port in addresses:
        reactor.connectTCP(host, port, factory)
    start = time.monotonic()
    reactor.run()
    elapsed = time.monotonic() - start
    for task_num, poem in sorted(factory.poems.items()):
        title = poem.split(b"\n", 1)[0].decode()
        print(f"Task {task_num}: {len(poem)} bytes of poetry: {title}")
    print(f"Got {len(factory.poems)} poems and {factory.failures} failures in {elapsed:.1f} seconds")
    return 0 if len(factory.poems) == len(POEMS) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
