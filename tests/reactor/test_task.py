"""LoopingCall, deferLater and Clock (Twisted's twisted.internet.task behaviour)."""

from __future__ import annotations

import pytest

from reactor import Reactor, error, task
from reactor.defer import CancelledError, Deferred


def looping(clock: task.Clock, f) -> task.LoopingCall:
    lc = task.LoopingCall(f)
    lc.clock = clock
    return lc


def test_clock_runs_calls_in_order_when_advanced() -> None:
    clock = task.Clock()
    seen = []
    clock.callLater(2, seen.append, "b")
    clock.callLater(1, seen.append, "a")
    clock.callLater(1, seen.append, "a2")
    assert clock.seconds() == 0
    clock.advance(0.5)
    assert seen == []
    clock.advance(0.5)
    assert seen == ["a", "a2"]
    clock.pump([0.5, 0.5])
    assert seen == ["a", "a2", "b"] and clock.seconds() == 2
    assert clock.getDelayedCalls() == []


def test_clock_delayed_calls_cancel_reset_delay() -> None:
    clock = task.Clock()
    seen = []
    a = clock.callLater(1, seen.append, "a")
    b = clock.callLater(2, seen.append, "b")
    c = clock.callLater(3, seen.append, "c")
    a.cancel()
    with pytest.raises(error.AlreadyCancelled):
        a.cancel()
    b.reset(5)
    c.delay(-2.5)
    assert clock.getDelayedCalls() == [c, b]
    clock.advance(5)
    assert seen == ["c", "b"]
    with pytest.raises(error.AlreadyCalled):
        b.cancel()


def test_clock_runs_calls_scheduled_for_now_during_advance() -> None:
    clock = task.Clock()
    seen = []
    clock.callLater(1, lambda: clock.callLater(0, seen.append, "chained"))
    clock.advance(1)
    assert seen == ["chained"]


def test_looping_call_runs_on_the_interval_grid() -> None:
    clock = task.Clock()
    times = []
    lc = looping(clock, lambda: times.append(clock.seconds()))
    d = lc.start(1.0)
    clock.pump([0.5, 0.5, 1.0, 2.5])
    assert times == [0.0, 1.0, 2.0, 4.5]  # 3.0 was missed: no catch-up burst
    assert lc.running
    stopped = []
    d.addCallback(stopped.append)
    lc.stop()
    assert stopped == [lc] and not lc.running
    clock.advance(10)
    assert len(times) == 4


def test_looping_call_now_false_waits_one_interval() -> None:
    clock = task.Clock()
    times = []
    lc = looping(clock, lambda: times.append(clock.seconds()))
    lc.start(2, now=False)
    assert times == []
    clock.advance(2)
    assert times == [2]
    lc.stop()


def test_looping_call_error_stops_it_and_errbacks() -> None:
    clock = task.Clock()
    calls = []

    def f() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("tick failed")

    lc = looping(clock, f)
    d = lc.start(1)
    failures = []
    d.addErrback(failures.append)
    clock.pump([1, 1, 1])
    assert len(calls) == 2 and not lc.running
    assert failures[0].check(ValueError)


def test_looping_call_waits_for_returned_deferred() -> None:
    clock = task.Clock()
    pending: list[Deferred] = []

    def f() -> Deferred:
        pending.append(Deferred())
        return pending[-1]

    lc = looping(clock, f)
    lc.start(1)
    clock.pump([1, 1, 1])
    assert len(pending) == 1  # still waiting on the first run
    pending[0].callback(None)
    clock.advance(1)
    assert len(pending) == 2
    stopped = []
    lc.deferred.addCallback(stopped.append)
    lc.stop()
    assert stopped == []  # the run in progress must finish first
    pending[1].callback(None)
    assert stopped == [lc]


def test_looping_call_misuse_raises() -> None:
    clock = task.Clock()
    lc = looping(clock, lambda: None)
    with pytest.raises(AssertionError):
        lc.stop()
    with pytest.raises(ValueError):
        lc.start(-1)
    lc.start(1)
    with pytest.raises(AssertionError):
        lc.start(1)
    lc.stop()
    with pytest.raises(AssertionError):
        lc.reset()


def test_looping_call_reset_restarts_the_grid() -> None:
    clock = task.Clock()
    times = []
    lc = looping(clock, lambda: times.append(clock.seconds()))
    lc.start(2)
    clock.advance(1.5)
    lc.reset()
    clock.advance(1)
    assert times == [0]
    clock.advance(1)
    assert times == [0, 3.5]
    lc.stop()


def test_looping_call_zero_interval_runs_every_iteration(loop: Reactor, run_until) -> None:
    count = []
    lc = task.LoopingCall(lambda: count.append(1) if len(count) < 5 else lc.stop())
    lc.clock = loop
    assert run_until(lc.start(0)) is lc
    assert len(count) == 5


def test_looping_call_on_a_real_reactor(loop: Reactor, run_until) -> None:
    ticks = []

    def tick() -> None:
        ticks.append(loop.seconds())
        if len(ticks) == 3:
            lc.stop()

    lc = task.LoopingCall(tick)
    lc.clock = loop
    assert run_until(lc.start(0.01)) is lc
    assert len(ticks) == 3 and ticks == sorted(ticks)


def test_looping_call_defaults_to_the_default_reactor() -> None:
    import reactor

    assert task.LoopingCall(print).clock is reactor.reactor


def test_defer_later_fires_with_the_result_after_the_delay() -> None:
    clock = task.Clock()
    d = task.deferLater(clock, 3, lambda a, b: a + b, 1, b=2)
    results = []
    d.addCallback(results.append)
    clock.advance(2.9)
    assert results == []
    clock.advance(0.1)
    assert results == [3]


def test_defer_later_without_callable_fires_none() -> None:
    clock = task.Clock()
    results = []
    task.deferLater(clock, 1).addCallback(results.append)
    clock.advance(1)
    assert results == [None]


def test_defer_later_error_goes_to_errback() -> None:
    clock = task.Clock()
    failures = []

    def boom() -> None:
        raise KeyError("later")

    task.deferLater(clock, 1, boom).addErrback(failures.append)
    clock.advance(1)
    assert failures[0].check(KeyError)


def test_cancelling_defer_later_cancels_the_timer() -> None:
    clock = task.Clock()
    ran = []
    d = task.deferLater(clock, 1, ran.append, "x")
    failures = []
    d.addErrback(failures.append)
    d.cancel()
    assert failures[0].check(CancelledError)
    assert clock.getDelayedCalls() == []
    clock.advance(2)
    assert ran == []


def test_defer_later_on_a_real_reactor(loop: Reactor, run_until) -> None:
    start = loop.seconds()
    assert run_until(task.deferLater(loop, 0.02, lambda: "done")) == "done"
    assert loop.seconds() - start >= 0.02


@pytest.mark.parametrize("now, expected", [(True, [1, 1, 1, 2, 3, 1]), (False, [1, 1, 2, 3, 1])])
def test_with_count_reports_skipped_intervals(now: bool, expected: list[int]) -> None:
    """The counts Twisted's LoopingCall.withCount gives for the same clock steps."""
    clock = task.Clock()
    counts: list[int] = []
    lc = task.LoopingCall.withCount(counts.append)
    lc.clock = clock
    lc.start(1, now=now)
    clock.pump([1, 1, 2.5, 0.2, 3, 0.9, 0.1])
    lc.stop()
    assert counts == expected


def test_with_count_at_zero_interval_counts_one_each_time() -> None:
    clock = task.Clock()
    counts: list[int] = []

    def count(n: int) -> None:
        counts.append(n)
        if len(counts) == 3:
            lc.stop()

    lc = task.LoopingCall.withCount(count)
    lc.clock = clock
    lc.start(0)
    clock.advance(0)
    clock.advance(0)
    assert counts == [1, 1, 1] and not lc.running
