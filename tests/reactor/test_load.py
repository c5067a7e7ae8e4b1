"""Load: 500 concurrent clients each echo 200 messages through one server.

Clients and server share one reactor.  Every byte must come back in order and
every connection, on both sides, must end with ConnectionDone.  No timing is
asserted; the pytest timeout only catches a hang.
"""

from __future__ import annotations

import random
import resource
from typing import Any

import pytest

from reactor import Reactor, defer, error, protocol
from reactor.failure import Failure

CLIENTS = 500
MESSAGES = 200

pytestmark = pytest.mark.timeout(60)


class Echo(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)

    def connectionLost(self, reason: Failure) -> None:
        self.factory.reasons.append(reason)


class EchoFactory(protocol.Factory):
    protocol = Echo

    def __init__(self) -> None:
        self.reasons: list[Failure] = []


class PingPong(protocol.Protocol):
    """Sends a message, waits for all of it to come back, sends the next."""

    def connectionMade(self) -> None:
        self.rng = random.Random(id(self))
        self.sent = bytearray()
        self.received = bytearray()
        self.count = 0
        self.send_next()

    def send_next(self) -> None:
        self.count += 1
        size = self.rng.randrange(1, 2048)
        message = b"%d:" % self.count + self.rng.randbytes(size)
        self.sent += message
        self.transport.write(message)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if len(self.received) < len(self.sent):
            return
        if self.count < MESSAGES:
            self.send_next()
        else:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure) -> None:
        self.factory.finished(self, reason)


class Clients(protocol.ClientFactory):
    protocol = PingPong

    def __init__(self) -> None:
        self.results: list[tuple[PingPong, Failure]] = []
        self.failures: list[Failure] = []
        self.all_done = defer.Deferred()

    def finished(self, p: PingPong, reason: Failure) -> None:
        self.results.append((p, reason))
        self.check()

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.failures.append(reason)
        self.check()

    def check(self) -> None:
        if len(self.results) + len(self.failures) == CLIENTS:
            self.all_done.callback(None)


def ensure_fd_limit(needed: int) -> None:
    """Raise the soft descriptor limit (up to the hard one) if it is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def test_500_clients_echo_200_messages_each(loop: Reactor, run_until: Any) -> None:
    ensure_fd_limit(2 * CLIENTS + 256)
    server = EchoFactory()
    port = loop.listenTCP(0, server, backlog=CLIENTS * 2, interface="127.0.0.1")
    clients = Clients()
    for _ in range(CLIENTS):
        loop.connectTCP("127.0.0.1", port.getHost().port, clients)
    run_until(clients.all_done, timeout=50)
    while len(server.reasons) < CLIENTS:
        loop.iterate(0.01)

    assert clients.failures == []
    assert len(clients.results) == CLIENTS
    for p, reason in clients.results:
        assert reason.check(error.ConnectionDone), reason
        assert p.count == MESSAGES
        assert p.received == p.sent
    assert all(r.check(error.ConnectionDone) for r in server.reasons)
    port.stopListening()
