"""Trace a program running on the installed Twisted's own reactor, unmodified.

``loopscope run`` calls :func:`install` before the application starts, when Twisted is
usually not imported yet.  Nothing is imported then: :class:`~tracer.adapters._patching.
PatchOnImport` waits for three modules and instruments each as it is executed:

- ``twisted.internet.defer``: the Deferred class (created, callbacks added, each callback
  timed, fired, chained, cancelled), ``succeed``, and a ``twisted.logger`` observer that
  notices unhandled errors in Deferreds (Twisted's own report still goes to its log);
- ``twisted.internet.main``: ``installReactor``, through which every reactor is installed
  (``import twisted.internet.reactor`` for the default one, ``asyncioreactor.install()``):
  the reactor installed is instrumented (a reactor installed before tracing started is
  instrumented at once);
- ``twisted.web.server``: ``Request.render``, so a resource's ``render_GET`` is a call of its
  own inside the read that parsed the request (the slow page is named, not the HTTP parser).

On the reactor object itself (instance attributes, so other reactors are untouched):
``callLater`` (each timer is scheduled with its site and due time, and runs timed with its
lag), ``callFromThread`` (kind ``thread``), ``addSystemEventTrigger`` (kind ``trigger``),
``getThreadPool`` (its pool's jobs become ``tsub``/``tstart``/``tdone``), ``addReader`` /
``removeReader`` (descriptors and connections, with the peer), ``startRunning`` (the
``runtime`` event and the reactor thread, which the watchdog samples), and the I/O dispatch and
poller named below.  Reads and writes are named by the protocol method that ran
(``Echo.dataReceived``, not ``Server.doRead``); a LoopingCall by its function; a timer or
hand-back that fires a Deferred (``callLater(t, d.callback, x)``) by the Deferred's first
callback.  Everything is put back by :func:`uninstall`.

Public API is used wherever there is one.  Where nothing public exists, these Twisted internals
are wrapped or read (:data:`INTERNALS` lists them; tests/tracer/adapters/test_twisted_internals.py fails loudly
when an installed Twisted no longer has one):

- ``reactor._doReadOrWrite`` (epoll and poll reactors) and ``reactor._readOrWrite`` (asyncio
  reactor): the only place where one readiness event is dispatched to one descriptor;
- ``reactor._poller`` (epoll and poll reactors) and the asyncio loop's ``_selector``: where the
  loop waits, which splits each iteration into busy and idle time;
- ``reactor._cancelCallLater``: the one call a DelayedCall makes when it is cancelled;
- ``reactor._internalReaders``: the reactor's own waker, whose reads are not the program's;
- ``Deferred._callbacks`` (``callbacks`` before Twisted 25.5), read only: the first callback
  of a Deferred that a timer or hand-back fires, to name that timer.

Tracing Twisted on the asyncio reactor: this adapter claims the asyncio loop under the reactor
(:func:`tracer.adapters.claim`), so an asyncio adapter leaves that loop alone and nothing is
counted twice; what the program schedules on the asyncio loop directly is then not seen (the
``runtime`` event's ``unseen`` says so).

Supported: Twisted 22.10 (the first release for Python 3.11) and later; docs/twisted.md.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from functools import partial
from itertools import count
from types import FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any, Callable

import orjson

from tracer import adapters
from tracer.adapters._patching import PatchOnImport, Patches
from tracer.recorder import cut, safe_text

if TYPE_CHECKING:
    from tracer.session import Tracer

#: The Twisted internals this adapter relies on, with why (docstring above): ``(where, name)``.
INTERNALS: tuple[tuple[str, str], ...] = (
    ("twisted.internet.posixbase.PosixReactorBase", "_doReadOrWrite"),
    ("twisted.internet.asyncioreactor.AsyncioSelectorReactor", "_readOrWrite"),
    ("twisted.internet.epollreactor.EPollReactor()", "_poller"),
    ("twisted.internet.base.ReactorBase", "_cancelCallLater"),
    ("twisted.internet.base.ReactorBase()", "_internalReaders"),
    ("twisted.internet.defer.Deferred()", "_callbacks or callbacks"),
    ("asyncio.BaseEventLoop()", "_selector"),
)
#: Twisted releases this adapter is tested with: the oldest supported (docs/twisted.md).
OLDEST_SUPPORTED = "22.10.0"

_monotonic = time.monotonic
_get_ident = threading.get_ident
#: How many names of pending Deferred chains (inner -> outer) are remembered at most, and how
#: many failures' Deferreds: both only to say which Deferred an unhandled failure was left in.
#: Bounded so that Deferreds that never fire cannot grow them without end.
MAX_REMEMBERED = 65_536
#: Callbacks looked at to name a timer that fires a Deferred (the first user one wins).
FIRST_CALLBACKS = 4

_tracing: "_Tracing | None" = None


def install(session: "Tracer") -> None:
    """Instrument Twisted for ``session`` now if it is imported, else as soon as it is."""
    global _tracing
    if _tracing is None:
        _tracing = _Tracing(session)
        _tracing.start()


def uninstall() -> None:
    """Put every replaced attribute back and stop watching imports."""
    global _tracing
    tracing, _tracing = _tracing, None
    if tracing is not None:
        tracing.stop()


class _TimerSource:
    """What the C probe reads of a Twisted timer (reactor/_instrument.py, ``timer_scheduled``
    and ``call_begin``): ``func`` (the callable that names it), ``time`` (when it is due, on
    the monotonic clock) and ``_trace_id``.

    A DelayedCall's own ``time`` is on the reactor's clock (``reactor.seconds()``, wall-clock
    time) and moves when the call is reset or delayed, so it is converted when read: at
    scheduling and when the call runs, whose lag is then the lateness Twisted itself sees.
    The call is held weakly: the call holds this object (through its function).
    """

    __slots__ = ("func", "call", "_trace_id")
    seconds: Callable[[], float] = time.time  # the instrumented reactor's clock

    @property
    def time(self) -> float:
        call = self.call()
        return call.time + _monotonic() - self.seconds()


class _Gone:
    """Stands in for a Deferred already collected (``deferred_unhandled`` reads its id)."""

    __slots__ = ("_trace_id",)

    def __init__(self, trace_id: int) -> None:
        self._trace_id = trace_id


class _TimedPoller:
    """The epoll or poll reactor's poller, with the wait between ``poll_begin`` and
    ``poll_end`` (one loop iteration: the time in ``poll`` is idle).  The poll's events are
    handed on as ``[(key, mask), ...]`` with ``key[1]`` the descriptor, as a selector's are."""

    def __init__(self, poller: Any, probe: Any) -> None:
        self.poller = poller
        self.register, self.modify, self.unregister = poller.register, poller.modify, poller.unregister
        self._poll = poller.poll
        self._begin, self._end = probe.poll_begin, probe.poll_end
        self._in = 0x1 | 0x2 | 0x8 | 0x10  # POLLIN, POLLPRI, POLLERR, POLLHUP (same for epoll)
        self._out = 0x4                      # POLLOUT

    def poll(self, *args: Any) -> Any:
        self._begin(args[0] if args else None)
        events = []
        try:
            events = self._poll(*args)
        finally:
            if events:
                i, o = self._in, self._out
                self._end([((None, fd), (1 if ev & i else 0) | (2 if ev & o else 0))
                           for fd, ev in events])
            else:
                self._end(events)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.poller, name)


class _Tracing:
    """One recording's instrumentation of Twisted: what was replaced, and the state the
    wrappers share."""

    def __init__(self, session: "Tracer") -> None:
        self.session = session
        self.probe = session.probe          # the Python half (rare events)
        self.native = session.probe.native  # the C hooks
        self.patches = Patches()
        self.hook = PatchOnImport({
            "twisted.internet.defer": self.instrument_deferreds,
            "twisted.internet.main": self.instrument_install,
            "twisted.web.server": self.instrument_web,
        })
        self.reactor: Any = None
        self.observers: list[tuple[Any, Any]] = []  # (publisher, observer)
        self.open: dict[int, Any] = {}     # id(transport) -> transport, connections open
        self.reading: dict[int, int] = {}  # id(descriptor) -> fd, registered for reading
        self.pools: set[int] = set()       # ids of thread pools instrumented
        self.jobs = count(1)
        self.waiting: dict[int, int] = {}  # Deferred id -> id of the Deferred waiting on it
        self.blamed: dict[int, int] = {}   # id(exception) -> id of the Deferred it failed
        self.claimed: Any = None
        self.fire_functions: dict[Any, Any] = {}  # Deferred.callback/errback -> Twisted's own
        self.run_callback: Any = None
        self.twisted_dir = ""
        self.boundaries: set[str] = set()   # source files of the reactor's core
        self.call_codes: set[Any] = set()   # code of the wrappers that run a loop call
        self.origin_kinds: dict[str, int] = {}

    def start(self) -> None:
        self.call_codes.add(self.run_named.__func__.__code__)
        self.hook.install()
        reactor = sys.modules.get("twisted.internet.reactor")
        if reactor is not None and self.reactor is None and hasattr(reactor, "callLater"):
            self.instrument_reactor(reactor)  # installed before tracing started

    def stop(self) -> None:
        self.hook.uninstall()
        for publisher, observer in self.observers:
            publisher.removeObserver(observer)
        for transport in list(self.open.values()):
            transport.__dict__.pop("connectionLost", None)
        if self.claimed is not None:
            adapters.release(self.claimed)
        self.patches.restore()

    # -- names -------------------------------------------------------------------------
    def name_of(self, f: Any) -> Any:
        """The callable a loop call of ``f`` is named after: a LoopingCall's function, None
        for a Deferred's callback/errback (named when it runs, by its first callback), else
        ``f`` itself (bound methods and partials are resolved by the recorder)."""
        kind = type(f)
        if kind is FunctionType:
            return f
        if kind is MethodType:
            return None if f.__func__ in self.fire_functions else f
        if kind is self.looping_call:
            return self.name_of(f.f) or f.f
        return f

    def fired_by(self, f: Any) -> Any:
        """``d.callback`` or ``d.errback`` as Twisted's own method (named after Twisted's
        code, not this adapter's wrapper)."""
        return MethodType(self.fire_functions[f.__func__], f.__self__)

    def first_callback(self, d: Any) -> Any:
        """The first callback of ``d`` that is the program's, or None."""
        chain = d.__dict__.get("_callbacks")
        if chain is None:
            chain = d.__dict__.get("callbacks") or ()
        for item in chain[:FIRST_CALLBACKS]:
            f = item[0][0]
            if type(f) is partial and f.func is self.run_callback:
                return self.called_by(f.args[1])
            if callable(f) and f not in self.passthroughs:
                return self.called_by(f)
        return None

    def called_by(self, f: Any) -> Any:
        """The program's callable that Twisted's callback ``f`` calls, when ``f`` is a
        function of Twisted's own that keeps it in a variable named ``callable`` (deferLater's
        callback, for one): else ``f``."""
        code = getattr(f, "__code__", None)
        if code is None or not code.co_filename.startswith(self.twisted_dir):
            return f
        try:
            inner = f.__closure__[code.co_freevars.index("callable")].cell_contents
        except (ValueError, TypeError, IndexError):
            return f
        return inner if callable(inner) else f

    def run_named(self, kind: str, source: Any, name: Any, f: Any, args: tuple, kw: dict) -> Any:
        """Run ``f(*args, **kw)`` as a loop call of ``kind`` named after ``name`` (None: the
        Deferred ``f`` fires, by its first callback)."""
        if name is None:
            name = self.first_callback(f.__self__) or self.fired_by(f)
        native = self.native
        native.call_begin(kind, name, source)
        try:
            result = f(*args, **kw)
        except BaseException as exc:
            native.call_end(exc)
            raise
        native.call_end(None)
        return result

    def origin(self, frame: Any) -> tuple[int, bool]:
        """The site where something was scheduled or created (the probe's ``_origin``), seen
        through Twisted: ``deferToThread(f)`` and ``deferLater(...)`` are sited at the
        program's line that called them, not inside Twisted.  Walking out stops at the loop
        (the reactor's core, this adapter's wrappers that run a call): code Twisted runs from
        the loop (a LoopingCall rescheduling itself) keeps its own line."""
        kinds, calls = self.origin_kinds, self.call_codes
        f = frame
        while f is not None:
            code = f.f_code
            kind = _BOUNDARY if code in calls else kinds.get(code.co_filename)
            if kind is None:
                kind = kinds[code.co_filename] = self.origin_kind(code.co_filename)
            if kind != _LIBRARY:
                break
            f = f.f_back
        if f is None or kind == _BOUNDARY:
            f = frame
        site, same = self.base_origin(f)
        return site, same and f is frame

    def origin_kind(self, filename: str) -> int:
        """Where a source file stands for :meth:`origin`."""
        if filename in self.boundaries:
            return _BOUNDARY
        if filename.startswith(self.twisted_dir) or filename.startswith(_ADAPTERS_DIR):
            return _LIBRARY
        return _USER

    # -- Deferreds ------------------------------------------------------------------------
    def instrument_deferreds(self, defer: ModuleType) -> None:
        """Time every Deferred callback; report creation, firing, chaining, cancellation."""
        import twisted
        from twisted.logger import globalLogPublisher
        from twisted.python.failure import Failure

        self.twisted_dir = os.path.dirname(twisted.__file__) + os.sep
        self.boundaries.update(os.path.join(self.twisted_dir, "internet", name) for name in (
            "base.py", "posixbase.py", "epollreactor.py", "pollreactor.py", "selectreactor.py",
            "asyncioreactor.py", "_threadedselect.py", "_glibbase.py"))
        self.base_origin = self.probe._origin
        self.patches.set(self.probe, "_origin", self.origin)

        Deferred = defer.Deferred
        native = self.native
        begin, end = native.deferred_callback_begin, native.deferred_callback_end
        added, fired = native.deferred_callbacks_added, native.deferred_fired
        created, chained = native.deferred_created, native.deferred_chained
        trace_id = native.deferred_id
        waiting, blamed = self.waiting, self.blamed
        init = Deferred.__init__
        add_callbacks = Deferred.addCallbacks
        fire_callback, fire_errback, cancel = Deferred.callback, Deferred.errback, Deferred.cancel
        self.passthroughs = {getattr(defer, name) for name in ("passthru", "_failthru")
                             if hasattr(defer, name)}

        def blame(exc: Any, d: Any) -> None:
            """Remember that ``exc`` is the failure ``d`` holds (for an unhandled report)."""
            blamed[id(exc)] = trace_id(d)
            if len(blamed) > MAX_REMEMBERED:
                del blamed[next(iter(blamed))]

        plain: set[type] = set()  # result types seen that are neither Failure nor Deferred

        def settled(d: Any, r: Any) -> Any:
            """A callback of ``d`` returned ``r``, of a type not known to be plain."""
            if isinstance(r, Failure):
                blame(r.value, d)
                end(d, True)
                return r
            end(d, False)
            if Deferred not in type(r).__mro__:
                plain.add(type(r))
            elif not r.called or r.paused:
                chained(d, r)
                waiting[trace_id(r)] = trace_id(d)
                if len(waiting) > MAX_REMEMBERED:
                    del waiting[next(iter(waiting))]
            return r

        def run(d: Any, f: Any, is_errback: bool, result: Any, *args: Any, **kw: Any) -> Any:
            """Callback ``f`` of ``d``, timed (bound to it with a partial: a partial is cheaper
            to make than a closure, and Deferreds make one per callback)."""
            begin(d, f, is_errback)
            try:
                r = f(result, *args, **kw)
            except BaseException as exc:
                blame(exc, d)
                end(d, True)
                raise
            if type(r) in plain:
                end(d, False)
                return r
            return settled(d, r)

        self.run_callback = run
        self.call_codes.add(run.__code__)

        def resumed(d: Any) -> Any:
            """``d`` fires: the Deferreds that waited on it go on (the last one holds the
            result from now on)."""
            owner = d
            key = trace_id(d)
            while key in waiting:
                key = waiting.pop(key)
                owner = _Gone(key)
            return owner

        def __init__(self: Any, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            created(self)

        def addCallbacks(self: Any, callback: Any, errback: Any = None, *args: Any, **kw: Any) -> Any:
            added(self, callback, errback)
            return add_callbacks(self, partial(run, self, callback, False),
                                 None if errback is None else partial(run, self, errback, True),
                                 *args, **kw)

        if "addCallbacks" in Deferred.addCallback.__code__.co_names:  # before Twisted 24.7
            def addCallback(self: Any, callback: Any, *args: Any, **kw: Any) -> Any:
                added(self, callback, None)
                return add_callbacks(self, partial(run, self, callback, False), None, args, kw)
        else:  # Twisted's own, quicker than addCallbacks
            add_callback = Deferred.addCallback

            def addCallback(self: Any, callback: Any, *args: Any, **kw: Any) -> Any:
                added(self, callback, None)
                return add_callback(self, partial(run, self, callback, False), *args, **kw)

        def addErrback(self: Any, errback: Any, *args: Any, **kw: Any) -> Any:
            added(self, None, errback)
            return add_callbacks(self, defer.passthru, partial(run, self, errback, True),
                                 errbackArgs=args, errbackKeywords=kw)

        def addBoth(self: Any, callback: Any, *args: Any, **kw: Any) -> Any:
            added(self, callback, callback)
            return add_callbacks(self, partial(run, self, callback, False),
                                 partial(run, self, callback, True), args, kw, args, kw)

        def callback(self: Any, result: Any) -> None:
            if not self.called:
                failed = isinstance(result, Failure)
                fired(self, failed)
                owner = resumed(self) if waiting else self
                if failed:
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

        patch = self.patches.set
        patch(Deferred, "_trace_id", None)  # read without an AttributeError before one is given
        for name, wrapper in (("__init__", __init__), ("addCallbacks", addCallbacks),
                              ("addCallback", addCallback), ("addErrback", addErrback),
                              ("addBoth", addBoth), ("callback", callback),
                              ("errback", errback), ("cancel", cancel_)):
            wrapper.__qualname__ = f"Deferred.{name}"
            wrapper.__doc__ = getattr(Deferred, name).__doc__
            patch(Deferred, name, wrapper)
        if "callback" not in succeed.__code__.co_names:  # it fires without callback()
            patch(defer, "succeed", succeed_)
        self.fire_functions = {callback: fire_callback, errback: fire_errback}

        def unhandled(event: dict) -> None:
            """Twisted's report of a Deferred collected with a failure (``DebugInfo``
            logs it with its ``debugInfo``) becomes an ``unhandled`` event."""
            failure = event.get("log_failure")
            if (failure is None or "debugInfo" not in event
                    or event.get("log_namespace") != "twisted.internet.defer"):
                return
            owner = blamed.pop(id(getattr(failure, "value", None)), 0)
            native.deferred_unhandled(_Gone(owner), failure)

        globalLogPublisher.addObserver(unhandled)
        self.observers.append((globalLogPublisher, unhandled))

    # -- installing a reactor ---------------------------------------------------------------
    def instrument_install(self, main: ModuleType) -> None:
        """Instrument each reactor as Twisted installs it."""
        install_reactor = main.installReactor

        def installReactor(reactor: Any) -> None:
            install_reactor(reactor)
            if self.reactor is None:
                self.instrument_reactor(reactor)

        installReactor.__doc__ = install_reactor.__doc__
        self.patches.set(main, "installReactor", installReactor)

    def instrument_reactor(self, reactor: Any) -> None:
        """Timers, hand-backs, triggers, threads, descriptors, I/O and loop health."""
        from twisted.internet import defer, task, tcp

        if not self.twisted_dir:
            self.instrument_deferreds(defer)
        self.reactor = reactor
        self.looping_call = task.LoopingCall
        self.connection, self.server = tcp.Connection, tcp.Server
        _TimerSource.seconds = staticmethod(reactor.seconds)
        module = sys.modules.get(type(reactor).__module__)
        if getattr(module, "__file__", None):
            self.boundaries.add(module.__file__)
        unseen = self.instrument_io(reactor)
        self.instrument_timers(reactor)
        self.instrument_threads(reactor)
        self.instrument_start(reactor, unseen)

    def instrument_timers(self, reactor: Any) -> None:
        native = self.native
        run_call, run_named = native.run_call, self.run_named
        scheduled, name_of = native.timer_scheduled, self.name_of
        call_later = reactor.callLater
        call_from_thread = reactor.callFromThread
        add_trigger = reactor.addSystemEventTrigger
        cancel_call_later = reactor._cancelCallLater
        ref = weakref.ref

        def callLater(delay: float, f: Any, *args: Any, **kw: Any) -> Any:
            if type(f) is partial and (f.func is run_call or f.func is run_named):
                return call_later(delay, f, *args, **kw)  # a traced hand-back (asyncio reactor)
            source = _TimerSource()
            name = name_of(f)
            if name is f:
                call = call_later(delay, partial(run_call, "timer", source, f, args, kw))
            else:
                call = call_later(delay, partial(run_named, "timer", source, name, f, args, kw))
            source.func = name or self.fired_by(f)
            source.call = ref(call)
            scheduled(source)
            return call

        def _cancelCallLater(call: Any) -> None:
            f = call.__dict__.get("func")
            if type(f) is partial and len(f.args) > 1 and type(f.args[1]) is _TimerSource:
                self.probe.timer_cancelled(f.args[1])
            cancel_call_later(call)

        def callFromThread(f: Any, *args: Any, **kw: Any) -> None:
            name = name_of(f)
            if name is f:
                call_from_thread(partial(run_call, "thread", None, f, args, kw))
            else:
                call_from_thread(partial(run_named, "thread", None, name, f, args, kw))

        def addSystemEventTrigger(phase: str, event: str, f: Any, *args: Any, **kw: Any) -> Any:
            if not callable(f):
                return add_trigger(phase, event, f, *args, **kw)  # Twisted says what is wrong
            return add_trigger(phase, event, partial(run_call, "trigger", (phase, event), f, args, kw))

        for wrapper, original in ((callLater, call_later), (callFromThread, call_from_thread),
                                  (addSystemEventTrigger, add_trigger),
                                  (_cancelCallLater, cancel_call_later)):
            wrapper.__doc__ = original.__doc__
            self.patches.set(reactor, wrapper.__name__, wrapper)

    def instrument_threads(self, reactor: Any) -> None:
        """Jobs of the reactor's thread pool (``deferToThread``, ``callInThread``)."""
        get_pool = reactor.getThreadPool

        def getThreadPool() -> Any:
            pool = get_pool()
            if id(pool) not in self.pools:
                self.pools.add(id(pool))
                self.instrument_pool(pool)
            return pool

        getThreadPool.__doc__ = get_pool.__doc__
        self.patches.set(reactor, "getThreadPool", getThreadPool)
        if getattr(reactor, "threadpool", None) is not None:
            getThreadPool()

    def instrument_pool(self, pool: Any) -> None:
        probe, jobs = self.probe, self.jobs
        submit = pool.callInThreadWithCallback

        def job(number: int, f: Any) -> Callable[..., Any]:
            def work(*args: Any, **kw: Any) -> Any:
                probe.thread_started(number)
                try:
                    result = f(*args, **kw)
                except BaseException as exc:
                    probe.thread_done(number, exc)
                    raise
                probe.thread_done(number, None)
                return result
            return work

        def callInThreadWithCallback(onResult: Any, func: Any, *args: Any, **kw: Any) -> None:
            number = next(jobs)
            probe.thread_submitted(number, func)
            submit(onResult, job(number, func), *args, **kw)

        callInThreadWithCallback.__doc__ = submit.__doc__
        self.patches.set(pool, "callInThreadWithCallback", callInThreadWithCallback)

    # -- descriptors, connections, I/O ----------------------------------------------------------
    def instrument_io(self, reactor: Any) -> str:
        """Reads and writes, descriptors, connections and the poller; returns what stays
        unseen on this kind of reactor ("" when nothing)."""
        native, probe = self.native, self.probe
        internal = getattr(reactor, "_internalReaders", set())
        begin, end = native.call_begin, native.call_end
        reader_name, writer_name = self.reader_name, self.writer_name
        add_reader, remove_reader = reactor.addReader, reactor.removeReader
        reading = self.reading

        def addReader(reader: Any) -> None:
            add_reader(reader)
            key = id(reader)
            if key not in reading and reader not in internal:
                fd = reader.fileno()
                reading[key] = fd
                probe.descriptor_added(reader, fd, "r")
                if key not in self.open and isinstance(reader, self.connection) and (
                        reader.connected or isinstance(reader, self.server)):
                    self.opened(reader, fd)

        def removeReader(reader: Any) -> None:
            remove_reader(reader)
            fd = reading.pop(id(reader), None)
            if fd is not None:
                probe.descriptor_removed(reader, fd, "r")

        for wrapper, original in ((addReader, add_reader), (removeReader, remove_reader)):
            wrapper.__doc__ = original.__doc__
            self.patches.set(reactor, wrapper.__name__, wrapper)

        dispatch = getattr(reactor, "_doReadOrWrite", None)
        poller = getattr(reactor, "_poller", None)
        loop = getattr(reactor, "_asyncioEventloop", None)
        if loop is not None and hasattr(reactor, "_readOrWrite"):
            read_or_write = reactor._readOrWrite

            def _readOrWrite(selectable: Any, read: bool) -> None:
                if read:
                    begin("read", reader_name(selectable), selectable)
                else:
                    begin("write", writer_name(selectable), selectable)
                try:
                    read_or_write(selectable, read)
                except BaseException as exc:
                    end(exc)
                    raise
                end(None)

            self.patches.set(reactor, "_readOrWrite", _readOrWrite)
            self.call_codes.add(_readOrWrite.__code__)
            self.claimed = loop
            adapters.claim(loop, "twisted")
            selector = loop._selector
            select = selector.select
            poll_begin, poll_end = native.poll_begin, native.poll_end

            def timed_select(timeout: Any = None) -> Any:
                poll_begin(timeout)
                ready: Any = []
                try:
                    ready = select(timeout)
                finally:
                    poll_end(ready)
                return ready

            self.patches.set(selector, "select", timed_select)
            return "callbacks scheduled on the asyncio loop directly (not through the reactor)"
        if dispatch is None or poller is None or dispatch.__code__.co_argcount != 4:
            return f"reads, writes and loop health on {type(reactor).__name__}"
        reads_in = reactor._POLL_IN
        disconnected = reactor._POLL_DISCONNECTED

        def _doReadOrWrite(selectable: Any, fd: int, event: int) -> None:
            if selectable in internal:
                return dispatch(selectable, fd, event)
            if event & reads_in:
                begin("read", reader_name(selectable), selectable)
            elif event & disconnected:
                begin("read", getattr(selectable, "connectionLost", dispatch), selectable)
            else:
                begin("write", writer_name(selectable), selectable)
            try:
                dispatch(selectable, fd, event)
            except BaseException as exc:
                end(exc)
                raise
            end(None)

        self.patches.set(reactor, "_doReadOrWrite", _doReadOrWrite)
        self.call_codes.add(_doReadOrWrite.__code__)
        self.patches.set(reactor, "_poller", _TimedPoller(poller, native))
        return ""

    @staticmethod
    def reader_name(selectable: Any) -> Any:
        """What a read runs: the (innermost wrapped) protocol's dataReceived, a listening
        port's factory.buildProtocol, else the descriptor's doRead."""
        state = getattr(selectable, "__dict__", {})
        protocol = state.get("protocol")
        if protocol is not None:
            inner = _wrapped(protocol)
            while inner is not None:  # TLS, endpoints, HTTP: the user's protocol is inside
                protocol, inner = inner, _wrapped(inner)
            return getattr(protocol, "dataReceived", selectable.doRead)
        factory = state.get("factory")
        if factory is not None and hasattr(factory, "buildProtocol"):
            return factory.buildProtocol
        return selectable.doRead

    @staticmethod
    def writer_name(selectable: Any) -> Any:
        """What a write runs: a registered producer's resumeProducing, else the descriptor's
        doWrite (which flushes its buffer, or finishes connecting)."""
        producer = getattr(selectable, "__dict__", {}).get("producer")
        if producer is not None:
            return producer.resumeProducing
        return selectable.doWrite

    def opened(self, transport: Any, fd: int) -> None:
        """A TCP or Unix connection is up: ``conn`` now, ``close`` when it is lost."""
        try:
            host, peer = transport.getHost(), transport.getPeer()
        except Exception:  # noqa: BLE001 - an address Twisted cannot name yet
            host = peer = None
        role = "server" if isinstance(transport, self.server) else "client"
        self.probe.connection_opened(transport, fd, role, host, peer)
        self.open[id(transport)] = transport
        connection_lost = transport.connectionLost
        append, t0 = self.session.recorder.append, self.probe.t0

        def connectionLost(reason: Any) -> None:
            del transport.connectionLost
            self.open.pop(id(transport), None)
            try:
                connection_lost(reason)
            finally:
                event = {"t": time.monotonic_ns() - t0, "ev": "close", "fd": fd}
                kind = getattr(reason, "type", None)
                if kind is not None:
                    event["reason"] = cut(f"{kind.__name__}: {safe_text(reason.getErrorMessage())}")
                append(orjson.dumps(event))

        transport.connectionLost = connectionLost

    # -- the loop starting -------------------------------------------------------------------
    def instrument_start(self, reactor: Any, unseen: str) -> None:
        """At start: the ``runtime`` event, and the reactor thread (timed, and sampled by the
        watchdog); at shutdown: the loop stopped."""
        import twisted

        start_running = reactor.startRunning
        probe, append = self.probe, self.session.recorder.append
        loop = f"{type(reactor).__module__}.{type(reactor).__qualname__}"

        def startRunning(*args: Any, **kw: Any) -> None:
            event = {"t": time.monotonic_ns() - probe.t0, "ev": "runtime", "name": "twisted",
                     "version": str(twisted.__version__), "loop": loop}
            if unseen:
                event["unseen"] = unseen
            append(orjson.dumps(event))
            probe.loop_started(reactor)
            start_running(*args, **kw)

        startRunning.__doc__ = start_running.__doc__
        self.patches.set(reactor, "startRunning", startRunning)
        self.call_codes.add(startRunning.__code__)
        # Added with the unwrapped method: the tracer's own trigger is not a call of the app.
        type(reactor).addSystemEventTrigger(reactor, "after", "shutdown", probe.loop_stopped, reactor)

    # -- twisted.web ---------------------------------------------------------------------------
    def instrument_web(self, server: ModuleType) -> None:
        """A page's ``render_GET`` (or whichever method) as a call of its own."""
        render = server.Request.render
        native = self.native

        def render_(request: Any, resource: Any) -> Any:
            if _get_ident() != native.reactor_thread:
                return render(request, resource)
            method = request.method
            name = getattr(resource, "render_" + (method.decode("ascii", "replace")
                                                   if isinstance(method, bytes) else str(method)),
                           None) or resource.render
            native.call_begin("read", name, getattr(getattr(request, "channel", None), "transport", None))
            try:
                result = render(request, resource)
            except BaseException as exc:
                native.call_end(exc)
                raise
            native.call_end(None)
            return result

        render_.__qualname__ = "Request.render"
        render_.__doc__ = render.__doc__
        self.patches.set(server.Request, "render", render_)
        self.call_codes.add(render_.__code__)


def _wrapped(protocol: Any) -> Any:
    """The protocol that ``protocol`` hands its data to, if it wraps one: a ProtocolWrapper
    (TLS, policies), an endpoint's ``_WrappingProtocol``, twisted.web's HTTP channel."""
    state = getattr(protocol, "__dict__", None)
    if state is None:
        return None
    for name in _WRAPPED_NAMES:
        inner = state.get(name)
        if inner is not None and hasattr(inner, "dataReceived"):
            return inner
    return None


#: Attributes in which Twisted's protocol wrappers keep the protocol they wrap.
_WRAPPED_NAMES = ("wrappedProtocol", "_wrappedProtocol", "_channel")
_USER, _LIBRARY, _BOUNDARY = 0, 1, 2
_ADAPTERS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
