"""callLater and DelayedCall: ordering, iteration boundaries, cancel/reset/delay."""

from __future__ import annotations

import socket
import time

import pytest

from reactor import Reactor, error


def run(r: Reactor) -> None:
    r.run(installSignalHandlers=False)


def test_calls_run_in_time_order_and_fifo_for_equal_times(loop: Reactor) -> None:
    seen = []
    loop.callLater(0.02, seen.append, "c")
    loop.callLater(0.01, seen.append, "b")
    loop.callLater(0, seen.append, "a1")
    loop.callLater(0, seen.append, "a2")
    loop.callLater(0.03, loop.stop)
    run(loop)
    assert seen == ["a1", "a2", "b", "c"]


def test_due_calls_from_both_queues_merge_by_due_time(loop: Reactor) -> None:
    seen = []
    loop.callLater(0.001, seen.append, "first, due earlier")
    time.sleep(0.01)
    loop.callLater(0, seen.append, "second, scheduled later")
    loop.runUntilCurrent()
    assert seen == ["first, due earlier", "second, scheduled later"]


def test_zero_delay_call_scheduled_before_a_positive_one_runs_first(loop: Reactor) -> None:
    seen = []
    loop.callLater(0, seen.append, "zero")
    loop.callLater(0.0001, seen.append, "tiny")
    time.sleep(0.01)
    loop.runUntilCurrent()
    assert seen == ["zero", "tiny"]


def test_args_and_kwargs_are_passed(loop: Reactor) -> None:
    seen = []
    loop.callLater(0, lambda *a, **kw: seen.append((a, kw)), 1, 2, x=3)
    loop.runUntilCurrent()
    assert seen == [((1, 2), {"x": 3})]


def test_call_scheduled_while_timers_run_waits_for_next_iteration(loop: Reactor) -> None:
    seen = []
    loop.callLater(0, lambda: loop.callLater(0, seen.append, "inner"))
    loop.runUntilCurrent()
    assert seen == []
    loop.runUntilCurrent()
    assert seen == ["inner"]


def test_self_rescheduling_call_does_not_starve_io(loop: Reactor) -> None:
    """A callLater(0) loop still lets the selector run between its calls."""
    a, b = socket.socketpair()
    spins = []

    class Reader:
        def fileno(self) -> int:
            return a.fileno()

        def doRead(self) -> None:
            a.recv(10)
            loop.stop()

        def connectionLost(self, reason) -> None:
            pass

    def spin() -> None:
        spins.append(1)
        loop.callLater(0, spin)

    loop.addReader(Reader())
    loop.callLater(0, spin)
    loop.callLater(0.01, b.send, b"x")
    run(loop)
    assert spins
    a.close()
    b.close()


def test_timer_scheduled_for_later_in_a_pass_is_not_run_early(loop: Reactor) -> None:
    seen = []
    loop.callLater(0, lambda: loop.callLater(0.05, seen.append, "later"))
    loop.runUntilCurrent()
    loop.runUntilCurrent()
    assert seen == []


def test_get_time_is_due_time_in_seconds_clock(loop: Reactor) -> None:
    before = loop.seconds()
    call = loop.callLater(5, print)
    assert before + 5 <= call.getTime() <= loop.seconds() + 5
    call.cancel()


def test_states_while_running_and_after(loop: Reactor) -> None:
    states = []
    call = None

    def f() -> None:
        states.append((call.active(), call.called, call.cancelled))

    call = loop.callLater(0, f)
    assert call.active() and not call.called and not call.cancelled
    loop.runUntilCurrent()
    assert states == [(False, True, False)]
    assert not call.active() and call.called


def test_cancel_prevents_the_call(loop: Reactor) -> None:
    seen = []
    zero = loop.callLater(0, seen.append, "zero")
    later = loop.callLater(0.001, seen.append, "later")
    zero.cancel()
    later.cancel()
    assert zero.cancelled and not zero.active()
    time.sleep(0.005)
    loop.runUntilCurrent()
    assert seen == []
    assert loop.getDelayedCalls() == []


def test_cancel_twice_raises_already_cancelled(loop: Reactor) -> None:
    call = loop.callLater(1, print)
    call.cancel()
    with pytest.raises(error.AlreadyCancelled):
        call.cancel()
    with pytest.raises(error.AlreadyCancelled):
        call.reset(1)
    with pytest.raises(error.AlreadyCancelled):
        call.delay(1)


def test_cancel_after_run_raises_already_called(loop: Reactor) -> None:
    call = loop.callLater(0, lambda: None)
    loop.runUntilCurrent()
    with pytest.raises(error.AlreadyCalled):
        call.cancel()
    with pytest.raises(error.AlreadyCalled):
        call.reset(1)
    with pytest.raises(error.AlreadyCalled):
        call.delay(1)


def test_cancel_from_inside_its_own_call_raises_already_called(loop: Reactor) -> None:
    errors = []
    holder = []

    def f() -> None:
        try:
            holder[0].cancel()
        except error.AlreadyCalled as exc:
            errors.append(exc)

    holder.append(loop.callLater(0, f))
    loop.runUntilCurrent()
    assert len(errors) == 1


def test_reset_moves_a_call_later_and_sooner(loop: Reactor) -> None:
    seen = []
    soon = loop.callLater(0, seen.append, "was soon")
    soon.reset(10)
    assert soon.getTime() >= loop.seconds() + 9
    late = loop.callLater(10, seen.append, "was late")
    late.reset(0)
    loop.runUntilCurrent()
    assert seen == ["was late"]
    assert loop.getDelayedCalls() == [soon]
    soon.cancel()


def test_delay_adds_to_the_due_time(loop: Reactor) -> None:
    call = loop.callLater(1, print)
    due = call.getTime()
    call.delay(2)
    assert call.getTime() == pytest.approx(due + 2)
    call.delay(-3)
    assert call.getTime() == pytest.approx(due - 1)
    seen = []
    call.func = seen.append
    call.args = ("ran",)
    loop.runUntilCurrent()
    assert seen == ["ran"]


def test_reset_twice_runs_once(loop: Reactor) -> None:
    seen = []
    call = loop.callLater(0, seen.append, 1)
    call.reset(0)
    call.reset(0)
    time.sleep(0.002)
    loop.runUntilCurrent()
    loop.runUntilCurrent()
    assert seen == [1]


def test_get_delayed_calls_lists_pending_ones_only(loop: Reactor) -> None:
    a = loop.callLater(0, print)
    b = loop.callLater(5, print)
    c = loop.callLater(6, print)
    c.cancel()
    assert set(loop.getDelayedCalls()) == {a, b}
    loop.runUntilCurrent()
    assert loop.getDelayedCalls() == [b]
    b.cancel()


def test_negative_delay_is_refused(loop: Reactor) -> None:
    with pytest.raises(ValueError):
        loop.callLater(-1, print)
    with pytest.raises(ValueError):
        loop.callLater(float("nan"), print)


def test_many_cancellations_keep_order_and_bookkeeping(loop: Reactor) -> None:
    seen = []
    calls = [loop.callLater(0.001 + i * 1e-6, seen.append, i) for i in range(1000)]
    for i, call in enumerate(calls):
        if i % 10:
            call.cancel()
    assert len(loop.getDelayedCalls()) == 100
    assert len(loop._heap) < 1000  # compacted, not just marked
    time.sleep(0.01)
    loop.runUntilCurrent()
    assert seen == list(range(0, 1000, 10))
    assert loop.getDelayedCalls() == []


def test_timeout_reflects_next_timer(loop: Reactor) -> None:
    assert loop.timeout() is None
    call = loop.callLater(5, print)
    assert 4 < loop.timeout() <= 5
    call.cancel()
    assert loop.timeout() is None
    loop.callLater(0, print)
    assert loop.timeout() == 0


def test_repr_names_the_function(loop: Reactor) -> None:
    def tick(x: int) -> None:
        pass

    call = loop.callLater(1, tick, 7)
    assert "tick(7)" in repr(call) and "called=0" in repr(call)
    call.cancel()


def test_call_later_schedules_and_runs_on_an_overridden_seconds(loop: Reactor) -> None:
    now = [100.0]
    loop.seconds = lambda: now[0]
    ran: list[str] = []
    call = loop.callLater(5, ran.append, "due")
    assert call.getTime() == 105 and call.seconds() == 100
    loop.iterate(0)
    assert ran == []  # the real clock has long passed 105; the reactor's has not
    now[0] = 105.0
    loop.iterate(0)
    assert ran == ["due"]


def test_a_subclass_seconds_is_the_reactor_s_clock() -> None:
    class Frozen(Reactor):
        def seconds(self) -> float:
            return 7.0

    r = Frozen()
    try:
        assert r.callLater(1, lambda: None).getTime() == 8.0
    finally:
        r._close()
