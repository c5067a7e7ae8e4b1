"""reactor.defer: one test per rule of Twisted's Deferred (issue 3).

tests/reactor/test_defer_props.py compares random programs with Twisted's
Deferred; these tests name each rule so a regression says which one broke.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import sys
from typing import Any
from collections.abc import Iterator

import pytest

from reactor import _instrument, error
from reactor.defer import (
    AlreadyCalledError, CancelledError, Deferred, DeferredList, DeferredLock, DeferredQueue,
    DeferredSemaphore, FirstError, NotACoroutineError, QueueOverflow, QueueUnderflow,
    TimeoutError, ensureDeferred, fail, gatherResults, inlineCallbacks, maybeDeferred,
    returnValue, succeed,
)
from reactor.failure import Failure
from reactor.task import Clock


def result_of(d: Deferred) -> Any:
    """The result ``d`` has now (a Failure if it failed); consumes it."""
    box: list = []
    d.addBoth(box.append)
    assert box, "the Deferred has not fired"
    return box[0]


def failure_of(d: Deferred) -> Failure:
    result = result_of(d)
    assert isinstance(result, Failure), result
    return result


# -- adding callbacks ----------------------------------------------------------

def test_addCallback_passes_the_result_then_extra_args_and_keywords() -> None:
    seen = []
    d = Deferred()
    d.addCallback(lambda r, a, b=None: seen.append((r, a, b)) or r + 1, "A", b="B")
    d.callback(1)
    assert seen == [(1, "A", "B")]
    assert result_of(d) == 2


def test_addCallbacks_args_and_keywords_for_each_half() -> None:
    seen = []
    d = Deferred()
    d.addCallbacks(lambda r, *a, **k: seen.append(("cb", r, a, k)),
                   lambda f, *a, **k: seen.append(("eb", a, k)),
                   callbackArgs=(1,), callbackKeywords={"x": 2},
                   errbackArgs=(3,), errbackKeywords={"y": 4})
    d.callback("v")
    e = Deferred()
    e.addCallbacks(lambda r: None, lambda f, *a, **k: seen.append(("eb", a, k)),
                   errbackArgs=(3,), errbackKeywords={"y": 4})
    e.errback(ValueError())
    assert seen == [("cb", "v", (1,), {"x": 2}), ("eb", (3,), {"y": 4})]


def test_addErrback_sees_failures_only_and_addBoth_sees_both() -> None:
    seen = []
    d = Deferred()
    d.addErrback(lambda f: seen.append("eb-not-run"))
    d.addBoth(lambda r: seen.append(("both", r)) or r)
    d.addCallback(lambda r: 1 / 0)
    d.addErrback(lambda f: seen.append(("eb", f.type)))
    d.addBoth(lambda r: seen.append(("both", r)))
    d.callback("x")
    assert seen == [("both", "x"), ("eb", ZeroDivisionError), ("both", None)]


# -- firing ---------------------------------------------------------------------

def test_errback_with_no_argument_captures_the_current_exception() -> None:
    d = Deferred()
    try:
        raise KeyError("k")
    except KeyError:
        d.errback()
    f = failure_of(d)
    assert f.type is KeyError and f.value.args == ("k",)


def test_errback_wraps_an_exception_and_keeps_a_failure() -> None:
    exc = ValueError("v")
    assert failure_of(fail(exc)).value is exc
    original = Failure(exc)
    d = Deferred()
    d.errback(original)
    assert failure_of(d) is original


def test_callback_with_a_failure_takes_the_errback_path() -> None:
    d = Deferred()
    d.callback(Failure(ValueError("via callback")))
    assert failure_of(d).check(ValueError)


def test_second_fire_raises_AlreadyCalledError() -> None:
    d = succeed(1)
    with pytest.raises(AlreadyCalledError):
        d.callback(2)
    with pytest.raises(AlreadyCalledError):
        d.errback(ValueError())
    assert result_of(d) == 1


def test_callback_with_a_deferred_is_an_assertion_error() -> None:
    with pytest.raises(AssertionError):
        Deferred().callback(Deferred())


def test_callbacks_added_after_firing_run_at_once() -> None:
    d = succeed(5)
    seen = []
    d.addCallback(seen.append)
    assert seen == [5]


def test_callbacks_added_from_inside_a_callback_run_after_the_queued_ones() -> None:
    seen = []
    d = Deferred()
    d.addCallback(lambda r: d.addCallback(lambda r2: seen.append(("inner", r2))) and "x")
    d.addCallback(lambda r: seen.append(("second", r)) or "y")
    d.callback(0)
    assert seen == [("second", "x"), ("inner", "y")]


# -- path switching ----------------------------------------------------------

def test_a_raise_goes_to_the_next_errback() -> None:
    seen = []
    d = Deferred()
    d.addCallback(lambda r: 1 / 0)
    d.addCallback(lambda r: seen.append("skipped"))
    d.addErrback(lambda f: seen.append(f.type))
    d.callback(1)
    assert seen == [ZeroDivisionError]


def test_a_returned_failure_goes_to_the_next_errback() -> None:
    d = Deferred()
    d.addCallback(lambda r: Failure(KeyError("k")))
    d.callback(1)
    assert failure_of(d).type is KeyError


def test_an_errback_returning_a_value_goes_back_to_callbacks() -> None:
    d = fail(ValueError())
    d.addErrback(lambda f: "recovered")
    d.addCallback(lambda r: r + "!")
    assert result_of(d) == "recovered!"


def test_the_errback_of_the_same_pair_does_not_see_its_callbacks_failure() -> None:
    seen = []
    d = Deferred()
    d.addCallbacks(lambda r: 1 / 0, lambda f: seen.append("same pair"))
    d.addErrback(lambda f: seen.append("next pair"))
    d.callback(1)
    assert seen == ["next pair"]


# -- chaining ------------------------------------------------------------------

def test_a_callback_returning_an_unfired_deferred_makes_the_outer_wait() -> None:
    inner = Deferred()
    outer = succeed(1)
    seen = []
    outer.addCallback(lambda r: inner)
    outer.addCallback(seen.append)
    assert seen == [] and outer.paused
    inner.callback("inner")
    assert seen == ["inner"] and not outer.paused
    assert inner.result is None  # the result moved to the outer chain


def test_a_returned_fired_deferred_gives_its_result_at_once() -> None:
    outer = succeed(1)
    outer.addCallback(lambda r: succeed(r + 1))
    assert result_of(outer) == 2
    failed = succeed(1)
    failed.addCallback(lambda r: fail(KeyError()))
    assert failure_of(failed).type is KeyError


def test_a_returned_paused_deferred_is_waited_for_until_unpaused() -> None:
    inner = succeed("in")
    inner.pause()
    outer = succeed(1)
    outer.addCallback(lambda r: inner)
    seen = []
    outer.addCallback(seen.append)
    assert seen == []
    inner.unpause()
    assert seen == ["in"]


def test_a_returned_deferred_that_itself_waits_is_waited_for() -> None:
    innermost = Deferred()
    middle = succeed(0)
    middle.addCallback(lambda r: innermost)
    outer = succeed(0)
    outer.addCallback(lambda r: middle)
    seen = []
    outer.addCallback(seen.append)
    assert seen == []
    innermost.callback("deep")
    assert seen == ["deep"]


def test_chainDeferred_fires_the_other_deferred() -> None:
    a, b = Deferred(), Deferred()
    a.chainDeferred(b)
    seen = []
    b.addCallback(seen.append)
    a.callback(3)
    assert seen == [3]
    c, e = Deferred(), Deferred()
    c.chainDeferred(e)
    c.errback(ValueError())
    assert failure_of(e).type is ValueError


def test_a_long_line_of_chainDeferred_links_does_not_recurse() -> None:
    # Twisted recurses once per link here (RecursionError at ~1000 links).
    ds = [Deferred() for _ in range(sys.getrecursionlimit() * 5)]
    for d, following in zip(ds, ds[1:]):
        d.chainDeferred(following)
    seen = []
    ds[-1].addCallback(seen.append)
    ds[0].callback("along the line")
    assert seen == ["along the line"]
    assert ds[0].result is None  # a link goes on with what d.callback returns


def test_chainDeferred_to_a_fired_deferred_is_AlreadyCalledError_in_the_chain() -> None:
    d = Deferred()
    d.chainDeferred(succeed("already"))
    d.callback(1)
    assert failure_of(d).type is AlreadyCalledError


def test_thousands_deep_chain_does_not_hit_the_recursion_limit() -> None:
    depth = sys.getrecursionlimit() * 5
    ds = [Deferred() for _ in range(depth)]
    for outer, inner in zip(ds, ds[1:]):
        outer.addCallback(lambda r, inner=inner: inner)
    for d in ds[:-1]:
        d.callback(None)          # each now waits on the next one
    seen = []
    ds[0].addCallback(seen.append)
    ds[-1].callback("bottom")     # the result travels up through every level
    assert seen == ["bottom"]


def test_a_deep_chain_of_already_fired_deferreds_does_not_recurse() -> None:
    d = succeed(0)
    for _ in range(sys.getrecursionlimit() * 5):
        d.addCallback(lambda r: succeed(r + 1))
    assert result_of(d) == sys.getrecursionlimit() * 5


# -- pause -----------------------------------------------------------------------

def test_pause_holds_callbacks_until_every_pause_is_undone() -> None:
    seen = []
    d = Deferred()
    d.pause()
    d.pause()
    d.addCallback(seen.append)
    d.callback(1)
    d.unpause()
    assert seen == []
    d.unpause()
    assert seen == [1]


# -- cancel ------------------------------------------------------------------------

def test_cancel_without_canceller_errbacks_and_swallows_one_later_fire() -> None:
    d = Deferred()
    d.cancel()
    assert failure_of(d).type is CancelledError
    d.callback("late")            # the one late result is dropped silently
    with pytest.raises(AlreadyCalledError):
        d.callback("later still")


def test_cancel_calls_the_canceller_which_may_fire_the_deferred() -> None:
    seen = []
    d = Deferred(lambda x: seen.append(x) or x.errback(KeyError("mine")))
    d.cancel()
    assert seen == [d]
    assert failure_of(d).type is KeyError


def test_a_canceller_that_does_not_fire_leads_to_CancelledError_and_no_swallowing() -> None:
    d = Deferred(lambda x: None)
    d.cancel()
    assert failure_of(d).type is CancelledError
    with pytest.raises(AlreadyCalledError):
        d.callback("late")


def test_cancelling_a_deferred_waiting_on_another_cancels_the_inner_one() -> None:
    cancelled = []
    inner = Deferred(lambda x: cancelled.append(x))
    outer = succeed(1)
    outer.addCallback(lambda r: inner)
    outer.cancel()
    assert cancelled == [inner]
    assert failure_of(outer).type is CancelledError


def test_cancel_after_firing_does_nothing() -> None:
    d = succeed(1)
    d.cancel()
    assert result_of(d) == 1


# -- unhandled errors ----------------------------------------------------------------

class RecordingProbe(_instrument.Probe):
    """Records every Deferred instrumentation call, naming Deferreds by the
    ``_trace_id`` it gives them (as the tracer does) so that it keeps none
    of them alive."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.next_id = 0

    def deferred_created(self, d: Any) -> None:
        self.next_id += 1
        d._trace_id = self.next_id
        self.calls.append(("created", d._trace_id, sys._getframe(2).f_code.co_name))

    def deferred_callbacks_added(self, d: Any, callback: Any, errback: Any) -> None:
        self.calls.append(("added", d._trace_id, callback, errback))

    def deferred_fired(self, d: Any, is_failure: bool) -> None:
        self.calls.append(("fired", d._trace_id, is_failure))

    def deferred_callback_begin(self, d: Any, f: Any, is_errback: bool, fired: bool = False) -> None:
        super().deferred_callback_begin(d, f, is_errback, fired)  # a firing it carries: "fired"
        self.calls.append(("begin", d._trace_id, f, is_errback))

    def deferred_callback_end(self, d: Any, result_is_failure: bool, fired: bool = False) -> None:
        super().deferred_callback_end(d, result_is_failure, fired)
        self.calls.append(("end", d._trace_id, result_is_failure))

    def deferred_chained(self, outer: Any, inner: Any) -> None:
        self.calls.append(("chained", outer._trace_id, inner._trace_id))

    def deferred_cancelled(self, d: Any) -> None:
        self.calls.append(("cancelled", d._trace_id))

    def deferred_unhandled(self, d: Any, failure: Any) -> None:
        self.calls.append(("unhandled", d._trace_id, failure))


@pytest.fixture
def probe() -> Iterator[RecordingProbe]:
    recording = RecordingProbe()
    _instrument.install(recording)
    try:
        yield recording
    finally:
        _instrument.uninstall()


def raise_it() -> None:
    raise ValueError("nobody handles me")


def test_garbage_collected_failure_is_logged_with_its_traceback(
        caplog: pytest.LogCaptureFixture, probe: RecordingProbe) -> None:
    d = maybeDeferred(raise_it)
    trace_id = d._trace_id
    with caplog.at_level(logging.ERROR, logger="reactor.defer"):
        del d
        gc.collect()
    [record] = [r for r in caplog.records if r.name == "reactor.defer"]
    text = record.getMessage()
    assert text.startswith("Unhandled error in Deferred:")
    assert "raise_it" in text and "builtins.ValueError: nobody handles me" in text
    [(_, reported_id, failure)] = [c for c in probe.calls if c[0] == "unhandled"]
    assert reported_id == trace_id and failure.type is ValueError


def test_a_failure_handled_later_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    d = fail(ValueError())
    d.addErrback(lambda f: None)
    inner = fail(KeyError())
    outer = succeed(1)
    outer.addCallback(lambda r: inner)  # noqa: F821 - the outer takes the inner's failure (del'd below)
    outer.addErrback(lambda f: None)
    with caplog.at_level(logging.ERROR, logger="reactor.defer"):
        del d, inner, outer
        gc.collect()
    assert [r for r in caplog.records if r.name == "reactor.defer"] == []


# -- instrumentation -----------------------------------------------------------

def test_every_instrumentation_point_reports_to_the_probe(probe: RecordingProbe) -> None:
    def double(r: int) -> int:
        return r * 2

    def on_error(f: Failure) -> None:
        return None

    inner = Deferred()
    d = Deferred()
    d.addCallback(double)
    d.addErrback(on_error)
    d.addCallback(lambda r: inner)
    d.callback(1)
    d.cancel()
    calls = probe.calls
    here = "test_every_instrumentation_point_reports_to_the_probe"
    assert calls[:2] == [("created", 1, here), ("created", 2, here)]
    assert (inner._trace_id, d._trace_id) == (1, 2)
    assert ("added", 2, double, None) in calls and ("added", 2, None, on_error) in calls
    fired = calls.index(("fired", 2, False))
    # one begin per callback (each ending the one before), one end when the pass stops
    begin_double, begin_lambda, chained, end = calls[fired + 1:fired + 5]
    assert begin_double == ("begin", 2, double, False) and begin_lambda[:2] == ("begin", 2)
    assert chained == ("chained", 2, 1) and end == ("end", 2, False)
    cancelled = calls.index(("cancelled", 2))
    assert calls[cancelled + 1:cancelled + 3] == [("cancelled", 1), ("fired", 1, True)]
    assert not any(c[0] == "begin" and c[2] is on_error for c in calls)
    failure_of(d)


def test_a_chainDeferred_link_reports_its_pair_and_the_firing(probe: RecordingProbe) -> None:
    d, e = Deferred(), Deferred()
    d.chainDeferred(e)
    d.callback("x")
    # no callback ran: each pass only ends
    assert [c for c in probe.calls[2:] if c[0] != "end"] == [
        ("added", 1, e.callback, e.errback), ("fired", 1, False), ("fired", 2, False)]
    assert not any(c[0] == "begin" for c in probe.calls)
    late = Deferred()
    late.chainDeferred(succeed(None))   # the link's target has fired already
    late.callback("y")
    begin = [c for c in probe.calls if c[0] == "begin"]
    assert len(begin) == 1 and begin[0][2].__name__ == "callback"
    assert probe.calls[probe.calls.index(begin[0]) + 1] == ("end", 3, True)
    failure_of(late)


def test_no_probe_means_no_calls() -> None:
    assert _instrument.probe is None
    d = Deferred()
    assert d._trace_id is None
    d._trace_id = 5  # reserved for the probe, and assignable
    d.addCallback(lambda r: r).callback(1)


# -- coroutines ----------------------------------------------------------------

def test_await_on_fired_unfired_and_failed_deferreds() -> None:
    later = Deferred()

    async def main() -> tuple:
        a = await succeed(1)
        b = await later
        try:
            await fail(KeyError("k"))
        except KeyError as e:
            c = e.args[0]
        return a, b, c

    d = ensureDeferred(main())
    assert not d.called
    later.callback(2)
    assert result_of(d) == (1, 2, "k")


def test_fromCoroutine_reports_the_coroutines_exception() -> None:
    async def broken() -> None:
        await succeed(None)
        raise RuntimeError("inside")

    assert failure_of(Deferred.fromCoroutine(broken())).type is RuntimeError


def test_fromCoroutine_refuses_other_things_and_ensureDeferred_passes_deferreds() -> None:
    with pytest.raises(NotACoroutineError):
        Deferred.fromCoroutine(42)
    d = Deferred()
    assert ensureDeferred(d) is d


def test_cancelling_a_coroutine_cancels_what_it_awaits() -> None:
    awaited = Deferred()

    async def main() -> str:
        try:
            await awaited
        except CancelledError:
            return "cleaned up"
        return "not cancelled"

    d = ensureDeferred(main())
    d.cancel()
    assert awaited.called
    assert result_of(d) == "cleaned up"


# -- succeed, fail, maybeDeferred ------------------------------------------------------

def test_succeed_and_fail() -> None:
    assert result_of(succeed("ok")) == "ok"
    try:
        raise OSError("now")
    except OSError:
        d = fail()
    assert failure_of(d).type is OSError


def test_maybeDeferred_wraps_every_kind_of_outcome() -> None:
    async def coro() -> str:
        return "from coroutine"

    d = Deferred()
    assert result_of(maybeDeferred(lambda x: x + 1, 1)) == 2
    assert failure_of(maybeDeferred(lambda: 1 / 0)).type is ZeroDivisionError
    assert failure_of(maybeDeferred(lambda: Failure(KeyError()))).type is KeyError
    assert maybeDeferred(lambda: d) is d
    assert result_of(maybeDeferred(coro)) == "from coroutine"


# -- DeferredList, gatherResults ------------------------------------------------

def test_DeferredList_fires_with_every_result_in_order() -> None:
    a, b = Deferred(), Deferred()
    dl = DeferredList([a, b], consumeErrors=True)
    b.errback(KeyError())
    assert not dl.called
    a.callback("a")
    [(ok_a, res_a), (ok_b, res_b)] = result_of(dl)
    assert (ok_a, res_a) == (True, "a") and ok_b is False and res_b.type is KeyError
    assert result_of(b) is None  # consumeErrors took the failure out of b's chain


def test_DeferredList_of_nothing_fires_at_once() -> None:
    assert result_of(DeferredList([])) == []


def test_DeferredList_fireOnOneCallback() -> None:
    a, b = Deferred(), Deferred()
    dl = DeferredList([a, b], fireOnOneCallback=True)
    b.callback("first")
    assert result_of(dl) == ("first", 1)
    a.callback("ignored")


def test_DeferredList_fireOnOneErrback_gives_FirstError() -> None:
    a, b = Deferred(), Deferred()
    dl = DeferredList([a, b], fireOnOneErrback=True, consumeErrors=True)
    b.errback(KeyError("bad"))
    f = failure_of(dl)
    assert f.type is FirstError and f.value.index == 1 and f.value.subFailure.type is KeyError


def test_DeferredList_cancel_cancels_the_unfired_deferreds() -> None:
    a, b = succeed("done"), Deferred()
    dl = DeferredList([a, b], consumeErrors=True)
    dl.cancel()
    [first, (ok, failure)] = result_of(dl)
    assert first == (True, "done")
    assert ok is False and failure.type is CancelledError


def test_gatherResults_values_and_first_failure() -> None:
    assert result_of(gatherResults([succeed(1), succeed(2)])) == [1, 2]
    a = Deferred()
    d = gatherResults([a, fail(KeyError())], consumeErrors=True)
    f = failure_of(d)
    assert f.type is FirstError and f.value.subFailure.type is KeyError
    a.callback(None)


# -- inlineCallbacks -------------------------------------------------------------------

def test_inlineCallbacks_waits_on_each_yield_and_returns() -> None:
    later = Deferred()

    @inlineCallbacks
    def main(x: int) -> Any:
        a = yield succeed(x)
        b = yield later
        try:
            yield fail(KeyError("k"))
        except KeyError:
            pass
        return a + b

    d = main(1)
    later.callback(2)
    assert result_of(d) == 3


def test_inlineCallbacks_returnValue_and_exceptions() -> None:
    @inlineCallbacks
    def old_style() -> Any:
        yield succeed(None)
        returnValue("old")

    @inlineCallbacks
    def broken() -> Any:
        yield succeed(None)
        raise LookupError("x")

    assert result_of(old_style()) == "old"
    assert failure_of(broken()).type is LookupError


def test_inlineCallbacks_refuses_a_non_generator() -> None:
    @inlineCallbacks
    def not_a_generator() -> int:
        return 1

    with pytest.raises(TypeError):
        not_a_generator()


def test_inlineCallbacks_many_fired_yields_do_not_recurse() -> None:
    @inlineCallbacks
    def main() -> Any:
        total = 0
        for _ in range(sys.getrecursionlimit() * 5):
            total += yield succeed(1)
        return total

    assert result_of(main()) == sys.getrecursionlimit() * 5


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outside")


def test_inlineCallbacks_keeps_its_own_context_across_yields() -> None:
    later = Deferred()
    seen = []

    @inlineCallbacks
    def main() -> Any:
        VAR.set("inside")
        yield later
        seen.append(VAR.get())

    d = main()
    assert VAR.get() == "outside"      # the generator's change did not leak out
    VAR.set("changed by the caller")
    try:
        later.callback(None)
    finally:
        VAR.set("outside")
    assert seen == ["inside"]
    result_of(d)


def test_cancelling_inlineCallbacks_cancels_the_awaited_deferred() -> None:
    awaited = Deferred()

    @inlineCallbacks
    def main() -> Any:
        yield awaited

    d = main()
    d.cancel()
    assert awaited.called  # cancelled; its CancelledError went into the generator
    assert failure_of(d).type is CancelledError


# -- addTimeout ------------------------------------------------------------------------

def test_addTimeout_fails_with_TimeoutError_when_late() -> None:
    clock = Clock()
    d = Deferred()
    d.addTimeout(5, clock)
    clock.advance(4.9)
    assert not d.called
    clock.advance(0.2)
    f = failure_of(d)
    assert f.check(TimeoutError) and f.check(error.TimeoutError)


def test_addTimeout_in_time_cancels_the_timer() -> None:
    clock = Clock()
    d = Deferred()
    d.addTimeout(5, clock)
    d.callback("on time")
    assert clock.getDelayedCalls() == []
    assert result_of(d) == "on time"


def test_addTimeout_onTimeoutCancel_decides_the_result() -> None:
    clock = Clock()
    d = Deferred()
    d.addTimeout(1, clock, onTimeoutCancel=lambda result, timeout: ("timed out", timeout))
    clock.advance(1)
    assert result_of(d) == ("timed out", 1)


# -- DeferredLock, DeferredSemaphore, DeferredQueue -----------------------------------

def test_DeferredLock_serialises_holders_in_order() -> None:
    lock = DeferredLock()
    first, second = lock.acquire(), lock.acquire()
    assert result_of(first) is lock and not second.called and lock.locked
    lock.release()
    assert result_of(second) is lock
    lock.release()
    assert not lock.locked


def test_DeferredLock_run_releases_after_the_functions_deferred() -> None:
    lock = DeferredLock()
    work = Deferred()
    d = lock.run(lambda x: work, 1)
    assert lock.locked
    work.callback("done")
    assert result_of(d) == "done" and not lock.locked
    assert failure_of(lock.run(lambda: 1 / 0)).type is ZeroDivisionError and not lock.locked


def test_cancelling_a_waiting_acquire_removes_it_from_the_queue() -> None:
    lock = DeferredLock()
    lock.acquire()
    waiter = lock.acquire()
    waiter.cancel()
    assert failure_of(waiter).type is CancelledError and lock.waiting == []


def test_DeferredLock_async_with() -> None:
    lock = DeferredLock()
    inside = []

    async def main() -> None:
        async with lock:
            inside.append(lock.locked)

    result_of(ensureDeferred(main()))
    assert inside == [True] and not lock.locked


def test_DeferredSemaphore_admits_tokens_holders() -> None:
    sem = DeferredSemaphore(2)
    a, b, c = sem.acquire(), sem.acquire(), sem.acquire()
    assert a.called and b.called and not c.called
    sem.release()
    assert c.called and sem.tokens == 0
    with pytest.raises(ValueError):
        DeferredSemaphore(0)


def test_DeferredQueue_get_waits_for_put_and_bounds_hold() -> None:
    queue = DeferredQueue(size=1, backlog=1)
    getter = queue.get()
    with pytest.raises(QueueUnderflow):
        queue.get()
    queue.put("x")
    assert result_of(getter) == "x"
    queue.put("y")
    with pytest.raises(QueueOverflow):
        queue.put("z")
    assert result_of(queue.get()) == "y"


def test_repr_says_what_the_deferred_holds_or_waits_on() -> None:
    d = Deferred()
    assert repr(d) == f"<Deferred at {id(d):#x}>"
    d.callback(7)
    assert repr(d) == f"<Deferred at {id(d):#x} current result: 7>"
    inner = Deferred()
    d.addCallback(lambda r: inner)
    assert str(d) == f"<Deferred at {id(d):#x} waiting on Deferred at {id(inner):#x}>"
    inner.callback(None)


# -- asyncio ------------------------------------------------------------------------

@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    new_loop = asyncio.new_event_loop()
    try:
        yield new_loop
    finally:
        new_loop.close()


def test_asFuture_gives_the_result_or_the_exception(loop: asyncio.AbstractEventLoop) -> None:
    d = Deferred()
    future = d.asFuture(loop)
    loop.call_soon(d.callback, "from the Deferred")
    assert loop.run_until_complete(future) == "from the Deferred"
    failing = fail(KeyError("k")).asFuture(loop)
    with pytest.raises(KeyError):
        loop.run_until_complete(failing)


def test_cancelling_the_future_cancels_the_deferred(loop: asyncio.AbstractEventLoop) -> None:
    cancelled = []
    d = Deferred(cancelled.append)
    d.asFuture(loop).cancel()
    loop.run_until_complete(asyncio.sleep(0))
    assert cancelled == [d]


def test_fromFuture_fires_with_the_futures_outcome(loop: asyncio.AbstractEventLoop) -> None:
    future = loop.create_future()
    d = Deferred.fromFuture(future)
    future.set_result(3)
    loop.run_until_complete(asyncio.sleep(0))
    assert result_of(d) == 3
    broken = loop.create_future()
    e = Deferred.fromFuture(broken)
    broken.set_exception(KeyError("k"))
    loop.run_until_complete(asyncio.sleep(0))
    assert failure_of(e).type is KeyError


def test_cancelling_fromFuture_cancels_the_future(loop: asyncio.AbstractEventLoop) -> None:
    future = loop.create_future()
    d = Deferred.fromFuture(future)
    d.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    assert future.cancelled()
    assert failure_of(d).type is CancelledError


# -- parity with Twisted found by bench/conformance.py ------------------------------

class _Canceller:
    deferred: Any = None

    def __call__(self, d: Any) -> None:
        pass


@pytest.mark.parametrize("returns", ["value", "pending Deferred"])
def test_a_fired_deferred_drops_its_canceller(returns: str) -> None:
    import weakref

    canceller = _Canceller()
    gone = weakref.ref(canceller)
    d = Deferred(canceller)
    canceller.deferred = d  # a cycle through the canceller
    d.addCallback(lambda _: 1 if returns == "value" else Deferred())
    d.callback(None)
    del d, canceller
    assert gone() is None  # freed by reference counting alone


def test_coroutine_and_inline_callbacks_deferreds_are_not_reference_cycles() -> None:
    import gc
    import weakref

    async def coroutine() -> int:
        return 1

    @inlineCallbacks
    def generator() -> Any:
        yield succeed(None)
        return 2

    gc.disable()
    try:
        for make in (lambda: Deferred.fromCoroutine(coroutine()), generator):
            d = make()
            ref = weakref.ref(d)
            del d
            assert ref() is None
    finally:
        gc.enable()


def test_a_callback_returning_its_own_deferred_warns_and_stalls_as_in_twisted() -> None:
    import warnings

    from twisted.internet import defer as twisted_defer

    for defer_module in (twisted_defer, sys.modules["reactor.defer"]):
        d = defer_module.Deferred()
        d.addCallback(lambda _, d=d: d)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            d.callback("foo")
        assert [w.category for w in caught] == [DeprecationWarning]
        assert "Callback returned the Deferred it was attached to" in str(caught[0].message)
        seen: list = []
        d.addBoth(seen.append)
        assert seen == []  # it waits on itself, for ever


def test_a_callback_returning_its_own_deferred_fails_where_warnings_are_errors() -> None:
    import warnings

    d: Deferred = Deferred()
    d.addCallback(lambda _: d)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        d.callback("foo")
    failures: list = []
    d.addErrback(failures.append)
    assert failures[0].check(DeprecationWarning)


def test_log_error_logs_the_failure_and_passes_it_on() -> None:
    from reactor import log
    from reactor.defer import fail, logError

    events: list[dict] = []
    log.addObserver(events.append)
    try:
        outcome: list = []
        fail(KeyError("logged")).addErrback(logError).addErrback(outcome.append)
    finally:
        log.removeObserver(events.append)
    assert outcome[0].check(KeyError)
    assert [e["failure"] for e in events if e["isError"]] == outcome
