"""The probe: what the reactor calls at each instrumentation point while tracing.

The points that fire once or more per callback run (poll, call begin/end and run_call, timer
scheduled, Deferred created/callbacks added/fired/callback begin/end) are methods of a ``Probe``
from tracer.backend's choice: ``tracer._native.Probe`` in C, where a Python method call alone
would cost more than the whole overhead budget allows (tracer/_native.c says why), or
``tracer.pyprobe.Probe``, the same in pure Python when the extension is not built.  The object
installed in the reactor is that probe itself; the rare points are the Python methods of
:class:`TraceProbe` below, which binds them onto it.  The hot hooks cache sites per code object
(a bounded cache: tracer/_native.c, SITES_CACHED) and ask this class on a miss (:meth:`TraceProbe._fn_site`, :meth:`TraceProbe._origin`), hand a
call that raised to :meth:`TraceProbe._call_failed` and an error of their own to
:meth:`TraceProbe._hook_failed`.  Every rare point appends its finished line to the same
buffer as the hot hooks, so the file keeps the order in which things happened.

No hook raises into the application: the rare points here are :func:`guarded`, so an error in
one (a broken ``__str__``, an odd address object) is counted and written to the trace as a
``hookerr`` line instead, and the application sees what it would see untraced.

Buffered events hold only numbers and finished lines, never the functions, DelayedCalls or
Deferreds themselves: they keep nothing alive.

The hot probe also keeps the stack of user calls in progress (loop callbacks and the Deferred
callbacks they fire), which the watchdog reads (``top()``) to name the innermost one.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable

import orjson

from reactor import _instrument
from tracer.bytecounts import attribute_counter
from tracer.recorder import (MAX_FRAMES, Recorder, address, code_of, cut, safe_text, stack_frame,
                             tb_frames)

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any, TypeVar

_now = time.monotonic_ns
_get_ident = threading.get_ident
_dumps = orjson.dumps
#: Frames in the reactor package are skipped when naming where something was scheduled.
_REACTOR_DIR = os.path.dirname(_instrument.__file__) + os.sep
#: The pure-Python probe's own frames (its run_call runs the loop's calls) are not the app's:
#: skipped too, so that both probes name the same sites and tracebacks.
_PYPROBE_FILE = os.path.join(os.path.dirname(__file__), "pyprobe.py")


#: Every instrumentation point of the contract (the public methods of reactor._instrument.Probe).
_HOOKS = [name for name in vars(_instrument.Probe) if not name.startswith("_")]
#: ``hookerr`` lines written per hook: enough to see what fails and why; a hook that fails on
#: every event must not fill the trace (every failure is still counted in ``end``).
HOOK_ERRORS_WRITTEN = 20

if TYPE_CHECKING:
    _Hook = TypeVar("_Hook", bound=Callable[..., None])


def guarded(hook: _Hook) -> _Hook:
    """A hook that never raises: an error in it goes to :meth:`TraceProbe._hook_failed`.

    ``KeyboardInterrupt`` and ``SystemExit`` pass: a signal that lands in a hook is the
    application's, not the hook's failure.
    """
    name = hook.__name__

    @functools.wraps(hook)
    def run(self: TraceProbe, *args: Any) -> None:
        try:
            hook(self, *args)
        except Exception as exc:  # noqa: BLE001 - a hook never raises into the app
            self._hook_failed(name, exc)

    return run  # type: ignore[return-value]


def _caller(frame: Any) -> Any:
    """The first frame outside the reactor package and the probe (``frame`` itself when there
    is none)."""
    f = frame
    while f is not None and (f.f_code.co_filename.startswith(_REACTOR_DIR)
                             or f.f_code.co_filename == _PYPROBE_FILE):
        f = f.f_back
    return f or frame


def _raised_in(exc: BaseException) -> Any:
    """The traceback of a call that raised, from the call itself inward (without the
    pure-Python probe's run_call, where it was caught)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == _PYPROBE_FILE:
        tb = tb.tb_next
    return tb



def debug_stacks(info: Any) -> dict[str, list[list]]:
    """``created`` and ``invoked``: where a Deferred was created and first fired, when
    ``defer.setDebugging(True)`` recorded them (reactor.defer.DebugInfo), innermost last."""
    stacks = {}
    for key, summary in (("created", getattr(info, "creator_stack", None)),
                         ("invoked", getattr(info, "invoker_stack", None))):
        if summary:
            stacks[key] = [stack_frame(str(f.filename), f.lineno or 0, str(f.name))
                           for f in list(summary)[-MAX_FRAMES:]]
    return stacks

class TraceProbe(_instrument.Probe):
    """The Python half of the probe: rare points and slow paths; ``native`` is what is
    installed (a ``Probe`` of tracer._native or tracer.pyprobe, the same one as the
    recorder's buffer: its hot points are its own, the others are this object's methods: the
    C probe forwards them here, the pure-Python one has them bound as its attributes)."""

    def __init__(self, recorder: Recorder, probe_type: Callable[..., Any]) -> None:
        self.rec = recorder
        self.t0 = recorder.t0
        self._append = recorder.append
        #: Modes ("r", "w") each descriptor (by id) is watched in: its fd is unwatched when
        #: none is left or the connection closes, so neither table grows with the connections.
        self._watched: dict[int, str] = {}
        self._hook_errors: dict[str, int] = {}  # hook name -> failures so far
        self._hook_errors_lock = threading.RLock()  # a failure may happen inside another's
        self.native = probe_type(recorder.events, recorder.t0, self)
        for name in _HOOKS:
            if not hasattr(self.native, name):
                setattr(self.native, name, getattr(self, name))
        self.native.reactor_thread = threading.main_thread().ident
        self.top = self.native.top

    @property
    def reactor_thread(self) -> int:
        """Ident of the thread running the reactor (where Deferred callbacks are timed)."""
        return self.native.reactor_thread

    def _line(self, event: dict) -> None:
        """Append a rare event as its finished line (it may hold application text)."""
        self._append(_dumps(event))

    # -- slow paths of the C hooks ---------------------------------------------------
    def _fn_site(self, f: Callable[..., Any]) -> tuple[int, Any]:
        """A callable the C half has not cached: its site, and its code object (or None)."""
        return self.rec.fn_site(f), code_of(f)

    def _origin(self, frame: Any) -> tuple[int, bool]:
        """Site of the line that scheduled or created something: the first frame outside the
        reactor package, from ``frame`` outward; cacheable per line when that is ``frame``."""
        f = _caller(frame)
        return self.rec.line_site(f.f_code, f.f_lineno), f is frame

    def _call_failed(self, t: int, kind: str, site: int, dur: int, depth: int, x: Any,
                     lag: Any, exc: BaseException) -> None:
        """A call that raised: its line in object form (the exception's type name is
        application text), then the ``error`` with the traceback."""
        self.rec.failed_calls += 1
        name = type(exc).__name__
        event = {"t": t, "ev": "call", "kind": kind, "site": site, "dur": dur, "depth": depth,
                 "exc": cut(name)}
        if x is not None:
            event["timer" if kind == "timer" else "fd"] = x
        if lag is not None:
            event["lag"] = lag
        self._line(event)
        self._line({"t": t, "ev": "error", "site": site, "kind": kind, "exc": cut(name),
                    "msg": safe_text(exc), "stack": tb_frames(_raised_in(exc))})

    def _hook_failed(self, hook: str, exc: BaseException) -> None:
        """Hook ``hook`` failed with ``exc``: counted (the ``end`` line's ``hook_errors``) and,
        for the first :data:`HOOK_ERRORS_WRITTEN` failures of each hook, written as a
        ``hookerr`` line.  Never raises (both probes call it from their own guards)."""
        try:
            with self._hook_errors_lock:
                self.rec.hook_errors += 1
                failures = self._hook_errors[hook] = self._hook_errors.get(hook, 0) + 1
            if failures <= HOOK_ERRORS_WRITTEN:
                self._line({"t": _now() - self.t0, "ev": "hookerr", "hook": cut(str(hook)),
                            "exc": cut(type(exc).__name__), "msg": safe_text(exc)})
        except Exception:  # noqa: BLE001, S110 - nowhere left to report it; the app goes on
            pass

    # -- the loop ---------------------------------------------------------------
    @guarded
    def loop_started(self, reactor: Any, thread: int | None = None) -> None:
        """The loop runs, in ``thread`` (default: this one; a loop already running when
        tracing starts may run in another)."""
        self.native.reactor_thread = _get_ident() if thread is None else thread
        self.rec.loop_since = _now()
        self.rec.loop_running = True
        self._line({"t": _now() - self.t0, "ev": "reactor", "state": "running"})

    @guarded
    def loop_stopped(self, reactor: Any) -> None:
        self.rec.loop_running = False
        self._line({"t": _now() - self.t0, "ev": "reactor", "state": "stopped"})

    # -- timers -------------------------------------------------------------------
    @guarded
    def timer_cancelled(self, call: Any) -> None:
        self._line({"t": _now() - self.t0, "ev": "tcancel", "id": call._trace_id or 0})

    # -- descriptors and connections ---------------------------------------------
    @guarded
    def descriptor_added(self, descriptor: Any, fd: int, mode: str) -> None:
        key = id(descriptor)
        self.native.watch_fd(descriptor, fd)
        self._watched[key] = self._watched.get(key, "").replace(mode, "") + mode
        self._line({"t": _now() - self.t0, "ev": "fdadd", "fd": fd, "mode": mode,
                    "type": type(descriptor).__qualname__})

    @guarded
    def descriptor_removed(self, descriptor: Any, fd: int, mode: str) -> None:
        key = id(descriptor)
        modes = self._watched.pop(key, "").replace(mode, "")
        if modes:
            self._watched[key] = modes
        else:  # watched no more: no call can name it until it is added again
            self.native.unwatch_fd(descriptor)
        self._line({"t": _now() - self.t0, "ev": "fdrm", "fd": fd, "mode": mode})

    @guarded
    def connection_opened(self, transport: Any, fd: int, role: str, host: Any, peer: Any) -> None:
        self.native.watch_fd(transport, fd)
        self._line({"t": _now() - self.t0, "ev": "conn", "fd": fd, "role": role,
                    "host": address(host), "peer": address(peer)})
        self.rec.byte_counts.watch(fd, attribute_counter(transport))

    @guarded
    def connection_closed(self, transport: Any, fd: int, reason: Any,
                          bytes_in: int, bytes_out: int) -> None:
        self.native.unwatch_fd(transport)
        self._watched.pop(id(transport), None)
        self.rec.byte_counts.forget(fd)
        value = getattr(reason, "value", reason)
        message = safe_text(value)  # the app's exception: its __str__ may raise
        text = type(value).__name__ + (f": {message}" if message else "")
        self._line({"t": _now() - self.t0, "ev": "close", "fd": fd, "reason": cut(text),
                    "in": bytes_in, "out": bytes_out})

    # -- the thread pool -------------------------------------------------------------
    @guarded
    def thread_submitted(self, job: int, f: Callable[..., Any]) -> None:
        self._line({"t": _now() - self.t0, "ev": "tsub", "job": job, "fn": self.rec.fn_site(f)})

    @guarded
    def thread_started(self, job: int) -> None:
        self._line({"t": _now() - self.t0, "ev": "tstart", "job": job, "tid": _get_ident()})

    @guarded
    def thread_done(self, job: int, exc: BaseException | None) -> None:
        event = {"t": _now() - self.t0, "ev": "tdone", "job": job}
        if exc is not None:
            event["exc"] = cut(type(exc).__name__)
            event["msg"] = safe_text(exc)
        self._line(event)

    # -- Deferreds (the frequent points are the hot probe's) ----------------------------
    @guarded
    def deferred_chained(self, outer: Any, inner: Any) -> None:
        self._line({"t": _now() - self.t0, "ev": "dchain", "d": outer._trace_id or self.native.deferred_id(outer),
                    "inner": inner._trace_id or self.native.deferred_id(inner)})

    @guarded
    def deferred_cancelled(self, d: Any) -> None:
        self._line({"t": _now() - self.t0, "ev": "dcancel", "d": d._trace_id or self.native.deferred_id(d)})

    @guarded
    def deferred_unhandled(self, d: Any, failure: Any) -> None:
        # ``d`` stands in for a Deferred already collected: it only has ``_trace_id``.
        did = d._trace_id or 0
        exc_type = getattr(failure, "type", None)
        # (the pure-Python probe's timed callback is a frame of its own: not the app's)
        frames = [f for f in getattr(failure, "frames", None) or () if f[1] != _PYPROBE_FILE]
        frames = frames[-MAX_FRAMES:]
        stack = [stack_frame(str(f[1]), f[2], str(f[0])) for f in frames]
        event = {"t": _now() - self.t0, "ev": "unhandled", "d": did,
                 "site": self.native.deferred_site(did),
                 "exc": cut(getattr(exc_type, "__name__", None) or safe_text(exc_type)),
                 "msg": safe_text(getattr(failure, "value", failure)), "stack": stack}
        event.update(debug_stacks(getattr(d, "debugInfo", None)))
        self._line(event)

    # -- the watchdog and the application -------------------------------------------------
    @guarded
    def stall(self, now: int, call: tuple, stack: list[list]) -> None:
        """The watchdog saw ``call`` (what :meth:`top` returned) still running at ``now``."""
        _serial, start, kind, _code, site, depth = call
        t = now - self.t0
        since = start - self.t0
        self._line({"t": t, "ev": "stall", "site": site, "kind": kind, "depth": depth,
                    "since": since, "blocked": t - since, "stack": stack})

    @guarded
    def mark(self, label: str) -> None:
        """A user mark (any thread)."""
        self._line({"t": _now() - self.t0, "ev": "mark", "label": safe_text(label)})

    @guarded
    def app_error(self, exc: BaseException) -> None:
        """An exception ended the application's main code."""
        self._line({"t": _now() - self.t0, "ev": "error", "site": 0, "kind": "app",
                    "exc": cut(type(exc).__name__), "msg": safe_text(exc),
                    "stack": tb_frames(exc.__traceback__)})
