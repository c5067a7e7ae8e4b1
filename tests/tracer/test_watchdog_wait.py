"""The watchdog looks at the C probe's calls without the GIL: on a busy loop it comes back to
Python about once a second, not at every tick, and a blocking call is still sampled; a source
watched or a stop meanwhile ends the wait at once."""

from __future__ import annotations

import importlib.util
import threading
import time

import pytest

import tracer
from tracer import watchdog
from tracer.reader import read_trace

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tracer._native") is None,
                                reason="the GIL-free wait is the C probe's")


def test_wait_for_stall_returns_when_the_call_in_progress_runs_past_the_threshold():
    from tracer._native import Buffer, Probe

    probe = Probe(Buffer(1024, -1), time.monotonic_ns(), object())
    waited: list[tuple[bool, float]] = []

    def wait(serial: int = 0, due: int = 0) -> None:
        t0 = time.monotonic()
        found = probe.wait_for_stall(30_000_000, 0.002, 0.6, serial, due, -1)
        waited.append((found, time.monotonic() - t0))

    def waiting(serial: int = 0, due: int = 0) -> tuple[bool, float]:
        waiter = threading.Thread(target=wait, args=(serial, due))
        waiter.start()
        waiter.join(timeout=10)
        return waited.pop()

    assert waiting() == (False, pytest.approx(0.6, abs=0.3))  # no call: the longest wait
    probe.call_begin("timer", print, None)
    found, seconds = waiting()
    assert found and 0.025 < seconds < 0.5
    serial = probe.top()[0]
    # the call sampled already: not again before its next due time (0.3 s from now)
    found, seconds = waiting(serial, time.monotonic_ns() + 300_000_000)
    assert found and 0.25 < seconds < 0.9
    probe.call_end(None)
    assert waiting()[0] is False


def test_wait_for_stall_ends_when_its_wake_descriptor_is_written():
    """The watchdog's stop writes to its pipe: the wait ends then, not after its longest."""
    import os

    from tracer._native import Buffer, Probe

    probe = Probe(Buffer(1024, -1), time.monotonic_ns(), object())
    read_end, write_end = os.pipe()
    try:
        threading.Timer(0.05, os.write, (write_end, b"!")).start()
        t0 = time.monotonic()
        assert probe.wait_for_stall(30_000_000, 0.002, 30.0, 0, 0, read_end) is False
        assert time.monotonic() - t0 < 10
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_busy_loop_is_looked_at_from_python_a_few_times_a_second(tmp_path, monkeypatch):
    from reactor.base import Reactor

    monkeypatch.setenv("LOOPSCOPE_PROBE", "c")
    session = tracer.start(str(tmp_path / "busy.jsonl"))
    [calls] = session.watchdog._sources
    looks = 0
    top = calls.top

    def counted() -> tuple | None:
        nonlocal looks
        looks += 1
        return top()

    calls.top = counted
    reactor = Reactor()
    deadline = time.monotonic() + 1.0

    def step() -> None:
        if time.monotonic() < deadline:
            reactor.callLater(0, step)
        else:
            reactor.callLater(0, block)

    def block() -> None:
        time.sleep(0.15)  # a stall: still sampled
        reactor.stop()

    reactor.callLater(0, step)
    reactor.run(installSignalHandlers=False)
    tracer.stop()
    # at every tick (10 ms) the watchdog would have looked a hundred times in that second;
    # it looks at the start, at most once a GIL_FREE_WAIT, and at the stall and its samples
    assert looks <= 1.15 / watchdog.GIL_FREE_WAIT + 5
    _header, events = read_trace(str(tmp_path / "busy.jsonl"))
    stalls = [e for e in events if e["ev"] == "stall"]
    assert stalls and stalls[0]["stack"][-1][2] == "test_a_busy_loop_is_looked_at_from_python_a_few_times_a_second.<locals>.block"


def test_a_source_watched_during_a_gil_free_wait_is_looked_at_from_the_next_tick(tmp_path):
    """watch() wakes the waiting watchdog: a source added is sampled well before the wait's
    longest (GIL_FREE_WAIT) would have brought the thread back to Python, and stop() too
    returns at once."""
    session = tracer.start(str(tmp_path / "watched.jsonl"))
    try:
        time.sleep(0.1)  # the watchdog is in its GIL-free wait by now
        stalled = threading.Event()

        class Stuck:
            """A loop thread whose call has run for a second already."""
            thread = threading.get_ident()

            def top(self) -> tuple:
                return (1, time.monotonic_ns() - 1_000_000_000, "timer", None, 0, 0)

            def stall(self, now: int, call: tuple, frame: object) -> None:
                stalled.set()

        t0 = time.monotonic()
        session.watchdog.watch(Stuck())
        assert stalled.wait(timeout=10)
        assert time.monotonic() - t0 < watchdog.GIL_FREE_WAIT / 2
    finally:
        t0 = time.monotonic()
        tracer.stop()
    assert time.monotonic() - t0 < watchdog.GIL_FREE_WAIT / 2
