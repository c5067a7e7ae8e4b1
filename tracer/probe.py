"""The probe: what the reactor calls at each instrumentation point while tracing.

Every method runs on the application's hot path, and the writer thread competes with the
application for the GIL, so the cheapest place for any per-event work is here, once: each
method reads the clock, looks its sites up (one dict lookup on ``id`` of a code object; only a
miss interns the site and appends its ``site`` line) and adds an event that is already
JSON-ready — a compact row (kind marker and fields, flat, one ``extend``) for the per-callback
kinds, the finished line for the rare ones.  The writer then turns a run of rows into lines
with one orjson call (tracer/recorder.py).

Buffered rows hold only numbers, booleans and kind markers, never the functions,
DelayedCalls or Deferreds themselves, and no container: they keep nothing alive and give the
garbage collector nothing to visit (a large tracked backlog makes collections frequent and
full ones long enough to block the loop — the tracer must not cause what it reports).

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
from tracer.recorder import Recorder, address, cut, finished_line, row_kind, safe_text, tb_frames

_now = time.monotonic_ns
_getframe = sys._getframe
_get_ident = threading.get_ident
_flatten = itertools.chain.from_iterable
#: Frames in the reactor package are skipped when naming where something was scheduled.
_REACTOR_DIR = os.path.dirname(_instrument.__file__) + os.sep
_CALL, _DCALL, _TIMER, _DNEW, _DADD, _DFIRE, _POLL = map(
    row_kind, ("call", "dcall", "timer", "dnew", "dadd", "dfire", "poll"))
#: Call kinds written as such; any other becomes "other" (rows carry only known names).
_KINDS = {"timer": "timer", "read": "read", "write": "write", "thread": "thread", "trigger": "trigger"}


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
        self.t0 = recorder.t0
        self._append = recorder.append
        self._row = recorder.extend
        self._sites = recorder.sites
        #: Calls in progress on the reactor thread: (start_ns, kind, code or callable, site, x, y):
        #: x, y are (timer id, lag) for timers, (fd or None, None) for reads and writes,
        #: (Deferred id, is_errback) for Deferred callbacks, (None, None) otherwise.
        self.stack: list[tuple] = []
        self.reactor_thread = threading.main_thread().ident
        self._deferred_ids = itertools.count(1)
        self._timer_ids = itertools.count(1)
        self._fds: dict[int, int] = {}  # id of a descriptor or transport -> its fd
        self._push = self.stack.append
        self._lag = recorder.lags.append

    def _line(self, event: dict) -> None:
        """Append a rare event as its finished line (it may hold application text)."""
        self._append(finished_line(event))

    # -- the loop ---------------------------------------------------------------
    def loop_started(self, reactor: Any) -> None:
        self.reactor_thread = _get_ident()
        self.rec.loop_since = _now()
        self.rec.loop_running = True
        self._line({"t": _now() - self.t0, "ev": "reactor", "state": "running"})

    def loop_stopped(self, reactor: Any) -> None:
        self.rec.loop_running = False
        self._line({"t": _now() - self.t0, "ev": "reactor", "state": "stopped"})

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
            self._row((_POLL, t - self.t0, wait, *_flatten(ready)))

    # -- user code run by the loop -------------------------------------------------
    def call_begin(self, kind: str, f: Callable[..., Any], source: Any) -> None:
        code = getattr(f, "__code__", f)
        site = self._sites.get(id(code))
        if site is None:
            site = self.rec.fn_site(f)
        if kind == "timer":
            t = _now()
            lag = t - int(source.time * 1e9)
            if lag < 0:
                lag = 0
            self._lag(lag)
            self._push((t, "timer", code, site, source._trace_id, lag))
        elif kind == "read" or kind == "write":
            self._push((_now(), kind, code, site, self._fds.get(id(source)), None))
        else:
            self._push((_now(), _KINDS.get(kind, "other"), code, site, None, None))

    def call_end(self, exc: BaseException | None) -> None:
        stack = self.stack
        if stack:  # empty only when tracing started inside a callback
            t = _now()
            t0, kind, _code, site, x, lag = stack.pop()
            if exc is None:
                self._row((_CALL, t - self.t0, kind, site, t - t0, len(stack), x, lag, None))
            else:
                self._call_failed(t - self.t0, kind, site, t - t0, len(stack), x, lag, exc)

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

    # -- timers -------------------------------------------------------------------
    def timer_scheduled(self, call: Any) -> None:
        call._trace_id = tid = next(self._timer_ids)
        sites = self._sites
        f = _getframe(2)
        site = sites.get((id(f.f_code), f.f_lineno))  # only lines outside reactor/ are keys
        if site is None:
            site = self._origin(f)
        func = call.func
        fn = sites.get(id(getattr(func, "__code__", func)))
        if fn is None:
            fn = self.rec.fn_site(func)
        t0 = self.t0
        self._row((_TIMER, _now() - t0, tid, site, fn, int(call.time * 1e9) - t0))

    def _origin(self, frame: Any) -> int:
        """Site of the line that scheduled or created something: the first frame outside the
        reactor package, from ``frame`` (its caller's caller) outward."""
        f = _caller(frame)
        return self.rec.line_site(f.f_code, f.f_lineno)

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
        fn = self._sites.get(id(getattr(f, "__code__", f)))
        if fn is None:
            fn = self.rec.fn_site(f)
        self._line({"t": _now() - self.t0, "ev": "tsub", "job": job, "fn": fn})

    def thread_started(self, job: int) -> None:
        self._line({"t": _now() - self.t0, "ev": "tstart", "job": job, "tid": _get_ident()})

    def thread_done(self, job: int, exc: BaseException | None) -> None:
        event = {"t": _now() - self.t0, "ev": "tdone", "job": job}
        if exc is not None:
            event["exc"] = cut(type(exc).__name__)
            event["msg"] = safe_text(exc)
        self._line(event)

    # -- Deferreds ------------------------------------------------------------------
    # Deferreds are recorded by trace id, not by reference: buffered events must not keep
    # Deferreds (and their results) alive, which would also make garbage collection slow.
    def _late_id(self, d: Any) -> int:
        """Give an id to a Deferred created before tracing started."""
        d._trace_id = tid = next(self._deferred_ids)
        return tid

    def deferred_created(self, d: Any) -> None:
        # The id is set here, on the creating thread, because the Deferred passes it on to
        # the object that reports an unhandled failure after the Deferred itself is gone.
        d._trace_id = tid = next(self._deferred_ids)
        f = _getframe(2)
        site = self._sites.get((id(f.f_code), f.f_lineno))  # only lines outside reactor/ are keys
        if site is None:
            site = self._origin(f)
        self.rec.deferred_sites[tid] = site
        self._row((_DNEW, _now() - self.t0, tid, site))

    def deferred_callbacks_added(self, d: Any, callback: Any, errback: Any) -> None:
        sites = self._sites
        if callback is None:
            cb = 0
        else:
            cb = sites.get(id(getattr(callback, "__code__", callback)))
            if cb is None:
                cb = self.rec.fn_site(callback)
        if errback is None:
            eb = 0
        else:
            eb = sites.get(id(getattr(errback, "__code__", errback)))
            if eb is None:
                eb = self.rec.fn_site(errback)
        self._row((_DADD, _now() - self.t0, d._trace_id or self._late_id(d), cb, eb))

    def deferred_fired(self, d: Any, is_failure: bool) -> None:
        self._row((_DFIRE, _now() - self.t0, d._trace_id or self._late_id(d), is_failure))

    # A Deferred fired in another thread (a pool thread calling d.callback) runs its callbacks
    # there: they do not hold the loop, so they are neither on the loop's stack nor timed.
    def deferred_callback_begin(self, d: Any, f: Callable[..., Any], is_errback: bool) -> None:
        if _get_ident() == self.reactor_thread:
            code = getattr(f, "__code__", f)
            site = self._sites.get(id(code))
            if site is None:
                site = self.rec.fn_site(f)
            self._push((_now(), "deferred", code, site, d._trace_id or self._late_id(d), is_errback))

    def deferred_callback_end(self, d: Any, result_is_failure: bool) -> None:
        stack = self.stack
        if stack and _get_ident() == self.reactor_thread:
            t = _now()
            t0, _kind, _code, site, did, is_errback = stack.pop()
            self._row((_DCALL, t - self.t0, did, site, t - t0, len(stack), is_errback,
                          result_is_failure))

    def deferred_chained(self, outer: Any, inner: Any) -> None:
        self._line({"t": _now() - self.t0, "ev": "dchain", "d": outer._trace_id or self._late_id(outer),
                    "inner": inner._trace_id or self._late_id(inner)})

    def deferred_cancelled(self, d: Any) -> None:
        self._line({"t": _now() - self.t0, "ev": "dcancel", "d": d._trace_id or self._late_id(d)})

    def deferred_unhandled(self, d: Any, failure: Any) -> None:
        # ``d`` stands in for a Deferred already collected: it only has ``_trace_id``.
        did = d._trace_id or 0
        exc_type = getattr(failure, "type", None)
        stack = [[f[1], f[2], f[0]] for f in (getattr(failure, "frames", None) or [])][-64:]
        self._line({"t": _now() - self.t0, "ev": "unhandled", "d": did,
                    "site": self.rec.deferred_site(did),
                    "exc": cut(getattr(exc_type, "__name__", None) or safe_text(exc_type)),
                    "msg": safe_text(getattr(failure, "value", failure)), "stack": stack})

    # -- the watchdog and the application -------------------------------------------------
    def stall(self, now: int, entry: tuple, depth: int, stack: list[list]) -> None:
        """The watchdog saw ``entry`` (a stack entry) still running at ``now`` (its thread)."""
        t = now - self.t0
        since = entry[0] - self.t0
        self._line({"t": t, "ev": "stall", "site": entry[3], "kind": entry[1], "depth": depth,
                    "since": since, "blocked": t - since, "stack": stack})

    def mark(self, label: str) -> None:
        """A user mark (any thread)."""
        self._line({"t": _now() - self.t0, "ev": "mark", "label": safe_text(label)})

    def app_error(self, exc: BaseException) -> None:
        """An exception ended the application's main code."""
        self._line({"t": _now() - self.t0, "ev": "error", "site": 0, "kind": "app",
                    "exc": cut(type(exc).__name__), "msg": safe_text(exc),
                    "stack": tb_frames(exc.__traceback__)})
