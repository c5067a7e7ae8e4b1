"""Deferred: a result that is not there yet, and the chain of what to do with it.

Semantics follow Twisted's ``twisted.internet.defer`` (the reference for every
rule here: path switching between callbacks and errbacks, chaining on a
returned Deferred, pause, cancel, the unhandled-error report); the code is
our own and aims to be lean on the path every Deferred takes:

* a callback pair is stored as two ``(function, args, kwargs)`` triples and a
  missing half is ``None`` — skipped without a call, where Twisted calls a
  ``passthru`` function;
* the instrumentation probe is read once per run of a chain;
* the object that reports an unhandled failure at garbage collection is
  only allocated when a chain ends on a failure, so a Deferred itself has no
  ``__del__`` and costs the collector nothing.
"""

from __future__ import annotations

import logging
from types import GenericAlias
from typing import Any, Callable, NoReturn

from reactor import _instrument
from reactor.failure import Failure

__all__ = [
    "AlreadyCalledError", "CancelledError", "Deferred", "fail", "maybeDeferred",
    "succeed",
]

_log = logging.getLogger("reactor.defer")


class AlreadyCalledError(Exception):
    """callback() or errback() was called on a Deferred that already fired."""


class CancelledError(Exception):
    """The Deferred was cancelled before it had a result."""


class _NoResult:
    """The type of the value a Deferred holds before it fires."""

    def __repr__(self) -> str:
        return "<no result>"


_NO_RESULT: Any = _NoResult()

# The half of a callback pair that lets the result through untouched.
_PASS = (None, (), None)
# Marks the pair a waiting Deferred leaves on the Deferred it waits for; the
# "args" slot holds the waiting Deferred.
_CONTINUE: Any = object()


class _FailureWatch:
    """Reports a Deferred whose chain ended on a Failure nobody handled.

    One is attached to a Deferred only when its chain ends on a failure
    (``failResult`` is cleared again if a later callback handles it); when the
    Deferred is garbage-collected this object goes with it and ``__del__``
    makes the report.  It carries the Deferred's ``_trace_id`` so the probe
    can name the Deferred that is already gone.
    """

    __slots__ = ("failResult", "_trace_id")

    def __init__(self) -> None:
        self.failResult: Failure | None = None
        self._trace_id: Any = None

    def __del__(self) -> None:
        failure = self.failResult
        if failure is None:
            return
        _log.error("Unhandled error in Deferred:\n%s", failure.getTraceback().rstrip("\n"))
        probe = _instrument.probe
        if probe is not None:
            probe.deferred_unhandled(self, failure)


class Deferred:
    """A callback chain waiting for one result.

    ``callback(value)`` or ``errback(failure)`` fires it once; the value runs
    through the callbacks, a failure through the errbacks, and each function's
    outcome decides which path the next pair takes (a raise or a returned
    Failure goes to the next errback, anything else to the next callback).
    A callback that returns an unfired Deferred makes this one wait for it.
    """

    # Class-level defaults keep ``Deferred()`` down to one attribute store.
    called = False
    paused = 0
    result: Any = _NO_RESULT
    _canceller: Callable[[Deferred], None] | None = None
    _suppressAlreadyCalled = False
    _runningCallbacks = False
    _chainedTo: Deferred | None = None
    _watch: _FailureWatch | None = None
    _trace_id: Any = None
    debug = False

    __class_getitem__ = classmethod(GenericAlias)

    def __init__(self, canceller: Callable[[Deferred], None] | None = None) -> None:
        self.callbacks: list[tuple[tuple, tuple]] = []
        if canceller is not None:
            self._canceller = canceller
        probe = _instrument.probe
        if probe is not None:
            probe.deferred_created(self)

    # -- adding to the chain ----------------------------------------------
    def addCallbacks(self, callback: Callable[..., Any],
                     errback: Callable[..., Any] | None = None,
                     callbackArgs: tuple = (), callbackKeywords: dict | None = None,
                     errbackArgs: tuple = (), errbackKeywords: dict | None = None) -> Deferred:
        """Add a callback and an errback as one pair: only one of the two
        runs, and the errback does not see a failure raised by its own
        callback."""
        assert callable(callback), callback
        assert errback is None or callable(errback), errback
        self.callbacks.append((
            (callback, callbackArgs or (), callbackKeywords),
            _PASS if errback is None else (errback, errbackArgs or (), errbackKeywords),
        ))
        return self._added(callback, errback)

    def addCallback(self, callback: Callable[..., Any], *args: Any, **kw: Any) -> Deferred:
        """Add a function for the success path; extra arguments follow the result."""
        self.callbacks.append(((callback, args, kw), _PASS))
        return self._added(callback, None)

    def addErrback(self, errback: Callable[..., Any], *args: Any, **kw: Any) -> Deferred:
        """Add a function for the failure path; it receives the Failure."""
        self.callbacks.append((_PASS, (errback, args, kw)))
        return self._added(None, errback)

    def addBoth(self, callback: Callable[..., Any], *args: Any, **kw: Any) -> Deferred:
        """Add one function for both paths (like ``finally``)."""
        half = (callback, args, kw)
        self.callbacks.append((half, half))
        return self._added(callback, callback)

    def _added(self, callback: Any, errback: Any) -> Deferred:
        probe = _instrument.probe
        if probe is not None:
            probe.deferred_callbacks_added(self, callback, errback)
        if self.called:
            self._runCallbacks()
        return self

    def chainDeferred(self, d: Deferred) -> Deferred:
        """Fire ``d`` with whatever result reaches this point of the chain."""
        d._chainedTo = self
        return self.addCallbacks(d.callback, d.errback)

    # -- firing ---------------------------------------------------------------
    def callback(self, result: Any) -> None:
        """Fire the chain with a success value."""
        assert not isinstance(result, Deferred), "callback() with a Deferred"
        self._fire(result)

    def errback(self, fail: Failure | BaseException | None = None) -> None:
        """Fire the chain with a failure: the exception being handled when
        called with no argument, an exception instance, or a Failure."""
        if fail is None:
            fail = Failure()
        elif not isinstance(fail, Failure):
            fail = Failure(fail)
        self._fire(fail)

    def _fire(self, result: Any) -> None:
        if self.called:
            if self._suppressAlreadyCalled:
                # The one result that arrives after a cancel() without a
                # canceller is dropped, as Twisted does.
                self._suppressAlreadyCalled = False
                return
            raise AlreadyCalledError(repr(self))
        self.called = True
        self.result = result
        probe = _instrument.probe
        if probe is not None:
            probe.deferred_fired(self, isinstance(result, Failure))
        self._runCallbacks()

    def pause(self) -> None:
        """Hold the chain: no callback runs until a matching unpause()."""
        self.paused += 1

    def unpause(self) -> None:
        """Undo one pause(); the chain goes on once none is left."""
        self.paused -= 1
        if not self.paused and self.called:
            self._runCallbacks()

    def cancel(self) -> None:
        """Give up on the result.

        An unfired Deferred calls its canceller and, unless that fired it,
        errbacks with CancelledError; without a canceller the one result
        that arrives later is dropped silently.  A Deferred waiting on
        another cancels that one instead.
        """
        if not self.called:
            probe = _instrument.probe
            if probe is not None:
                probe.deferred_cancelled(self)
            canceller = self._canceller
            if canceller is not None:
                canceller(self)
            else:
                self._suppressAlreadyCalled = True
            if not self.called:
                self.errback(Failure(CancelledError()))
        elif isinstance(self.result, Deferred):
            probe = _instrument.probe
            if probe is not None:
                probe.deferred_cancelled(self)
            self.result.cancel()

    # -- running the chain ----------------------------------------------------
    def _wait_on(self, inner: Deferred) -> None:
        """Make this (fired) Deferred wait for ``inner``: paused, with a
        continuation pair on ``inner`` that hands its result back."""
        self.result = inner
        self.paused += 1
        self._chainedTo = inner
        continuation = (_CONTINUE, self, None)
        inner.callbacks.append((continuation, continuation))
        probe = _instrument.probe
        if probe is not None:
            probe.deferred_chained(self, inner)

    def _runCallbacks(self) -> None:
        """Run the chain as far as it goes now.

        A Deferred waiting on another is resumed by a continuation pair on
        that other one; rather than recursing into it, the waiting Deferred
        is pushed on ``chain`` and handled by this same loop, so chains of
        any depth use constant stack.
        """
        if self._runningCallbacks:
            return  # a callback of ours added a callback: the loop below runs it
        probe = _instrument.probe
        chain = [self]
        while chain:
            current = chain[-1]
            if current.paused:
                return
            current._chainedTo = None
            callbacks = current.callbacks
            result = current.result
            failed = isinstance(result, Failure)
            finished = True
            while callbacks:
                f, args, kw = callbacks.pop(0)[failed]
                if f is None:
                    continue
                if f is _CONTINUE:
                    # ``args`` is a Deferred that was waiting on us: give it
                    # our result and let it continue before we go on.
                    current.result = None
                    if current._watch is not None:
                        current._watch.failResult = None
                    args.result = result
                    args.paused -= 1
                    chain.append(args)
                    finished = False
                    break
                if probe is not None:
                    probe.deferred_callback_begin(current, f, failed)
                current._runningCallbacks = True
                try:
                    if args or kw:
                        result = f(result, *args, **(kw or {}))
                    else:
                        result = f(result)
                except BaseException:
                    result = Failure()
                current._runningCallbacks = False
                if isinstance(result, Deferred):
                    inner_result = result.result
                    if (inner_result is _NO_RESULT or result.paused
                            or isinstance(inner_result, Deferred)):
                        current._wait_on(result)
                        if probe is not None:
                            probe.deferred_callback_end(current, False)
                        break
                    # The returned Deferred already has its result: take it.
                    result.result = None
                    if result._watch is not None:
                        result._watch.failResult = None
                    result = inner_result
                current.result = result
                failed = isinstance(result, Failure)
                if probe is not None:
                    probe.deferred_callback_end(current, failed)
            if finished:
                result = current.result
                if isinstance(result, Failure):
                    result.cleanFailure()
                    watch = current._watch
                    if watch is None:
                        watch = current._watch = _FailureWatch()
                    watch.failResult = result
                    watch._trace_id = current._trace_id
                elif current._watch is not None:
                    current._watch.failResult = None
                chain.pop()

    def __repr__(self) -> str:
        name = type(self).__name__
        result = self.result
        if isinstance(result, Deferred) and self.called:
            return f"<{name} at {id(self):#x} waiting on Deferred at {id(result):#x}>"
        if result is _NO_RESULT:
            return f"<{name} at {id(self):#x}>"
        return f"<{name} at {id(self):#x} current result: {result!r}>"

    __str__ = __repr__


def succeed(result: Any) -> Deferred:
    """A Deferred that already has ``result``."""
    d = Deferred()
    d.callback(result)
    return d


def fail(result: Failure | BaseException | None = None) -> Deferred:
    """A Deferred that already failed with ``result`` (default: the
    exception being handled)."""
    d = Deferred()
    d.errback(result)
    return d


def maybeDeferred(f: Callable[..., Any], *args: Any, **kw: Any) -> Deferred:
    """Call ``f`` and give its outcome as a Deferred whatever it was: a
    value, a raised exception, a Failure, a Deferred or a coroutine."""
    try:
        result = f(*args, **kw)
    except BaseException:
        return fail(Failure())
    if isinstance(result, Deferred):
        return result
    if isinstance(result, Failure):
        return fail(result)
    return succeed(result)
