"""A bounded pool of worker threads for code that would block the reactor.

Threads are started on demand, up to ``max``, and kept while the pool runs.
Work is taken in submission order.  The reactor creates one pool lazily
(``getThreadPool``), starts it when the loop runs and stops it (after the
queued work finished) during shutdown, as Twisted does.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from reactor import _instrument, log

_log = logging.getLogger("reactor")
_STOP = object()  # a worker that takes this exits

OnResult = Callable[[bool, Any], None]


class ThreadPool:
    """Runs callables in at most ``maxthreads`` threads (Twisted's ``ThreadPool`` API)."""

    def __init__(self, minthreads: int = 5, maxthreads: int = 20, name: str | None = None) -> None:
        if minthreads < 0 or maxthreads < minthreads:
            raise ValueError(f"bad pool size: minthreads={minthreads}, maxthreads={maxthreads}")
        self.min = minthreads
        self.max = maxthreads
        self.name = name
        self.started = False
        self.joined = False
        self.threads: list[threading.Thread] = []
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0      # workers blocked waiting for work
        self._backlog = 0   # jobs queued and not yet taken
        self._jobs = itertools.count(1)
        self._thread_names = itertools.count(1)

    # -- submitting work ---------------------------------------------------
    def callInThread(self, func: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Run ``func(*args, **kw)`` in a pool thread; an exception is logged."""
        self.callInThreadWithCallback(None, func, *args, **kw)

    def callInThreadWithCallback(self, onResult: OnResult | None, func: Callable[..., Any],
                                 *args: Any, **kw: Any) -> None:
        """Run ``func`` in a pool thread, then ``onResult(True, result)`` or
        ``onResult(False, Failure)`` in that same thread.

        Work submitted before ``start()`` waits for it; work submitted after
        ``stop()`` is dropped, as in Twisted.
        """
        if self.joined:
            return
        job = next(self._jobs)
        probe = _instrument.probe
        if probe is not None:
            probe.thread_submitted(job, func)
        with self._lock:
            self._backlog += 1
        self._queue.put([job, func, args, kw, onResult])
        if self.started:
            self._grow()

    # -- life cycle -----------------------------------------------------------
    def start(self) -> None:
        """Start ``min`` workers, and enough more for work already queued."""
        self.joined = False
        self.started = True
        self._grow()

    def stop(self) -> None:
        """Let queued work finish, then end and join every worker."""
        self.joined = True
        self.started = False
        with self._lock:
            workers = list(self.threads)
        for _ in workers:
            self._queue.put(_STOP)
        for worker in workers:
            worker.join()

    def adjustPoolsize(self, minthreads: int | None = None, maxthreads: int | None = None) -> None:
        """Change the bounds; surplus workers exit once idle, missing ones start."""
        minthreads = self.min if minthreads is None else minthreads
        maxthreads = self.max if maxthreads is None else maxthreads
        if minthreads < 0 or maxthreads < minthreads:
            raise ValueError(f"bad pool size: minthreads={minthreads}, maxthreads={maxthreads}")
        self.min, self.max = minthreads, maxthreads
        if not self.started:
            return
        with self._lock:
            surplus = len(self.threads) - self.max
        for _ in range(max(0, surplus)):
            self._queue.put(_STOP)
        self._grow()

    # -- workers ----------------------------------------------------------------
    def _grow(self) -> None:
        """Start workers while queued work outnumbers idle workers (or below min)."""
        with self._lock:
            while len(self.threads) < self.max and (
                    len(self.threads) < self.min or self._backlog > self._idle):
                name = f"PoolThread-{self.name or id(self)}-{next(self._thread_names)}"
                worker = threading.Thread(target=self._work, name=name, daemon=True)
                self.threads.append(worker)
                self._idle += 1  # counted idle from birth, so one job starts one worker
                worker.start()

    def _work(self) -> None:
        """Take jobs until told to stop."""
        me = threading.current_thread()
        while True:
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
                if item is not _STOP:
                    self._backlog -= 1
            if item is _STOP:
                break
            self._run_job(item)
            del item
            with self._lock:
                self._idle += 1
        with self._lock:
            self.threads.remove(me)

    @staticmethod
    def _run_job(item: list) -> None:
        """Run one job ``[job, func, args, kw, on_result]`` and hand its
        outcome to ``on_result`` (or log a failure).

        The job's function and arguments are released before ``on_result``
        runs (the item is emptied, the locals dropped), so that nothing the
        job was given outlives it because its worker is still busy."""
        from reactor.failure import Failure

        job, func, args, kw, on_result = item
        item.clear()
        probe = _instrument.probe
        if probe is not None:
            probe.thread_started(job)
        try:
            result = func(*args, **kw)
        except BaseException as exc:  # noqa: BLE001 - the job's error goes to its result handler
            if probe is not None:
                probe.thread_done(job, exc)
            if on_result is None:
                log.err(None, f"Unhandled error in thread pool job {func!r}")
                return
            success, result = False, Failure()
            del exc
        else:
            if probe is not None:
                probe.thread_done(job, None)
            if on_result is None:
                return
            success = True
        del func, args, kw
        try:
            on_result(success, result)
        except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
            log.err(None, f"Unhandled error in thread pool result handler {on_result!r}")

    def __getstate__(self) -> dict[str, Any]:
        """A pool pickles as its bounds (threads and queued work do not)."""
        return {"min": self.min, "max": self.max, "name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        ThreadPool.__init__(self, state["min"], state["max"], state.get("name"))

    def __repr__(self) -> str:
        return (f"<ThreadPool {self.name!r} threads={len(self.threads)} "
                f"min={self.min} max={self.max} started={self.started}>")
