"""The hot half of the tracer, both probes (tracer/_native.c and tracer/pyprobe.py): the
buffer, the hot hooks and their slow paths."""

import functools
import os
import threading
import time

import orjson
import pytest

import tracer
from reactor import defer
from reactor.base import Reactor
from tracer.reader import read_trace

pytestmark = pytest.mark.usefixtures("probe_impl")


def events_of(path):
    header, events = read_trace(str(path), warn=pytest.fail)
    return list(events)


def sites_by_id(events):
    return {e["id"]: e for e in events if e["ev"] == "site"}


# -- the buffer -------------------------------------------------------------------------------

def test_buffer_writes_lines_in_order_and_counts_them(probes, tmp_path):
    buffer = probes.Buffer(10)
    for i in range(3):
        buffer.line(b'{"n":%d}' % i)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        assert buffer.drain(fd) == (3, 0)
        assert buffer.drain(fd) == (0, 0)  # drained: nothing twice
    finally:
        os.close(fd)
    assert path.read_bytes() == b'{"n":0}\n{"n":1}\n{"n":2}\n'


def test_buffer_drops_beyond_capacity_but_keeps_kept_lines(probes, tmp_path):
    buffer = probes.Buffer(2)
    for i in range(5):
        buffer.line(b"%d" % i)
    buffer.line(b'"kept"', True)
    assert buffer.dropped == 3 and buffer.pending == 3
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        buffer.drain(fd)
    finally:
        os.close(fd)
    assert (tmp_path / "out").read_bytes() == b'0\n1\n"kept"\n'


def test_buffer_drain_to_a_closed_descriptor_raises_and_stays_usable(probes, tmp_path):
    buffer = probes.Buffer(10)
    buffer.line(b"1")
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    with pytest.raises(OSError):
        buffer.drain(fd)
    buffer.line(b"2")
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        assert buffer.drain(fd) == (1, 0)
    finally:
        os.close(fd)


def test_buffer_rejects_bad_arguments(probes):
    with pytest.raises(ValueError):
        probes.Buffer(0)
    with pytest.raises(TypeError):
        probes.Buffer(10).line("text, not bytes")


def test_the_writer_drains_early_instead_of_dropping(trace_path):
    # 20,000 events in well under the writer's 100 ms period, five times its capacity:
    # the buffer wakes the writer when half full, so nothing is dropped.
    tracer.start(str(trace_path), capacity=4000)
    for _ in range(100):
        for _ in range(100):
            defer.succeed(None)  # dnew + dfire
        time.sleep(0.001)  # the writer gets the GIL
    tracer.stop()
    events = events_of(trace_path)
    assert events[-1]["ev"] == "end" and events[-1]["dropped"] == 0
    assert sum(e["ev"] == "dnew" for e in events) == 10_000


# -- hooks and their slow paths -----------------------------------------------------------------

class Counter:
    """A callable instance: a site without a code object of its own."""

    def __call__(self, result):
        return result


def plus(result, n):
    return result + n


def test_callables_of_every_shape_are_named(trace_path):
    tracer.start(str(trace_path))
    d = defer.Deferred()
    d.addCallback(functools.partial(plus, n=1))
    d.addCallback(Counter())
    d.addCallback(lambda r: r)
    d.addCallback(str)
    d.callback(1)
    tracer.stop()
    events = events_of(trace_path)
    sites = sites_by_id(events)
    ran = [sites[e["site"]]["fn"] for e in events if e["ev"] == "dcall"]
    assert ran[0].endswith("test_probes.plus")                     # through the partial
    assert ran[1].endswith("test_probes.Counter.__call__")         # the class's __call__
    assert ran[2].endswith("<lambda>")
    assert ran[3] == "builtins.str"                               # no code: named by type
    assert [e["fail"] for e in events if e["ev"] == "dcall"] == [False] * 4


def test_callbacks_of_one_pass_are_timed_back_to_back_and_end_once(trace_path):
    tracer.start(str(trace_path))
    d = defer.Deferred()
    d.addCallback(lambda r: time.sleep(0.02) or r)
    d.addCallback(lambda r: 1 / 0)
    d.addErrback(lambda f: "handled")
    d.callback(None)
    tracer.stop()
    calls = [e for e in events_of(trace_path) if e["ev"] == "dcall"]
    assert [(c["eb"], c["fail"]) for c in calls] == [(False, False), (False, True), (True, False)]
    assert calls[0]["dur"] >= 20_000_000
    for before, after in zip(calls, calls[1:]):  # each one starts when the one before ends
        assert after["t"] - after["dur"] == before["t"]


def test_a_deferred_subclass_and_one_made_before_tracing_get_ids(trace_path):
    class Special(defer.Deferred):
        pass

    early = defer.Deferred()
    tracer.start(str(trace_path))
    mixed = [Special(), defer.Deferred(), Special()]
    for d in mixed + [early]:
        d.addCallback(lambda r: r)
        d.callback(None)
    tracer.stop()
    events = events_of(trace_path)
    created = [e["d"] for e in events if e["ev"] == "dnew"]
    fired = [e["d"] for e in events if e["ev"] == "dfire"]
    assert len(set(created)) == 3 and fired[:3] == created
    assert fired[3] not in created and early._trace_id == fired[3]


def test_timer_calls_name_the_function_and_where_it_was_scheduled(trace_path):
    loop = Reactor()
    tracer.start(str(trace_path))
    loop.callLater(0, functools.partial(plus, 1, 2))
    loop.callLater(0, plus, 1, n=2)
    loop.callLater(0.01, loop.stop)
    loop.run(installSignalHandlers=False)
    tracer.stop()
    events = events_of(trace_path)
    sites = sites_by_id(events)
    timers = [e for e in events if e["ev"] == "timer"][:2]
    assert {sites[t["fn"]]["fn"].rsplit(".", 1)[-1] for t in timers} == {"plus"}
    assert all(sites[t["site"]]["fn"].endswith("test_timer_calls_name_the_function_and_where_it_was_scheduled")
               for t in timers)
    ran = [e for e in events if e["ev"] == "call" and e["kind"] == "timer"][:2]
    assert [c["timer"] for c in ran] == [t["id"] for t in timers]


def test_hooks_called_with_the_wrong_arguments_raise(probes):
    probe = probes.Probe(probes.Buffer(10), 0, None)
    with pytest.raises(TypeError):
        probe.call_begin("timer")
    with pytest.raises(TypeError):
        probe.run_call("timer", None, print, [], None)  # args must be a tuple


def test_recording_from_many_threads_loses_nothing(trace_path):
    tracer.start(str(trace_path))
    loop = Reactor()
    done = threading.Event()

    def worker(n):
        for i in range(2000):
            tracer.mark(f"{n}:{i}")
            d = defer.Deferred()
            d.addCallback(lambda r: r)
            d.callback(i)

    def tick(left):
        if left:
            loop.callLater(0, tick, left - 1)
        elif done.is_set():
            loop.stop()
        else:
            loop.callLater(0.001, tick, 0)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    loop.callLater(0, tick, 5000)
    threading.Thread(target=lambda: [t.join() for t in threads] and done.set()).start()
    loop.run(installSignalHandlers=False)
    tracer.stop()
    events = events_of(trace_path)
    assert events[-1]["dropped"] == 0
    assert sum(e["ev"] == "mark" for e in events) == 8000
    assert sum(e["ev"] == "dfire" for e in events) == 8000


def test_a_chain_still_running_when_tracing_stops_records_nothing_anywhere(trace_path, tmp_path):
    tracer.start(str(trace_path), capacity=100)
    witness = []

    def stop_tracing(result):
        tracer.stop()
        # the descriptors the tracer closed are free for reuse now: take them all
        witness.extend(os.open(tmp_path / f"witness{i}", os.O_RDWR | os.O_CREAT)
                       for i in range(4))
        return result

    d = defer.Deferred()
    d.addCallback(stop_tracing)
    for _ in range(300):  # more than half the capacity, on the probe the chain still holds
        d.addCallback(lambda r: r)
    d.callback(None)
    for fd in witness:
        os.close(fd)
    assert all((tmp_path / f"witness{i}").read_bytes() == b"" for i in range(4))
    assert events_of(trace_path)[-1]["ev"] == "end"


def test_numbers_are_written_exactly(probes, tmp_path):
    """Every digit count, and a time before the trace's start (negative)."""
    buffer = probes.Buffer(100)
    probe = probes.Probe(buffer, time.monotonic_ns() + 10**15, None)
    ids = [1, 9, 10, 99, 100, 101, 999, 1000, 12345, 10**9, 2**31, 2**62, 9223372036854775807]
    for n in ids:
        d = defer.Deferred()
        d._trace_id = n
        probe.deferred_fired(d, n % 2 == 0)
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        buffer.drain(fd)
    finally:
        os.close(fd)
    rows = [orjson.loads(line) for line in (tmp_path / "out").read_bytes().splitlines()]
    assert [row[2] for row in rows] == ids
    assert [row[3] for row in rows] == [n % 2 == 0 for n in ids]
    # t0 is 10**15 ns ahead; the C probe's clock (the scaled TSC) may trail monotonic_ns by a
    # few microseconds
    assert all(row[0] == "dfire" and -10**15 - 10**9 < row[1] < 0 for row in rows)


class Handler:
    def handle(self, result):
        return result


class FirstHandler(Handler):
    pass


class SecondHandler(Handler):
    pass


def test_an_inherited_method_is_named_after_the_instances_class(trace_path):
    tracer.start(str(trace_path))
    d = defer.Deferred()
    for handler in (FirstHandler(), SecondHandler(), Handler(), FirstHandler()):
        d.addCallback(handler.handle)
    d.callback(None)
    tracer.stop()
    events = events_of(trace_path)
    sites = sites_by_id(events)
    ran = [sites[e["site"]] for e in events if e["ev"] == "dcall"]
    assert [s["fn"].rsplit(".", 2)[-2:] for s in ran] == [
        ["FirstHandler", "handle"], ["SecondHandler", "handle"], ["Handler", "handle"],
        ["FirstHandler", "handle"]]
    assert ran[0]["id"] == ran[3]["id"] != ran[1]["id"]
    assert {s["line"] for s in ran} == {Handler.handle.__code__.co_firstlineno}


def test_a_line_protocol_blocking_in_lineReceived_is_named_after_its_class(trace_path):
    from reactor import basic, protocol

    class Chat(basic.LineReceiver):
        def lineReceived(self, line):
            time.sleep(0.08)
            self.transport.loseConnection()

    class Sender(protocol.Protocol):
        def connectionMade(self):
            self.transport.write(b"hello\r\n")

        def connectionLost(self, reason):
            loop.stop()

    loop = Reactor()
    server = protocol.Factory()
    server.protocol = Chat
    port = loop.listenTCP(0, server, interface="127.0.0.1")
    client = protocol.ClientFactory()
    client.protocol = Sender
    tracer.start(str(trace_path), threshold_ms=40)
    loop.connectTCP("127.0.0.1", port.getHost().port, client)
    loop.run(installSignalHandlers=False)
    tracer.stop()
    events = events_of(trace_path)
    sites = sites_by_id(events)
    [slow] = [e for e in events if e["ev"] == "call" and e["dur"] > 40_000_000]
    assert sites[slow["site"]]["fn"].endswith("Chat.dataReceived")
    stall = next(e for e in events if e["ev"] == "stall")
    assert stall["site"] == slow["site"] and any(f[2].endswith("lineReceived") for f in stall["stack"])

