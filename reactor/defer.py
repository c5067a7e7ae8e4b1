"""Deferred: a result that is not there yet, and the chain of what to do with it.

Semantics follow Twisted's ``twisted.internet.defer`` (the reference for every
rule here: path switching between callbacks and errbacks, chaining on a
returned Deferred, pause, cancel, the unhandled-error report); the code is
our own and aims to be lean on the path every Deferred takes:

* a callback pair is one flat tuple; a missing half is ``None`` — skipped
  without a call, where Twisted calls a ``passthru`` function — and a
  callback without extra arguments is called as plain ``f(result)``;
* ``__slots__``, and a small cache of result types known to be plain values,
  so telling a value from a Deferred or a Failure costs one set lookup;
* the instrumentation probe is read once per run of a chain;
* the object that reports an unhandled failure at garbage collection is
  only allocated when a chain ends on a failure, so a Deferred itself has no
  ``__del__`` and costs the collector nothing.
"""

from __future__ import annotations

import contextvars
import dis
import functools
import logging
import sys
import traceback
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterable
from inspect import iscoroutine, isgenerator
from types import GenericAlias
from typing import TYPE_CHECKING, Any, NoReturn, Self

from reactor import _instrument, error, log
from reactor.failure import Failure
from reactor.lockfile import FilesystemLock

if TYPE_CHECKING:
    import asyncio  # only for annotations: the asyncio bridge is duck-typed

__all__ = [
    "FAILURE",
    "SUCCESS",
    "AlreadyCalledError",
    "CancelledError",
    "Deferred",
    "DeferredList",
    "DeferredLock",
    "DeferredQueue",
    "DeferredSemaphore",
    "FirstError",
    "NotACoroutineError",
    "QueueOverflow",
    "QueueUnderflow",
    "TimeoutError",
    "ensureDeferred",
    "fail",
    "gatherResults",
    "inlineCallbacks",
    "logError",
    "maybeDeferred",
    "returnValue",
    "succeed",
]

_log = logging.getLogger("reactor.defer")


class AlreadyCalledError(Exception):
    """callback() or errback() was called on a Deferred that already fired."""


class CancelledError(Exception):
    """The Deferred was cancelled before it had a result."""


class TimeoutError(error.TimeoutError):
    """A Deferred given a timeout with addTimeout() did not fire in time.

    Twisted has two unrelated TimeoutError classes (defer's and error's); this
    one subclasses ``reactor.error.TimeoutError`` so catching either works."""


class NotACoroutineError(TypeError):
    """Deferred.fromCoroutine / ensureDeferred was given something that is
    neither a coroutine nor a generator."""


class FirstError(Exception):
    """The first failure among the Deferreds of a DeferredList created with
    ``fireOnOneErrback=True``: ``subFailure`` is it, ``index`` whose it was."""

    def __init__(self, failure: Failure, index: int) -> None:
        super().__init__(failure, index)
        self.subFailure = failure
        self.index = index

    def __repr__(self) -> str:
        return f"FirstError[#{self.index}, {self.subFailure.value!r}]"

    def __str__(self) -> str:
        return f"FirstError[#{self.index}, {self.subFailure}]"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FirstError):
            return self.index == other.index and self.subFailure == other.subFailure
        return NotImplemented

    __hash__ = Exception.__hash__


class _NoResult:
    """The type of the value a Deferred holds before it fires."""

    def __repr__(self) -> str:
        return "<no result>"


_NO_RESULT: Any = _NoResult()

# The function of the pair a waiting Deferred leaves on the Deferred it waits
# for; the pair's extras hold the waiting Deferred.
_CONTINUE: Any = object()
# The function of the pair chainDeferred(d) adds; the extras hold ``d``.
_CHAIN: Any = object()


def _extra(args: tuple | None, kw: dict | None) -> tuple[tuple, dict] | None:
    """The stored form of a callback's extra arguments (None when there are
    none, so the common call is just ``f(result)``)."""
    if args or kw:
        return (args or (), kw or {})
    return None


def _position(pairs: list, pair: tuple) -> int:
    """Index of ``pair`` (by identity: every stored pair is a fresh tuple)."""
    for i, p in enumerate(pairs):
        if p is pair:
            return i
    raise AssertionError("callback pair vanished from its list")


class _FailureWatch:
    """Reports a Deferred whose chain ended on a Failure nobody handled.

    One is attached to a Deferred only when its chain ends on a failure
    (``failResult`` is cleared again if a later callback handles it); when the
    Deferred is garbage-collected this object goes with it and ``__del__``
    makes the report.  It carries the Deferred's ``_trace_id`` so the probe
    can name the Deferred that is already gone.
    """

    __slots__ = ("_trace_id", "debugInfo", "failResult")

    def __init__(self) -> None:
        self.failResult: Failure | None = None
        self._trace_id: Any = None
        self.debugInfo: DebugInfo | None = None

    def __del__(self) -> None:
        failure = self.failResult
        if failure is None:
            return
        debug = "" if self.debugInfo is None else self.debugInfo._getDebugTracebacks()
        log.unhandled_in_deferred(failure, _log, debug)
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

    # Slots make attribute access on the hot path markedly cheaper than an
    # instance dict (measured: the chain runs ~1.5x faster); ``__dict__`` is
    # kept so code that tags its Deferreds with attributes still works.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_canceller",
        "_chainedTo",
        "_runningCallbacks",
        "_suppressAlreadyCalled",
        "_trace_id",
        "_watch",
        "callbacks",
        "called",
        "paused",
        "result",
    )

    def __class_getitem__(cls, item: Any) -> GenericAlias:
        """``Deferred[int]`` in annotations, as Twisted's Deferred is generic."""
        return GenericAlias(cls, item)

    debug = False
    """Whether setDebugging(True) is in effect (read it; set it with setDebugging)."""
    _debugInfo: DebugInfo | None = None
    """With debugging on: where this Deferred was created and first fired."""

    def __init__(self, canceller: Callable[[Deferred], None] | None = None) -> None:
        self.callbacks: list[tuple[Any, Any, Any, Any]] = []
        self.called = False
        self.paused = 0
        self.result: Any = _NO_RESULT
        self._canceller = canceller
        self._suppressAlreadyCalled = False
        self._runningCallbacks = False
        self._chainedTo: Deferred | None = None
        self._watch: _FailureWatch | None = None
        self._trace_id: Any = None
        if _debugging:
            self._debugInfo = DebugInfo(_stack_above(sys._getframe(1)))
        probe = _instrument.probe
        if probe is not None:
            probe.deferred_created(self)

    # -- adding to the chain ----------------------------------------------
    # A pair is stored as (callback, errback, callback_extra, errback_extra):
    # a function of None lets the result through untouched, an extra of None
    # means "call with the result alone", else it is (args, kwargs).
    def addCallbacks(self, callback: Callable[..., Any],
                     errback: Callable[..., Any] | None = None,
                     callbackArgs: tuple = (), callbackKeywords: dict | None = None,
                     errbackArgs: tuple = (), errbackKeywords: dict | None = None) -> Deferred:
        """Add a callback and an errback as one pair: only one of the two
        runs, and the errback does not see a failure raised by its own
        callback."""
        assert callable(callback), callback
        assert errback is None or callable(errback), errback
        return self._add(callback, errback, _extra(callbackArgs, callbackKeywords),
                         _extra(errbackArgs, errbackKeywords))

    def addCallback(self, callback: Callable[..., Any], *args: Any, **kw: Any) -> Deferred:
        """Add a function for the success path; extra arguments follow the result."""
        # The hot path of every Deferred program: _add inlined.
        self.callbacks.append((callback, None, (args, kw) if args or kw else None, None))
        probe = _instrument.probe
        if probe is not None:
            probe.deferred_callbacks_added(self, callback, None)
        if self.called:
            self._runCallbacks()
        return self

    def addErrback(self, errback: Callable[..., Any], *args: Any, **kw: Any) -> Deferred:
        """Add a function for the failure path; it receives the Failure."""
        return self._add(None, errback, None, _extra(args, kw))

    def addBoth(self, callback: Callable[..., Any], *args: Any, **kw: Any) -> Deferred:
        """Add one function for both paths (like ``finally``)."""
        extra = _extra(args, kw)
        return self._add(callback, callback, extra, extra)

    def _add(self, callback: Any, errback: Any, callback_extra: Any, errback_extra: Any) -> Deferred:
        self.callbacks.append((callback, errback, callback_extra, errback_extra))
        probe = _instrument.probe
        if probe is not None:
            probe.deferred_callbacks_added(self, callback, errback)
        if self.called:
            self._runCallbacks()
        return self

    def chainDeferred(self, d: Deferred) -> Deferred:
        """Fire ``d`` with whatever result reaches this point of the chain
        (this chain then goes on with None).

        Twisted adds ``d.callback``/``d.errback`` as a pair, which recurses
        once per link; a marker pair lets the loop in :meth:`_runCallbacks`
        switch to ``d`` instead, so chains of chainDeferred links of any
        length use constant stack too.
        """
        d._chainedTo = self
        self.callbacks.append((_CHAIN, _CHAIN, d, d))
        probe = _instrument.probe
        if probe is not None:
            probe.deferred_callbacks_added(self, d.callback, d.errback)
        if self.called:
            self._runCallbacks()
        return self

    # -- firing ---------------------------------------------------------------
    def callback(self, result: Any) -> None:
        """Fire the chain with a success value (a Failure takes the errback path)."""
        assert not isinstance(result, Deferred), "callback() with a Deferred"
        if self.called:
            if self._suppressAlreadyCalled:
                # The one result that arrives after a cancel() without a
                # canceller is dropped, as Twisted does.
                self._suppressAlreadyCalled = False
                return
            if _debugging:
                raise AlreadyCalledError("\n" + self._debug_info()._getDebugTracebacks())
            raise AlreadyCalledError()
        if _debugging:
            self._debug_info().invoker_stack = _stack_above(_invoker_frame(sys._getframe(1)))
        self.called = True
        self.result = result
        # The canceller is never called once fired: dropping it breaks the
        # cycle a canceller holding its Deferred would make.
        self._canceller = None
        self._runCallbacks(True)  # just fired

    def errback(self, fail: Failure | BaseException | None = None) -> None:
        """Fire the chain with a failure: the exception being handled when
        called with no argument, an exception instance, or a Failure."""
        if fail is None:
            fail = Failure()
        elif not isinstance(fail, Failure):
            fail = Failure(fail)
        Deferred.callback(self, fail)

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

    def addTimeout(self, timeout: float, clock: Any,
                   onTimeoutCancel: Callable[[Any, float], Any] | None = None) -> Deferred:
        """Cancel this Deferred if it has not fired ``timeout`` seconds from
        now on ``clock`` (anything with ``callLater``: a reactor, a Clock).

        The cancellation's CancelledError is then turned into TimeoutError,
        or handed to ``onTimeoutCancel(result, timeout)`` to decide.
        """
        timed_out = False

        def time_out() -> None:
            nonlocal timed_out
            timed_out = True
            self.cancel()

        call = clock.callLater(timeout, time_out)

        def convert_cancelled(result: Any) -> Any:
            if call.active():
                call.cancel()
            if not timed_out:
                return result
            if onTimeoutCancel is not None:
                return onTimeoutCancel(result, timeout)
            if isinstance(result, Failure):
                result.trap(CancelledError)
                raise TimeoutError(timeout, "Deferred")
            return result

        return self.addBoth(convert_cancelled)

    # -- coroutines -------------------------------------------------------------
    def __await__(self) -> Generator[Deferred, Any, Any]:
        """``await d`` inside a coroutine driven by ensureDeferred /
        fromCoroutine (or ``yield from d`` in inlineCallbacks): give the
        result now if there is one, else hand this Deferred to the driver,
        which resumes us with its result (or throws its failure in)."""
        result = self.result
        if result is _NO_RESULT or self.paused or isinstance(result, Deferred):
            return (yield self)
        if isinstance(result, Failure):
            if self._watch is not None:
                self._watch.failResult = None  # the awaiting code handles it now
            result.raiseException()
        return result

    __iter__ = __await__

    @classmethod
    def fromCoroutine(cls, coro: Any) -> Deferred:
        """Run coroutine (or generator) ``coro``; the Deferred fires with
        what it returns or raises.  Cancelling the Deferred cancels the
        Deferred the coroutine is awaiting."""
        if not (iscoroutine(coro) or isgenerator(coro)):
            raise NotACoroutineError(f"{coro!r} is not a coroutine")
        return _InlineRun(coro).start()

    # -- asyncio ------------------------------------------------------------------
    def asFuture(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        """An asyncio Future on ``loop`` that gets this Deferred's outcome
        (which the Future then owns: this chain continues with None).
        Cancelling the Future cancels the Deferred."""
        future = loop.create_future()

        def succeeded(result: Any) -> None:
            if not future.cancelled():
                future.set_result(result)

        def failed(failure: Failure) -> None:
            if not future.cancelled():
                future.set_exception(failure.value)

        def future_done(f: asyncio.Future) -> None:
            if f.cancelled():
                self.cancel()

        self.addCallbacks(succeeded, failed)
        future.add_done_callback(future_done)
        return future

    @classmethod
    def fromFuture(cls, future: asyncio.Future) -> Deferred:
        """A Deferred for an asyncio Future's outcome.  Cancelling it cancels
        the Future and fails with CancelledError (Twisted instead waits for
        the Future's own cancellation, which arrives as asyncio's error)."""
        def cancel_future(_: Deferred) -> None:
            future.cancel()

        d = cls(cancel_future)

        def future_done(f: asyncio.Future) -> None:
            if d.called:
                return  # cancelled from our side: the Deferred has failed already
            try:
                result = f.result()
            except BaseException:  # noqa: BLE001 - any exception becomes the Failure, as in Twisted
                d.errback()
            else:
                d.callback(result)

        future.add_done_callback(future_done)
        return d

    # -- running the chain ----------------------------------------------------
    def _wait_on(self, inner: Deferred) -> None:
        """Make this Deferred wait for ``inner``: fired with ``inner`` as its
        result, paused, with a continuation pair on ``inner`` that hands its
        result back."""
        self.called = True
        self.result = inner
        self.paused += 1
        self._chainedTo = inner
        inner.callbacks.append((_CONTINUE, _CONTINUE, self, self))
        probe = _instrument.probe
        if probe is not None:
            probe.deferred_chained(self, inner)

    def _runCallbacks(self, just_fired: bool = False) -> None:
        """Run the chain as far as it goes now (``just_fired``: callback() fired it, and the
        probe is still to be told).

        A Deferred waiting on another is resumed by a continuation pair on
        that other one; rather than recursing into it, the loop switches to
        the waiting Deferred and keeps the one it left on ``resume``, so
        chains of any depth use constant stack.  Callbacks added while the
        loop runs are appended to the list being iterated, so they run after
        the ones already there, as in Twisted.

        A chainDeferred link is switched to the same way, but where Twisted
        calls ``d.callback`` (a nested run) it is marked on ``resume``: the
        Deferred left there stays "running callbacks" and is resumed even if
        paused meanwhile, and when the chained run stops on a paused Deferred
        only that nested part stops — exactly what the nested call does.

        The probe hears of the firing from the first hook of the pass that the firing begins
        (``fired`` of deferred_callback_begin and _end), saving a hook call: a Deferred
        with three callbacks made nine.
        """
        if self._runningCallbacks:
            return  # a callback of ours added a callback: the loop below runs it
        probe = _instrument.probe
        untold = False  # the probe is yet to hear of the firing
        if just_fired and probe is not None:
            if self.paused:  # no pass to tell it with
                probe.deferred_fired(self, isinstance(self.result, Failure))
            else:
                untold = True
        current = self
        # Deferreds to come back to, each with "left for a chainDeferred link".
        resume: list[tuple[Deferred, bool]] | None = None
        from_link = False
        while True:
            if current.paused and not from_link:
                # It cannot go on; the Deferreds waiting on it wait too.  Go
                # back to the nearest chainDeferred link, if any.
                while resume:
                    current, from_link = resume.pop()
                    if from_link:
                        break
                else:
                    return
                continue
            if from_link:
                current.result = None  # what the link's d.callback() returned
                from_link = False
            if current._chainedTo is not None:
                current._chainedTo = None
            callbacks = current.callbacks
            result = current.result
            failed = isinstance(result, Failure)
            waiting: Deferred | None = None
            linked: Deferred | None = None
            current._runningCallbacks = True
            for pair in callbacks:
                if failed:
                    f = pair[1]
                    extra = pair[3]
                else:
                    f = pair[0]
                    extra = pair[2]
                if f is None:
                    continue
                if extra is not None:  # the markers' pairs all have extras
                    if f is _CONTINUE:
                        waiting = extra  # a Deferred waiting on ``current``
                        break
                    if f is _CHAIN and not (extra.called or extra.paused):
                        # chainDeferred: fire ``extra`` by running its chain
                        # in this loop.
                        extra.called = True
                        extra._canceller = None
                        if probe is not None:
                            if untold:
                                probe.deferred_fired(current, failed)
                                untold = False
                            probe.deferred_fired(extra, failed)
                        linked = extra
                        break
                if probe is not None:
                    # Also ends the callback before it: one hook per callback.
                    probe.deferred_callback_begin(
                        current, f if extra is None or f is not _CHAIN else extra.callback, failed,
                        untold)
                    untold = False
                try:
                    if extra is None:
                        result = f(result)
                    elif f is _CHAIN:
                        # ``extra`` already fired (AlreadyCalledError, or the
                        # one late result a cancel swallows) or is paused.
                        Deferred.callback(extra, result)
                        result = None
                    else:
                        result = f(result, *extra[0], **extra[1])
                except BaseException:  # noqa: BLE001 - any exception becomes the Failure, as in Twisted
                    result = Failure()
                if type(result) in _plain_types:
                    failed = False
                else:
                    if result is current:
                        result = _returned_itself(f, current)
                    if isinstance(result, Deferred):
                        inner_result = result.result
                        if (inner_result is _NO_RESULT or result.paused or result is current
                                or isinstance(inner_result, Deferred)):
                            current._wait_on(result)
                            failed = False
                            break
                        # The returned Deferred already has its result: take it.
                        result.result = None
                        if result._watch is not None:
                            result._watch.failResult = None
                        result = inner_result
                    failed = isinstance(result, Failure)
                    if not failed:
                        _note_plain(type(result))
                current.result = result
            else:
                # Ran to the end (including pairs added on the way).
                callbacks.clear()
                pair = None
            if probe is not None:
                # The pass is over: the last callback it ran (if any) has returned.
                probe.deferred_callback_end(current, failed, untold)
                untold = False
            if pair is not None:
                # Stopped early: keep the pairs after this one for later.
                del callbacks[:_position(callbacks, pair) + 1]
            if linked is not None:
                # Fire the chained Deferred with our result; we go on (with
                # None) once its run is over, staying "in a callback" until then.
                linked.result = result
                if resume is None:
                    resume = [(current, True)]
                else:
                    resume.append((current, True))
                current = linked
                continue
            current._runningCallbacks = False
            if waiting is not None:
                # Hand our result to the Deferred waiting on us, run its
                # chain, then come back for the rest of ours.
                current.result = None
                if current._watch is not None:
                    current._watch.failResult = None
                waiting.result = result
                waiting.paused -= 1
                if resume is None:
                    resume = [(current, False)]
                else:
                    resume.append((current, False))
                current = waiting
                continue
            if failed:
                result.cleanFailure()
                watch = current._watch
                if watch is None:
                    watch = current._watch = _FailureWatch()
                watch.failResult = result
                watch._trace_id = current._trace_id
                watch.debugInfo = current._debugInfo
            elif current._watch is not None:
                current._watch.failResult = None
            if not resume:
                return
            current, from_link = resume.pop()

    def _debug_info(self) -> DebugInfo:
        info = self._debugInfo
        if info is None:
            info = self._debugInfo = DebugInfo(None)
        return info

    def __repr__(self) -> str:
        name = type(self).__name__
        if self._chainedTo is not None:
            return f"<{name} at {id(self):#x} waiting on Deferred at {id(self._chainedTo):#x}>"
        if self.result is _NO_RESULT:
            return f"<{name} at {id(self):#x}>"
        return f"<{name} at {id(self):#x} current result: {self.result!r}>"

    __str__ = __repr__


# Types of callback results known to be neither Deferred nor Failure.  One
# set lookup on the common path replaces two isinstance() calls, which
# were a third of the cost of running a trivial callback.  Bounded, so code
# that makes classes on the fly cannot grow it for ever.
_plain_types: set[type] = {int, float, str, bytes, bool, type(None), tuple, list, dict}


def _returned_itself(f: Callable[..., Any], d: Deferred) -> Deferred | Failure:
    """A callback of ``d`` returned ``d``.  As Twisted: a DeprecationWarning
    attributed to the callback, then ``d`` waits on itself (for ever); where
    warnings are errors, the warning is the chain's failure instead."""
    message = ("Callback returned the Deferred it was attached to; this breaks the "
               "callback chain and will raise an exception in the future.")
    code = getattr(f, "__code__", None)
    module = sys.modules.get(getattr(f, "__module__", None) or "")
    try:
        if code is None or module is None:
            warnings.warn(message, DeprecationWarning, stacklevel=2)
        else:
            lines = [line for _, line in dis.findlinestarts(code) if line is not None]
            warnings.warn_explicit(
                message, DeprecationWarning, filename=code.co_filename,
                lineno=max(lines, default=code.co_firstlineno), module=module.__name__,
                registry=module.__dict__.setdefault("__warningregistry__", {}))
    except BaseException:  # noqa: BLE001 - any exception becomes the Failure, as in Twisted
        return Failure()
    return d


def _note_plain(t: type) -> None:
    if len(_plain_types) < 512:
        _plain_types.add(t)


def logError(err: Failure) -> Failure:
    """An errback that logs the failure (``reactor.log``) and passes it on."""
    log.err(err, logger=_log)
    return err


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
    except BaseException:  # noqa: BLE001 - any exception becomes the Failure, as in Twisted
        return fail(Failure())
    if isinstance(result, Deferred):
        return result
    if isinstance(result, Failure):
        return fail(result)
    if iscoroutine(result):
        return Deferred.fromCoroutine(result)
    return succeed(result)


def ensureDeferred(coro: Any) -> Deferred:
    """``coro`` as a Deferred: a Deferred is returned as is, a coroutine is
    run with Deferred.fromCoroutine."""
    if isinstance(coro, Deferred):
        return coro
    return Deferred.fromCoroutine(coro)


# -- DeferredList and gatherResults ---------------------------------------------

SUCCESS = True
FAILURE = False


class DeferredList(Deferred):
    """A Deferred for several Deferreds: fires with ``[(success, result), ...]``
    in their order once all have fired, or earlier with ``(result, index)``
    of the first success (``fireOnOneCallback``) or a FirstError failure for
    the first failure (``fireOnOneErrback``).  ``consumeErrors`` stops a
    failure from also staying in its own Deferred's chain (and being
    reported there as unhandled)."""

    def __init__(self, deferredList: Iterable[Deferred], fireOnOneCallback: bool = False,
                 fireOnOneErrback: bool = False, consumeErrors: bool = False) -> None:
        self._deferredList = list(deferredList)
        self.resultList: list[Any] = [None] * len(self._deferredList)
        super().__init__()
        if not self._deferredList and not fireOnOneCallback:
            self.callback(self.resultList)
        self.fireOnOneCallback = fireOnOneCallback
        self.fireOnOneErrback = fireOnOneErrback
        self.consumeErrors = consumeErrors
        self.finishedCount = 0
        for index, deferred in enumerate(self._deferredList):
            deferred.addCallbacks(self._cbDeferred, self._cbDeferred,
                                  callbackArgs=(index, SUCCESS), errbackArgs=(index, FAILURE))

    def _cbDeferred(self, result: Any, index: int, succeeded: bool) -> Any:
        self.resultList[index] = (succeeded, result)
        self.finishedCount += 1
        if not self.called:
            if succeeded and self.fireOnOneCallback:
                self.callback((result, index))
            elif not succeeded and self.fireOnOneErrback:
                self.errback(Failure(FirstError(result, index)))
            elif self.finishedCount == len(self.resultList):
                self.callback(self.resultList)
        if not succeeded and self.consumeErrors:
            return None
        return result

    def cancel(self) -> None:
        """Cancel every Deferred of the list that has not fired; the list
        then fires as their results (CancelledError failures) say."""
        if self.called:
            return
        for deferred in self._deferredList:
            try:
                deferred.cancel()
            except BaseException:  # noqa: BLE001 - user code's error is logged; the loop goes on
                log.err(None, "Unexpected error while cancelling a Deferred of a DeferredList",
                        logger=_log)


def gatherResults(deferredList: Iterable[Deferred], consumeErrors: bool = False) -> Deferred:
    """A Deferred for the list of results of ``deferredList``, in order, or
    a FirstError failure as soon as one of them fails."""
    d = DeferredList(deferredList, fireOnOneErrback=True, consumeErrors=consumeErrors)
    return d.addCallback(lambda results: [value for _, value in results])


# -- inlineCallbacks and coroutines ------------------------------------------------

class _DefGen_Return(BaseException):
    """Raised by returnValue(); carries the generator's result."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


def returnValue(val: Any) -> NoReturn:
    """Return ``val`` from an inlineCallbacks generator (older spelling of
    ``return val``)."""
    raise _DefGen_Return(val)


class _InlineRun:
    """Drives one generator (inlineCallbacks) or coroutine (fromCoroutine):
    sends each result back in, waits on each Deferred it yields.

    Already-fired Deferreds are handled by looping in :meth:`step`, not by
    recursion, so a generator may yield millions of them.  The generator
    always runs in the contextvars context copied when it started, so its
    context changes persist across its own yields and never leak out.
    """

    __slots__ = ("context", "deferred", "gen", "in_add", "pending", "waiting_on")

    def __init__(self, gen: Any) -> None:
        self.gen = gen
        self.context = contextvars.copy_context()
        self.deferred = Deferred(self._cancel)
        self.waiting_on: Deferred | None = None
        self.in_add = False
        self.pending: Any = _NO_RESULT

    def start(self) -> Deferred:
        d = self.deferred
        self.step(None)
        return d

    def step(self, result: Any) -> None:
        gen = self.gen
        run = self.context.run
        while True:
            try:
                if isinstance(result, Failure):
                    yielded = run(result.throwExceptionIntoGenerator, gen)
                else:
                    yielded = run(gen.send, result)
            except StopIteration as stop:
                value = stop.value
            except _DefGen_Return as ret:
                value = ret.value
            except BaseException:  # noqa: BLE001 - any exception becomes the Failure, as in Twisted
                self.deferred.errback()
                return
            else:
                if not isinstance(yielded, Deferred):
                    if not (iscoroutine(yielded) or isgenerator(yielded)):
                        result = yielded  # a plain value comes straight back
                        continue
                    yielded = Deferred.fromCoroutine(yielded)
                self.waiting_on = yielded
                self.in_add = True
                yielded.addBoth(self._got)
                self.in_add = False
                result = self.pending
                if result is _NO_RESULT:
                    return  # _got will call step() when it fires
                self.pending = _NO_RESULT
                self.waiting_on = None
                continue
            # Fire outside the except blocks so an error in a callback of
            # ours is not shown as raised "during handling" of StopIteration.
            self.deferred.callback(value)
            return

    def _got(self, result: Any) -> None:
        # Returns None: the result now belongs to the generator, so a failure
        # is not also reported as unhandled on the yielded Deferred.
        if self.in_add:
            self.pending = result
        else:
            self.waiting_on = None
            self.step(result)

    def _cancel(self, d: Deferred) -> None:
        """Cancelling the run's Deferred cancels what the generator awaits.

        The generator sees the CancelledError and may handle it and go on, so
        ``d`` is first made to wait on a fresh Deferred that receives the
        generator's eventual outcome (and can itself be cancelled again).
        """
        waiting = self.waiting_on
        if waiting is None:
            d._suppressAlreadyCalled = True  # cancelled from inside the generator
            return
        self.deferred = Deferred(self._cancel)
        d._wait_on(self.deferred)
        waiting.cancel()


def inlineCallbacks(f: Callable[..., Any]) -> Callable[..., Deferred]:
    """Decorate a generator function so that ``x = yield d`` waits for
    Deferred ``d`` and gives its result (or raises its failure); the call
    returns a Deferred that fires with what the generator returns."""

    @functools.wraps(f)
    def unwind(*args: Any, **kw: Any) -> Deferred:
        try:
            gen = f(*args, **kw)
        except _DefGen_Return:
            raise TypeError(
                f"inlineCallbacks requires {f!r} to produce a generator; instead "
                "caught returnValue being used in a non-generator") from None
        if not isgenerator(gen):
            raise TypeError(
                f"inlineCallbacks requires {f!r} to produce a generator; got {gen!r}")
        return _InlineRun(gen).start()

    return unwind


# -- locks, semaphores, queues ----------------------------------------------------------

class _ConcurrencyPrimitive(ABC):
    """What DeferredLock and DeferredSemaphore share: a FIFO of Deferreds
    waiting to acquire, ``run`` and ``async with``."""

    def __init__(self) -> None:
        self.waiting: list[Deferred] = []

    @abstractmethod
    def acquire(self) -> Deferred:
        """A Deferred that fires with this object once it is acquired."""

    @abstractmethod
    def release(self) -> None:
        """Give back what acquire() took; the next waiter gets it."""

    def _cancelAcquire(self, d: Deferred) -> None:
        self.waiting.remove(d)

    def run(self, f: Callable[..., Any], *args: Any, **kw: Any) -> Deferred:
        """Acquire, call ``f`` (which may return a Deferred), release when
        its outcome is known; the Deferred fires with that outcome."""
        def execute(_: Any) -> Deferred:
            return maybeDeferred(f, *args, **kw).addBoth(release)

        def release(result: Any) -> Any:
            self.release()
            return result

        return self.acquire().addCallback(execute)

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> bool:
        self.release()
        return False


class DeferredLock(_ConcurrencyPrimitive):
    """A lock for code that waits with Deferreds: ``acquire()`` fires (with
    the lock) once every earlier holder has released it."""

    locked = False

    def acquire(self) -> Deferred:
        d = Deferred(canceller=self._cancelAcquire)
        if self.locked:
            self.waiting.append(d)
        else:
            self.locked = True
            d.callback(self)
        return d

    def release(self) -> None:
        assert self.locked, "Tried to release an unlocked lock"
        self.locked = False
        if self.waiting:
            self.locked = True
            self.waiting.pop(0).callback(self)


class DeferredSemaphore(_ConcurrencyPrimitive):
    """At most ``tokens`` holders at once; the others wait in order."""

    def __init__(self, tokens: int) -> None:
        if tokens < 1:
            raise ValueError("DeferredSemaphore requires tokens >= 1")
        super().__init__()
        self.tokens = tokens
        self.limit = tokens

    def acquire(self) -> Deferred:
        d = Deferred(canceller=self._cancelAcquire)
        if self.tokens > 0:
            self.tokens -= 1
            d.callback(self)
        else:
            self.waiting.append(d)
        return d

    def release(self) -> None:
        assert self.tokens < self.limit, "Someone released me too many times: too many tokens!"
        self.tokens += 1
        if self.waiting:
            self.tokens -= 1
            self.waiting.pop(0).callback(self)


class AlreadyTryingToLockError(Exception):
    """deferUntilLocked() was called while an earlier call is still waiting."""


class DeferredFilesystemLock(FilesystemLock):
    """A FilesystemLock (a lock between processes) that can be waited for.

    ``deferUntilLocked()`` tries the lock every ``_interval`` seconds on the
    ``scheduler`` (the default reactor unless one is given) instead of
    blocking the loop until the other process lets go.
    """

    _interval = 1.0
    """Seconds between two tries: the holder is another process, which
    nothing here can hear unlock, so the lock is polled; once a second keeps
    the cost negligible and the wait short for a lock held briefly."""

    def __init__(self, name: str | bytes, scheduler: Any = None) -> None:
        super().__init__(name)
        if scheduler is None:
            from reactor import reactor as scheduler
        self._scheduler = scheduler
        self._tryLockCall: Any = None
        self._timeoutCall: Any = None

    def deferUntilLocked(self, timeout: float | None = None) -> Deferred:
        """A Deferred that fires (with None) once this process holds the lock;
        it fails with TimeoutError after ``timeout`` seconds, with
        CancelledError if cancelled (unless the lock is free by then), and
        with AlreadyTryingToLockError if an earlier call is still waiting."""
        if self._tryLockCall is not None:
            return fail(AlreadyTryingToLockError(
                "deferUntilLocked isn't safe for concurrent use."))
        d = Deferred(lambda _: self._give_up(d, CancelledError()))

        def try_lock() -> None:
            self._tryLockCall = None
            if self.lock():
                self._cancel_timeout()
                d.callback(None)
                return
            if timeout is not None and self._timeoutCall is None:
                reason = TimeoutError(f"Timed out acquiring lock: {self.name!r} "
                                      f"after {timeout} s")
                self._timeoutCall = self._scheduler.callLater(
                    timeout, self._give_up, d, reason)
            self._tryLockCall = self._scheduler.callLater(self._interval, try_lock)

        try_lock()
        return d

    def _give_up(self, d: Deferred, reason: Exception) -> None:
        """Stop trying (cancelled or timed out): one last try, else fail ``d``."""
        if self._tryLockCall is not None:
            self._tryLockCall.cancel()
            self._tryLockCall = None
        self._cancel_timeout()
        if self.lock():
            d.callback(None)
        else:
            d.errback(reason)

    def _cancel_timeout(self) -> None:
        call, self._timeoutCall = self._timeoutCall, None
        if call is not None and call.active():
            call.cancel()


__all__ += ["AlreadyTryingToLockError", "DeferredFilesystemLock"]


class QueueOverflow(Exception):
    """put() on a DeferredQueue already holding ``size`` items."""


class QueueUnderflow(Exception):
    """get() on a DeferredQueue already holding ``backlog`` waiting getters."""


class DeferredQueue:
    """A FIFO whose ``get()`` returns a Deferred, fired when an item is
    there; ``size`` bounds the items held, ``backlog`` the getters waiting."""

    def __init__(self, size: int | None = None, backlog: int | None = None) -> None:
        self.waiting: list[Deferred] = []
        self.pending: list[Any] = []
        self.size = size
        self.backlog = backlog

    def _cancelGet(self, d: Deferred) -> None:
        self.waiting.remove(d)

    def put(self, obj: Any) -> None:
        if self.waiting:
            self.waiting.pop(0).callback(obj)
        elif self.size is None or len(self.pending) < self.size:
            self.pending.append(obj)
        else:
            raise QueueOverflow()

    def get(self) -> Deferred:
        if self.pending:
            return succeed(self.pending.pop(0))
        if self.backlog is None or len(self.waiting) < self.backlog:
            d = Deferred(canceller=self._cancelGet)
            self.waiting.append(d)
            return d
        raise QueueUnderflow()


# -- race --------------------------------------------------------------------------

class FailureGroup(Exception):
    """Every Deferred given to race() failed: ``failures`` lists their
    Failures in the order of the Deferreds."""

    def __init__(self, failures: list[Failure]) -> None:
        super().__init__()
        self.failures = failures


def race(ds: Iterable[Deferred]) -> Deferred:
    """A Deferred of ``(index, result)`` for the first of ``ds`` to succeed;
    the others are cancelled then.  If all fail, it fails with a
    FailureGroup.  Cancelling it cancels all of ``ds``.  (An empty ``ds``
    gives a Deferred that never fires, as in Twisted.)"""
    racers = list(ds)
    winner: Deferred | None = None
    failures: list[tuple[int, Failure]] = []

    def cancel_all(_: Deferred) -> None:
        for d in racers:
            d.cancel()

    outcome = Deferred(cancel_all)

    def succeeded(result: Any, index: int) -> None:
        nonlocal winner
        if winner is not None:
            return  # a loser whose canceller fired it with a success
        winner = racers[index]
        for d in racers:
            if d is not winner:
                d.cancel()
        outcome.callback((index, result))

    def failed(failure: Failure, index: int) -> None:
        failures.append((index, failure))
        if len(failures) == len(racers):
            failures.sort(key=lambda pair: pair[0])
            outcome.errback(FailureGroup([f for _, f in failures]))

    for index, d in enumerate(racers):
        d.addCallbacks(succeeded, failed, callbackArgs=(index,), errbackArgs=(index,))
    return outcome


__all__ += ["FailureGroup", "race"]


# -- debugging -------------------------------------------------------------------------

_debugging = False  # read on every Deferred's creation and firing: a global is cheapest


def setDebugging(on: bool) -> None:
    """Record, for every Deferred created or fired from now on, the stack that
    created it and the one that first fired it (in ``d._debugInfo``).  They
    are added to AlreadyCalledError's message and to the unhandled-error
    report.  Costs a stack walk per Deferred: for debugging only.

    Unlike Twisted, setting ``debug`` on one Deferred does nothing: the flag
    is read from a global, so that it costs nothing when off."""
    global _debugging
    _debugging = Deferred.debug = bool(on)


def getDebugging() -> bool:
    """Whether setDebugging(True) is in effect."""
    return _debugging


class DebugInfo:
    """Where a Deferred was created and first fired, with debugging on.

    ``creator_stack`` / ``invoker_stack`` are ``traceback.StackSummary``
    objects, outermost frame first, ending at the frame that called
    ``Deferred()`` / ``callback()`` or ``errback()`` (None if not recorded:
    debugging was off then, or it has not fired).  ``creator`` / ``invoker``
    are the same as formatted lines, as Twisted's DebugInfo has them.
    """

    __slots__ = ("creator_stack", "invoker_stack")

    def __init__(self, creator_stack: traceback.StackSummary | None) -> None:
        self.creator_stack = creator_stack
        self.invoker_stack: traceback.StackSummary | None = None

    @property
    def creator(self) -> list[str] | None:
        return None if self.creator_stack is None else self.creator_stack.format()

    @property
    def invoker(self) -> list[str] | None:
        return None if self.invoker_stack is None else self.invoker_stack.format()

    def _getDebugTracebacks(self) -> str:
        """Both stacks as Twisted prints them (lines prefixed " C:" / " I:")."""
        info = ""
        for lines, prefix, title in ((self.creator, " C:", "Deferred was created"),
                                     (self.invoker, " I:", "First Invoker was")):
            if lines is not None:
                info += f"{prefix} {title}:\n{prefix}"
                info += "".join(lines).rstrip().replace("\n", "\n" + prefix) + "\n"
        return info


def _stack_above(frame: Any) -> traceback.StackSummary:
    """The stack from the outermost frame down to ``frame``."""
    return traceback.extract_stack(frame)


def _invoker_frame(frame: Any) -> Any:
    """The frame that fired a Deferred: ``callback``'s caller, or
    ``errback``'s when ``callback`` was called by it."""
    if frame.f_code is Deferred.errback.__code__:
        return frame.f_back
    return frame


__all__ += ["DebugInfo", "getDebugging", "setDebugging"]
