"""The recorder: owns the trace file, the event buffer, site interning and the writer thread.

Recording cost is what limits the overhead of tracing, and the writer thread shares the GIL
with the application, so per-event Python work in the writer slows the app as much as work on
its own thread.  The probe (tracer/probe.py) therefore appends events that are already
JSON-ready: a compact row (numbers, booleans, null and the reactor's fixed kind names;
docs/trace-format.md, "Two line forms") for the per-callback kinds, or the finished line (a
JSON object) for the rare ones.  The writer wakes every 100 ms, takes
everything buffered, and turns each run of rows into lines with one orjson call, so its
per-event work is C code.  A follower sees whole lines only, and ``kill -9`` loses at most the
last 100 ms.

The buffer is bounded per batch: when more than about ``capacity`` events (``capacity *
MAX_ROW`` buffer slots) piled up since the last write, the newest ones are dropped and counted
(a ``drop`` event): memory stays bounded and the app never waits for the writer.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from itertools import compress, count, repeat
from operator import is_
from types import CodeType
from typing import Any, Callable

import orjson

from tracer.reader import VERSION

#: Longest string taken from the application (messages, labels, reprs).
MAX_TEXT = 200
#: Most frames kept from a traceback or a stall sample.
MAX_FRAMES = 64
FLUSH_INTERVAL = 0.1
#: Buffer slots per event of ``capacity``: the most a row other than ``poll`` takes.  A batch
#: is cut after ``capacity * MAX_ROW`` slots: about ``capacity`` events, more when they are small.
MAX_ROW = 9
#: Buffer slots serialised by one orjson call: bounds how long the writer holds the GIL.
WRITE_CHUNK = 32768
#: Deferred creation sites remembered (per generation, two generations) to name the Deferred
#: of an unhandled failure.
DEFERRED_SITES_KEPT = 65536


Fragment = orjson.Fragment
#: The bytes that start a row in the writer's orjson output (see Recorder._lines_of): two, so
#: that with the comma before them they are replaced by the three bytes ``]\n[`` in place.
ROW_START = b"\1\1"


def row_kind(kind: str) -> orjson.Fragment:
    """The marker that starts a row of ``kind`` in the buffer."""
    return Fragment(ROW_START + orjson.dumps(kind))


def finished_line(event: dict) -> orjson.Fragment:
    """A rare event, serialised now and framed for the writer (see Recorder._lines_of)."""
    return orjson.Fragment(b"\0" + orjson.dumps(event) + b"\0")


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
    """Owns the trace file, the event buffer, the site table and the writer thread."""

    def __init__(self, path: str, threshold_ms: float, capacity: int = 262_144) -> None:
        self.path = path
        self.threshold_ms = threshold_ms
        self.capacity = capacity
        self.t0 = time.monotonic_ns()
        #: Events in the order they happened: a row is its kind marker (:func:`row_kind`) and
        #: its fields, added flat with one ``extend`` (the buffer then holds no tuple the
        #: garbage collector would have to visit); a rare event is one finished line.  The
        #: writer takes a prefix while other threads go on adding (list operations are atomic).
        self.buffer: list[Any] = []
        self.append: Callable[[Any], None] = self.buffer.append
        self.extend: Callable[[tuple], None] = self.buffer.extend
        self.dropped = 0
        self.written = 0
        self._dropped_reported = 0
        # Loop-health counters the probe updates on the reactor thread.
        self.iterations = 0
        self.idle_ns = 0
        self.poll_since = 0          # monotonic ns while inside the poller, else 0
        self.loop_running = False    # loop samples are written only while the reactor runs
        self.loop_since = 0          # monotonic ns when the loop last started
        self.lags: list[int] = []    # timer lags since the last sample (probe appends)
        self.failed_calls = 0        # calls that raised (written as objects, not rows)
        self._last_sample = self.t0
        self._last_iterations = 0
        self._last_idle = 0
        self._last_failed = 0
        self._calls = 0
        #: Site ids: ``id(code)`` of a function, ``(id(code), line)`` of a line in it.  The
        #: code objects are kept alive (``_codes``) so that their ids are never reused.
        self.sites: dict[Any, int] = {id(None): 0}  # no callable (an addCallback's errback)
        self._codes: list[Any] = []
        self._other_sites: dict[Any, int] = {}       # callables without code, by type and name
        self._site_ids = count(1)
        self._site_lock = threading.Lock()
        self._modules: dict[str, str] = {}
        self._site_lines: list[orjson.Fragment] = []  # every site line, so a drop keeps them
        #: Creation site of recent Deferreds (id -> site), two generations (see _rotate).
        self.deferred_sites: dict[int, int] = {}
        self.deferred_sites_old: dict[int, int] = {}
        self._out: list[bytes] = []
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

    # -- sites (any thread; the probe looks ids up itself and calls these on a miss) --------
    def fn_site(self, f: Any) -> int:
        """Site id of a callable (one per code object), appending its ``site`` line once."""
        code = code_of(f)
        target = getattr(f, "__func__", f)
        module = getattr(target, "__module__", None)
        with self._site_lock:
            if code is not None:
                site = self.sites.get(id(code))
                if site is None:
                    module = module or self._module_of(code.co_filename)
                    name = f"{module}.{code.co_qualname}" if module else code.co_qualname
                    site = self._new_site(name, code.co_filename, code.co_firstlineno)
                    self._codes.append(code)
                    self.sites[id(code)] = site
                return site
            key = (type(f), getattr(f, "__qualname__", None))
            site = self._other_sites.get(key)
            if site is None:
                qualname = getattr(target, "__qualname__", None) or type(f).__qualname__
                site = self._new_site(f"{module}.{qualname}" if module else qualname, "", 0)
                self._other_sites[key] = site
            return site

    def line_site(self, code: Any, line: int) -> int:
        """Site id of a line inside a function (where something was scheduled or created)."""
        key = (id(code), line)
        site = self.sites.get(key)
        if site is not None:
            return site
        with self._site_lock:
            site = self.sites.get(key)
            if site is None:
                module = self._module_of(code.co_filename)
                name = f"{module}.{code.co_qualname}" if module else code.co_qualname
                site = self._new_site(name, code.co_filename, line)
                self._codes.append(code)
                self.sites[key] = site
            return site

    def _new_site(self, fn: str, file: str, line: int) -> int:
        """A new site id, its line appended before any event can use it (lock held)."""
        site = next(self._site_ids)
        text = finished_line({"t": time.monotonic_ns() - self.t0, "ev": "site", "id": site,
                              "fn": cut(fn, 300), "file": file, "line": line})
        self._site_lines.append(text)
        self.append(text)
        return site

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

    def deferred_site(self, d: int) -> int:
        """Where Deferred ``d`` was created, if it is recent enough to be remembered (else 0)."""
        return self.deferred_sites.get(d) or self.deferred_sites_old.get(d, 0)

    def _rotate(self) -> None:
        """Bound the Deferred-site table without a lock: when the current generation is full
        it becomes the old one (a probe that fetched it just before still writes into a table
        that is looked up)."""
        if len(self.deferred_sites) > DEFERRED_SITES_KEPT:
            self.deferred_sites_old = self.deferred_sites
            self.deferred_sites = {}

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
        buffer = self.buffer
        n = len(buffer)
        batch = buffer[:n]  # whole events only: the probe adds each one with one extend
        del buffer[:n]
        if n > self.capacity * MAX_ROW:
            self._drop(batch)
        start, n = 0, len(batch)
        while start < n:
            end = min(start + WRITE_CHUNK, n)
            while end < n and type(batch[end]) is not Fragment:
                end += 1  # a chunk ends where an event starts
            self._lines_of(batch[start:end])
            self._write_out()  # one chunk at a time: the app thread gets the GIL back between
            start = end
        del batch
        if self.dropped != self._dropped_reported:
            self._emit({"t": now - self.t0, "ev": "drop", "n": self.dropped - self._dropped_reported})
            self._dropped_reported = self.dropped
        self._loop_sample(now, final)
        self._rotate()
        self._write_out()

    def _drop(self, batch: list) -> None:
        """Cut ``batch`` after ``capacity * MAX_ROW`` slots (at an event start), counting the
        events after the cut as dropped; ``site`` lines are kept (later events use their ids)."""
        cut = self.capacity * MAX_ROW
        while cut < len(batch) and type(batch[cut]) is not Fragment:
            cut += 1
        tail = batch[cut:]
        starts = list(compress(tail, map(is_, map(type, tail), repeat(Fragment))))
        sites = set(map(id, self._site_lines))
        kept = [item for item in starts if id(item) in sites]
        self.dropped += len(starts) - len(kept)
        del batch[cut:]
        batch += kept

    def _lines_of(self, chunk: list) -> None:
        """Turn buffered events into lines with one orjson call.

        A row is its kind marker (a fragment: :data:`ROW_START` and the kind's name) followed
        by its fields, flat in the buffer.  Rows hold only numbers, booleans, null and the
        reactor's fixed kind names, and orjson never writes bytes 0 or 1 itself (it escapes
        control characters in strings), so the output splits on NUL into runs of rows (even
        parts) and finished lines (odd parts, framed by NULs), and a run of rows into rows at
        each :data:`ROW_START`.
        """
        parts = orjson.dumps(chunk)[1:-1].split(b"\0")
        for i in range(0, len(parts), 2):
            rows = parts[i].strip(b",")
            if rows:
                self._calls += rows.count(ROW_START + b'"call"')
                parts[i] = b"[" + rows[2:].replace(b"," + ROW_START, b"]\n[") + b"]"
            else:
                parts[i] = rows
        self._out.extend(filter(None, parts))

    def _write_out(self) -> None:
        """Write the lines converted so far (whole lines only)."""
        out = self._out
        if out:
            data = b"\n".join(out) + b"\n"
            self._file.write(data)
            self._file.flush()
            self.written += data.count(b"\n")  # a JSON line has no newline inside
            out.clear()

    def _emit(self, event: dict) -> None:
        """Queue a line the writer itself makes (``drop``, ``loop``)."""
        self._out.append(orjson.dumps(event))

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

    def _loop_sample(self, now: int, final: bool = False) -> None:
        """One ``loop`` event covering the time since the previous one (while the loop runs,
        or if it ran since the last sample; ``final`` also writes a short last window)."""
        dt = now - max(self._last_sample, self.loop_since)
        if dt <= 0 or (dt < FLUSH_INTERVAL * 0.5e9 and not final):
            return
        failed = self.failed_calls
        calls = self._calls + failed - self._last_failed
        lags = self.lags
        n_lags = len(lags)
        window = lags[:n_lags]
        del lags[:n_lags]
        self._last_failed = failed
        self._calls = 0
        if not self.loop_running and self.iterations == self._last_iterations and not calls:
            self._last_sample, self._last_idle, self._last_iterations = now, self.idle_ns, self.iterations
            return
        since = self.poll_since
        idle_total = self.idle_ns + (now - since if since else 0)
        idle = min(max(idle_total - self._last_idle, 0), dt)
        iterations = self.iterations
        self._emit({"t": now - self.t0, "ev": "loop", "dt": dt, "it": iterations - self._last_iterations,
                    "busy": dt - idle, "idle": idle, "calls": calls,
                    "lag_max": max(window, default=0),
                    "lag_mean": sum(window) // n_lags if n_lags else 0})
        self._last_sample, self._last_idle, self._last_iterations = now, idle_total, iterations
