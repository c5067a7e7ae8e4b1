"""Record what an event loop does into a trace file; read, summarise and export traces.

    import tracer
    tracer.start("traces/app.jsonl", threshold_ms=50)
    ...                      # run the reactor
    tracer.mark("phase 2")   # optional user marks
    tracer.stop()            # also happens at exit, on SIGTERM and on an uncaught exception

Importing this package loads nothing else: the recording side (:mod:`tracer.session`, which
brings the probe, the C extension and the reactor's instrumentation) is imported by
:func:`start`, so that reading a trace (:mod:`tracer.reader`, :mod:`tracer.model`,
:mod:`tracer.summary`, :mod:`tracer.export`) never loads the extension nor creates a reactor
(docs/architecture.md, "Layers").  See docs/trace-format.md for what ends up in the file.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from tracer.session import Tracer

__all__ = ["start", "stop", "mark", "current"]


def start(path: str, threshold_ms: float = 50.0, capacity: int = 262_144,
          drain_timeout: float | None = None, *, folder: bool = False) -> Tracer:
    """Start recording into ``path``; see :func:`tracer.session.start`."""
    from tracer import session
    return session.start(path, threshold_ms, capacity, drain_timeout, folder=folder)


def current() -> Tracer | None:
    """The running tracer, if any (None when recording never started)."""
    session = sys.modules.get("tracer.session")
    return session.current() if session is not None else None


def stop() -> None:
    """Stop recording and finish the file; does nothing when not recording."""
    session = sys.modules.get("tracer.session")
    if session is not None:
        session.stop()


def mark(label: str) -> None:
    """Record a user mark (shown on the dashboard's timeline); no-op when not recording."""
    running = current()
    if running is not None:
        running.mark(label)
