"""Twisted's Deferreds, traced through their public methods (part of the Twisted adapter).

Each callback added (``addCallback``, ``addErrback``, ``addBoth``, ``addCallbacks``) is
replaced by a closure that times it between the probe's ``deferred_callback_begin`` and
``deferred_callback_end``: ``dcall`` events, nested in whatever fired the Deferred, that say
whether the chain went on on the failure path, and ``dchain`` when a callback returns a
Deferred that is not done.  ``Deferred()`` reports ``dnew`` (at the line that made it),
``callback``/``errback`` and ``succeed`` report ``dfire``, and ``cancel`` reports ``dcancel``.

Unhandled failures: Twisted logs one when a Deferred is collected holding a failure (its
``DebugInfo``); a ``twisted.logger`` observer turns that report into an ``unhandled`` event,
and Twisted's own report still goes to its log.  The report does not say which Deferred it
was, so each failure seen going into a Deferred (errback, a callback that raised or returned a
Failure) is remembered with that Deferred, by the exception's identity.

Speed: Deferreds are the most frequent thing a Twisted program makes (the bench's
``deferred`` workload: 10 callbacks each), and every callback now runs through a closure.
A closure made inline costs less than a ``functools.partial`` or a bound method (each is
called through one more layer of C), measured with callgrind; hence ``addCallback``, by far
the most used, makes its closure itself.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Callable

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
        #: code of the closures that time a callback -> the name of the variable holding it
        self.callback_cells: dict[Any, str] = {}
        #: Deferred.callback/errback as patched -> Twisted's own
        self.fire_functions: dict[Any, Any] = {}
        self.waiting: dict[int, int] = {}  # Deferred id -> id of the Deferred waiting on it
        self.blamed: dict[int, int] = {}   # id(exception) -> id of the Deferred it failed
        self.observers: list[tuple[Any, Any]] = []

    def callback_in(self, f: Any) -> Any:
        """The program's callback inside ``f`` when ``f`` is one of the timing closures,
        else ``f``."""
        name = self.callback_cells.get(getattr(f, "__code__", None))
        if name is None:
            return f
        return f.__closure__[f.__code__.co_freevars.index(name)].cell_contents

    def stop(self) -> None:
        for publisher, observer in self.observers:
            publisher.removeObserver(observer)

    def install(self, defer: ModuleType) -> None:
        from twisted.logger import globalLogPublisher
        from twisted.python.failure import Failure

        Deferred = defer.Deferred
        native = self.native
        begin, end = native.deferred_callback_begin, native.deferred_callback_end
        added, fired = native.deferred_callbacks_added, native.deferred_fired
        created, chained = native.deferred_created, native.deferred_chained
        trace_id = native.deferred_id
        waiting, blamed = self.waiting, self.blamed
        init, add_callbacks = Deferred.__init__, Deferred.addCallbacks
        fire_callback, fire_errback, cancel = Deferred.callback, Deferred.errback, Deferred.cancel
        plain: set[type] = set()  # result types seen that are neither Failure nor Deferred

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
            """A callback of ``d`` returned ``r``, of a type not yet known to be plain."""
            if isinstance(r, Failure):
                blame(r.value, d)
                end(d, True)
                return r
            end(d, False)
            if Deferred not in type(r).__mro__:
                plain.add(type(r))
            elif not r.called or r.paused:  # d waits for r
                chained(d, r)
                waiting[trace_id(r)] = trace_id(d)
                if len(waiting) > MAX_REMEMBERED:
                    del waiting[next(iter(waiting))]
            return r

        def timed(d: Any, f: Any, is_errback: bool) -> Callable[..., Any]:
            def run(result: Any, *args: Any, **kw: Any) -> Any:
                begin(d, f, is_errback)
                try:
                    r = f(result, *args, **kw)
                except BaseException as exc:
                    failed(d, exc)
                    raise
                if type(r) in plain:
                    end(d, False)
                    return r
                return settled(d, r)
            return run

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
        else:
            add_callback = Deferred.addCallback  # Twisted's own, quicker than addCallbacks

            def addCallback(self: Any, callback: Any, *args: Any, **kw: Any) -> Any:
                added(self, callback, None)
                if args or kw:
                    return add_callback(self, timed(self, callback, False), *args, **kw)

                def run(result: Any) -> Any:  # timed()'s closure, inline (the module says why)
                    begin(self, callback, False)
                    try:
                        r = callback(result)
                    except BaseException as exc:
                        failed(self, exc)
                        raise
                    if type(r) in plain:
                        end(self, False)
                        return r
                    return settled(self, r)
                return add_callback(self, run)

            self.callback_cells[_inner_code(addCallback, "run")] = "callback"

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

        self.callback_cells[timed(None, None, False).__code__] = "f"
        self.patch(Deferred, "_trace_id", None)  # read without an AttributeError before given
        for name, wrapper in (("__init__", __init__), ("addCallbacks", addCallbacks),
                              ("addCallback", addCallback), ("addErrback", addErrback),
                              ("addBoth", addBoth), ("callback", callback),
                              ("errback", errback), ("cancel", cancel_)):
            wrapper.__qualname__ = f"Deferred.{name}"
            wrapper.__doc__ = getattr(Deferred, name).__doc__
            self.patch(Deferred, name, wrapper)
        if "callback" not in succeed.__code__.co_names:  # it fires without callback()
            self.patch(defer, "succeed", succeed_)
        self.fire_functions = {callback: fire_callback, errback: fire_errback}

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


def _inner_code(function: Any, name: str) -> Any:
    """The code of the function named ``name`` defined inside ``function``."""
    return next(c for c in function.__code__.co_consts if getattr(c, "co_name", None) == name)
