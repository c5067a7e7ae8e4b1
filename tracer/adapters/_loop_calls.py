"""Calls in progress that the C probe does not time, as watchdog sources (tracer.watchdog).

The C probe keeps one stack of calls in progress, for one thread (the reactor thread).  An
asyncio loop that holds it (the first loop to run; tracer/adapters/asyncio_loop.py) times its
plain callbacks there.  What it cannot time there is kept here, one :class:`LoopCalls` per
loop thread: the task steps of every loop (a step is named when it ends, after the coroutine
it was stuck in, which only the watchdog's sample knows), and every callback of a loop
running in another thread while the first one runs (sharing the C stack between two threads
would interleave their calls).  A loop whose callbacks run in C (uvloop) is watched through a
:class:`Heartbeat` instead.

Both are watchdog sources: ``thread``, ``top()`` and ``stall()``.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson

from tracer.watchdog import sample_stack

if TYPE_CHECKING:
    from tracer.session import Tracer

_now = time.monotonic_ns
#: Coroutines of the asyncio package are machinery: a stuck or resumed step is named after
#: the innermost coroutine outside it (the handler that awaits asyncio.sleep, not sleep).
ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
#: Heartbeat period of a loop the tracer cannot see into: a stall's start is known to within
#: this (5 ms keeps a 50 ms stall's duration within 10%), for 200 wake-ups a second.
HEARTBEAT_S = 0.005


def record(session: Tracer, event: dict) -> None:
    """Append a rare event (object form) to the trace."""
    session.recorder.append(orjson.dumps(event))


def code_site(session: Tracer, code: Any) -> int:
    """Site of a function by its code object (its ``def`` line), as callbacks are named."""
    return session.recorder.line_site(code, code.co_firstlineno)


def is_machinery(code: Any) -> bool:
    return code.co_filename.startswith(ASYNCIO_DIR)


def stuck_in(frame: Any, stop_code: Any) -> Any:
    """The code of the innermost coroutine outside asyncio from ``frame`` outward to the
    frame running ``stop_code`` (the whole stack when it is None), or None."""
    while frame is not None:
        code = frame.f_code
        if code.co_flags & inspect.CO_COROUTINE and not is_machinery(code):
            return code
        if code is stop_code:
            return None
        frame = frame.f_back
    return None


class LoopCalls:
    """The call in progress on one loop thread, outside the C probe (asyncio never nests
    calls: one at a time), and the coroutine the watchdog last found it stuck in."""

    def __init__(self, session: Tracer, thread: int) -> None:
        self.session = session
        self.thread = thread
        self.call: tuple | None = None       # what top() returns
        self.blocked: tuple[int, int] | None = None  # (serial, site) of the last stall
        self._serial = 0

    def top(self) -> tuple | None:
        return self.call

    def begin(self, kind: str, code: Any, site: int) -> int:
        """A call starts now; returns its start (monotonic ns)."""
        self._serial += 1
        start = _now()
        self.call = (self._serial, start, kind, code, site, 0)
        return start

    def end(self, site: int) -> int:
        """The call ended: the site to record it with (the coroutine it was stuck in, when
        the watchdog saw it stuck, else ``site``)."""
        serial = self.call[0] if self.call is not None else -1
        self.call = None
        blocked = self.blocked
        if blocked is not None and blocked[0] == serial:
            return blocked[1]
        return site

    def stall(self, now: int, call: tuple, frame: Any) -> None:
        """Record a stall named after the coroutine the step is stuck in."""
        serial, start, kind, stop_code, _site, depth = call
        stack = sample_stack(frame, stop_code)
        if stack is None:  # the step's coroutine is no longer running: nothing to name
            return
        code = stuck_in(frame, stop_code)
        site = code_site(self.session, code) if code is not None else call[4]
        self.blocked = (serial, site)
        self.session.probe.stall(now, (serial, start, kind, stop_code, site, depth), stack)


class Heartbeat:
    """Proof of life of a loop whose callbacks the tracer cannot see (uvloop's run in C).

    A timer on the loop beats every :data:`HEARTBEAT_S`; the watchdog sees the loop as
    running one call since the last beat, so a beat late by more than the threshold is a
    stall, sampled like any other.  When the loop comes back, the beat records the blocked
    time as a ``call`` of kind ``other`` named after the coroutine (else the function) it
    was stuck in, from the last beat to now: longer than the real call by at most a period.
    """

    def __init__(self, session: Tracer, loop: asyncio.AbstractEventLoop) -> None:
        self.session = session
        self.loop = loop
        self.thread = threading.get_ident()
        self.current: tuple | None = None   # (serial, last beat ns, ...): what top() returns
        self.blocked: tuple[int, int] | None = None  # (serial, site) of the last stall
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._beat()

    def stop(self) -> None:
        self.current = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def top(self) -> tuple | None:
        return self.current

    def _beat(self) -> None:
        now = _now()
        current, blocked = self.current, self.blocked
        if current is not None and blocked is not None and blocked[0] == current[0]:
            record(self.session, {"t": now - self.session.recorder.t0, "ev": "call",
                                  "kind": "other", "site": blocked[1], "dur": now - current[1],
                                  "depth": 0})
        serial = current[0] + 1 if current is not None else 1
        self.current = (serial, now, "other", None, 0, 0)
        self._timer = self.loop.call_later(HEARTBEAT_S, self._beat)

    def stall(self, now: int, call: tuple, frame: Any) -> None:
        code = stuck_in(frame, None) or (frame.f_code if frame is not None else None)
        site = code_site(self.session, code) if code is not None else 0
        self.blocked = (call[0], site)
        stack = sample_stack(frame, None)   # never None: no callback frame to look for
        if stack is not None:
            self.session.probe.stall(now, (call[0], call[1], "other", None, site, 0), stack)
