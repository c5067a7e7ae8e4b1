"""The probe: what the reactor calls at each instrumentation point while tracing.

Every method runs on the application's hot path, so each one does the least possible: read the
clock and append one small tuple (ids, code objects, numbers) to the recorder's buffer.
Naming, interning and formatting happen later in the writer thread (tracer/recorder.py).

The probe also keeps the stack of user calls in progress (loop callbacks and the Deferred
callbacks they fire), which the watchdog reads to name the innermost running callback.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from typing import Any, Callable

from reactor import _instrument
from tracer.recorder import (CALL, CLOSE, CONN, DADD, DCALL, DCANCEL, DCHAIN, DFIRE, DNEW, FDADD,
                             FDRM, MARK, POLL, REACTOR, TCANCEL, TDONE, TIMER, TSTART, TSUB,
                             UNHANDLED, Recorder)

_now = time.monotonic_ns
_getframe = sys._getframe
_get_ident = threading.get_ident
#: Frames in the reactor package are skipped when naming where something was scheduled.
_REACTOR_DIR = os.path.dirname(_instrument.__file__) + os.sep


def _caller(frame: Any) -> Any:
    """The first frame outside the reactor package (``frame`` itself when there is none)."""
    f = frame
    while f is not None and f.f_code.co_filename.startswith(_REACTOR_DIR):
        f = f.f_back
    return f or frame


class TraceProbe(_instrument.Probe):
    """Records every instrumentation point into a :class:`Recorder`."""

    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder
        #: Calls in progress on the reactor thread: (start_ns, kind, code or callable, x, y):
        #: x, y are (timer id, due time) for timers, (id of the descriptor, None) for reads and
        #: writes, (Deferred id, is_errback) for Deferred callbacks.
        self.stack: list[tuple] = []
        self.reactor_thread = threading.main_thread().ident
        self._deferred_ids = itertools.count(1)
        self._timer_ids = itertools.count(1)

    # -- the loop ---------------------------------------------------------------
    def loop_started(self, reactor: Any) -> None:
        self.reactor_thread = _get_ident()
        self.rec.loop_since = _now()
        self.rec.loop_running = True
        self.rec.append((REACTOR, _now(), "running"))

    def loop_stopped(self, reactor: Any) -> None:
        self.rec.loop_running = False
        self.rec.append((REACTOR, _now(), "stopped"))

    def poll_begin(self, timeout: float | None) -> None:
        self.rec.poll_since = _now()

    def poll_end(self, ready: list[tuple[int, int]]) -> None:
        rec = self.rec
        t = _now()
        wait = t - rec.poll_since
        rec.poll_since = 0
        rec.idle_ns += wait
        rec.iterations += 1
        if ready:
            rec.append((POLL, t, wait, ready))

    # -- user code run by the loop -------------------------------------------------
    # Buffered tuples hold code objects, numbers and strings rather than the functions,
    # DelayedCalls and Deferreds themselves, so they keep nothing alive and the garbage
    # collector stops tracking them at once (a large tracked backlog makes every full
    # collection long enough to block the loop: the tracer must not cause what it reports).
    def call_begin(self, kind: str, f: Callable[..., Any], source: Any) -> None:
        if kind == "timer":
            x, due = source._trace_id, source.time
        elif kind == "read" or kind == "write":
            x, due = id(source), None
        else:
            x = due = None
        self.stack.append((_now(), kind, getattr(f, "__code__", f), x, due))

    def call_end(self, exc: BaseException | None) -> None:
        stack = self.stack
        if stack:  # empty only when tracing started inside a callback
            self.rec.append((CALL, _now(), stack.pop(), len(stack), exc))

    # -- timers -------------------------------------------------------------------
    def timer_scheduled(self, call: Any) -> None:
        call._trace_id = tid = next(self._timer_ids)
        f = _caller(_getframe(2))
        func = call.func
        self.rec.append((TIMER, _now(), tid, getattr(func, "__code__", func), call.time,
                         f.f_code, f.f_lineno))

    def timer_cancelled(self, call: Any) -> None:
        self.rec.append((TCANCEL, _now(), call._trace_id))

    # -- descriptors and connections ---------------------------------------------
    def descriptor_added(self, descriptor: Any, fd: int, mode: str) -> None:
        self.rec.append((FDADD, _now(), descriptor, fd, mode))

    def descriptor_removed(self, descriptor: Any, fd: int, mode: str) -> None:
        self.rec.append((FDRM, _now(), descriptor, fd, mode))

    def connection_opened(self, transport: Any, fd: int, role: str, host: Any, peer: Any) -> None:
        self.rec.append((CONN, _now(), transport, fd, role, host, peer))

    def connection_closed(self, transport: Any, fd: int, reason: Any,
                          bytes_in: int, bytes_out: int) -> None:
        self.rec.append((CLOSE, _now(), transport, fd, reason, bytes_in, bytes_out))

    # -- the thread pool -------------------------------------------------------------
    def thread_submitted(self, job: int, f: Callable[..., Any]) -> None:
        self.rec.append((TSUB, _now(), job, f))

    def thread_started(self, job: int) -> None:
        self.rec.append((TSTART, _now(), job, _get_ident()))

    def thread_done(self, job: int, exc: BaseException | None) -> None:
        self.rec.append((TDONE, _now(), job, exc))

    # -- Deferreds ------------------------------------------------------------------
    # Deferreds are recorded by trace id, not by reference: buffered events must not keep
    # Deferreds (and their results) alive, which would also make garbage collection slow.
    def _late_id(self, d: Any) -> int:
        """Give an id to a Deferred created before tracing started."""
        d._trace_id = tid = next(self._deferred_ids)
        return tid

    def deferred_created(self, d: Any) -> None:
        # Also needed here, on the creating thread, because the Deferred passes its id on to
        # the object that reports an unhandled failure after the Deferred itself is gone.
        d._trace_id = tid = next(self._deferred_ids)
        f = _caller(_getframe(2))
        self.rec.append((DNEW, _now(), tid, f.f_code, f.f_lineno))

    def deferred_callbacks_added(self, d: Any, callback: Any, errback: Any) -> None:
        self.rec.append((DADD, _now(), d._trace_id or self._late_id(d),
                         getattr(callback, "__code__", callback), getattr(errback, "__code__", errback)))

    def deferred_fired(self, d: Any, is_failure: bool) -> None:
        self.rec.append((DFIRE, _now(), d._trace_id or self._late_id(d), is_failure))

    # A Deferred fired in another thread (a pool thread calling d.callback) runs its callbacks
    # there: they do not hold the loop, so they are neither on the loop's stack nor timed.
    def deferred_callback_begin(self, d: Any, f: Callable[..., Any], is_errback: bool) -> None:
        if _get_ident() == self.reactor_thread:
            self.stack.append((_now(), "deferred", getattr(f, "__code__", f),
                               d._trace_id or self._late_id(d), is_errback))

    def deferred_callback_end(self, d: Any, result_is_failure: bool) -> None:
        stack = self.stack
        if stack and _get_ident() == self.reactor_thread:
            self.rec.append((DCALL, _now(), stack.pop(), len(stack), result_is_failure))

    def deferred_chained(self, outer: Any, inner: Any) -> None:
        self.rec.append((DCHAIN, _now(), outer._trace_id or self._late_id(outer),
                         inner._trace_id or self._late_id(inner)))

    def deferred_cancelled(self, d: Any) -> None:
        self.rec.append((DCANCEL, _now(), d._trace_id or self._late_id(d)))

    def deferred_unhandled(self, d: Any, failure: Any) -> None:
        # ``d`` stands in for a Deferred already collected: it only has ``_trace_id``.
        self.rec.append((UNHANDLED, _now(), d._trace_id or 0, failure))

    # -- the application ---------------------------------------------------------------
    def mark(self, label: str) -> None:
        """A user mark (any thread)."""
        self.rec.append((MARK, _now(), label))
