"""A recording session: the recorder, the probe it feeds and the watchdog, started and
stopped once per process (the reactor has one instrumentation slot).

This is the recording side's entry point; :mod:`tracer` imports it only when
:func:`tracer.start` is called.  Finishing the trace at exit, on SIGTERM and on an uncaught
exception is arranged here, and so is a forked child's own recording (it never writes into
its parent's file).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any

import orjson

from reactor import _instrument
from tracer.backend import probe_module
from tracer.files import OutputError
from tracer.format import MAX_THRESHOLD_MS, is_threshold
from tracer.probe import TraceProbe
from tracer.output import drain_timeout_from_env, warn
from tracer.recorder import Recorder
from tracer.watchdog import Watchdog

__all__ = ["Tracer", "start", "stop", "mark", "current"]


class Tracer:
    """A running recording: the recorder, the probe it feeds and the watchdog."""

    def __init__(self, path: str, threshold_ms: float = 50.0, capacity: int = 262_144,
                 drain_timeout: float | None = None, parent: str | None = None) -> None:
        self.path = path
        self._absolute = os.path.abspath(path)  # a child's trace goes beside it, whatever its cwd
        self.threshold_ms = threshold_ms
        self.capacity = capacity
        self.drain_timeout = drain_timeout_from_env() if drain_timeout is None else drain_timeout
        probes = probe_module()  # C, or pure Python (tracer.backend)
        self.recorder = Recorder(path, threshold_ms, capacity, buffer_type=probes.Buffer,
                                 drain_timeout=self.drain_timeout, parent=parent)
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

    def forked(self) -> "Tracer | None":
        """In a forked child: drop this recording without writing (the file is the parent's,
        and so are the events still buffered) and start the child's own, into
        :func:`child_trace_path`; None when that cannot be created (the child is then not
        traced; a warning says why)."""
        self.recorder.abandon()
        if _instrument.probe is self.probe.native:
            _instrument.uninstall()
        path = child_trace_path(self._absolute, os.getpid())
        try:
            child = Tracer(path, self.threshold_ms, self.capacity, self.drain_timeout,
                           parent=os.path.basename(self.path))
        except (OutputError, OSError) as e:
            warn(f"the forked child {os.getpid()} is not traced: {e}")
            return None
        if self.recorder.loop_running:  # forked inside a callback: its loop goes on running
            child.recorder.loop_running = True
            child.recorder.loop_since = time.monotonic_ns()
        return child


def child_trace_path(path: str, pid: int) -> str:
    """Where a forked child records: the parent's trace with the child's pid before
    ``.jsonl`` (``t.jsonl`` -> ``t.4242.jsonl``), beside it."""
    root, ext = os.path.splitext(path)
    return f"{root}.{pid}{ext}" if ext == ".jsonl" else f"{path}.{pid}"


_current: Tracer | None = None
_lock = threading.Lock()
_previous_sigterm: Any = None
_previous_excepthook: Any = None


#: The pipe a child forked by this thread reports its trace's name through (before fork).
_forking = threading.local()


def _before_fork() -> None:
    _forking.pipe = None
    if _current is not None:
        try:
            _forking.pipe = os.pipe()
        except OSError:
            pass  # out of descriptors: the child is still traced, the parent not told


def _after_fork_in_parent() -> None:
    pipe, _forking.pipe = getattr(_forking, "pipe", None), None
    if pipe is None:
        return
    os.close(pipe[1])
    running = _current
    if running is None:
        os.close(pipe[0])
    else:
        running.recorder.expect_child(pipe[0])  # its writer reads the child's report


def _after_fork_in_child() -> None:
    """A forked child never writes into its parent's trace: it records into its own file
    (Tracer.forked) and tells the parent its name, which the parent's trace records in a
    ``child`` event."""
    global _current, _lock
    pipe, _forking.pipe = getattr(_forking, "pipe", None), None
    _lock = threading.Lock()  # another thread of the parent may have held it: it is gone
    parent, _current = _current, None
    if parent is not None:
        _current = parent.forked()
    if pipe is not None:
        os.close(pipe[0])
        child = {"pid": os.getpid(),
                 "file": None if _current is None else os.path.basename(_current.path)}
        try:
            os.write(pipe[1], orjson.dumps(child))
        except OSError:
            pass  # the parent stopped listening (it finished its trace meanwhile)
        os.close(pipe[1])


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)


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
    if not is_threshold(threshold_ms):
        raise ValueError(f"threshold_ms must be more than 0 and at most {MAX_THRESHOLD_MS}, "
                         f"not {threshold_ms!r}")
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
