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
from collections.abc import Callable

import orjson

from tracer.bytecounts import ByteCounts
from tracer.output import DRAIN_TIMEOUT, WAIT_STEP, Owned, TraceOutput, wake_pipe, warn
from tracer.format import MAX_ARGS, MAX_FRAMES, MAX_NAME, MAX_PATH, VERSION, cut, stack_frame

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MAX_FRAMES", "Recorder", "address", "code_of", "cut", "safe_text", "stack_frame",
           "tb_frames"]

#: Seconds between the writer's batches: what ``kill -9`` loses at most and how far a follower
#: lags.  More batches cost the loop more than their events do: in a trial that woke the writer
#: every 4096 events, the mixed server of bench/run.py ran 1.22x its untraced time, against
#: 1.12x with this interval in the same rounds (and 1.11x the time it ran with a 0.4 s
#: interval, in another run).  Why is not known: twenty more GIL hand-overs a batch cost
#: nothing measurable.
FLUSH_INTERVAL = 0.1
#: The switch interval while the writer writes a batch (see Recorder._flush_promptly): the
#: loop hands the GIL over after 0.1 ms rather than 5, a dozen times a batch.  With it, the
#: writer starts a batch as soon as the buffer is half full and writes 130,000 events in
#: 11-15 ms; without, batches started 20-50 ms late and took 20-40 ms.
WRITER_SWITCH_S = 0.0001
#: Places (name, file, line) whose site ids are remembered; a place forgotten and seen again
#: gets a new id and ``site`` line.  At about 250 bytes a place, 16384 of them bound the table
#: to about 4 MB, and are more than a program names unless it makes names at run time
#: (a class per request): then the trace repeats a place rather than the tracer growing.
PLACES_KEPT = 16_384
#: Objects (code objects, classes of bound methods, types of callables without code) whose
#: sites are looked up by identity, kept alive while they are (so that their ids are not
#: reused).  As the probes' SITES_CACHED (tracer/_native.c says why the number): a full table
#: forgets them all, so the functions and classes a program makes and drops at run time are
#: not kept.
OBJECTS_KEPT = 4096


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
        out.append(stack_frame(code.co_filename, tb.tb_lineno, code.co_qualname))
        tb = tb.tb_next
    return out[-MAX_FRAMES:]


def header_argv(argv: list[str]) -> list[str]:
    """``sys.argv`` for the header, bounded (a reader must be able to read line 1): each item
    cut, at most :data:`MAX_ARGS` of them and then one saying how many more there were."""
    out = [cut(str(a)) for a in argv[:MAX_ARGS]]
    if len(argv) > MAX_ARGS:
        out.append(f"… {len(argv) - MAX_ARGS} more")
    return out


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
            call = getattr(type(f), "__call__", None)  # noqa: B004 - the method itself, its code
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
    if bound is None or function is None or getattr(function, "__code__", None) is None:
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
                 buffer_type: Callable[[int, int], Any],
                 drain_timeout: float = DRAIN_TIMEOUT, lineage: dict | None = None,
                 argv: list[str] | None = None) -> None:
        self.path = path
        self.threshold_ms = threshold_ms
        self.t0 = time.monotonic_ns()
        #: The trace file (first: when it is refused there is nothing else to undo).
        self.output = TraceOutput(path)
        #: Seconds close() waits for the trace to be written before counting the rest lost.
        self.drain_timeout = drain_timeout
        self._stopping = False
        #: Events in the order they happened, until the writer drains them (the ``Buffer`` of
        #: tracer._native or tracer.pyprobe).
        self.events = buffer_type(capacity, -1)
        #: The writer waits on this pipe: woken early when the buffer is half full (by the C
        #: buffer, without the GIL) and at close.
        self._new_wake()
        #: Append a rare event's finished line (``keep``: never dropped); any thread.
        self.append: Callable[..., None] = self.events.line
        self.written = 0
        self._dropped_reported = 0
        self.loop_running = False    # loop samples are written only while the reactor runs
        self.loop_since = 0          # monotonic ns when the loop last started
        self.failed_calls = 0        # calls that raised (written as objects by the probe)
        self.byte_counts = ByteCounts()  # open connections, their bytes written as they grow
        self.hook_errors = 0         # errors inside the probe's hooks (the probe counts them)
        self._last_sample = self.t0
        self._last_iterations = 0
        self._last_idle = 0
        self._last_failed = 0
        self._calls = 0
        #: Site ids by place, ``(fn, file, line)``: one ``site`` line per place while it is
        #: remembered (at most PLACES_KEPT).  Every id stays valid for the whole trace.
        self.sites: dict[tuple[str, str, int], int] = {}
        #: Site ids by object, in front of ``sites``: ``id(code)`` of a function,
        #: ``(id(code), cls)`` of a method that class inherited, ``(id(code), line)`` of a line
        #: in it, ``(id(type), qualname)`` of a callable without code; ``_kept`` holds the
        #: objects whose ids are keys (at most OBJECTS_KEPT).
        self._by_object: dict[Any, int] = {}
        self._kept: list[Any] = []
        self._site_ids = count(1)
        self._site_lock = threading.Lock()
        self._modules: dict[str, str] = {}
        self._out: list[bytes] = []
        self._lock = threading.Lock()
        self._closed = False
        #: The process recorded (a forked child's recording is made anew, with its pid).
        self.pid = os.getpid()
        header = {"ev": "trace", "v": VERSION, "pid": self.pid,
                  "argv": header_argv(sys.argv if argv is None else argv),
                  "python": sys.version.split()[0], "start_wall": time.time(),
                  "threshold_ms": float(threshold_ms), "clock": "monotonic"}
        header |= lineage or {}  # a child's: its parent's trace and pid, whether forked
        self._children: list[Owned] = []  # pipes forked children report their trace through
        self.output.write(orjson.dumps(header) + b"\n", 1)
        self._thread = threading.Thread(target=self._run, name="loopscope-writer", daemon=True)
        self._thread.start()

    # -- sites (any thread; the probe looks ids up itself and calls these on a miss) --------
    def fn_site(self, f: Any) -> int:
        """Site id of a callable (one per place), appending its ``site`` line once."""
        function = function_of(f)
        code = getattr(function, "__code__", None)
        target = function if function is not None else f
        owner = inherited_by(f)
        with self._site_lock:
            if code is not None:
                key: Any = id(code) if owner is None else (id(code), owner)
                site = self._by_object.get(key)
                if site is None:
                    if owner is not None:
                        name = f"{owner.__module__}.{owner.__qualname__}.{function.__name__}"
                    else:
                        module = (getattr(target, "__module__", None)
                                  or self._module_of(code.co_filename))
                        name = f"{module}.{code.co_qualname}" if module else code.co_qualname
                    site = self._place_site(name, code.co_filename, code.co_firstlineno)
                    self._keep(key, site, code, owner)
                return site
            qualname = getattr(f, "__qualname__", None)
            key = (id(type(f)), qualname)
            site = self._by_object.get(key)
            if site is None:
                module = getattr(target, "__module__", None)
                qualname = getattr(target, "__qualname__", None) or type(f).__qualname__
                site = self._place_site(f"{module}.{qualname}" if module else qualname, "", 0)
                self._keep(key, site, type(f), None)
            return site

    def line_site(self, code: Any, line: int) -> int:
        """Site id of a line inside a function (where something was scheduled or created)."""
        key = (id(code), line)
        site = self._by_object.get(key)
        if site is not None:
            return site
        with self._site_lock:
            site = self._by_object.get(key)
            if site is None:
                module = self._module_of(code.co_filename)
                name = f"{module}.{code.co_qualname}" if module else code.co_qualname
                site = self._place_site(name, code.co_filename, line)
                self._keep(key, site, code, None)
            return site

    def _keep(self, key: Any, site: int, obj: Any, owner: Any) -> None:
        """Remember ``site`` for ``key``, the ids of ``obj`` and ``owner`` (kept alive); a full
        table forgets every entry first (lock held)."""
        if len(self._by_object) >= OBJECTS_KEPT:
            self._by_object.clear()
            self._kept = []
        self._kept += (obj, owner)
        self._by_object[key] = site

    def _place_site(self, fn: str, file: str, line: int) -> int:
        """The site id of a place, with a new ``site`` line when it is not remembered (lock
        held).  Functions made at run time from the same source (a lambda per request) share
        their place, and so one site."""
        place = (cut(fn, MAX_NAME), cut(file, MAX_PATH), line)
        site = self.sites.get(place)
        if site is None:
            if len(self.sites) >= PLACES_KEPT:
                self.sites.clear()
            site = self.sites[place] = self._new_site(*place)
        return site

    def _new_site(self, fn: str, file: str, line: int) -> int:
        """A new site id, its line appended before any event can use it (lock held)."""
        site = next(self._site_ids)
        self.append(orjson.dumps({"t": time.monotonic_ns() - self.t0, "ev": "site", "id": site,
                                  "fn": fn, "file": file, "line": line}), True)
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
            if len(self._modules) >= PLACES_KEPT:  # files made at run time (compile, exec)
                self._modules.clear()
            self._modules[filename] = name
        return name

    # -- the writer thread -------------------------------------------------------
    def _new_wake(self) -> None:
        """The pipe the writer waits on (tracer.output.Owned: checked like the trace's)."""
        self._wake_r, self._wake_w = wake_pipe()
        self.events.wake_fd = self._wake_w.fd

    def _run(self) -> None:
        while not self._stopping:
            wake = self._wake_r
            if not (wake.ours() and self._wake_w.ours()):
                self._new_wake()  # the application closed ours: its numbers are left alone
                continue
            try:
                if select.select([wake.fd], [], [], FLUSH_INTERVAL)[0] and wake.ours():
                    os.read(wake.fd, 4096)
            except OSError:
                continue  # closed under us: the check above replaces it
            if not self._stopping:
                self._flush_promptly()

    def _flush_promptly(self) -> None:
        """:meth:`flush`, with the interpreter's switch interval at :data:`WRITER_SWITCH_S`
        meanwhile, then put back (unless the program set its own in between).

        A flush takes the GIL back a dozen times, after each system call, for microseconds
        each.  While the loop runs Python code without pause, each of those waits lasts the
        whole switch interval (5 ms by default), and a loop making 4M events a second filled
        the buffer meanwhile: 9 runs in 10 of the deferred benchmark dropped events (up to
        170,000), none with this."""
        interval = sys.getswitchinterval()
        sys.setswitchinterval(WRITER_SWITCH_S)
        ours = sys.getswitchinterval()    # as Python holds it: whole microseconds
        try:
            self.flush()
        finally:
            if sys.getswitchinterval() == ours:
                sys.setswitchinterval(interval)

    def flush(self, final: bool = False) -> None:
        """Write everything buffered so far (called by the writer thread and at stop)."""
        with self._lock:
            if not self._closed:
                self._flush(final)

    def _flush(self, final: bool) -> None:
        """Write a batch; nothing here may raise into the writer thread or the app."""
        try:
            now = time.monotonic_ns()
            open_before = self.byte_counts.watched()  # their conn lines are in this batch
            written, calls = self.output.drain(self.events)
            self.written += written
            self._calls += calls
            self._loop_sample(now, final)
            for event in self.byte_counts.changed(now - self.t0, open_before):
                self._emit(event)
            self._collect_children(now, final)
            self._write_out(now)
        except Exception as e:  # noqa: BLE001 - recording must never take the app down
            warn(f"the trace writer failed: {e!r}")

    def expect_child(self, fd: int) -> None:
        """A child was just forked: it writes ``{"pid", "file"}`` to ``fd`` and closes it
        (tracer.session), which becomes a ``child`` event.  Any thread (list appends are
        atomic; the writer reads a copy)."""
        os.set_blocking(fd, False)
        self._children.append(Owned(fd))

    def _collect_children(self, now: int, final: bool) -> None:
        """A ``child`` event for each forked child that reported; at the end, those that have
        not yet are waited for until the drain deadline."""
        for pipe in list(self._children):
            try:
                if final and pipe.ours():
                    left = (self.output.deadline or 0) - time.monotonic()
                    select.select([pipe.fd], [], [], max(left, 0))
                # The child writes its report at once (less than PIPE_BUF: atomic), then closes.
                data = os.read(pipe.fd, 4096) if pipe.ours() else b""
            except BlockingIOError:
                continue  # not reported yet
            except OSError:
                data = b""
            self._children.remove(pipe)
            pipe.close()
            try:
                report = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue  # it died before reporting
            self._emit({"t": now - self.t0, "ev": "child", "pid": report["pid"],
                        "file": report["file"]})

    @property
    def dropped(self) -> int:
        """Events lost so far: dropped from a full buffer, or not written (tracer.output)."""
        return self.events.dropped + self.output.lost

    def _write_out(self, now: int) -> None:
        """Write the lines the writer itself made: a ``drop`` line first when events were
        lost since the last one that was written, then the ``loop`` line."""
        dropped = self.dropped
        unreported = dropped - self._dropped_reported
        if unreported:
            self._out.insert(0, orjson.dumps({"t": now - self.t0, "ev": "drop", "n": unreported}))
        out = self._out
        if out:
            written = self.output.write(b"\n".join(out) + b"\n", len(out))
            self.written += written
            if unreported and written:
                self._dropped_reported = dropped
            out.clear()

    def _emit(self, event: dict) -> None:
        """Queue a line the writer itself makes (``loop``, ``bytes``)."""
        self._out.append(orjson.dumps(event))

    def close(self) -> None:
        """Stop the writer, write the remaining events and the ``end`` line.

        Bounded: after :attr:`drain_timeout` seconds (a FIFO whose reader stopped reading)
        what is not written yet is counted as dropped, and close returns.
        """
        if self._stopping:
            return
        self._stopping = True
        deadline = time.monotonic() + self.drain_timeout
        self.output.deadline = deadline
        try:
            os.write(self._wake_w.fd, b"!")
        except OSError:
            pass  # a full pipe (the writer is being woken already) or not ours any more
        if self._thread is not threading.current_thread():
            # The writer notices the deadline within tracer.output.WAIT_STEP.
            self._thread.join(timeout=max(deadline - time.monotonic(), 0) + 2 * WAIT_STEP)
        if not self._lock.acquire(timeout=max(deadline - time.monotonic(), 0) + WAIT_STEP):
            # The writer is stuck in a write the OS does not give up (a hung file system).
            self.output.lost += self.events.pending
            self.output.note("writing did not finish within the drain timeout")
            return
        try:
            if self._closed:
                return
            self._closed = True
            self._flush(final=True)
            self.output.uncut()
            end = {"t": time.monotonic_ns() - self.t0, "ev": "end", "events": self.written,
                   "dropped": self.dropped, "hook_errors": self.hook_errors}
            if self.output.first_problem is not None:
                end["reason"] = cut(self.output.first_problem)
            self.output.write(orjson.dumps(end) + b"\n", 1)
            self.output.uncut()  # the end line itself, if the disk took only part of it
            self.output.close()
            for pipe in self._children:  # children that never reported
                pipe.close()
        finally:
            self._lock.release()
        # A hook still holding the probe (a Deferred chain that was running when tracing
        # stopped) may still record: it must not write to a descriptor number reused later.
        self.events.wake_fd = -1
        self._wake_r.close()
        self._wake_w.close()

    def outcome(self) -> str | None:
        """What is missing from the trace, as a sentence for the run's last line, or None
        when every event is in it."""
        lost, dropped = self.output.lost, self.events.dropped
        if self.output.stopped is not None:
            return f"the trace stopped early ({self.output.stopped}): {self.dropped} events lost"
        parts = []
        if lost:
            parts.append(f"{lost} events could not be written ({self.output.first_problem})")
        if dropped:
            parts.append(f"{dropped} events were dropped from a full buffer")
        return "; ".join(parts) or None

    def abandon(self) -> None:
        """In a forked child: forget this recording without writing anything (the parent's
        writer owns the file, and its thread does not exist here)."""
        self._stopping = self._closed = True
        self.events.wake_fd = -1
        self.output.abandon()
        for pipe in self._children:
            pipe.close()
        self._wake_r.close()
        self._wake_w.close()

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
