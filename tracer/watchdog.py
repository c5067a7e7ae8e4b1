"""The watchdog: notices, while it happens, that a loop is stuck in a callback, and where.

A thread wakes every few milliseconds and looks at the innermost call in progress of each
loop thread it watches: the reactor thread through the C probe (``probe.top()``: a Deferred
callback inside dataReceived is named, not dataReceived), and any other source an adapter
adds with :meth:`Watchdog.watch` (an asyncio loop's task steps, a loop in another thread, a
uvloop heartbeat).  Once a call has run past the threshold it samples that thread's stack
and records a ``stall`` event, then again every :data:`RESAMPLE_NS` while the same call is
still running, so the trace says where the loop was blocked and a live viewer sees it while
it lasts.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from tracer.output import wake_pipe
from tracer.probe import TraceProbe
from tracer.recorder import MAX_FRAMES, stack_frame

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any, Protocol

RESAMPLE_NS = 100_000_000
#: Longest sleep between two looks: bounds how late the first stall sample can be.
MAX_TICK = 0.01
#: With the C probe alone to watch, the looks are made without the GIL (its
#: ``wait_for_stall``), and the thread comes back to Python this often at least.  Stopping and
#: a change of sources end a wait at once, through the wake pipe, so this only bounds how late
#: they are seen when the application took the pipe's descriptor numbers (a daemon closing
#: every descriptor and opening its own).  Each return takes the GIL from the loop thread,
#: which on a machine with no free core then waits for one to take it back: a bound of 0.1 s
#: made 10 such returns a second.  What that costs is under this machine's noise: the mixed
#: server of bench/run.py with both cores busy read 0.95x to 1.05x of its time with 0.1 s
#: (paired rounds, 41 per run).
GIL_FREE_WAIT = 1.0
#: At least what a pipe holds (Linux: 64 KiB), so that one read empties the wake pipe.
PIPE_BYTES = 65536


def sample_stack(frame: Any, stop_code: Any) -> list[list] | None:
    """``[file, line, func]`` from the callback's frame (``stop_code``) inward, innermost last.

    When the callback's frame is not on the stack (a builtin callback) the whole stack is kept,
    cut to the innermost :data:`MAX_FRAMES`.  None when ``stop_code`` is a Python callback's
    and it is not on the stack: the callback has returned and the loop is still in the
    tracer's or the loop's own code around it (a watchdog scheduled late on a loaded machine
    lands there), so this sample would name the wrong line.
    """
    out: list[list] = []
    while frame is not None and len(out) < MAX_FRAMES:
        code = frame.f_code
        out.append(stack_frame(code.co_filename, frame.f_lineno, code.co_qualname))
        if code is stop_code:
            break
        frame = frame.f_back
    else:
        if stop_code is not None and not _on_stack(frame, stop_code):
            return None
    out.reverse()
    return out


def _on_stack(frame: Any, code: Any) -> bool:
    """Whether ``code`` runs in ``frame`` or a frame that called it."""
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


# A type for the checker only: a Protocol class is made by typing, which this module, imported
# at the start of every traced child, does not import.  Nothing checks it at run time.
if TYPE_CHECKING:
    class Watched(Protocol):
        """The calls in progress on one loop thread, as the watchdog sees them."""

        @property
        def thread(self) -> int:
            """Ident of the thread that runs them (the one sampled)."""

        def top(self) -> tuple | None:
            """The innermost call in progress, ``(serial, start_ns, kind, code, site, depth)``
            (``serial`` tells one call from the next, ``code`` is where its stack sample stops),
            or None."""

        def stall(self, now: int, call: tuple, frame: Any) -> None:
            """``call`` is still running at ``now``; ``frame`` is its thread's innermost frame
            (None if the thread is gone): record a ``stall``."""


class ProbeCalls:
    """The C probe's calls in progress, on the reactor thread."""

    def __init__(self, probe: TraceProbe) -> None:
        self.probe = probe
        self.top = probe.top

    @property
    def thread(self) -> int:
        return self.probe.reactor_thread

    def stall(self, now: int, call: tuple, frame: Any) -> None:
        stack = sample_stack(frame, call[3])
        if stack is not None:
            self.probe.stall(now, call, stack)


class Watchdog:
    """Samples a loop thread while its innermost callback runs past ``threshold_ms``."""

    def __init__(self, probe: TraceProbe, threshold_ms: float) -> None:
        self.probe = probe
        self.threshold_ns = int(threshold_ms * 1e6)
        self._tick = min(max(threshold_ms / 5000.0, 0.001), MAX_TICK)
        self._sources: tuple[Watched, ...] = (ProbeCalls(probe),)
        #: The C probe's GIL-free wait (None with the pure-Python probe), and the pipe that
        #: ends it when the watchdog stops or its sources change.
        self._wait_for_stall = getattr(probe.native, "wait_for_stall", None)
        self._wake = wake_pipe() if self._wait_for_stall is not None else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopscope-watchdog", daemon=True)
        self._thread.start()

    def watch(self, source: Watched) -> None:
        """Also watch ``source`` (any thread), from the next tick."""
        self._sources = (*self._sources, source)
        self._wake_up()

    def unwatch(self, source: Watched) -> None:
        """Stop watching ``source`` (any thread; nothing happens if it was not watched)."""
        self._sources = tuple(s for s in self._sources if s is not source)
        self._wake_up()

    def _wake_up(self) -> None:
        """End the GIL-free wait in progress (if any), so that the thread looks at its
        sources and its stop flag again."""
        wake = self._wake
        if wake is not None and wake[1].ours():
            try:
                os.write(wake[1].fd, b"!")
            except OSError:
                pass  # full: a wake is pending; closed just now: the next wait makes a new pipe

    def _run(self) -> None:
        #: Per source: serial of the call being watched, and when to sample it next.
        watched: dict[Watched, tuple[Any, int]] = {}
        while not self._wait(watched):
            sources = self._sources
            for source in sources:
                call = source.top()
                if call is None:
                    watched.pop(source, None)
                    continue
                serial, start = call[0], call[1]
                previous = watched.get(source)
                if previous is None or previous[0] != serial:
                    previous = watched[source] = (serial, start + self.threshold_ns)
                now = time.monotonic_ns()
                if now < previous[1]:
                    continue
                frame = sys._current_frames().get(source.thread)
                still = source.top()
                if still is not None and still[0] == serial:  # the same call after sampling
                    source.stall(now, call, frame)
                watched[source] = (serial, now + RESAMPLE_NS)
                del frame
            if len(watched) > len(sources):
                for gone in [s for s in watched if s not in sources]:
                    del watched[gone]

    def _wait(self, watched: dict[Watched, tuple[Any, int]]) -> bool:
        """Until the next look in Python; True when asked to stop.  While the C probe is the
        only source, its calls are looked at without the GIL (tracer/_native.c,
        ``wait_for_stall``, says what a look with the GIL costs a busy loop)."""
        sources = self._sources
        if self._wait_for_stall is None or len(sources) != 1:
            return self._stop.wait(self._tick)
        serial, due = watched.get(sources[0], (0, 0))
        wake = self._wake
        if wake is None or not (wake[0].ours() and wake[1].ours()):
            # The application closed or took over its descriptors: the numbers are its own now.
            wake = self._wake = wake_pipe()
        self._wait_for_stall(self.threshold_ns, self._tick, GIL_FREE_WAIT, serial, due,
                             wake[0].fd)
        if wake[0].ours():
            try:
                os.read(wake[0].fd, PIPE_BYTES)
            except OSError:
                pass  # nothing to read (woken by a timeout), or closed just now: as above
        # Read after the pipe is emptied: stop() sets the flag before it writes.
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        self._wake_up()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
            wake = self._wake  # the thread may have made a new pipe meanwhile
            if wake is not None and not self._thread.is_alive():
                self._wake = None
                wake[0].close()
                wake[1].close()
