"""Time-based helpers on top of ``callLater``, as Twisted's ``twisted.internet.task``:
``LoopingCall`` (run a function every n seconds), ``deferLater`` (a Deferred
fired after a delay), ``Clock`` (a fake, hand-advanced clock for tests) and
``react`` (run the reactor for the life of one main function).  The
Cooperator (``cooperate``, ``coiterate``) lives in ``reactor.cooperator``
and is re-exported here."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

from reactor import error, log
from reactor.base import DelayedCall
from reactor.cooperator import (  # noqa: F401 (re-exported: Twisted has them in task)
    CooperativeTask,
    Cooperator,
    NotPaused,
    SchedulerError,
    SchedulerStopped,
    TaskDone,
    TaskFailed,
    TaskFinished,
    TaskStopped,
    _theCooperator,
    coiterate,
    cooperate,
)
from reactor.defer import Deferred, ensureDeferred, maybeDeferred
from reactor.failure import Failure


class LoopingCall:
    """Call ``f(*a, **kw)`` every ``interval`` seconds once started.

    Runs stay on the interval grid measured from ``start``: a run that took
    too long skips the missed slots instead of bunching up.  If ``f`` returns
    a Deferred, the next run waits for it.  If ``f`` raises (or its Deferred
    fails), the loop stops and the Deferred from ``start`` errbacks.
    ``clock`` is the default reactor unless set (a ``Clock`` in tests).
    """

    def __init__(self, f: Callable[..., Any], *a: Any, **kw: Any) -> None:
        from reactor import reactor

        self.f = f
        self.a = a
        self.kw = kw
        self.clock: Any = reactor
        self.call: DelayedCall | None = None
        self.running = False
        self.interval: float | None = None
        self.starttime: float | None = None
        self._deferred: Deferred | None = None
        self._run_at_start = False
        self._last_counted: float | None = None  # for withCount

    @classmethod
    def withCount(cls, countCallable: Callable[[int], Any]) -> LoopingCall:
        """A LoopingCall that calls ``countCallable(n)``, ``n`` being how many
        intervals passed since the last call (more than 1 when the process
        was too busy to run on time), as Twisted's ``withCount``."""
        def counter() -> Any:
            now = looping.clock.seconds()
            starttime, interval = looping._grid()
            if interval == 0:
                looping._last_counted = now
                return countCallable(1)
            last = looping._last_counted
            if last is None:
                last = starttime - (interval if looping._run_at_start else 0)
            count = looping._interval_of(now) - looping._interval_of(last)
            if count > 0:
                looping._last_counted = now
                return countCallable(count)
            return None

        looping = cls(counter)
        return looping

    def _grid(self) -> tuple[float, float]:
        """``(starttime, interval)``: set by ``start``, before any run."""
        assert self.starttime is not None and self.interval is not None, "not started"
        return self.starttime, self.interval

    def _interval_of(self, t: float) -> int:
        starttime, interval = self._grid()
        return int((t - starttime) / interval)

    @property
    def deferred(self) -> Deferred | None:
        """The Deferred ``start`` returned, while running."""
        return self._deferred

    def start(self, interval: float, now: bool = True) -> Deferred:
        """Start calling every ``interval`` seconds (first call at once if
        ``now``).  Returns a Deferred fired with this LoopingCall on ``stop``."""
        if self.running:
            raise AssertionError("Tried to start an already running LoopingCall.")
        if interval < 0:
            raise ValueError("interval must be >= 0")
        self.running = True
        deferred = self._deferred = Deferred()
        self.starttime = self.clock.seconds()
        self.interval = interval
        self._run_at_start = now
        if now:
            self()
        else:
            self._schedule_from(self.starttime)
        return deferred

    def stop(self) -> None:
        """Stop; the Deferred from ``start`` fires now, or once a pending run's Deferred does."""
        if not self.running:
            raise AssertionError("Tried to stop a LoopingCall that was not running.")
        self.running = False
        if self.call is not None:
            self.call.cancel()
            self.call = None
            self._finish(self)

    def reset(self) -> None:
        """Restart the interval grid from now (the next run is one interval away)."""
        if not self.running:
            raise AssertionError("Tried to reset a LoopingCall that was not running.")
        if self.call is not None:
            self.call.cancel()
            self.call = None
            self.starttime = self.clock.seconds()
            self._schedule_from(self.starttime)

    @property
    def func(self) -> Callable[..., Any]:
        """``f``, under the name ``functools.partial`` gives the function it calls: a tracer
        looks through both the same way and names each run after the function it ran."""
        return self.f

    def __call__(self) -> None:
        self.call = None
        d = maybeDeferred(self.f, *self.a, **self.kw)
        d.addCallbacks(self._ran, self._failed)

    def _ran(self, result: Any) -> None:
        if self.running:
            self._schedule_from(self.clock.seconds())
        else:
            self._finish(self)

    def _failed(self, failure: Failure) -> None:
        self.running = False
        self._finish(failure)

    def _finish(self, outcome: Any) -> None:
        d, self._deferred = self._deferred, None
        assert d is not None, "finished twice"
        if isinstance(outcome, Failure):
            d.errback(outcome)
        else:
            d.callback(outcome)

    def _schedule_from(self, when: float) -> None:
        """Schedule the next run at the next grid point after ``when``."""
        starttime, interval = self._grid()
        if interval == 0:
            self.call = self.clock.callLater(0, self)
            return
        until_next = interval - ((when - starttime) % interval)
        if when + until_next == when:  # float rounding ate the step
            until_next = interval
        self.call = self.clock.callLater(until_next, self)

    def __repr__(self) -> str:
        name = getattr(self.f, "__qualname__", repr(self.f))
        return f"LoopingCall<{self.interval!r}>({name}, *{self.a!r}, **{self.kw!r})"


def deferLater(clock: Any, delay: float, callable: Callable[..., Any] | None = None,
               *args: Any, **kw: Any) -> Deferred:
    """A Deferred fired ``delay`` seconds from now with ``callable(*args, **kw)``
    (or None).  Cancelling it cancels the timer (the Deferred fails with CancelledError)."""

    def cancel_timer(_: Deferred) -> None:
        delayed_call.cancel()

    def run(_: Any) -> Any:
        return None if callable is None else callable(*args, **kw)

    d = Deferred(cancel_timer)
    d.addCallback(run)
    delayed_call = clock.callLater(delay, d.callback, None)
    return d


class Clock:
    """A clock that only moves when told: ``callLater`` here runs on ``advance``.

    Lets tests of time-based code (LoopingCall, timeouts) run instantly and
    deterministically.  Exceptions from the calls propagate out of ``advance``.
    """

    def __init__(self) -> None:
        self.rightNow = 0.0
        self.calls: list[DelayedCall] = []

    def seconds(self) -> float:
        """The fake time (starts at 0)."""
        return self.rightNow

    def callLater(self, delay: float, f: Callable[..., Any], *args: Any, **kw: Any) -> DelayedCall:
        """Schedule ``f`` at ``seconds() + delay``."""
        call = DelayedCall(self, self.rightNow + delay, f, args, kw)
        self.calls.append(call)
        self._sort()
        return call

    def getDelayedCalls(self) -> list[DelayedCall]:
        """The calls not yet run or cancelled, soonest first."""
        return self.calls

    def advance(self, amount: float) -> None:
        """Move time forward and run every call now due, in time order
        (including ones those calls schedule for no later than now)."""
        self.rightNow += amount
        while self.calls and self.calls[0].time <= self.rightNow:
            call = self.calls.pop(0)
            call.called = True
            call.func(*call.args, **call.kw)

    def pump(self, timings: list[float]) -> None:
        """``advance`` by each amount in turn."""
        for amount in timings:
            self.advance(amount)

    def _sort(self) -> None:
        self.calls.sort(key=DelayedCall.getTime)  # stable: equal times keep FIFO order

    def _call_cancelled(self, call: DelayedCall) -> None:
        self.calls.remove(call)

    def _call_moved(self, call: DelayedCall) -> None:
        self._sort()


def react(main: Callable[..., Any], argv: Any = (), _reactor: Any = None) -> NoReturn:
    """Run ``main(reactor, *argv)`` (returning a Deferred or a coroutine) and
    the reactor until it is done, then exit the process: code 0 on success,
    1 on failure (logged), or the code of a SystemExit it failed with.

    The reactor is stopped once, when the result arrives; if something else
    stops the reactor first, ``react`` just exits when it has stopped.
    ``_reactor`` is for tests (the default reactor otherwise).
    """
    if _reactor is None:
        from reactor import reactor as _reactor
    finished = ensureDeferred(main(_reactor, *argv))
    code: Any = 0
    stopping = False

    def shutting_down() -> None:
        nonlocal stopping
        stopping = True

    _reactor.addSystemEventTrigger("before", "shutdown", shutting_down)

    def record(result: Any) -> None:
        nonlocal code
        if isinstance(result, Failure):
            if isinstance(result.value, SystemExit):
                code = result.value.code
            else:
                log.err(result, "main function encountered error")
                code = 1

    def stop_and_record(result: Any) -> None:
        try:
            _reactor.stop()
        except error.ReactorNotRunning:
            pass
        record(result)

    def finish(result: Any) -> None:
        if stopping:
            record(result)
        else:
            _reactor.callWhenRunning(stop_and_record, result)

    finished.addBoth(finish)
    _reactor.run()
    sys.exit(code)
