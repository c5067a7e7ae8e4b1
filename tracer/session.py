"""A recording session: the recorder, the probe it feeds and the watchdog, started and
stopped once per process (the reactor has one instrumentation slot).

This is the recording side's entry point; :mod:`tracer` imports it only when
:func:`tracer.start` is called.  Finishing the trace at exit, on SIGTERM and on an uncaught
exception is arranged here.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

from reactor import _instrument
from tracer.backend import probe_module
from tracer.probe import TraceProbe
from tracer.output import drain_timeout_from_env
from tracer.recorder import Recorder
from tracer.watchdog import Watchdog

__all__ = ["Tracer", "start", "stop", "mark", "current"]


class Tracer:
    """A running recording: the recorder, the probe it feeds and the watchdog."""

    def __init__(self, path: str, threshold_ms: float = 50.0, capacity: int = 262_144,
                 drain_timeout: float | None = None) -> None:
        self.path = path
        self.threshold_ms = threshold_ms
        self.capacity = capacity
        self.drain_timeout = drain_timeout_from_env() if drain_timeout is None else drain_timeout
        probes = probe_module()  # C, or pure Python (tracer.backend)
        self.recorder = Recorder(path, threshold_ms, capacity, buffer_type=probes.Buffer,
                                 drain_timeout=self.drain_timeout)
        self.probe = TraceProbe(self.recorder, probes.Probe)
        self.watchdog = Watchdog(self.probe, threshold_ms)
        _instrument.install(self.probe.native)

    def mark(self, label: str) -> None:
        self.probe.mark(label)

    def record_exception(self, exc: BaseException) -> None:
        """Note an exception that ended the application's main code."""
        self.probe.app_error(exc)

    def stop(self) -> None:
        """Uninstall the probe, then write what is left and the ``end`` line."""
        if _instrument.probe is self.probe.native:
            _instrument.uninstall()
        self.watchdog.stop()
        self.recorder.close()


_current: Tracer | None = None
_lock = threading.Lock()
_previous_sigterm: Any = None
_previous_excepthook: Any = None


def current() -> Tracer | None:
    """The running tracer, if any."""
    return _current


def start(path: str, threshold_ms: float = 50.0, capacity: int = 262_144,
          drain_timeout: float | None = None) -> Tracer:
    """Start recording into ``path``: a new file, mode 0600 (tracer.files; an existing path
    is refused with tracer.files.OutputError, unless it is a FIFO or a character device).

    ``threshold_ms``: a callback running longer is blocking (the watchdog samples it).
    ``capacity``: about the most events buffered between two writes (100 ms; more when they are
    small, see tracer.recorder.MAX_ROW); more are dropped and counted.
    ``drain_timeout``: seconds exit waits for the trace to be written before counting the
    rest as dropped (default: :func:`drain_timeout_from_env`).
    """
    global _current, _previous_sigterm, _previous_excepthook
    with _lock:
        if _current is not None:
            raise RuntimeError(f"tracing is already recording into {_current.path}")
        _current = Tracer(path, threshold_ms, capacity, drain_timeout)
    atexit.register(stop)
    if threading.current_thread() is threading.main_thread():
        _previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    _previous_excepthook = sys.excepthook
    sys.excepthook = _on_uncaught
    return _current


def stop() -> None:
    """Stop recording and finish the file; does nothing when not recording."""
    global _current, _previous_sigterm, _previous_excepthook
    with _lock:
        tracer, _current = _current, None
    if tracer is None:
        return
    atexit.unregister(stop)
    if _previous_sigterm is not None and threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, _previous_sigterm)
        _previous_sigterm = None
    if sys.excepthook is _on_uncaught:
        sys.excepthook = _previous_excepthook
    tracer.stop()


def mark(label: str) -> None:
    """Record a user mark (shown on the dashboard's timeline); no-op when not recording."""
    tracer = _current
    if tracer is not None:
        tracer.mark(label)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Finish the trace, then do what SIGTERM did before tracing started."""
    previous = _previous_sigterm
    stop()
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _on_uncaught(exc_type: type[BaseException], exc: BaseException,
                 tb: TracebackType | None) -> None:
    """Record the exception that is ending the program, finish the trace, then report it."""
    previous = _previous_excepthook or sys.__excepthook__
    tracer = _current
    if tracer is not None:
        tracer.record_exception(exc)
    stop()
    previous(exc_type, exc, tb)
