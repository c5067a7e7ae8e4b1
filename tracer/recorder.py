"""The recorder: owns the trace file, the event buffer, site interning and the writer thread.

Recording cost is what limits the overhead of tracing, so the event buffer and the hot
instrumentation points are C (tracer/_native.c): a hook appends a few integers, and the writer
thread turns them into JSON lines with the GIL released, so it does not compete with the
application.  Without the extension the same buffer and hooks are pure Python
(tracer/pyprobe.py), slower but writing the same lines; tracer.backend chooses.  Rare events
(connections, errors, stalls, marks, sites) are serialised here with orjson and go into the
same buffer as finished lines, so the file keeps the order in which things happened.  The
writer wakes every 100 ms (sooner when the buffer is half full) and writes everything
buffered: a follower sees whole lines only, and ``kill -9`` loses at most the last 100 ms.

The buffer is bounded per batch: when ``capacity`` events piled up since the last write, newer
ones are dropped and counted (a ``drop`` event), except ``site`` lines, which later events need:
memory stays bounded and the app never waits for the writer.
"""

from __future__ import annotations

import functools
import os
import select
import sys
import threading
import time
from itertools import count
from types import CodeType
from typing import Any, Callable

import orjson

from tracer.reader import VERSION

#: Longest string taken from the application (messages, labels, reprs).
MAX_TEXT = 200
#: Most frames kept from a traceback or a stall sample.
MAX_FRAMES = 64
FLUSH_INTERVAL = 0.1


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


def function_of(f: Any) -> Any:
    """The Python function behind a callable, or None (builtins, C functions).

    Looks through bound methods and ``functools.partial``; a callable instance is run by its
    class's ``__call__``.
    """
    for _ in range(4):
        if getattr(f, "__code__", None) is not None:
            return f
        inner = getattr(f, "__func__", None) or getattr(f, "func", None)  # method, partial
        if inner is None:
            call = getattr(type(f), "__call__", None)
            return call if getattr(call, "__code__", None) is not None else None
        f = inner
    return None


def inherited_by(f: Any) -> type | None:
    """The class a bound method was called on, when it inherited the method (else None).

    ``Chat().dataReceived`` where Chat subclasses LineReceiver runs LineReceiver's code, but
    the callback a user knows is Chat's: such a callback is named after the instance's class.
    """
    while isinstance(f, functools.partial):
        f = f.func
    bound, function = getattr(f, "__self__", None), getattr(f, "__func__", None)
    if bound is None or getattr(function, "__code__", None) is None:
        return None
    owner = bound if isinstance(bound, type) else type(bound)
    if function.__qualname__ == f"{owner.__qualname__}.{function.__name__}":
        return None
    return owner


def code_of(f: Any) -> Any:
    """The code object behind a callable (see :func:`function_of`), or None."""
    if isinstance(f, CodeType):
        return f
    return getattr(function_of(f), "__code__", None)


class Recorder:
    """Owns the trace file, the event buffer, the site table and the writer thread."""

    def __init__(self, path: str, threshold_ms: float, capacity: int = 262_144, *,
                 buffer_type: Callable[[int, int], Any]) -> None:
        self.path = path
        self.threshold_ms = threshold_ms
        self.t0 = time.monotonic_ns()
        #: The writer waits on this pipe: woken early when the buffer is half full (by the C
        #: buffer, without the GIL) and at close.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stopping = False
        #: Events in the order they happened, until the writer drains them (the ``Buffer`` of
        #: tracer._native or tracer.pyprobe).
        self.events = buffer_type(capacity, self._wake_w)
        #: Append a rare event's finished line (``keep``: never dropped); any thread.
        self.append: Callable[..., None] = self.events.line
        self.written = 0
        self._dropped_reported = 0
        self.loop_running = False    # loop samples are written only while the reactor runs
        self.loop_since = 0          # monotonic ns when the loop last started
        self.failed_calls = 0        # calls that raised (written as objects by the probe)
        self.hook_errors = 0         # errors inside the probe's hooks (the probe counts them)
        self._last_sample = self.t0
        self._last_iterations = 0
        self._last_idle = 0
        self._last_failed = 0
        self._calls = 0
        #: Site ids: ``id(code)`` of a function, ``(id(code), line)`` of a line in it,
        #: ``(id(code), cls)`` of a method that class inherited.  The code objects are kept
        #: alive (``_codes``) so that their ids are never reused (the C probe caches sites by
        #: code object and class address on the same promise).
        self.sites: dict[Any, int] = {id(None): 0}  # no callable (an addCallback's errback)
        self._codes: list[Any] = []
        self._classes: dict[int, type] = {}  # classes of bound methods seen (kept alive)
        self._other_sites: dict[Any, int] = {}       # callables without code, by type and name
        self._site_ids = count(1)
        self._site_lock = threading.Lock()
        self._modules: dict[str, str] = {}
        self._out: list[bytes] = []
        self._lock = threading.Lock()
        self._closed = False
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(self._fd, 0o600)
        header = {"ev": "trace", "v": VERSION, "pid": os.getpid(),
                  "argv": [cut(a) for a in sys.argv],
                  "python": sys.version.split()[0], "start_wall": time.time(),
                  "threshold_ms": float(threshold_ms), "clock": "monotonic"}
        os.write(self._fd, orjson.dumps(header) + b"\n")
        self._thread = threading.Thread(target=self._run, name="loopscope-writer", daemon=True)
        self._thread.start()

    # -- sites (any thread; the probe looks ids up itself and calls these on a miss) --------
    def fn_site(self, f: Any) -> int:
        """Site id of a callable (one per code object), appending its ``site`` line once."""
        function = function_of(f)
        code = getattr(function, "__code__", None)
        target = function if function is not None else f
        module = getattr(target, "__module__", None)
        owner = inherited_by(f)
        with self._site_lock:
            bound = getattr(f, "__self__", None)
            if bound is not None:  # the C probe caches methods per class: keep classes alive
                cls = bound if isinstance(bound, type) else type(bound)
                self._classes.setdefault(id(cls), cls)
            if code is not None:
                key = id(code) if owner is None else (id(code), owner)
                site = self.sites.get(key)
                if site is None:
                    if owner is not None:
                        name = f"{owner.__module__}.{owner.__qualname__}.{function.__name__}"
                    else:
                        module = module or self._module_of(code.co_filename)
                        name = f"{module}.{code.co_qualname}" if module else code.co_qualname
                    site = self._new_site(name, code.co_filename, code.co_firstlineno)
                    self._codes.append(code)
                    self.sites[key] = site
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
        self.append(orjson.dumps({"t": time.monotonic_ns() - self.t0, "ev": "site", "id": site,
                                  "fn": cut(fn, 300), "file": file, "line": line}), True)
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

    # -- the writer thread -------------------------------------------------------
    def _run(self) -> None:
        wake = self._wake_r
        while not self._stopping:
            if select.select([wake], [], [], FLUSH_INTERVAL)[0]:
                os.read(wake, 4096)
            if not self._stopping:
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
        lines, calls = self.events.drain(self._fd)
        self.written += lines
        self._calls += calls
        dropped = self.events.dropped
        if dropped != self._dropped_reported:
            self._emit({"t": now - self.t0, "ev": "drop", "n": dropped - self._dropped_reported})
            self._dropped_reported = dropped
        self._loop_sample(now, final)
        self._write_out()

    def _write_out(self) -> None:
        """Write the lines the writer itself made (``drop``, ``loop``)."""
        out = self._out
        if out:
            data = b"\n".join(out) + b"\n"
            os.write(self._fd, data)
            self.written += len(out)
            out.clear()

    def _emit(self, event: dict) -> None:
        """Queue a line the writer itself makes (``drop``, ``loop``)."""
        self._out.append(orjson.dumps(event))

    def close(self) -> None:
        """Stop the writer thread, write the remaining events and the ``end`` line."""
        if self._stopping:
            return
        self._stopping = True
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:
            pass  # the pipe is full: the writer is being woken already
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.flush(final=True)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            end = {"t": time.monotonic_ns() - self.t0, "ev": "end", "events": self.written,
                   "dropped": self.events.dropped, "hook_errors": self.hook_errors}
            os.write(self._fd, orjson.dumps(end) + b"\n")
            os.close(self._fd)
        # A hook still holding the probe (a Deferred chain that was running when tracing
        # stopped) may still record: it must not write to a descriptor number reused later.
        self.events.wake_fd = -1
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _loop_sample(self, now: int, final: bool = False) -> None:
        """One ``loop`` event covering the time since the previous one (while the loop runs,
        or if it ran since the last sample; ``final`` also writes a short last window)."""
        dt = now - max(self._last_sample, self.loop_since)
        if dt <= 0 or (dt < FLUSH_INTERVAL * 0.5e9 and not final):
            return
        events = self.events
        failed = self.failed_calls
        calls = self._calls + failed - self._last_failed
        lag_max, lag_mean = events.take_lags()
        self._last_failed = failed
        self._calls = 0
        iterations = events.iterations
        if not self.loop_running and iterations == self._last_iterations and not calls:
            self._last_sample, self._last_idle, self._last_iterations = now, events.idle_ns, iterations
            return
        since = events.poll_since
        idle_total = events.idle_ns + (now - since if since else 0)
        idle = min(max(idle_total - self._last_idle, 0), dt)
        self._emit({"t": now - self.t0, "ev": "loop", "dt": dt, "it": iterations - self._last_iterations,
                    "busy": dt - idle, "idle": idle, "calls": calls,
                    "lag_max": lag_max, "lag_mean": lag_mean})
        self._last_sample, self._last_idle, self._last_iterations = now, idle_total, iterations
