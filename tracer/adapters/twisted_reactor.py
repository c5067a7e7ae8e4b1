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

Public API is used wherever there is one.  Where nothing public exists, the Twisted internals
in :data:`INTERNALS` are wrapped or read, each for the reason given there;
tests/tracer/adapters/test_twisted_internals.py fails loudly when an installed Twisted no
longer has one of them.

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
from functools import partial
from itertools import count
from types import FrameType, FunctionType, MethodType, ModuleType
from collections.abc import Callable

import orjson

from tracer import adapters
from tracer.adapters._patching import Patches, PatchOnImport
from tracer.adapters._twisted_deferreds import DeferredTracing
from tracer.bytecounts import socket_counter, tcp_bytes
from tracer.recorder import cut, safe_text

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any

    from twisted.logger import ILogObserver

    from tracer.session import Tracer

#: The Twisted internals this adapter relies on, and why nothing public does instead.
INTERNALS: dict[str, str] = {
    "EPollReactor._doReadOrWrite(selectable, fd, event), PollReactor's":
        "epoll and poll reactors: the one place where a readiness event runs one descriptor's "
        "doRead or doWrite, wrapped to time it as one call named by the protocol method",
    "AsyncioSelectorReactor._readOrWrite(selectable, read)":
        "asyncio reactor: the same, as the asyncio loop calls it",
    "EPollReactor()._poller, PollReactor()._poller":
        "where the epoll and poll reactors wait: timing the wait splits each iteration into "
        "idle and busy time",
    "asyncio loop._selector.select":
        "where the asyncio reactor's loop waits (the same, on the asyncio loop)",
    "_POLL_IN, _POLL_DISCONNECTED of the epoll and poll reactors":
        "the event bits _doReadOrWrite is given: a read, a hang-up or a write",
    "ReactorBase._cancelCallLater(call)":
        "the one call a DelayedCall makes when it is cancelled (a tcancel event)",
    "ReactorBase()._internalReaders":
        "the reactor's own waker, whose reads are the reactor's, not the program's",
    "Deferred()._callbacks (callbacks before Twisted 25.5), read only":
        "the first callback of the Deferred a timer or hand-back fires, to name that call",
    "Deferred._runCallbacks, its code only":
        "the function that runs a Deferred's callbacks: where the site of a Deferred made "
        "by Twisted inside a callback stops being looked for further out",
}
#: The oldest Twisted release supported, and tested (docs/twisted.md).
OLDEST_SUPPORTED = "22.10.0"

_monotonic = time.monotonic
_get_ident = threading.get_ident
#: Callbacks looked at to name a timer that fires a Deferred (the first user one wins).
FIRST_CALLBACKS = 4

_tracing: _Tracing | None = None


def install(session: Tracer) -> None:
    """Instrument Twisted for ``session`` now if it is imported, else as soon as it is."""
    global _tracing
    if _tracing is None:
        _tracing = _Tracing(session)
        _tracing.start()


def follow_fork(session: Tracer) -> None:
    """In a forked child (a worker forked before it runs the reactor): record Twisted into the
    child's own ``session``; the wrappers held the parent's probe, whose recording the child
    dropped."""
    if _tracing is not None:
        uninstall()
        install(session)


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
    time): ``time`` here is set when the call is scheduled (now plus its delay) and again when
    it is reset or delayed (DelayedCall.reset and .delay are wrapped), so a call's lag is the
    lateness Twisted itself sees.  Plain slots: the C probe reads them without calling Python.
    The C probe's callLater schedules functions and bound methods with its own TimedCall,
    which has the same slots and runs the call (tracer/_native.c says why); this is the source
    of the other calls, and of every call under the pure-Python probe.
    """

    __slots__ = ("func", "time", "_trace_id")
    func: Any
    time: float
    _trace_id: int


class _TimedPoller:
    """The epoll or poll reactor's poller, with the wait between ``poll_begin`` and
    ``poll_end`` (one loop iteration: the time in ``poll`` is idle).  The poll's events are
    handed on as ``[(key, mask), ...]`` with ``key[1]`` the descriptor, as a selector's are."""

    def __init__(self, poller: Any, probe: Any) -> None:
        self.poller = poller
        self.register, self.modify, self.unregister = poller.register, poller.modify, poller.unregister
        poll, begin = poller.poll, probe.poll_begin
        reads = 0x1 | 0x2 | 0x8 | 0x10  # POLLIN, POLLPRI, POLLERR, POLLHUP (the same for epoll)
        writes = 0x4                    # POLLOUT
        end: Callable[[Any], Any]
        end_fds = getattr(probe, "poll_end_fds", None)  # the C probe reads the bits itself
        if end_fds is not None:
            end = partial(end_fds, reads, writes)  # no Python frame of its own per poll
        else:
            end_selector = probe.poll_end

            def end(events: Any) -> None:
                end_selector([((None, fd), (1 if ev & reads else 0) | (2 if ev & writes else 0))
                              for fd, ev in events] if events else events)

        def timed_poll(*args: Any) -> Any:
            begin(args[0] if args else None)
            events = []
            try:
                events = poll(*args)
            finally:
                end(events)
            return events

        self.poll = timed_poll  # a closure: one attribute read fewer per iteration than a method

    def __getattr__(self, name: str) -> Any:
        return getattr(self.poller, name)


class _Tracing:
    """One recording's instrumentation of Twisted: what was replaced, and the state the
    wrappers share."""

    def __init__(self, session: Tracer) -> None:
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
        self.looping_call: Any = None            # twisted.internet.task.LoopingCall
        self.connection: Any = None              # twisted.internet.tcp.Connection
        self.server: Any = None                  # twisted.internet.tcp.Server
        self.deferreds = DeferredTracing(self.native, self.patches.set)
        self.observers: list[tuple[Any, Any]] = []  # (publisher, observer)
        self.passthroughs: set[Any] = set()  # Twisted's stand-in callbacks (passthru)
        self.open: dict[int, Any] = {}     # id(transport) -> transport, connections open
        self.reading: dict[int, int] = {}  # id(descriptor) -> fd, registered for reading
        self.pools: set[int] = set()       # ids of thread pools instrumented
        self.jobs = count(1)
        self.claimed: Any = None
        self.shutdown_trigger: Any = None  # the trigger that records the loop stopping
        self.twisted_dir = ""
        self.boundaries: set[str] = set()   # source files of the reactor's core
        self.call_codes: set[Any] = set()   # code of the wrappers that run a loop call
        self.origin_kinds: dict[str, int] = {}

    def start(self) -> None:
        self.call_codes.add(_Tracing.run_named.__code__)
        self.hook.install()
        reactor = sys.modules.get("twisted.internet.reactor")
        if reactor is not None and self.reactor is None and hasattr(reactor, "callLater"):
            self.instrument_reactor(reactor)  # installed before tracing started

    def stop(self) -> None:
        self.hook.uninstall()
        self.deferreds.stop()
        for publisher, observer in self.observers:
            publisher.removeObserver(observer)
        for transport in list(self.open.values()):
            transport.__dict__.pop("connectionLost", None)
        if self.claimed is not None:
            adapters.release(self.claimed)
        if self.shutdown_trigger is not None:
            try:
                self.reactor.removeSystemEventTrigger(self.shutdown_trigger)
            except (ValueError, KeyError):
                pass  # the shutdown ran it already
        self.patches.restore()

    # -- names -------------------------------------------------------------------------
    def name_of(self, f: Any) -> Any:
        """The callable a loop call of ``f`` is named after: a LoopingCall's function, None
        for a Deferred's callback/errback (named when it runs, by its first callback), else
        ``f`` itself (bound methods and partials are resolved by the recorder)."""
        kind = type(f)
        if kind is MethodType:
            return None if f.__func__ in self.deferreds.fire_functions else f
        if kind is self.looping_call:
            return self.name_of(f.f) or f.f
        return f

    def fired_by(self, f: Any) -> Any:
        """``d.callback`` or ``d.errback`` as Twisted's own method (named after Twisted's
        code, not this adapter's wrapper)."""
        return MethodType(self.deferreds.fire_functions[f.__func__], f.__self__)

    def first_callback(self, d: Any) -> Any:
        """The first callback of ``d`` that is the program's, or None."""
        chain = d.__dict__.get("_callbacks")
        if chain is None:
            chain = d.__dict__.get("callbacks") or ()
        for item in chain[:FIRST_CALLBACKS]:
            f = self.deferreds.callback_in(item[0][0])
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
            name = self.first_callback(f.__self__)
            if name is None:
                name = self.fired_by(f)
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
        if filename.startswith((self.twisted_dir, _ADAPTERS_DIR)):
            return _LIBRARY
        return _USER

    # -- Deferreds ------------------------------------------------------------------------
    def instrument_deferreds(self, defer: ModuleType) -> None:
        """Time every Deferred callback; report creation, firing, chaining, cancellation,
        unhandled failures (tracer/adapters/_twisted_deferreds.py)."""
        import twisted

        self.twisted_dir = os.path.dirname(twisted.__file__) + os.sep
        self.boundaries.update(os.path.join(self.twisted_dir, "internet", name) for name in (
            "base.py", "posixbase.py", "epollreactor.py", "pollreactor.py", "selectreactor.py",
            "asyncioreactor.py", "_threadedselect.py", "_glibbase.py"))
        self.base_origin = self.probe._origin
        self.patches.set(self.probe, "_origin", self.origin)
        self.passthroughs = {getattr(defer, name) for name in ("passthru", "_failthru")
                             if hasattr(defer, name)}

        self.deferreds.install(defer)
        self.call_codes.update(self.deferreds.boundaries)

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
        from twisted.internet import task, tcp

        self.reactor = reactor
        self.looping_call = task.LoopingCall
        self.connection, self.server = tcp.Connection, tcp.Server
        module = sys.modules.get(type(reactor).__module__)
        source_file = getattr(module, "__file__", None)
        if source_file:
            self.boundaries.add(source_file)
        unseen = self.instrument_io(reactor)
        self.instrument_timers(reactor)
        self.instrument_threads(reactor)
        self.instrument_start(reactor, unseen)

    def instrument_timers(self, reactor: Any) -> None:
        """callLater, DelayedCall cancel/reset/delay, callFromThread, system event triggers."""
        from twisted.internet.base import DelayedCall

        native = self.native
        run_call, run_named = native.run_call, self.run_named
        scheduled, name_of = native.timer_scheduled, self.name_of
        call_later = reactor.callLater
        call_from_thread = reactor.callFromThread
        add_trigger = reactor.addSystemEventTrigger
        cancel_call_later = reactor._cancelCallLater
        sources: tuple[type, ...] = (_TimerSource,)

        def callLater(delay: float, f: Any, *args: Any, **kw: Any) -> Any:
            name = f if type(f) is FunctionType else name_of(f)
            if name is f:
                if type(f) is partial and (f.func is run_call or f.func is run_named):
                    return call_later(delay, f, *args, **kw)  # a traced hand-back (asyncio reactor)
                source = _TimerSource()
                call = call_later(delay, partial(run_call, "timer", source, f, args, kw))
            else:
                source = _TimerSource()
                call = call_later(delay, partial(run_named, "timer", source, name, f, args, kw))
            source.func = self.fired_by(f) if name is None else name
            source.time = _monotonic() + delay
            scheduled(source)
            return call

        traced_call_later: Callable[..., Any] = callLater
        timer_scheduler = getattr(native, "timer_scheduler", None)
        if timer_scheduler is not None:  # the C probe's: functions and methods with no Python frame
            sources = (_TimerSource, sys.modules[type(native).__module__].TimedCall)
            traced_call_later = timer_scheduler(call_later, callLater, self.deferreds.fire_functions)

        def source_of(call: Any) -> Any:
            """The timer source a traced DelayedCall runs with (None for one not traced)."""
            f = call.__dict__.get("func")
            if type(f) is partial and len(f.args) > 1:
                f = f.args[1]
            return f if type(f) in sources else None

        def _cancelCallLater(call: Any) -> None:
            source = source_of(call)
            if source is not None:
                self.probe.timer_cancelled(source)
            cancel_call_later(call)

        seconds = reactor.seconds
        reset, delay_ = DelayedCall.reset, DelayedCall.delay

        def retimed(call: Any) -> None:
            """The call now runs at ``getTime()`` on the reactor's clock."""
            source = source_of(call)
            if source is not None:
                source.time = call.getTime() - seconds() + _monotonic()

        def reset_(call: Any, secondsFromNow: float) -> None:
            reset(call, secondsFromNow)
            retimed(call)

        def delay(call: Any, secondsLater: float) -> None:
            delay_(call, secondsLater)
            retimed(call)

        wrapper: Callable[..., Any]
        for name, wrapper, original in (("reset", reset_, reset), ("delay", delay, delay_)):
            wrapper.__qualname__ = f"DelayedCall.{name}"
            wrapper.__doc__ = original.__doc__
            self.patches.set(DelayedCall, name, wrapper)

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

        for wrapper, original in ((callFromThread, call_from_thread),
                                  (addSystemEventTrigger, add_trigger),
                                  (_cancelCallLater, cancel_call_later)):
            wrapper.__doc__ = original.__doc__
            self.patches.set(reactor, wrapper.__name__, wrapper)
        callLater.__doc__ = call_later.__doc__
        self.patches.set(reactor, "callLater", traced_call_later)

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
        internal: set[Any] = getattr(reactor, "_internalReaders", set())
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
                    name = writer_name(selectable)
                    if name is None:
                        return read_or_write(selectable, read)
                    begin("write", name, selectable)
                try:
                    read_or_write(selectable, read)
                except BaseException as exc:
                    end(exc)
                    raise
                end(escaped.pop() if escaped else None)

            self.patches.set(reactor, "_readOrWrite", _readOrWrite)
            self.call_codes.add(_readOrWrite.__code__)
            escaped = self.watch_errors(read_or_write.__func__.__code__)
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
        escaped = self.watch_errors(dispatch.__func__.__code__)
        io_dispatcher = getattr(native, "io_dispatcher", None)
        if io_dispatcher is not None:  # the C probe's: the steps below with no Python frame
            self.patches.set(reactor, "_doReadOrWrite",
                             io_dispatcher(dispatch, internal, reads_in, disconnected, _WRAPS,
                                           reader_name, escaped))
        else:
            def _doReadOrWrite(selectable: Any, fd: int, event: int) -> None:
                if selectable in internal:
                    return dispatch(selectable, fd, event)
                if event & reads_in:
                    begin("read", reader_name(selectable), selectable)
                elif event & disconnected:
                    begin("read", reader_name(selectable, "connectionLost"), selectable)
                else:
                    name = writer_name(selectable)
                    if name is None:
                        return dispatch(selectable, fd, event)
                    begin("write", name, selectable)
                try:
                    dispatch(selectable, fd, event)
                except BaseException as exc:
                    end(exc)
                    raise
                end(escaped.pop() if escaped else None)

            self.patches.set(reactor, "_doReadOrWrite", _doReadOrWrite)
            self.call_codes.add(_doReadOrWrite.__code__)
        self.patches.set(reactor, "_poller", _TimedPoller(poller, native))
        return ""

    def watch_errors(self, dispatch: Any) -> list[BaseException]:
        """Exceptions that escape a read or write callback: Twisted catches them in its
        dispatch function (code ``dispatch``) and logs them; a ``twisted.logger`` observer
        sees that log and hands the exception, through the list returned, to the wrapper of
        the dispatch, which ends its call with it (a ``call`` with ``exc`` and an ``error``)."""
        from typing import cast  # here: Twisted imports typing itself, a child without it does not

        from twisted.logger import globalLogPublisher

        escaped: list[BaseException] = []
        native, twisted_dir = self.native, self.twisted_dir

        def caught(event: dict) -> None:
            failure = event.get("log_failure") or event.get("failure")  # (legacy log.err)
            if failure is None or _get_ident() != native.reactor_thread:
                return
            call = native.top()
            if call is None or call[2] not in ("read", "write"):
                return  # no read or write call is open (the reactor's own, a flush)
            frame: FrameType | None = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith(twisted_dir):
                if frame.f_code is dispatch:  # logged by the dispatch itself, not the program
                    escaped.append(failure.value)
                    return
                frame = frame.f_back

        # A plain callable is a log observer: Twisted calls it; mypy cannot see a function
        # provide the zope interface ILogObserver.
        globalLogPublisher.addObserver(cast("ILogObserver", caught))
        self.observers.append((globalLogPublisher, caught))
        return escaped

    @staticmethod
    def reader_name(selectable: Any, method: str = "dataReceived") -> Any:
        """What a read runs: the (innermost wrapped) protocol's dataReceived (``method``:
        connectionLost for a hang-up), a listening port's factory.buildProtocol, else the
        descriptor's doRead.  (Once per read: the common case, a connection of a protocol
        that wraps none, costs two dict lookups.)"""
        state = getattr(selectable, "__dict__", _NO_STATE)
        protocol = state.get("protocol")
        if protocol is not None:
            wraps = _WRAPS.get(type(protocol))
            if wraps is None:
                wraps = _WRAPS[type(protocol)] = _wrapped(protocol) is not None
            if wraps:
                inner = _wrapped(protocol)
                while inner is not None:  # TLS, endpoints, HTTP: the user's protocol is inside
                    protocol, inner = inner, _wrapped(inner)
            runs = getattr(protocol, method, None)
            if runs is not None:
                return runs
        factory = state.get("factory")
        if factory is not None and hasattr(factory, "buildProtocol"):
            return factory.buildProtocol
        return selectable.doRead

    @staticmethod
    def writer_name(selectable: Any) -> Any:
        """What a write runs: a registered producer's resumeProducing, the descriptor's
        doWrite when it finishes connecting (the protocol's connectionMade) or closing (its
        connectionLost), else None: a write that only flushes a buffer runs no program code
        and is not a call (as on loopscope's reactor; it is half of every echo's events)."""
        state = getattr(selectable, "__dict__", _NO_STATE)
        producer = state.get("producer")
        if producer is not None:
            return producer.resumeProducing
        if "doWrite" in state or state.get("disconnecting") or not state.get("connected"):
            return selectable.doWrite
        return None

    def opened(self, transport: Any, fd: int) -> None:
        """A TCP or Unix connection is up: ``conn`` now, ``close`` when it is lost."""
        try:
            host, peer = transport.getHost(), transport.getPeer()
        except Exception:  # noqa: BLE001 - an address Twisted cannot name yet
            host = peer = None
        role = "server" if isinstance(transport, self.server) else "client"
        self.probe.connection_opened(transport, fd, role, host, peer)
        recorder = self.session.recorder
        sock = getattr(transport, "socket", None)
        # Twisted's transports count no bytes: the kernel's counts are sampled instead
        # (after connection_opened, which registered the reactor's way of counting).
        if sock is not None:
            recorder.byte_counts.watch(fd, socket_counter(sock, role == "client"))
        else:
            recorder.byte_counts.forget(fd)
        self.open[id(transport)] = transport
        connection_lost = transport.connectionLost
        append, t0 = recorder.append, self.probe.t0

        def connectionLost(reason: Any) -> None:
            del transport.connectionLost
            self.open.pop(id(transport), None)
            recorder.byte_counts.forget(fd)
            counts = tcp_bytes(sock, role == "client")  # before Twisted closes the socket
            try:
                connection_lost(reason)
            finally:
                event: dict[str, Any] = {"t": time.monotonic_ns() - t0, "ev": "close", "fd": fd}
                kind = getattr(reason, "type", None)
                if kind is not None:
                    event["reason"] = cut(f"{kind.__name__}: {safe_text(reason.getErrorMessage())}")
                if counts is not None:
                    event["in"], event["out"] = counts
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

        def started(thread: int | None = None) -> None:
            event = {"t": time.monotonic_ns() - probe.t0, "ev": "runtime", "name": "twisted",
                     "version": str(twisted.__version__), "loop": loop}
            if unseen:
                event["unseen"] = unseen
            append(orjson.dumps(event))
            probe.loop_started(reactor, thread)

        def startRunning(*args: Any, **kw: Any) -> None:
            started()
            start_running(*args, **kw)

        startRunning.__doc__ = start_running.__doc__
        self.patches.set(reactor, "startRunning", startRunning)
        self.call_codes.add(startRunning.__code__)
        if reactor.running:
            # Running already (pytest-twisted runs it for the whole session, tracing starts
            # and stops for each test): in the thread Twisted registered as its I/O thread.
            from twisted.python import threadable
            started(threadable.ioThread)
        # Added with the unwrapped method: the tracer's own trigger is not a call of the app.
        self.shutdown_trigger = type(reactor).addSystemEventTrigger(
            reactor, "after", "shutdown", probe.loop_stopped, reactor)

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
#: Protocol classes seen -> whether they wrap another protocol (set in their ``__init__``).
_WRAPS: dict[type, bool] = {}
_NO_STATE: dict[str, Any] = {}
_USER, _LIBRARY, _BOUNDARY = 0, 1, 2
_ADAPTERS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
