"""The asyncio adapter: trace an unmodified asyncio program on the standard event loop.

:func:`install` (called by ``loopscope run`` only; importing this module patches nothing)
replaces a few methods of asyncio's loop classes, and :func:`uninstall` puts the originals
back.  Event-loop policies are not used (they are deprecated from 3.14): whatever makes the
loop (``asyncio.run``, ``Runner``, ``loop_factory``, a loop made by hand, in any thread), it
is a ``BaseEventLoop`` whose methods these are, and it announces itself when it starts
running through ``asyncio._set_running_loop``, which is wrapped too (uvloop looks it up when
it is imported, so a uvloop loop is seen as well).

What is recorded, with the reactor's meanings (docs/asyncio.md has the whole mapping):

- every handle the loop runs is a ``call``: ``call_soon``, ``call_later`` and ``call_at``
  handles are ``timer`` calls (a call_soon is a timer due at once, as the reactor's
  callLater(0): its lag is the time it waited in the ready queue, and its ``timer`` event
  says where it was scheduled); ``call_soon_threadsafe`` ones are ``thread`` calls; reader
  and writer callbacks are ``read``/``write`` calls named after the protocol method;
  task steps are ``task`` calls (tracer/adapters/_asyncio_tasks.py names them);
- the selector's poll (busy and idle time), readers and writers, socket transports;
- Tasks and Futures as the trace's Deferreds; ``run_in_executor`` / ``to_thread`` as
  thread-pool jobs; "exception was never retrieved" as ``unhandled``.

Speed.  The handles' own methods are the hot path, so the traced versions are copies of
``call_soon``, ``call_later``, ``call_at`` and ``Handle._run`` (a handful of lines each,
copied from CPython's) with the C probe's hooks in them, not wrappers around the originals:
a wrapper's extra Python call would cost more than the hooks.  They do what 3.11 to 3.14 do
(tracer/adapters/_asyncio_shapes.py checks that before anything is patched, and refuses an
asyncio whose methods changed).  The handles
they make are subclasses with the three slots the C hooks read (``func``, ``time``,
``_trace_id``).

Threads.  The C probe keeps the calls in progress of one thread.  The first loop to run
while no other loop is timed there takes it: its plain callbacks are timed in C, its poll is
measured, and the watchdog samples its thread.  A loop that runs in another thread meanwhile
is traced in Python (tracer/adapters/_loop_calls.py): every call, stall samples of its own
thread too, but no poll times (busy/idle is the first loop's).  Task steps are always timed
in Python: a blocked step is named when it ends, after the coroutine the watchdog found it
stuck in.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
import inspect
import itertools
import sys
import threading
import time
from asyncio import base_events, events, format_helpers, futures, selector_events, tasks
from types import BuiltinMethodType, FunctionType, MethodType
from typing import TYPE_CHECKING, Any, cast
from collections.abc import Callable

import orjson

from tracer import adapters
from tracer.adapters import _asyncio_shapes, _asyncio_tasks
from tracer.adapters._asyncio_io import (Descriptors, ReaderHandle, TransportReaderHandle,
                                         WriterHandle, reader_callable)
from tracer.adapters._asyncio_tasks import Tag, Tasks, creation_site, step_names
from tracer.adapters._loop_calls import Heartbeat, LoopCalls, record
from tracer.bytecounts import tcp_bytes
from tracer.recorder import code_of

if TYPE_CHECKING:
    from tracer.session import Tracer

_mono = time.monotonic
_now = time.monotonic_ns
_BaseLoop = base_events.BaseEventLoop
_ORIGINAL_RUN = events.Handle._run
_LOOP_TIME = _BaseLoop.time
#: Pure-Python tasks (asyncio's fallback without its C module) step through these methods.
_PY_TASK: Any = getattr(tasks, "_PyTask", None)
_PY_TASK_STEPS = {getattr(_PY_TASK, name) for name in ("_Task__step", "_Task__wakeup")
                  if hasattr(_PY_TASK, name)}
#: asyncio's socket transport (private: typeshed does not have it).
_SOCKET_TRANSPORT: Any = selector_events._SelectorSocketTransport  # type: ignore[attr-defined]

#: What a uvloop trace cannot show (the ``runtime`` event's ``unseen``).
UVLOOP_UNSEEN = ("uvloop runs its callbacks, task steps, timers, poll and transports in C: "
                 "none of them is traced one by one, nor Task/Future creation, thread-pool "
                 "jobs or unretrieved exceptions. A heartbeat every 5 ms finds the loop's "
                 "stalls and samples the stuck stack.")


# -- the handles the traced methods make -----------------------------------------------------
if TYPE_CHECKING:
    _HandleBase = events.Handle  # the mixin below is only ever mixed into a Handle
else:
    _HandleBase = object


class _Scheduled(_HandleBase):
    """A handle with a ``timer`` event: its cancelling is a ``tcancel`` (it will never run).
    The handles below add the slots the C hooks read: ``func``, ``time``, ``_trace_id``."""

    __slots__ = ()
    if TYPE_CHECKING:  # asyncio's private slots, which typeshed names without their types
        _source_traceback: list[Any] | None   # Handle's
        _scheduled: bool                      # TimerHandle's

    def cancel(self) -> None:
        if _session is not None and not self._cancelled and getattr(self, "_trace_id", None):
            _session.probe.timer_cancelled(self)
        super().cancel()


#: The C hooks read a timer's function as ``func`` and its due time as ``time``, through the
#: slot's descriptor: a handle class that names the slots the handle already has (its
#: callback, a timer's ``_when``) gives them at no cost per handle.
_CALLBACK_SLOT = vars(events.Handle)["_callback"]
_WHEN_SLOT = vars(events.TimerHandle)["_when"]


class _Soon(_Scheduled, events.Handle):
    """A ``call_soon`` handle: a timer due when it was scheduled (``time``)."""

    __slots__ = ("time", "_trace_id")
    func = _CALLBACK_SLOT


class _Step(_Scheduled, events.Handle):
    """A ``call_soon`` handle that runs a task step (``func`` stays unset: the step is named
    after its coroutine when it runs)."""

    __slots__ = ("func", "time", "_trace_id")


class _Thread(getattr(events, "_ThreadSafeHandle", events.Handle)):  # type: ignore[misc]
    """A ``call_soon_threadsafe`` handle (the reactor's callFromThread): from 3.14 one that
    takes a lock to cancel or run, as asyncio's own."""

    __slots__ = ()


class _Timer(_Scheduled, events.TimerHandle):
    """A ``call_later`` / ``call_at`` handle of a loop on the monotonic clock."""

    __slots__ = ("_trace_id",)
    func, time = _CALLBACK_SLOT, _WHEN_SLOT


class _ClockTimer(_Scheduled, events.TimerHandle):
    """A timer of a loop with a clock of its own: ``time`` is its due time converted to the
    monotonic clock."""

    __slots__ = ("time", "_trace_id")
    time: float
    func = _CALLBACK_SLOT


class _Lost(_Soon):
    """A socket transport's ``_call_connection_lost``: its ``close`` is recorded after it."""

    __slots__ = ()


#: Bound methods whose call_soon handles are told apart, by their function.
_METHOD_HANDLES: dict[Any, type] = {
    **{step: _Step for step in _PY_TASK_STEPS},
    _SOCKET_TRANSPORT._call_connection_lost: _Lost,
}


def _handle_class(callback: Any, kind: type) -> type:
    """The handle for a call_soon of ``callback`` (not a plain function): a task step (how
    a Task resumes its coroutine), a connection ending, or any other."""
    if kind is MethodType:
        return _METHOD_HANDLES.get(callback.__func__, _Soon)
    if kind is BuiltinMethodType:
        wakeup = callback.__name__ == "task_wakeup" and isinstance(callback.__self__, tasks.Task)
        return _Step if wakeup else _Soon
    return _Step if kind.__name__ == "TaskStepMethWrapper" else _Soon


# -- state while installed ----------------------------------------------------------------------
_session: Tracer | None = None
_begin: Callable[..., None]        # the C probe's call_begin, call_end, timer_scheduled
_end: Callable[..., None]
_sched: Callable[..., None]
#: The loop whose plain callbacks the C probe times (None: no loop holds it).
_primary: Any = None
#: The C probe's Handle._run (tracer._native.HandleRunner), or None with the pure-Python probe.
_runner: Any = None
_calls: dict[Any, LoopCalls] = {}          # running loop -> its calls outside the C probe
_heartbeats: dict[Any, Heartbeat] = {}     # running uvloop loop -> its heartbeat
_descriptors: Descriptors
_tasks: Tasks
_jobs = itertools.count(1)
_announced: set[type] = set()
_patches: list[tuple[Any, str, Any]] = []   # (owner, name, original), in patching order
_lock = threading.Lock()
#: Loops another adapter instruments (Twisted's asyncio reactor runs on one: the Twisted
#: adapter claims it, tracer.adapters.claim): left to the original methods, so nothing is
#: recorded twice.  Usually empty, which is all the scheduling hooks check.
_foreign: set[Any] = set()


# -- scheduling -------------------------------------------------------------------------------
def _call_soon(self: Any, callback: Callable[..., Any], *args: Any,
               context: contextvars.Context | None = None) -> Any:
    if _foreign and self in _foreign:
        return _original("call_soon")(self, callback, *args, context=context)
    self._check_closed()
    kind = type(callback)
    if kind is Tag:  # a followed Future completed: its first done-callback records that
        callback(*args)
        return None
    if self._debug:
        self._check_thread()
        self._check_callback(callback, "call_soon")
    cls = _Soon if kind is FunctionType else _handle_class(callback, kind)
    handle = cls(callback, args, self, context)
    if handle._source_traceback:
        del handle._source_traceback[-1]
    self._ready.append(handle)
    handle.time = _mono()
    _sched(handle)
    return handle


def _call_soon_threadsafe(self: Any, callback: Callable[..., Any], *args: Any,
                          context: contextvars.Context | None = None) -> Any:
    self._check_closed()
    if self._debug:
        self._check_callback(callback, "call_soon_threadsafe")
    handle = _Thread(callback, args, self, context)
    if handle._source_traceback:
        del handle._source_traceback[-1]
    self._ready.append(handle)
    self._write_to_self()
    return handle


def _new_timer(loop: Any, when: float, callback: Callable[..., Any], args: tuple,
               context: contextvars.Context | None) -> _Timer | _ClockTimer:
    """call_at's work, without the hook (its caller calls it: the scheduling line is the
    frame above the one that calls the hook)."""
    if when is None:
        raise TypeError("when cannot be None")
    loop._check_closed()
    if loop._debug:
        loop._check_thread()
        loop._check_callback(callback, "call_at")
    own_clock = type(loop).time is not _LOOP_TIME
    timer = (_ClockTimer if own_clock else _Timer)(when, callback, args, loop, context)
    if timer._source_traceback:
        del timer._source_traceback[-1]
    heapq.heappush(loop._scheduled, timer)
    timer._scheduled = True
    if own_clock:
        timer.time = when - loop.time() + _mono()
    return timer


def _call_later(self: Any, delay: float, callback: Callable[..., Any], *args: Any,
                context: contextvars.Context | None = None) -> Any:
    if _foreign and self in _foreign:
        return _original("call_later")(self, delay, callback, *args, context=context)
    if delay is None:
        raise TypeError("delay must not be None")
    timer = _new_timer(self, self.time() + delay, callback, args, context)
    if timer._source_traceback:
        del timer._source_traceback[-1]
    _sched(timer)
    return timer


def _call_at(self: Any, when: float, callback: Callable[..., Any], *args: Any,
             context: contextvars.Context | None = None) -> Any:
    if _foreign and self in _foreign:
        return _original("call_at")(self, when, callback, *args, context=context)
    timer = _new_timer(self, when, callback, args, context)
    if timer._source_traceback:
        del timer._source_traceback[-1]
    _sched(timer)
    return timer


# -- running a handle ---------------------------------------------------------------------------
#: From 3.13 Handle._run formats the callback for the loop's debug mode.
_SOURCE_DEBUG = "debug" in inspect.signature(format_helpers._format_callback_source).parameters


def _report(handle: Any, exc: BaseException) -> None:
    """What Handle._run does with an exception that escaped a callback."""
    if _SOURCE_DEBUG:  # typeshed gives the signature of the oldest Python checked for
        format_source = cast(Callable[..., str], format_helpers._format_callback_source)
        source = format_source(handle._callback, handle._args, debug=handle._loop.get_debug())
    else:
        source = format_helpers._format_callback_source(handle._callback, handle._args)
    context = {"message": f"Exception in callback {source}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


#: The call kind of each handle class (a plain Handle is ``other``; task steps and
#: connections ending are not here: they are timed in Python).
_KINDS: dict[type, str] = {
    _Soon: "timer", _Timer: "timer", _ClockTimer: "timer", _Thread: "thread",
    ReaderHandle: "read", TransportReaderHandle: "read", WriterHandle: "write",
}


def _run(self: Any) -> None:
    """Handle._run, timed by the probe (the loop that holds it), else in Python.  With the C
    probe, its HandleRunner does this instead (the same steps, with no Python frame: see
    tracer/_native.c); this one runs with the pure-Python probe.

    Each function that runs a handle lets go of it (and its callback, task, coroutine)
    before it returns, as Handle._run does: from 3.13 a frame object that outlives its call
    (the frame of a coroutine whose exception a Task keeps) keeps its caller's frame, and so
    its locals; a frame holding the handle would keep the Task, whose "exception was never
    retrieved" would then come only at exit, after tracing."""
    if self._loop is not _primary:
        _run_in_python(self)
        self = None
        return
    cls = type(self)
    callback = f = self._callback
    if cls is _Soon or cls is _Timer:  # the most frequent first
        kind = "timer"
    elif cls is TransportReaderHandle:
        kind = "read"
        try:
            f = callback.__self__._protocol.data_received
        except AttributeError:  # a buffered protocol, or no protocol any more
            f = reader_callable(callback.__self__, callback)
    elif cls is _Step or cls is _Lost:
        _run_in_python(self)
        self = callback = f = None
        return
    else:
        kind = _KINDS.get(cls, "other")
    _begin(kind, f, self)
    try:
        self._context.run(callback, *self._args)
    except (SystemExit, KeyboardInterrupt) as exc:
        _end(exc)
        raise
    except BaseException as exc:
        _end(exc)
        _report(self, exc)
    else:
        _end(None)
    self = callback = f = None


def _run_in_python(handle: Any) -> None:
    """A task step, a connection ending, or a callback of a loop that does not hold the C
    probe."""
    calls = _calls.get(handle._loop)
    if calls is None or _session is None:  # a loop that started running before tracing
        return _ORIGINAL_RUN(handle)
    callback = handle._callback
    kind = type(handle)
    if kind is _Step:
        task = callback.__self__
        coro = task.get_coro()
        site, resumed = step_names(_session, coro)
        site = _run_recorded(handle, calls, "task", getattr(coro, "cr_code", None), site,
                             getattr(handle, "_trace_id", None), handle.time, resumed)
        if not task.done():
            _tasks.awaiting(task, site)
        handle = callback = task = coro = None  # see _run
        return None
    f = callback
    if kind is _Lost:  # its bytes are read before the socket closes
        transport = callback.__self__
        counts = tcp_bytes(transport._sock, transport._server is None)
        _run_recorded(handle, calls, "timer", code_of(f), _session.recorder.fn_site(f),
                      getattr(handle, "_trace_id", None), handle.time, 0)
        _descriptors.lost(transport, handle._args[0] if handle._args else None, counts)
        handle = callback = f = transport = None
        return None
    name = _KINDS.get(kind, "other")
    x = due = None
    if name == "timer":
        x, due = getattr(handle, "_trace_id", None), handle.time
    elif name in ("read", "write"):
        x = _descriptors.fd_of(handle)
        if kind is TransportReaderHandle:
            f = reader_callable(callback.__self__, callback)
    _run_recorded(handle, calls, name, code_of(f), _session.recorder.fn_site(f), x, due, 0)
    handle = callback = f = None
    return None


def _run_recorded(handle: Any, calls: LoopCalls, kind: str, code: Any, site: int,
                  x: int | None, due: float | None, resumed: int) -> int:
    """Run ``handle`` as one call timed in Python; returns the site it was recorded with."""
    start = calls.begin(kind, code, site)
    lag = max(start - int(due * 1e9), 0) if due is not None else None
    try:
        handle._context.run(handle._callback, *handle._args)
    except (SystemExit, KeyboardInterrupt) as exc:
        _call_ended(calls, start, kind, site, x, lag, resumed, exc)
        raise
    except BaseException as exc:
        site = _call_ended(calls, start, kind, site, x, lag, resumed, exc)
        _report(handle, exc)
    else:
        site = _call_ended(calls, start, kind, site, x, lag, resumed, None)
    handle = None  # see _run
    return site


def _call_ended(calls: LoopCalls, start: int, kind: str, site: int, x: int | None,
                lag: int | None, resumed: int, exc: BaseException | None) -> int:
    """Record a call timed in Python (as the C probe would, with ``resumed`` for a step)."""
    end = _now()
    site = calls.end(site)
    session = _session
    if session is None:
        return site
    t, dur = end - session.recorder.t0, end - start
    if exc is not None:
        session.probe._call_failed(t, kind, site, dur, 0, x, lag, exc)
    elif kind == "task":
        event: dict[str, Any] = {"t": t, "ev": "call", "kind": kind, "site": site, "dur": dur,
                                 "depth": 0}
        if x is not None:
            event["timer"], event["lag"] = x, lag
        if resumed:
            event["resumed"] = resumed
        record(session, event)
    else:
        record_row(session, ["call", t, kind, site, dur, 0, x, lag, None])
    return site


def record_row(session: Tracer, row: list) -> None:
    """Append a compact row made in Python (tracer/format.py ROWS)."""
    session.recorder.append(orjson.dumps(row))


# -- futures, tasks, the thread pool, errors -----------------------------------------------------
def _create_future(self: Any) -> Any:
    fut: futures.Future[Any] = futures.Future(loop=self)
    session = _session
    assert session is not None  # patched in only while a session is installed
    _tasks.created(fut, creation_site(session, sys._getframe(1)))
    return fut


def _create_task(self: Any, coro: Any, **kwargs: Any) -> Any:
    # Only the arguments given are passed on: 3.13 added some (eager_start), and from 3.14
    # all of them reach a task factory, which may take none.
    task = _original("create_task")(self, coro, **kwargs)
    session = _session
    assert session is not None  # patched in only while a session is installed
    _tasks.created(task, creation_site(session, sys._getframe(1)))
    return task


class _Job:
    """A function run in a pool thread for the loop: ``tstart`` / ``tdone`` around it."""

    __slots__ = ("job", "func", "probe")

    def __init__(self, job: int, func: Callable[..., Any], probe: Any) -> None:
        self.job, self.func, self.probe = job, func, probe

    def __call__(self, *args: Any) -> Any:
        self.probe.thread_started(self.job)
        try:
            result = self.func(*args)
        except BaseException as exc:
            self.probe.thread_done(self.job, exc)
            raise
        self.probe.thread_done(self.job, None)
        return result


def _job_function(func: Callable[..., Any]) -> Callable[..., Any]:
    """The function a job runs: to_thread's ``partial(context.run, f, ...)`` runs ``f``."""
    if (isinstance(func, functools.partial) and func.args
            and isinstance(getattr(func.func, "__self__", None), contextvars.Context)):
        return func.args[0]
    return func


def _run_in_executor(self: Any, executor: Any, func: Callable[..., Any], *args: Any) -> Any:
    session = _session
    assert session is not None  # patched in only while a session is installed
    probe = session.probe
    job = next(_jobs)
    probe.thread_submitted(job, _job_function(func))
    try:
        return _original("run_in_executor")(self, executor, _Job(job, func, probe), *args)
    except BaseException as exc:
        probe.thread_done(job, exc)
        raise


def _call_exception_handler(self: Any, context: dict) -> None:
    exc, fut = context.get("exception"), context.get("future")
    if (fut is not None and isinstance(exc, BaseException)
            and "exception was never retrieved" in str(context.get("message", ""))):
        _tasks.never_retrieved(fut, exc)
    return _original("call_exception_handler")(self, context)


# -- descriptors and transports ------------------------------------------------------------------
def _add_reader(self: Any, fd: Any, callback: Callable[..., Any], *args: Any) -> Any:
    handle = _original("_add_reader")(self, fd, callback, *args)
    if handle is not None:
        _descriptors.added(fd, "r", handle, callback)
    return handle


def _add_writer(self: Any, fd: Any, callback: Callable[..., Any], *args: Any) -> Any:
    handle = _original("_add_writer")(self, fd, callback, *args)
    if handle is not None:
        _descriptors.added(fd, "w", handle, callback)
    return handle


def _remove_reader(self: Any, fd: Any) -> bool:
    removed = _original("_remove_reader")(self, fd)
    _descriptors.removed(fd, "r")
    return removed


def _remove_writer(self: Any, fd: Any) -> bool:
    removed = _original("_remove_writer")(self, fd)
    _descriptors.removed(fd, "w")
    return removed


def _transport_init(self: Any, loop: Any, sock: Any, protocol: Any, waiter: Any = None,
                    extra: Any = None, server: Any = None) -> None:
    _original("__init__")(self, loop, sock, protocol, waiter, extra, server)
    _descriptors.connected(self, server)


# -- loops starting and stopping -------------------------------------------------------------------
def _set_running_loop(loop: Any) -> None:
    """asyncio._set_running_loop: a loop starts (or stops) running on this thread."""
    original = _original("_set_running_loop")
    if loop is None:
        stopping = events._get_running_loop()
        original(None)
        if stopping is not None:
            _loop_stopped(stopping)
    else:
        original(loop)
        _loop_started(loop)


def _is_uvloop(loop: Any) -> bool:
    return type(loop).__module__.split(".")[0] == "uvloop"


def _announce(loop: Any, session: Tracer) -> None:
    """The ``runtime`` event, the first time a loop of this class runs."""
    cls = type(loop)
    if cls in _announced:
        return
    _announced.add(cls)
    event: dict[str, Any] = {"t": _now() - session.recorder.t0, "ev": "runtime",
                             "loop": f"{cls.__module__}.{cls.__qualname__}"}
    if _is_uvloop(loop):
        event.update(name="uvloop", version=str(getattr(sys.modules.get("uvloop"), "__version__", "")),
                     unseen=UVLOOP_UNSEEN)
    else:
        event.update(name="asyncio", version=sys.version.split()[0])
        if not isinstance(loop, _BaseLoop):
            event["unseen"] = "this loop is not asyncio's standard loop: its callbacks are not traced"
    record(session, event)


def _loop_started(loop: Any) -> None:
    session = _session
    if session is None:
        return
    if adapters.claimed_by(loop) is not None:
        _foreign.add(loop)
        return
    _announce(loop, session)
    if isinstance(loop, _BaseLoop):
        calls = _calls[loop] = LoopCalls(session, threading.get_ident())
        session.watchdog.watch(calls)
        with _lock:
            take = _primary is None and not session.recorder.loop_running
            if take:
                _hold(loop)
        if take:
            session.probe.loop_started(loop)
            _time_polls(loop, session)
    elif _is_uvloop(loop):
        beat = _heartbeats[loop] = Heartbeat(session, loop)
        session.watchdog.watch(beat)
        beat.start()


def _loop_stopped(loop: Any) -> None:
    session = _session
    _foreign.discard(loop)
    if session is None:
        return
    calls = _calls.pop(loop, None)
    if calls is not None:
        session.watchdog.unwatch(calls)
    beat = _heartbeats.pop(loop, None)
    if beat is not None:
        beat.stop()
        session.watchdog.unwatch(beat)
    if loop is _primary:
        _untime_polls(loop)
        session.probe.loop_stopped(loop)
        _hold(None)


def _hold(loop: Any) -> None:
    """``loop`` (or none, None) is the one whose callbacks the C probe times."""
    global _primary
    _primary = loop
    if _runner is not None:
        _runner.primary = loop


def _time_polls(loop: Any, session: Tracer) -> None:
    """Time the selector's polls of ``loop`` (an instance attribute: only this loop's)."""
    selector = getattr(loop, "_selector", None)
    if selector is None:
        return
    select = selector.select
    poll_begin, poll_end = session.probe.native.poll_begin, session.probe.native.poll_end

    def timed_select(timeout: float | None = None) -> list:
        poll_begin(timeout)
        ready = select(timeout)
        poll_end(ready)
        return ready

    selector.select = timed_select


def _untime_polls(loop: Any) -> None:
    selector = getattr(loop, "_selector", None)
    if selector is not None:
        vars(selector).pop("select", None)


# -- install / uninstall ------------------------------------------------------------------------
def _original(name: str) -> Any:
    """The original of a patched attribute (names are unique across the patched owners)."""
    return _originals[name]


_originals: dict[str, Any] = {}


def _patch(owner: Any, name: str, value: Any) -> None:
    original = vars(owner)[name]
    _patches.append((owner, name, original))
    _originals.setdefault(name, original)
    setattr(owner, name, value)


def install(session: Tracer) -> None:
    """Trace asyncio's standard loops (and see uvloop's) for ``session``."""
    global _session, _begin, _end, _sched, _descriptors, _tasks, _runner
    if _session is not None:
        return
    _asyncio_shapes.check()  # before anything is patched
    native = session.probe.native
    _begin, _end, _sched = native.call_begin, native.call_end, native.timer_scheduled
    handle_runner = getattr(native, "handle_runner", None)
    _runner = (handle_runner(events.Handle, _KINDS, TransportReaderHandle, _run_in_python, _report)
               if handle_runner is not None else None)
    _descriptors = Descriptors(session)
    _tasks = _asyncio_tasks.start(session)
    _session = session
    _patch(events.Handle, "_run", _runner if _runner is not None else _run)
    value: Callable[..., Any]
    for name, value in (("call_soon", _call_soon), ("call_soon_threadsafe", _call_soon_threadsafe),
                        ("call_later", _call_later), ("call_at", _call_at),
                        ("create_future", _create_future), ("create_task", _create_task),
                        ("run_in_executor", _run_in_executor),
                        ("call_exception_handler", _call_exception_handler)):
        _patch(_BaseLoop, name, value)
    selector_loop = selector_events.BaseSelectorEventLoop
    for name, value in (("_add_reader", _add_reader), ("_add_writer", _add_writer),
                        ("_remove_reader", _remove_reader), ("_remove_writer", _remove_writer)):
        _patch(selector_loop, name, value)
    _patch(_SOCKET_TRANSPORT, "__init__", _transport_init)
    _patch(events, "_set_running_loop", _set_running_loop)
    _patch(asyncio, "_set_running_loop", _set_running_loop)


def follow_fork(session: Tracer) -> None:
    """In a forked child (a multiprocessing worker): record the child's loops into its own
    ``session``; the hooks held the parent's probe, whose recording the child dropped."""
    if _session is not None:
        uninstall()
        install(session)


def uninstall() -> None:
    """Put every patched attribute back and stop following the loops still running."""
    global _session, _runner
    session = _session
    if session is None:
        return
    while _patches:
        owner, name, original = _patches.pop()
        setattr(owner, name, original)
    _originals.clear()
    for loop in list(_calls) + list(_heartbeats):
        _loop_stopped(loop)
    _session = None
    _hold(None)
    _runner = None
    _foreign.clear()
    _announced.clear()
    _asyncio_tasks.stop()
