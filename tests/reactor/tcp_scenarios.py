"""TCP scenarios written once, run on Twisted's reactor or on ours.

    python tests/reactor/tcp_scenarios.py twisted|ours

Prints one JSON object: scenario name -> the events its protocols and
factories saw (reasons as exception class names, data joined, since how TCP
splits bytes into reads is not behaviour).  test_tcp.py runs it on both and
compares: the same program must see the same things on either reactor.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any
from collections.abc import Callable

if sys.argv[1:] == ["twisted"]:
    from twisted.internet import protocol, reactor
    from twisted.internet.interfaces import IHalfCloseableProtocol
    from zope.interface import implementer

    half_closeable = implementer(IHalfCloseableProtocol)
else:
    from reactor import protocol, reactor
    from reactor.interfaces import IHalfCloseableProtocol, implementer

    half_closeable = implementer(IHalfCloseableProtocol)


def name(reason: Any) -> str:
    return reason.type.__name__


class Logged(protocol.Protocol):
    """Logs what happens to it into ``self.factory.log`` (data joined)."""

    def log(self, event: str) -> None:
        self.factory.log.append(f"{self.side}:{event}")

    def connectionMade(self) -> None:
        self.data = b""
        self.log("connectionMade")

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any) -> None:
        if self.data:
            self.log(f"data {self.data.decode()}")
        self.log(f"connectionLost {name(reason)}")
        self.factory.lost()


class ServerSide(Logged):
    side = "server"


class ClientSide(Logged):
    side = "client"


class ServerFactory(protocol.ServerFactory):
    protocol = ServerSide

    def __init__(self, log: list[str], lost: Callable[[], None]) -> None:
        self.log, self.lost = log, lost


class ClientFactory(protocol.ClientFactory):
    protocol = ClientSide

    def __init__(self, log: list[str], lost: Callable[[], None]) -> None:
        self.log, self.lost = log, lost

    def startedConnecting(self, connector: Any) -> None:
        self.log.append("factory:startedConnecting")

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.log.append(f"factory:clientConnectionFailed {name(reason)}")
        self.lost()

    def clientConnectionLost(self, connector: Any, reason: Any) -> None:
        self.log.append(f"factory:clientConnectionLost {name(reason)}")
        self.lost()


def scenario(server_protocol: type | None, client_protocol: type, ends: int,
             server_factory: type = ServerFactory, timeout: float = 5,
             address: tuple[str, int] | None = None) -> Callable[[Callable], None]:
    """A run: a server (unless ``address`` is given), one client; it is over
    once ``ends`` endings (connectionLost or factory outcomes) were seen."""

    def run(finish: Callable[[list[str]], None]) -> None:
        log: list[str] = []
        seen = []
        port = None

        def lost() -> None:
            seen.append(1)
            if len(seen) == ends:
                if port is not None:
                    port.stopListening()
                reactor.callLater(0.05, finish, log)  # let stray events show up

        target = address
        if target is None:
            factory = server_factory(log, lost)
            factory.protocol = server_protocol
            port = reactor.listenTCP(0, factory, interface="127.0.0.1")
            target = ("127.0.0.1", port.getHost().port)
        client = ClientFactory(log, lost)
        client.protocol = client_protocol
        reactor.connectTCP(target[0], target[1], client, timeout=timeout)

    return run


class SendsAndCloses(ServerSide):
    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport.write(b"poem")
        self.transport.writeSequence([b" in ", b"parts"])
        self.transport.loseConnection()


class Aborts(ClientSide):
    # Writes nothing first: Twisted would drop it with the buffer, ours has
    # already handed it to the kernel (a write goes out at once when nothing
    # is queued), so the server would see it.
    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport.abortConnection()


class Raises(ServerSide):
    def dataReceived(self, data: bytes) -> None:
        raise ValueError("bad")


class Writes(ClientSide):
    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport.write(b"hello")


@half_closeable
class HalfServer(ServerSide):
    def readConnectionLost(self) -> None:
        self.log("readConnectionLost")
        self.transport.write(b"answer")
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.log("writeConnectionLost")


@half_closeable
class HalfClient(ClientSide):
    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport.write(b"question")
        self.transport.loseWriteConnection()

    def readConnectionLost(self) -> None:
        self.log("readConnectionLost")
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.log("writeConnectionLost")


class Refusing(ServerFactory):
    def buildProtocol(self, addr: Any) -> None:
        self.log.append("factory:refused")
        return None


class Quiet(ServerSide):
    """Closes once the client has closed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def full_backlog() -> tuple[str, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    KEEP.append(server)
    KEEP.append(socket.create_connection(server.getsockname(), timeout=2))
    return server.getsockname()


KEEP: list[socket.socket] = []

SCENARIOS = {
    "server writes then closes": scenario(SendsAndCloses, ClientSide, 3),
    "client aborts": scenario(Quiet, Aborts, 3),
    "exception in dataReceived": scenario(Raises, Writes, 3),
    "half-close both ways": scenario(HalfServer, HalfClient, 3),
    "server factory refuses": scenario(None, ClientSide, 2, server_factory=Refusing),
    "refused": scenario(None, ClientSide, 1, address=("127.0.0.1", free_port())),
    "timeout": scenario(None, ClientSide, 1, timeout=0.3, address=full_backlog()),
}


def main() -> None:
    results: dict[str, list[str]] = {}
    pending = list(SCENARIOS.items())

    def next_one(log: list[str] | None = None, title: str | None = None) -> None:
        if title is not None:
            results[title] = log
        if not pending:
            reactor.stop()
            return
        title, run = pending.pop(0)
        run(lambda log: next_one(log, title))

    reactor.callWhenRunning(next_one)
    reactor.run()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
