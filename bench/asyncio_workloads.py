"""The same workloads in asyncio's own idiom, for asyncio (plain, debug mode)
and uvloop as peers.  ``callLater(0)`` maps to ``call_soon`` (asyncio's cheapest
"run this next"), Deferreds to Futures with done-callbacks, Protocols to
asyncio Protocols.  Each returns the seconds the workload took."""

from __future__ import annotations

import asyncio
from time import perf_counter

MESSAGE = b"x" * 64


def timers(loop: asyncio.AbstractEventLoop, n: int) -> float:
    left = n
    t1 = 0.0

    def tick() -> None:
        nonlocal left, t1
        left -= 1
        if not left:
            t1 = perf_counter()
            loop.stop()

    call_soon = loop.call_soon
    t0 = perf_counter()
    for _ in range(n):
        call_soon(tick)
    loop.run_forever()
    assert left == 0
    return t1 - t0


def chain(loop: asyncio.AbstractEventLoop, n: int) -> float:
    left = n
    t1 = 0.0
    call_soon = loop.call_soon

    def step() -> None:
        nonlocal left, t1
        left -= 1
        if left:
            call_soon(step)
        else:
            t1 = perf_counter()
            loop.stop()

    t0 = perf_counter()
    call_soon(step)
    loop.run_forever()
    assert left == 0
    return t1 - t0


def deferred(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """Futures with 10 done-callbacks each, resolved; callbacks run via the loop."""
    done = 0
    t1 = 0.0
    total = n * 10

    def on_done(_: asyncio.Future) -> None:
        nonlocal done, t1
        done += 1
        if done == total:
            t1 = perf_counter()
            loop.stop()

    t0 = perf_counter()
    for _ in range(n):
        f = loop.create_future()
        for _ in range(10):
            f.add_done_callback(on_done)
        f.set_result(0)
    loop.run_forever()
    return t1 - t0


def echo(loop: asyncio.AbstractEventLoop, n: int, clients: int = 50) -> float:
    trips_each = n // clients
    all_done = loop.create_future()
    finished = 0

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    class Client(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.left = trips_each
            self.pending = len(MESSAGE)
            transport.write(MESSAGE)

        def data_received(self, data: bytes) -> None:
            self.pending -= len(data)
            if self.pending:
                return
            self.left -= 1
            if self.left:
                self.pending = len(MESSAGE)
                self.transport.write(MESSAGE)
            else:
                self.transport.close()

        def connection_lost(self, exc: BaseException | None) -> None:
            nonlocal finished
            finished += 1
            if finished == clients:
                all_done.set_result(None)

    async def main() -> float:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t0 = perf_counter()
        for _ in range(clients):
            loop.create_task(loop.create_connection(Client, "127.0.0.1", port))
        await all_done
        elapsed = perf_counter() - t0
        server.close()
        return elapsed

    return loop.run_until_complete(main())


WORKLOADS = {"timers": timers, "chain": chain, "deferred": deferred, "echo": echo}
