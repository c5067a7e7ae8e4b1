"""The probe: what the reactor calls at each instrumentation point while tracing.

The points that fire once or more per callback run (poll, call begin/end and run_call, timer
scheduled, Deferred created/callbacks added/fired/callback begin/end) are C methods of
``tracer._native.Probe``: a Python method call alone would cost more than the whole overhead
budget allows (tracer/_native.c says why).  The object installed in the reactor is that C
probe itself; the rare points are the Python methods of :class:`TraceProbe` below, which
binds them onto it.  The C hooks cache sites per code object and ask this class on a miss
(:meth:`TraceProbe._fn_site`, :meth:`TraceProbe._origin`), and hand a call that raised to
:meth:`TraceProbe._call_failed`.  Every rare point appends its finished line to the same
buffer as the C hooks, so the file keeps the order in which things happened.

Buffered events hold only numbers and finished lines, never the functions, DelayedCalls or
Deferreds themselves: they keep nothing alive.

The C probe also keeps the stack of user calls in progress (loop callbacks and the Deferred
callbacks they fire), which the watchdog reads (``top()``) to name the innermost one.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

import orjson

from reactor import _instrument
from tracer import _native
from tracer.recorder import Recorder, address, code_of, cut, safe_text, tb_frames

_now = time.monotonic_ns
_get_ident = threading.get_ident
_dumps = orjson.dumps
#: Frames in the reactor package are skipped when naming where something was scheduled.
_REACTOR_DIR = os.path.dirname(_instrument.__file__) + os.sep


#: Every instrumentation point of the contract (the public methods of reactor._instrument.Probe).
_HOOKS = [name for name in vars(_instrument.Probe) if not name.startswith("_")]


def _caller(frame: Any) -> Any:
    """The first frame outside the reactor package (``frame`` itself when there is none)."""
    f = frame
    while f is not None and f.f_code.co_filename.startswith(_REACTOR_DIR):
        f = f.f_back
    return f or frame


class TraceProbe(_instrument.Probe):
    """The Python half of the probe: rare points and slow paths; ``native`` is what is
    installed (its hot points are C, the others are bound to this object's methods)."""

    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder
        self.t0 = recorder.t0
        self._append = recorder.append
        self._fds: dict[int, int] = {}  # id of a descriptor or transport -> its fd
        self.native = _native.Probe(recorder.events, self._fds, recorder.t0, self)
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
                    "msg": safe_text(exc), "stack": tb_frames(exc.__traceback__)})

    # -- the loop ---------------------------------------------------------------
    def loop_started(self, reactor: Any) -> None:
        self.native.reactor_thread = _get_ident()
        self.rec.loop_since = _now()
        self.rec.loop_running = True
        self._line({"t": _now() - self.t0, "ev": "reactor", "state": "running"})

    def loop_stopped(self, reactor: Any) -> None:
        self.rec.loop_running = False
        self._line({"t": _now() - self.t0, "ev": "reactor", "state": "stopped"})

    # -- timers -------------------------------------------------------------------
    def timer_cancelled(self, call: Any) -> None:
        self._line({"t": _now() - self.t0, "ev": "tcancel", "id": call._trace_id or 0})

    # -- descriptors and connections ---------------------------------------------
    def descriptor_added(self, descriptor: Any, fd: int, mode: str) -> None:
        self._fds[id(descriptor)] = fd
        self._line({"t": _now() - self.t0, "ev": "fdadd", "fd": fd, "mode": mode,
                    "type": type(descriptor).__qualname__})

    def descriptor_removed(self, descriptor: Any, fd: int, mode: str) -> None:
        self._line({"t": _now() - self.t0, "ev": "fdrm", "fd": fd, "mode": mode})

    def connection_opened(self, transport: Any, fd: int, role: str, host: Any, peer: Any) -> None:
        self._fds[id(transport)] = fd
        self._line({"t": _now() - self.t0, "ev": "conn", "fd": fd, "role": role,
                    "host": address(host), "peer": address(peer)})

    def connection_closed(self, transport: Any, fd: int, reason: Any,
                          bytes_in: int, bytes_out: int) -> None:
        value = getattr(reason, "value", reason)
        text = type(value).__name__ + (f": {safe_text(value)}" if str(value) else "")
        self._line({"t": _now() - self.t0, "ev": "close", "fd": fd, "reason": cut(text),
                    "in": bytes_in, "out": bytes_out})

    # -- the thread pool -------------------------------------------------------------
    def thread_submitted(self, job: int, f: Callable[..., Any]) -> None:
        self._line({"t": _now() - self.t0, "ev": "tsub", "job": job, "fn": self.rec.fn_site(f)})

    def thread_started(self, job: int) -> None:
        self._line({"t": _now() - self.t0, "ev": "tstart", "job": job, "tid": _get_ident()})

    def thread_done(self, job: int, exc: BaseException | None) -> None:
        event = {"t": _now() - self.t0, "ev": "tdone", "job": job}
        if exc is not None:
            event["exc"] = cut(type(exc).__name__)
            event["msg"] = safe_text(exc)
        self._line(event)

    # -- Deferreds (the frequent points are C) ------------------------------------------
    def deferred_chained(self, outer: Any, inner: Any) -> None:
        self._line({"t": _now() - self.t0, "ev": "dchain", "d": outer._trace_id or self.native.deferred_id(outer),
                    "inner": inner._trace_id or self.native.deferred_id(inner)})

    def deferred_cancelled(self, d: Any) -> None:
        self._line({"t": _now() - self.t0, "ev": "dcancel", "d": d._trace_id or self.native.deferred_id(d)})

    def deferred_unhandled(self, d: Any, failure: Any) -> None:
        # ``d`` stands in for a Deferred already collected: it only has ``_trace_id``.
        did = d._trace_id or 0
        exc_type = getattr(failure, "type", None)
        stack = [[f[1], f[2], f[0]] for f in (getattr(failure, "frames", None) or [])][-64:]
        self._line({"t": _now() - self.t0, "ev": "unhandled", "d": did,
                    "site": self.native.deferred_site(did),
                    "exc": cut(getattr(exc_type, "__name__", None) or safe_text(exc_type)),
                    "msg": safe_text(getattr(failure, "value", failure)), "stack": stack})

    # -- the watchdog and the application -------------------------------------------------
    def stall(self, now: int, call: tuple, stack: list[list]) -> None:
        """The watchdog saw ``call`` (what :meth:`top` returned) still running at ``now``."""
        _serial, start, kind, _code, site, depth = call
        t = now - self.t0
        since = start - self.t0
        self._line({"t": t, "ev": "stall", "site": site, "kind": kind, "depth": depth,
                    "since": since, "blocked": t - since, "stack": stack})

    def mark(self, label: str) -> None:
        """A user mark (any thread)."""
        self._line({"t": _now() - self.t0, "ev": "mark", "label": safe_text(label)})

    def app_error(self, exc: BaseException) -> None:
        """An exception ended the application's main code."""
        self._line({"t": _now() - self.t0, "ev": "error", "site": 0, "kind": "app",
                    "exc": cut(type(exc).__name__), "msg": safe_text(exc),
                    "stack": tb_frames(exc.__traceback__)})
