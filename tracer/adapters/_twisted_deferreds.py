"""Twisted's Deferreds, traced through their public methods (part of the Twisted adapter).

Each callback added (``addCallback``, ``addErrback``, ``addBoth``, ``addCallbacks``) is
replaced by the probe's timed callback (``deferred_timer``), which runs it between
``deferred_callback_begin`` and ``deferred_callback_end``: ``dcall`` events, nested in whatever
fired the Deferred, that say whether the chain went on on the failure path, and ``dchain`` when
a callback returns a Deferred that is not done.  ``Deferred()`` reports ``dnew`` (at the line that made it),
``callback``/``errback`` and ``succeed`` report ``dfire``, and ``cancel`` reports ``dcancel``.

Unhandled failures: Twisted logs one when a Deferred is collected holding a failure (its
``DebugInfo``); a ``twisted.logger`` observer turns that report into an ``unhandled`` event,
and Twisted's own report still goes to its log.  The report does not say which Deferred it
was, so each failure seen going into a Deferred (errback, a callback that raised or returned a
Failure) is remembered with that Deferred, by the exception's identity.

Speed: Deferreds are the most frequent thing a Twisted program makes (the bench's
``deferred`` workload: 10 callbacks each).  The C probe times a callback without running any
Python code of its own, and from Twisted 24.7 adds one (``addCallback``) without any either;
this module's code runs only for a callback that failed or returned a Failure or a Deferred
(``failed``, ``settled``), and in the other wrappers.
"""

from __future__ import annotations

import sys
from types import FunctionType, ModuleType
from collections.abc import Callable

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any

#: Most Deferred chains (inner -> outer) and failures remembered, to say which Deferred an
#: unhandled failure was left in; bounded so that Deferreds that never fire cannot grow them.
MAX_REMEMBERED = 65_536


class Gone:
    """Stands in for a Deferred by its id (``deferred_unhandled`` and ``deferred_id`` read
    only ``_trace_id``)."""

    __slots__ = ("_trace_id",)

    def __init__(self, trace_id: int) -> None:
        self._trace_id = trace_id


class DeferredTracing:
    """The Deferred class of one Twisted, instrumented for one recording."""

    def __init__(self, native: Any, patch: Callable[[Any, str, Any], None]) -> None:
        self.native = native
        self.patch = patch
        #: the probe's DeferredTimer: what every callback added is replaced by
        self.timer: Any = None
        #: code of the functions between Twisted and a callback (see install)
        self.boundaries: set[Any] = set()
        #: Deferred.callback/errback as patched -> Twisted's own
        self.fire_functions: dict[Any, Any] = {}
        self.waiting: dict[int, int] = {}  # Deferred id -> id of the Deferred waiting on it
        self.blamed: dict[int, int] = {}   # id(exception) -> id of the Deferred it failed
        self.observers: list[tuple[Any, Any]] = []

    def callback_in(self, f: Any) -> Any:
        """The program's callback inside ``f`` when ``f`` is a timed callback, else ``f``."""
        inner = self.timer.callback_of(f)
        return f if inner is None else inner

    def stop(self) -> None:
        for publisher, observer in self.observers:
            publisher.removeObserver(observer)

    def install(self, defer: ModuleType) -> None:
        from twisted.logger import globalLogPublisher
        from twisted.python.failure import Failure

        Deferred = defer.Deferred
        native = self.native
        end = native.deferred_callback_end
        added, fired = native.deferred_callbacks_added, native.deferred_fired
        created, chained = native.deferred_created, native.deferred_chained
        trace_id = native.deferred_id
        waiting, blamed = self.waiting, self.blamed
        init, add_callbacks = Deferred.__init__, Deferred.addCallbacks
        fire_callback, fire_errback, cancel = Deferred.callback, Deferred.errback, Deferred.cancel

        def blame(exc: Any, d: Any) -> None:
            """``exc`` is the failure ``d`` holds now."""
            blamed[id(exc)] = trace_id(d)
            if len(blamed) > MAX_REMEMBERED:
                del blamed[next(iter(blamed))]

        def failed(d: Any, exc: BaseException) -> None:
            """A callback of ``d`` raised ``exc`` (Twisted makes it the Failure)."""
            blame(exc, d)
            end(d, True)

        def settled(d: Any, r: Any) -> Any:
            """A callback of ``d`` returned ``r``, a Failure or a Deferred."""
            if isinstance(r, Failure):
                blame(r.value, d)
                end(d, True)
                return r
            end(d, False)
            if not r.called or r.paused:  # d waits for r
                chained(d, r)
                waiting[trace_id(r)] = trace_id(d)
                if len(waiting) > MAX_REMEMBERED:
                    del waiting[next(iter(waiting))]
            return r

        timed = self.timer = native.deferred_timer(Failure, Deferred, settled, failed)

        def resumed(d: Any) -> Any:
            """``d`` fires: the Deferreds waiting on it go on; the last one holds the
            result from now on."""
            owner, key = d, trace_id(d)
            while key in waiting:
                key = waiting.pop(key)
                owner = Gone(key)
            return owner

        def __init__(self: Any, canceller: Any = None) -> None:
            init(self, canceller)
            created(self)

        def addCallbacks(self: Any, callback: Any, errback: Any = None, *args: Any, **kw: Any) -> Any:
            added(self, callback, errback)
            return add_callbacks(self, timed(self, callback, False),
                                 None if errback is None else timed(self, errback, True),
                                 *args, **kw)

        if "addCallbacks" in Deferred.addCallback.__code__.co_names:  # before Twisted 24.7
            def addCallback(self: Any, callback: Any, *args: Any, **kw: Any) -> Any:
                added(self, callback, None)
                return add_callbacks(self, timed(self, callback, False), None, args, kw)
        elif hasattr(timed, "adder"):  # the C probe's: the steps below with no Python frame
            addCallback = timed.adder(Deferred.addCallback)
        else:
            add_callback = Deferred.addCallback  # Twisted's own, quicker than addCallbacks

            def addCallback(self: Any, callback: Any, *args: Any, **kw: Any) -> Any:
                added(self, callback, None)
                if args or kw:
                    return add_callback(self, timed(self, callback, False), *args, **kw)
                return add_callback(self, timed(self, callback, False))  # no unpacking: quicker

        def addErrback(self: Any, errback: Any, *args: Any, **kw: Any) -> Any:
            added(self, None, errback)
            return add_callbacks(self, defer.passthru, timed(self, errback, True),
                                 errbackArgs=args, errbackKeywords=kw)

        def addBoth(self: Any, callback: Any, *args: Any, **kw: Any) -> Any:
            added(self, callback, callback)
            return add_callbacks(self, timed(self, callback, False), timed(self, callback, True),
                                 args, kw, args, kw)

        def callback(self: Any, result: Any) -> None:
            if not self.called:
                is_failure = isinstance(result, Failure)
                fired(self, is_failure)
                owner = resumed(self) if waiting else self
                if is_failure:
                    blame(result.value, owner)
            fire_callback(self, result)

        def errback(self: Any, fail: Any = None) -> None:
            if not self.called:
                fired(self, True)
                owner = resumed(self) if waiting else self
                value = fail.value if isinstance(fail, Failure) else fail
                blame(sys.exc_info()[1] if value is None else value, owner)
            fire_errback(self, fail)

        def cancel_(self: Any) -> None:
            if not self.called or Deferred in type(self.__dict__.get("result")).__mro__:
                native.deferred_cancelled(self)
            cancel(self)

        succeed = defer.succeed

        def succeed_(result: Any) -> Any:
            d = succeed(result)
            fired(d, isinstance(result, Failure))
            return d

        # Where walking out from a Deferred made in a callback stops (tracer.probe's origin):
        # the function that runs the callbacks, and the probe's own frame between them.
        self.boundaries = {Deferred._runCallbacks.__code__, *timed.codes}
        self.patch(Deferred, "_trace_id", None)  # read without an AttributeError before given
        for name, wrapper in (("__init__", __init__), ("addCallbacks", addCallbacks),
                              ("addCallback", addCallback), ("addErrback", addErrback),
                              ("addBoth", addBoth), ("callback", callback),
                              ("errback", errback), ("cancel", cancel_)):
            if isinstance(wrapper, FunctionType):  # not the C probe's addCallback
                wrapper.__qualname__ = f"Deferred.{name}"
                wrapper.__doc__ = getattr(Deferred, name).__doc__
            self.patch(Deferred, name, wrapper)
        if "callback" not in succeed.__code__.co_names:  # it fires without callback()
            self.patch(defer, "succeed", succeed_)
        # Filled in place: the C probe's callLater holds this dict.
        self.fire_functions.update({callback: fire_callback, errback: fire_errback})

        def unhandled(event: dict) -> None:
            """Twisted's report of a Deferred collected with a failure (``DebugInfo`` logs
            it with its ``debugInfo``) becomes an ``unhandled`` event."""
            failure = event.get("log_failure")
            if (failure is None or "debugInfo" not in event
                    or event.get("log_namespace") != "twisted.internet.defer"):
                return
            owner = blamed.pop(id(getattr(failure, "value", None)), 0)
            native.deferred_unhandled(Gone(owner), failure)

        globalLogPublisher.addObserver(unhandled)  # type: ignore[arg-type]  # a callable is one
        self.observers.append((globalLogPublisher, unhandled))

