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

import orjson

from reactor import _instrument
from tracer import spawned
from tracer.backend import probe_module
from tracer.files import OutputError
from tracer.format import MAX_THRESHOLD_MS, is_threshold
from tracer.probe import TraceProbe
from tracer.output import drain_timeout_from_env, warn
from tracer.recorder import Recorder
from tracer.watchdog import Watchdog

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: see tracer/spawned.py
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Tracer", "start", "stop", "mark", "current"]


class Tracer:
    """A running recording: the recorder, the probe it feeds and the watchdog."""

    def __init__(self, path: str, threshold_ms: float = 50.0, capacity: int = 262_144,
                 drain_timeout: float | None = None, *, folder: bool = False,
                 lineage: dict | None = None, argv: list[str] | None = None) -> None:
        self.path = path
        self._absolute = os.path.abspath(path)  # a child's trace goes beside it, whatever its cwd
        #: Whether this trace is one of a trace folder (children are named by pid alone there).
        self.folder = folder
        self.threshold_ms = threshold_ms
        self.capacity = capacity
        self.drain_timeout = drain_timeout_from_env() if drain_timeout is None else drain_timeout
        probes = probe_module()  # C, or pure Python (tracer.backend)
        self.recorder = Recorder(path, threshold_ms, capacity, buffer_type=probes.Buffer,
                                 drain_timeout=self.drain_timeout, lineage=lineage, argv=argv)
        self.probe = TraceProbe(self.recorder, probes.Probe)
        self.watchdog = Watchdog(self.probe, threshold_ms)
        _instrument.install(self.probe.native)

    def mark(self, label: str) -> None:
        self.probe.mark(label)

    def record_exception(self, exc: BaseException) -> None:
        """Note an exception that ended the application's main code."""
        self.probe.app_error(exc)

    def stop(self) -> None:
        """Close the loop calls still running, uninstall the probe, then write what is left
        and the ``end`` line."""
        self.probe.native.close_calls()
        if _instrument.probe is self.probe.native:
            _instrument.uninstall()
        self.watchdog.stop()
        self.recorder.close()
        spawned.withdraw()

    def forked(self) -> Tracer | None:
        """In a forked child: drop this recording without writing (the file is the parent's,
        and so are the events still buffered) and start the child's own, into
        :func:`child_trace_path`; None when that cannot be created (the child is then not
        traced; a warning says why)."""
        self.recorder.abandon()
        if _instrument.probe is self.probe.native:
            _instrument.uninstall()
        try:
            child = Tracer.for_child(self._absolute, self.folder, self.threshold_ms,
                                     self.capacity, self.drain_timeout, ppid=self.recorder.pid,
                                     forked=True)
        except (OutputError, OSError) as e:
            warn(f"the forked child {os.getpid()} is not traced: {e}")
            return None
        if self.recorder.loop_running:  # forked inside a callback: its loop goes on running
            child.recorder.loop_running = True
            child.recorder.loop_since = time.monotonic_ns()
        return child

    @classmethod
    def for_child(cls, parent_path: str, folder: bool, threshold_ms: float, capacity: int,
                  drain_timeout: float | None, ppid: int, argv: list[str] | None = None,
                  forked: bool = False) -> Tracer:
        """The recording of a child process (``forked``, or a Python program it started) of
        the process tracing into ``parent_path``: into :func:`child_trace_path`, its header
        naming the parent's trace and pid (docs/trace-format.md, "Header")."""
        pid = os.getpid()
        lineage = {"parent": os.path.basename(parent_path), "ppid": ppid}
        if forked:
            lineage["forked"] = True
        attempt = 0
        while True:
            path = child_trace_path(parent_path, pid, folder, attempt)
            try:
                return cls(path, threshold_ms, capacity, drain_timeout, folder=folder,
                           lineage=lineage, argv=argv)
            except OutputError:  # the name is taken
                attempt += 1
                if attempt == PID_REUSE_TRIES:
                    raise


#: Names tried for a child's trace whose pid an earlier process of the run had (the kernel
#: reuses pids): ``4242.jsonl``, then ``4242-1.jsonl``...  A few suffice: a pid comes back
#: only after the whole pid space went round.
PID_REUSE_TRIES = 4


def child_trace_path(path: str, pid: int, folder: bool = False, attempt: int = 0) -> str:
    """Where a child process records.  In a trace folder: ``<pid>.jsonl`` in the folder of
    the parent's trace.  Else the parent's trace with the child's pid before ``.jsonl``
    (``t.jsonl`` -> ``t.4242.jsonl``), beside it.  ``attempt`` > 0 adds ``-attempt`` to the
    pid, for a pid that an earlier process of the run already had."""
    name = f"{pid}-{attempt}" if attempt else str(pid)
    if folder:
        return os.path.join(os.path.dirname(path), f"{name}.jsonl")
    root, ext = os.path.splitext(path)
    return f"{root}.{name}{ext}" if ext == ".jsonl" else f"{path}.{name}"


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
        if _current is not None:
            stop_at_thread_shutdown()
            adapters = sys.modules.get("tracer.adapters")  # installed by loopscope run
            if adapters is not None:
                adapters.follow_fork(_current)
            if spawned.ENV in os.environ:  # the programs it starts are its children
                spawned.propagate(_current)
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
          drain_timeout: float | None = None, *, folder: bool = False) -> Tracer:
    """Start recording into ``path``: a new file, mode 0600 (tracer.files; an existing path
    is refused with tracer.files.OutputError, unless it is a FIFO or a character device).

    ``threshold_ms``: a callback running longer is blocking (the watchdog samples it).
    ``capacity``: about the most events buffered between two writes (100 ms; more when they are
    small, see tracer.recorder.MAX_ROW); more are dropped and counted.
    ``drain_timeout``: seconds exit waits for the trace to be written before counting the
    rest as dropped (default: :func:`drain_timeout_from_env`).
    ``folder``: ``path`` is a file of a trace folder (one trace per process): the traces of
    child processes go into the same folder, named by their pid.
    """
    global _current
    if not is_threshold(threshold_ms):
        raise ValueError(f"threshold_ms must be more than 0 and at most {MAX_THRESHOLD_MS}, "
                         f"not {threshold_ms!r}")
    with _lock:
        if _current is not None:
            raise RuntimeError(f"tracing is already recording into {_current.path}")
        _current = Tracer(path, threshold_ms, capacity, drain_timeout, folder=folder)
    _arrange_stop()
    return _current


def start_child(parent_path: str, folder: bool, threshold_ms: float, ppid: int,
                argv: list[str]) -> Tracer:
    """Start recording a Python program that a traced process started (tracer.spawned):
    into :func:`child_trace_path` of ``parent_path``, ``argv`` its command line."""
    global _current
    with _lock:
        if _current is not None:
            raise RuntimeError(f"tracing is already recording into {_current.path}")
        _current = Tracer.for_child(parent_path, folder, threshold_ms, 262_144, None,
                                    ppid=ppid, argv=argv)
    _arrange_stop()
    stop_at_thread_shutdown()
    return _current


def stop_at_thread_shutdown() -> None:
    """In a child process: finish the trace when its main thread ends, too.  A
    multiprocessing worker leaves by ``os._exit`` (no atexit), after shutting threading
    down, which runs the callbacks of ``threading._register_atexit`` (Python 3.9 and
    later; without it, atexit alone, and such a worker's last 100 ms are lost)."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(stop)
        except RuntimeError:
            pass  # threading is already shutting down: atexit still comes


def _arrange_stop() -> None:
    """Finish the trace at exit, on SIGTERM and on an uncaught exception."""
    global _previous_sigterm, _previous_excepthook
    atexit.register(stop)
    if threading.current_thread() is threading.main_thread():
        _previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    _previous_excepthook = sys.excepthook
    sys.excepthook = _on_uncaught


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
