"""The tracer's own tables do not grow with the connections an app makes.

50,000 real TCP connections on 127.0.0.1 through loopscope's reactor, traced: the probe's
table of descriptors and the site tables stay the size they had after the first thousand,
and so does the number of memory blocks Python holds (``sys.getallocatedblocks``: cheap
enough to leave the run at full speed, unlike tracemalloc).  No timing is asserted.  The
tables are the Python half's, which both probes share, so the default probe is enough.
"""

from __future__ import annotations

import gc
import sys

import pytest

import tracer
from reactor import Reactor, protocol
from tracer.reader import read_trace

CONNECTIONS = 50_000
AT_ONCE = 50  # connections in flight: the server's backlog and the pool of client ports
WARMUP = 1_000

pytestmark = pytest.mark.timeout(600)


class Refuse(protocol.Protocol):
    """The server side: drops each connection at once (a reset: no TIME_WAIT piles up)."""

    def connectionMade(self) -> None:
        self.transport.abortConnection()


class Client(protocol.Protocol):
    def connectionLost(self, reason: object) -> None:
        self.factory.ended()


class Clients(protocol.ClientFactory):
    protocol = Client

    def __init__(self, reactor: Reactor, port: int, sizes) -> None:
        self.reactor, self.port, self.sizes = reactor, port, sizes
        self.started = self.done = 0

    def start(self) -> None:
        if self.started < CONNECTIONS:
            self.started += 1
            self.reactor.connectTCP("127.0.0.1", self.port, self)

    def ended(self) -> None:
        self.done += 1
        if self.done == WARMUP:
            self.sizes.warm()
        if self.done == CONNECTIONS:
            self.reactor.stop()
        else:
            self.reactor.callLater(0, self.start)

    def clientConnectionFailed(self, connector: object, reason: object) -> None:
        self.ended()


def allocated_blocks() -> int:
    gc.collect()
    return sys.getallocatedblocks()


class Sizes:
    """The tracer's tables and the traced memory, after the warm-up and at the end."""

    def __init__(self, session: tracer.session.Tracer) -> None:
        self.session = session
        self.after_warmup: dict[str, int] = {}

    def now(self) -> dict[str, int]:
        probe, recorder = self.session.probe, self.session.recorder
        return {"fds": len(probe._fds), "watched": len(probe._watched),
                "sites": len(recorder.sites), "codes": len(recorder._codes),
                "classes": len(recorder._classes), "blocks": allocated_blocks()}

    def warm(self) -> None:
        self.after_warmup = self.now()


def test_50k_connections_leave_the_tracer_tables_and_memory_flat(tmp_path):
    session = tracer.start(str(tmp_path / "t.jsonl"))
    try:
        reactor = Reactor()
        server = protocol.Factory()
        server.protocol = Refuse
        port = reactor.listenTCP(0, server, backlog=AT_ONCE * 2, interface="127.0.0.1")
        sizes = Sizes(session)
        clients = Clients(reactor, port.getHost().port, sizes)
        for _ in range(AT_ONCE):
            clients.start()
        reactor.run()
        end = sizes.now()
    finally:
        tracer.stop()
    assert clients.done == CONNECTIONS
    warm = sizes.after_warmup
    for table in ("fds", "watched", "sites", "codes", "classes"):
        assert end[table] <= warm[table] + AT_ONCE, (table, warm, end)
    # 49,000 more connections: a table growing per connection would hold 49,000 more entries,
    # each a block or more.  Bounded caches still filling account for some growth (the
    # pure-Python probe's ring of recent Deferreds' sites: a few thousand blocks here).
    assert end["blocks"] - warm["blocks"] < (CONNECTIONS - WARMUP) // 4, (warm, end)
    _, events = read_trace(str(tmp_path / "t.jsonl"))
    assert sum(1 for e in events if e["ev"] == "conn") >= CONNECTIONS  # both sides were traced
