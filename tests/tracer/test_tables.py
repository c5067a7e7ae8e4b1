"""The tracer's own tables do not grow with the connections and callbacks an app makes.

25,000 real TCP connections on 127.0.0.1 through loopscope's reactor, traced, and for each two
callbacks made at run time: a function compiled from source (a new code object each time, as
``exec`` or a template engine makes them) and the inherited method of a protocol class made
with ``type`` (a new class, and a new name, each time).  Untraced, each is freed once it has
run; traced, the probe's table of descriptors, the site caches (the probe's and the
recorder's) and the places the recorder names stay within their bounds, and so does the number
of memory blocks Python holds (``sys.getallocatedblocks``: cheap enough to leave the run at
full speed, unlike tracemalloc).  Both probes: each has a site cache of its own.  No timing is
asserted.  25,000 is enough: 50,000 cost a minute of the suite, and at 25,000 the recorder's
tables made unbounded already grow 12 times as much as the bounded ones.
"""

from __future__ import annotations

import gc
import sys

import orjson
import pytest

import tracer
from reactor import Reactor, protocol
from tracer.recorder import OBJECTS_KEPT, PLACES_KEPT

CONNECTIONS = 25_000
AT_ONCE = 50  # connections in flight: the server's backlog and the pool of client ports
WARMUP = 1_000
#: What each connection's end schedules: a function made from source at run time.
RESTART = "def restart(clients):\n    clients.start()\n"

pytestmark = [pytest.mark.timeout(900), pytest.mark.usefixtures("probe_impl")]


class Refuse(protocol.Protocol):
    """The server side: drops each connection at once (a reset: no TIME_WAIT piles up)."""

    def connectionMade(self) -> None:
        self.transport.abortConnection()


class Client(protocol.Protocol):
    """Subclassed at run time, once per connection: ``finished`` is an inherited method of a
    class the program drops after the connection."""

    def connectionLost(self, reason: object) -> None:
        self.factory.reactor.callLater(0, self.finished)

    def finished(self) -> None:
        self.factory.ended()


class Clients(protocol.ClientFactory):
    def __init__(self, reactor: Reactor, port: int, sizes: Sizes) -> None:
        self.reactor, self.port, self.sizes = reactor, port, sizes
        self.started = self.done = 0

    def start(self) -> None:
        if self.started < CONNECTIONS:
            self.started += 1
            self.protocol = type(f"Client{self.started}", (Client,), {})
            self.reactor.connectTCP("127.0.0.1", self.port, self)

    def ended(self) -> None:
        self.done += 1
        if self.done == WARMUP:
            self.sizes.warm()
        if self.done == CONNECTIONS:
            self.reactor.stop()
        else:
            made: dict = {}
            exec(compile(RESTART, "<made at run time>", "exec"), made)  # noqa: S102
            self.reactor.callLater(0, made["restart"], self)

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
        return {"fds": probe.native.fds_watched, "watched": len(probe._watched),
                "places": len(recorder.sites), "objects": len(recorder._by_object),
                "blocks": allocated_blocks()}

    def warm(self) -> None:
        self.after_warmup = self.now()


def test_25k_connections_and_callbacks_leave_the_tracer_tables_and_memory_bounded(tmp_path):
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
    for table in ("fds", "watched"):
        assert end[table] <= warm[table] + AT_ONCE, (table, warm, end)
    assert end["places"] <= PLACES_KEPT and end["objects"] <= OBJECTS_KEPT, end
    # 24,000 more connections and 48,000 more callbacks made at run time: tables that kept
    # them would hold a class, a code object and their entries per connection (the recorder's
    # tables alone, unbounded, grew by 187,000 blocks).  The bounded caches, full, hold a few
    # thousand of each (at most OBJECTS_KEPT objects in each of the recorder's and the
    # probe's): 11,000-15,000 blocks of growth.
    growth = end["blocks"] - warm["blocks"]
    print(f"blocks after warm-up {warm['blocks']:,}, at the end {end['blocks']:,}")
    assert growth < 75_000, (warm, end)
    # Only the rare lines are looked at: parsing every event of 25k connections in Python
    # took longer than the run.
    connections, names = 0, set()
    with open(tmp_path / "t.jsonl", "rb") as f:
        for line in f:
            if b'"ev":"conn"' in line:
                connections += 1
            elif b'"ev":"site"' in line:
                names.add(orjson.loads(line)["fn"])
    assert connections >= CONNECTIONS  # both sides were traced
    assert "restart" in names and f"{__name__}.Client{CONNECTIONS}.finished" in names
