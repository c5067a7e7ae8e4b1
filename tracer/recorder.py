"""The recorder: turns what the probe saw into trace lines, off the application's thread.

The probe (tracer/probe.py) only appends small tuples ``(code, monotonic_ns, ...)`` of ids,
code objects and numbers, in the order things happen; everything costly — naming functions,
interning sites, formatting, orjson — happens here, in a writer thread that wakes every
100 ms, takes the whole buffer, and writes whole lines.  A follower therefore sees complete
lines, and ``kill -9`` loses at most the last 100 ms.

The buffer is bounded per batch: when more than ``capacity`` events piled up since the last
write, the newest ones are dropped and counted (a ``drop`` event): memory stays bounded and
the app never waits for the writer.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from itertools import chain, count, islice
from types import CodeType
from typing import Any, Callable

import orjson

from tracer.reader import VERSION

# Tuple codes (the first element of every buffered tuple).
(CALL, DCALL, TIMER, TCANCEL, DNEW, DADD, DFIRE, DCHAIN, DCANCEL, UNHANDLED, FDADD, FDRM, POLL,
 CONN, CLOSE, TSUB, TSTART, TDONE, STALL, MARK, REACTOR, ERROR) = range(22)

#: Longest string taken from the application (messages, labels, reprs).
MAX_TEXT = 200
#: Most frames kept from a traceback or a stall sample.
MAX_FRAMES = 64
FLUSH_INTERVAL = 0.1
#: Events converted between two writes: keeps each C-level call (orjson, join, write) short,
#: because the writer shares the GIL with the application.
WRITE_CHUNK = 2048
#: Deferred creation sites remembered to name an unhandled failure's Deferred.
DEFERRED_SITES_KEPT = 65536


def cut(text: str, limit: int = MAX_TEXT) -> str:
    """Bound a string that came from the application."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_text(obj: object) -> str:
    """``str(obj)``, cut, and never raising (user ``__str__`` may be broken)."""
    try:
        return cut(str(obj))
    except Exception:  # noqa: BLE001 - a recorder must not fail on user objects
        return f"<{type(obj).__name__} with broken __str__>"


def tb_frames(tb: Any) -> list[list]:
    """A traceback as ``[file, line, func]`` triples, innermost last, bounded."""
    out = []
    while tb is not None:
        code = tb.tb_frame.f_code
        out.append([code.co_filename, tb.tb_lineno, code.co_qualname])
        tb = tb.tb_next
    return out[-MAX_FRAMES:]


def address(addr: Any) -> str | None:
    """``host:port`` of a TCP address, the path of a Unix one (``unix`` when unnamed)."""
    if addr is None:
        return None
    host, port = getattr(addr, "host", None), getattr(addr, "port", None)
    if host is not None and port is not None:
        return cut(f"{host}:{port}")
    if hasattr(addr, "name"):
        return safe_text(addr.name) if addr.name else "unix"
    return safe_text(addr)


def code_of(f: Any) -> Any:
    """The code object behind a callable, or None (builtins, C functions).

    Looks through bound methods and ``functools.partial``; a callable instance is named by
    its class's ``__call__``.
    """
    if isinstance(f, CodeType):
        return f
    for _ in range(4):
        code = getattr(f, "__code__", None)
        if code is not None:
            return code
        inner = getattr(f, "__func__", None) or getattr(f, "func", None)  # method, partial
        if inner is None:
            return getattr(getattr(type(f), "__call__", None), "__code__", None)
        f = inner
    return None


class Recorder:
    """Owns the trace file, the event buffer and the writer thread."""

    def __init__(self, path: str, threshold_ms: float, capacity: int = 262_144) -> None:
        self.path = path
        self.threshold_ms = threshold_ms
        self.capacity = capacity
        self.t0 = time.monotonic_ns()
        self.buffer: list[tuple] = []
        self.append: Callable[[tuple], None] = self.buffer.append
        self.dropped = 0
        self.written = 0
        self._dropped_reported = 0
        # Loop-health counters the probe updates on the reactor thread.
        self.iterations = 0
        self.idle_ns = 0
        self.poll_since = 0          # monotonic ns while inside the poller, else 0
        self.loop_running = False    # loop samples are written only while the reactor runs
        self.loop_since = 0          # monotonic ns when the loop last started
        self._last_sample = self.t0
        self._last_iterations = 0
        self._last_idle = 0
        self._calls = 0
        self._lag_sum = 0
        self._lag_n = 0
        self._lag_max = 0
        # Interning and id tables (writer thread only).
        self._sites: dict[Any, int] = {None: 0}  # no callable (an addCallback's errback)
        self._site_ids = count(1)
        self._deferred_sites: dict[int, int] = {}
        self._fds: dict[int, int] = {}
        self._modules: dict[str, str] = {}
        self._previous: tuple[list, int] | None = None
        self._out: list[bytes] = []
        self._rows: list[tuple] = []  # compact events waiting for one bulk orjson call
        self._lines = 0
        self._lock = threading.Lock()
        self._closed = False
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        self._file = os.fdopen(fd, "wb")
        header = {"ev": "trace", "v": VERSION, "pid": os.getpid(),
                  "argv": [cut(a) for a in sys.argv],
                  "python": sys.version.split()[0], "start_wall": time.time(),
                  "threshold_ms": float(threshold_ms), "clock": "monotonic"}
        self._file.write(orjson.dumps(header) + b"\n")
        self._file.flush()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopscope-writer", daemon=True)
        self._thread.start()

    # -- the writer thread -------------------------------------------------------
    def _run(self) -> None:
        while not self._wake.wait(FLUSH_INTERVAL):
            self.flush()

    def flush(self, final: bool = False) -> None:
        """Write everything buffered so far (called by the writer thread and at stop)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._write_batch(final)
            except Exception as e:  # noqa: BLE001 - recording must never take the app down
                print(f"loopscope: warning: trace writer failed: {e}", file=sys.stderr)

    def _write_batch(self, final: bool) -> None:
        now = time.monotonic_ns()
        batch = self.buffer
        self.buffer = []
        self.append = self.buffer.append
        # A thread that fetched the old append just before the swap may still add to the old
        # list: pick those events up from the previous batch on the next round.
        late: list[tuple] = []
        if self._previous is not None:
            old, seen = self._previous
            late = old[seen:]
        if len(batch) > self.capacity:
            self.dropped += len(batch) - self.capacity
            del batch[self.capacity:]
        seen = len(batch)
        convert = _CONVERT
        for n, item in enumerate(chain(late, islice(batch, seen)), 1):
            try:
                convert[item[0]](self, item)
            except Exception:  # noqa: BLE001 - one odd object must not stop the recording
                self.dropped += 1
            if n % WRITE_CHUNK == 0:
                self._write_out()  # bounded C calls: the app thread gets the GIL back often
        self._previous = (batch, seen)
        if self.dropped != self._dropped_reported:
            self._emit({"t": now - self.t0, "ev": "drop", "n": self.dropped - self._dropped_reported})
            self._dropped_reported = self.dropped
        self._loop_sample(now, final)
        if final:
            self._previous = None
        self._write_out()

    def _write_out(self) -> None:
        """Write the lines converted so far (whole lines only)."""
        if self._rows:
            self._flush_rows()
        out = self._out
        if out:
            self._file.write(b"\n".join(out) + b"\n")
            self._file.flush()
            self.written += self._lines
            self._lines = 0
            out.clear()

    def close(self) -> None:
        """Stop the writer thread, write the remaining events and the ``end`` line."""
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.flush(final=True)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            end = {"t": time.monotonic_ns() - self.t0, "ev": "end", "events": self.written,
                   "dropped": self.dropped}
            self._file.write(orjson.dumps(end) + b"\n")
            self._file.close()

    # -- helpers -------------------------------------------------------------------
    def _emit(self, event: dict) -> None:
        """Queue an object line (events that may hold application text)."""
        if self._rows:
            self._flush_rows()
        self._out.append(orjson.dumps(event))
        self._lines += 1

    def _flush_rows(self) -> None:
        """Serialise the queued compact events with one orjson call, one line each.

        Rows hold only numbers, booleans, null and the reactor's fixed kind names — never
        application text and never a nested array — so ``],[`` occurs only between rows.
        """
        rows = self._rows
        self._out.append(orjson.dumps(rows)[1:-1].replace(b"],[", b"]\n["))
        self._lines += len(rows)
        rows.clear()

    def _module_of(self, filename: str) -> str:
        """Module name for a source file (for scheduling sites, where only code is known)."""
        name = self._modules.get(filename)
        if name is None:
            name = ""
            for mod_name, mod in list(sys.modules.items()):
                if getattr(mod, "__file__", None) == filename:
                    name = mod_name
                    break
            self._modules[filename] = name
        return name

    def _new_site(self, key: Any, t: int, fn: str, file: str, line: int) -> int:
        site = self._sites[key] = next(self._site_ids)
        self._emit({"t": t, "ev": "site", "id": site, "fn": cut(fn, 300), "file": file, "line": line})
        return site

    def fn_site(self, f: Any, t: int) -> int:
        """Site id of a callable (one per code object), emitting its ``site`` line once."""
        try:
            site = self._sites.get(f)  # the probe passes code objects: their own key
        except TypeError:  # an unhashable callable
            site = None
        if site is not None:
            return site
        code = code_of(f)
        key = code if code is not None else (type(f), getattr(f, "__qualname__", None))
        site = self._sites.get(key)
        if site is not None:
            return site
        target = getattr(f, "__func__", f)
        module = getattr(target, "__module__", None)
        if code is not None:
            module = module or self._module_of(code.co_filename)
            name = f"{module}.{code.co_qualname}" if module else code.co_qualname
            return self._new_site(key, t, name, code.co_filename, code.co_firstlineno)
        qualname = getattr(target, "__qualname__", None) or type(f).__qualname__
        name = f"{module}.{qualname}" if module else qualname
        return self._new_site(key, t, name, "", 0)

    def line_site(self, code: Any, line: int, t: int) -> int:
        """Site id of a line inside a function (where something was scheduled or created)."""
        key = (code, line)
        site = self._sites.get(key)
        if site is not None:
            return site
        module = self._module_of(code.co_filename)
        name = f"{module}.{code.co_qualname}" if module else code.co_qualname
        return self._new_site(key, t, name, code.co_filename, line)

    def _loop_sample(self, now: int, final: bool = False) -> None:
        """One ``loop`` event covering the time since the previous one (while the loop runs,
        or if it ran since the last sample; ``final`` also writes a short last window)."""
        dt = now - max(self._last_sample, self.loop_since)
        if dt <= 0 or (dt < FLUSH_INTERVAL * 0.5e9 and not final):
            return
        if not self.loop_running and self.iterations == self._last_iterations and not self._calls:
            self._last_sample, self._last_idle, self._last_iterations = now, self.idle_ns, self.iterations
            self._calls = self._lag_sum = self._lag_n = self._lag_max = 0
            return
        since = self.poll_since
        idle_total = self.idle_ns + (now - since if since else 0)
        idle = min(max(idle_total - self._last_idle, 0), dt)
        iterations = self.iterations
        self._emit({"t": now - self.t0, "ev": "loop", "dt": dt, "it": iterations - self._last_iterations,
                    "busy": dt - idle, "idle": idle, "calls": self._calls, "lag_max": self._lag_max,
                    "lag_mean": self._lag_sum // self._lag_n if self._lag_n else 0})
        self._last_sample, self._last_idle, self._last_iterations = now, idle_total, iterations
        self._calls = self._lag_sum = self._lag_n = self._lag_max = 0

    # -- one converter per tuple code ------------------------------------------------
    def _call(self, item: tuple) -> None:
        _, t1, entry, depth, exc = item
        t0, kind, f, x, due = entry
        t = t1 - self.t0
        site = self.fn_site(f, t)
        lag = None
        if kind == "timer":
            if due is not None:
                lag = max(t0 - int(due * 1e9), 0)
                self._lag_sum += lag
                self._lag_n += 1
                if lag > self._lag_max:
                    self._lag_max = lag
        elif kind == "read" or kind == "write":
            x = self._fds.get(x)
        elif kind == "thread" or kind == "trigger":
            x = None
        else:
            kind, x = "other", None  # rows carry only known names (see _flush_rows)
        self._calls += 1
        exc_name = type(exc).__name__ if exc is not None else None
        self._rows.append(("call", t, kind, site, t1 - t0, depth, x, lag, exc_name))
        if exc is not None:
            self._emit({"t": t, "ev": "error", "site": site, "kind": kind, "exc": exc_name,
                        "msg": safe_text(exc), "stack": tb_frames(exc.__traceback__)})

    def _dcall(self, item: tuple) -> None:
        _, t1, entry, depth, failed = item
        t0, _kind, f, d, is_errback = entry
        t = t1 - self.t0
        site = self.fn_site(f, t)
        self._rows.append(("dcall", t, d, site, t1 - t0, depth, bool(is_errback),
                           bool(failed)))

    def _timer(self, item: tuple) -> None:
        _, t, tid, func, due, code, line = item
        t -= self.t0
        site = self.line_site(code, line, t)
        fn = self.fn_site(func, t)
        self._rows.append(("timer", t, tid, site, fn, int(due * 1e9) - self.t0))

    def _tcancel(self, item: tuple) -> None:
        self._emit({"t": item[1] - self.t0, "ev": "tcancel", "id": item[2] or 0})

    def _dnew(self, item: tuple) -> None:
        _, t, did, code, line = item
        t -= self.t0
        site = self.line_site(code, line, t)
        sites = self._deferred_sites
        sites[did] = site
        if len(sites) > DEFERRED_SITES_KEPT:
            del sites[next(iter(sites))]
        self._rows.append(("dnew", t, did, site))

    def _dadd(self, item: tuple) -> None:
        _, t, d, cb, eb = item
        t -= self.t0
        cb_site = self.fn_site(cb, t)
        eb_site = self.fn_site(eb, t)
        self._rows.append(("dadd", t, d, cb_site, eb_site))

    def _dfire(self, item: tuple) -> None:
        self._rows.append(("dfire", item[1] - self.t0, item[2], bool(item[3])))

    def _dchain(self, item: tuple) -> None:
        self._emit({"t": item[1] - self.t0, "ev": "dchain", "d": item[2], "inner": item[3]})

    def _dcancel(self, item: tuple) -> None:
        self._emit({"t": item[1] - self.t0, "ev": "dcancel", "d": item[2]})

    def _unhandled(self, item: tuple) -> None:
        _, t, did, failure = item
        exc_type = getattr(failure, "type", None)
        stack = [[f[1], f[2], f[0]] for f in (getattr(failure, "frames", None) or [])][-MAX_FRAMES:]
        self._emit({"t": t - self.t0, "ev": "unhandled", "d": did,
                    "site": self._deferred_sites.get(did, 0),
                    "exc": getattr(exc_type, "__name__", None) or safe_text(exc_type),
                    "msg": safe_text(getattr(failure, "value", failure)), "stack": stack})

    def _fdadd(self, item: tuple) -> None:
        _, t, descriptor, fd, mode = item
        self._fds[id(descriptor)] = fd
        self._emit({"t": t - self.t0, "ev": "fdadd", "fd": fd, "mode": mode,
                    "type": type(descriptor).__qualname__})

    def _fdrm(self, item: tuple) -> None:
        self._emit({"t": item[1] - self.t0, "ev": "fdrm", "fd": item[3], "mode": item[4]})

    def _poll(self, item: tuple) -> None:
        row = ["poll", item[1] - self.t0, item[2]]
        for fd, mask in item[3]:
            row += (int(fd), int(mask))
        self._rows.append(row)

    def _conn(self, item: tuple) -> None:
        _, t, transport, fd, role, host, peer = item
        self._fds[id(transport)] = fd
        self._emit({"t": t - self.t0, "ev": "conn", "fd": fd, "role": role, "host": address(host),
                    "peer": address(peer)})

    def _close(self, item: tuple) -> None:
        _, t, _transport, fd, reason, bytes_in, bytes_out = item
        value = getattr(reason, "value", reason)
        text = type(value).__name__ + (f": {safe_text(value)}" if str(value) else "")
        self._emit({"t": t - self.t0, "ev": "close", "fd": fd, "reason": cut(text), "in": bytes_in,
                    "out": bytes_out})

    def _tsub(self, item: tuple) -> None:
        t = item[1] - self.t0
        self._emit({"t": t, "ev": "tsub", "job": item[2], "fn": self.fn_site(item[3], t)})

    def _tstart(self, item: tuple) -> None:
        self._emit({"t": item[1] - self.t0, "ev": "tstart", "job": item[2], "tid": item[3]})

    def _tdone(self, item: tuple) -> None:
        ev = {"t": item[1] - self.t0, "ev": "tdone", "job": item[2]}
        exc = item[3]
        if exc is not None:
            ev["exc"] = type(exc).__name__
            ev["msg"] = safe_text(exc)
        self._emit(ev)

    def _stall(self, item: tuple) -> None:
        _, t, entry, depth, stack = item
        t0, kind, f = entry[:3]
        t -= self.t0
        self._emit({"t": t, "ev": "stall", "site": self.fn_site(f, t), "kind": kind, "depth": depth,
                    "since": t0 - self.t0, "blocked": t - (t0 - self.t0), "stack": stack})

    def _mark(self, item: tuple) -> None:
        self._emit({"t": item[1] - self.t0, "ev": "mark", "label": safe_text(item[2])})

    def _reactor(self, item: tuple) -> None:
        self._emit({"t": item[1] - self.t0, "ev": "reactor", "state": item[2]})

    def _error(self, item: tuple) -> None:
        exc = item[2]
        self._emit({"t": item[1] - self.t0, "ev": "error", "site": 0, "kind": "app",
                    "exc": type(exc).__name__, "msg": safe_text(exc),
                    "stack": tb_frames(exc.__traceback__)})


_CONVERT: list[Callable[[Recorder, tuple], None]] = [
    Recorder._call, Recorder._dcall, Recorder._timer, Recorder._tcancel, Recorder._dnew,
    Recorder._dadd, Recorder._dfire, Recorder._dchain, Recorder._dcancel, Recorder._unhandled,
    Recorder._fdadd, Recorder._fdrm, Recorder._poll, Recorder._conn, Recorder._close,
    Recorder._tsub, Recorder._tstart, Recorder._tdone, Recorder._stall, Recorder._mark,
    Recorder._reactor, Recorder._error,
]
