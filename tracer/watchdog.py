"""The watchdog: notices, while it happens, that the loop is stuck in a callback, and where.

A thread wakes every few milliseconds and looks at the innermost call in progress
(``probe.top()``: a Deferred callback inside dataReceived is named, not dataReceived).  Once
that call has run past the threshold it samples the reactor thread's stack and records a
``stall`` event, then again every :data:`RESAMPLE_NS` while the same call is still running, so
the trace says where the loop was blocked and a live viewer sees it while it lasts.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from tracer.probe import TraceProbe
from tracer.recorder import MAX_FRAMES, stack_frame

RESAMPLE_NS = 100_000_000
#: Longest sleep between two looks: bounds how late the first stall sample can be.
MAX_TICK = 0.01


def sample_stack(frame: Any, stop_code: Any) -> list[list]:
    """``[file, line, func]`` from the callback's frame (``stop_code``) inward, innermost last.

    When the callback's frame is not on the stack (a builtin callback) the whole stack is kept,
    cut to the innermost :data:`MAX_FRAMES`.
    """
    out = []
    while frame is not None and len(out) < MAX_FRAMES:
        code = frame.f_code
        out.append(stack_frame(code.co_filename, frame.f_lineno, code.co_qualname))
        if code is stop_code:
            break
        frame = frame.f_back
    out.reverse()
    return out


class Watchdog:
    """Samples the reactor thread while the innermost callback runs past ``threshold_ms``."""

    def __init__(self, probe: TraceProbe, threshold_ms: float) -> None:
        self.probe = probe
        self.threshold_ns = int(threshold_ms * 1e6)
        self._tick = min(max(threshold_ms / 5000.0, 0.001), MAX_TICK)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopscope-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        watched = None   # serial of the call being watched
        next_sample = 0
        probe = self.probe
        while not self._stop.wait(self._tick):
            call = probe.top()
            if call is None:
                watched = None
                continue
            serial, start = call[0], call[1]
            if serial != watched:
                watched = serial
                next_sample = start + self.threshold_ns
            now = time.monotonic_ns()
            if now < next_sample:
                continue
            frame = sys._current_frames().get(probe.reactor_thread)
            still = probe.top()
            if still is not None and still[0] == serial:  # the same call after sampling
                probe.stall(now, call, sample_stack(frame, call[3]))
            next_sample = now + RESAMPLE_NS
            del frame

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
