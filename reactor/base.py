"""The event loop: timers, file descriptors, threads and system events.

One ``Reactor`` runs everything on the thread that called ``run()``.  Each
iteration (``runUntilCurrent`` then ``doIteration``) does, in order:

1. the calls handed over by other threads (``callFromThread``), FIFO;
2. the timers due when the iteration started — calls scheduled while they run
   wait for the next iteration, so a self-rescheduling ``callLater(0)`` cannot
   starve I/O;
3. a shutdown requested by ``stop()`` (system event triggers);
4. one wait in the selector (timeout 0 when work is ready, else until the
   next timer), then ``doRead``/``doWrite`` for every ready descriptor.

Timers live in two queues.  ``callLater(0, ...)`` — the common "soon" case —
is appended to a FIFO deque with no heap work; other delays go to a heap of
``(time, seq, call)`` entries.  Both are lazy: ``cancel``/``reset`` mark the
old entry stale instead of searching for it, and the heap is compacted when
stale entries outnumber live ones.  Due calls from both queues run in time
order.

Every piece of user code the loop runs goes through the probe's ``run_call``
when a probe is installed (see ``reactor/_instrument.py``): from
:meth:`Reactor._call_user`, or directly in the timer and thread hand-back
loops, the hottest ones.  With no probe, each instrumentation point costs one
``is not None`` check.
"""

from __future__ import annotations

import builtins
import heapq
import logging
import os
import selectors
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from reactor import _instrument, error, log
from reactor.threadpool import ThreadPool

_log = logging.getLogger("reactor")
_monotonic = time.monotonic
_heappush = heapq.heappush
_heappop = heapq.heappop
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_NO_FILEDESC = error.ConnectionFdescWentAway("Filedescriptor went away")
_PHASES = ("before", "during", "after")


class DelayedCall:
    """A call scheduled by ``callLater``: Twisted's ``IDelayedCall``.

    ``time`` is when it is due, in its scheduler's ``seconds()`` clock.  The
    scheduler (a :class:`Reactor` or a ``task.Clock``) is told about cancel
    and moves through ``_call_cancelled`` / ``_call_moved``.
    """

    __slots__ = (
        "_in_ready",
        "_scheduler",
        "_seq",
        "_trace_id",
        "args",
        "called",
        "cancelled",
        "func",
        "kw",
        "time",
    )

    def __init__(self, scheduler: Any, when: float, func: Callable[..., Any],
                 args: tuple, kw: dict, seq: int = -1, in_ready: bool = False) -> None:
        self.time = when
        self.func = func
        self.args = args
        self.kw = kw
        self.called = False
        self.cancelled = False
        self._scheduler = scheduler
        self._seq = seq            # the live heap entry's seq; -1: none
        self._in_ready = in_ready  # live in the scheduler's ready deque
        self._trace_id = None

    def getTime(self) -> float:
        """When the call is due (seconds, the scheduler's clock)."""
        return self.time

    def seconds(self) -> float:
        """Now, on the clock of the scheduler this call belongs to."""
        return self._scheduler.seconds()

    def active(self) -> bool:
        """True until the call has run or been cancelled."""
        return not (self.called or self.cancelled)

    def _check_active(self) -> None:
        if self.cancelled:
            raise error.AlreadyCancelled()
        if self.called:
            raise error.AlreadyCalled()

    def cancel(self) -> None:
        """Do not run it; AlreadyCancelled / AlreadyCalled if too late."""
        self._check_active()
        self.cancelled = True
        self._scheduler._call_cancelled(self)

    def delay(self, secondsLater: float) -> None:
        """Move the due time by ``secondsLater`` (may be negative)."""
        self._check_active()
        self.time += secondsLater
        self._scheduler._call_moved(self)

    def reset(self, secondsFromNow: float) -> None:
        """Make the call due ``secondsFromNow`` from now."""
        self._check_active()
        self.time = self._scheduler.seconds() + secondsFromNow
        self._scheduler._call_moved(self)

    def __lt__(self, other: DelayedCall) -> bool:
        return self.time < other.time

    def __le__(self, other: DelayedCall) -> bool:
        return self.time <= other.time

    def __repr__(self) -> str:
        name = getattr(self.func, "__qualname__", None) or repr(self.func)
        params = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kw.items()]
        left = self.time - self._scheduler.seconds()
        return (f"<DelayedCall 0x{id(self):x} [{left}s] called={int(self.called)} "
                f"cancelled={int(self.cancelled)} {name}({', '.join(params)})>")


class _Trigger:
    """One system event trigger; compared by identity so removal is exact.

    Indexable as Twisted's ``(phase, callable, args, kwargs)`` tuple, which
    code holding a trigger id sometimes takes apart."""

    __slots__ = ("args", "func", "kw", "phase")

    def __init__(self, phase: str, func: Callable[..., Any], args: tuple, kw: dict) -> None:
        self.phase = phase
        self.func = func
        self.args = args
        self.kw = kw

    def __getitem__(self, index: Any) -> Any:
        return (self.phase, self.func, self.args, self.kw)[index]


class _SystemEvent:
    """The three phases of one event ("startup", "shutdown", ...).

    ``before`` triggers may return Deferreds: ``during`` and ``after`` wait
    until all of them fired, while the loop keeps running.  Triggers are
    consumed as they run, like Twisted's ``_ThreePhaseEvent``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.phases: dict[str, list[_Trigger]] = {p: [] for p in _PHASES}
        self.firing_before = False
        self.finished_before: list[_Trigger] = []

    def remove(self, trigger: _Trigger) -> None:
        """Remove ``trigger``: KeyError for an unknown phase, ValueError for a
        trigger that is not (or no longer) there, as Twisted raises."""
        if not isinstance(trigger, _Trigger):
            self.phases[trigger[0]]  # a phase that does not exist: KeyError
            raise ValueError(f"no such trigger: {trigger!r}")  # noqa: TRY004 - Twisted's error
        if self.firing_before and trigger in self.finished_before:
            self.finished_before.remove(trigger)
        else:
            self.phases[trigger.phase].remove(trigger)

    def fire(self, reactor: Reactor) -> None:
        from reactor.defer import Deferred

        self.firing_before = True
        waiting = []
        before = self.phases["before"]
        while before:
            trigger = before.pop(0)
            self.finished_before.append(trigger)
            result = reactor._run_trigger(self.name, trigger)
            if isinstance(result, Deferred):
                waiting.append(result)
        if not waiting:
            self._continue(reactor)
            return
        remaining = [len(waiting)]

        def one_done(result: Any) -> None:
            if _is_failure(result):
                log.err(result, f"Error in a 'before {self.name}' trigger")
            remaining[0] -= 1
            if remaining[0] == 0:
                self._continue(reactor)

        for d in waiting:
            d.addBoth(one_done)

    def _continue(self, reactor: Reactor) -> None:
        self.firing_before = False
        self.finished_before = []
        for phase in ("during", "after"):
            triggers = self.phases[phase]
            while triggers:
                reactor._run_trigger(self.name, triggers.pop(0))


def _is_failure(value: Any) -> bool:
    from reactor.failure import Failure

    return isinstance(value, Failure)


class _Waker:
    """The reactor's own reader that other threads (and signal handlers) poke
    to end a wait in the selector: an eventfd on Linux, else a pipe."""

    _reports_own_calls = True  # not user code: dispatched without a trace call

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            self._read_fd = self._write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._poke = b"\x01\x00\x00\x00\x00\x00\x00\x00"
        else:
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)
            self._poke = b"x"

    def fileno(self) -> int:
        return self._read_fd

    def wakeUp(self) -> None:
        """Make the next (or current) selector wait return at once."""
        if self._write_fd < 0:
            return  # closed with its reactor: nothing to wake
        try:
            os.write(self._write_fd, self._poke)
        except OSError:
            pass  # full: the loop is already poked

    def doRead(self) -> None:
        try:
            os.read(self._read_fd, 4096)
        except OSError:
            pass

    def connectionLost(self, reason: Any) -> None:
        """The waker lives as long as the reactor; see ``close``."""

    def logPrefix(self) -> str:
        return "-waker-"

    def close(self) -> None:
        """Close the fds; later wakeUp calls (a late thread) do nothing, and
        never write to an fd number the OS has handed to someone else."""
        read_fd, write_fd = self._read_fd, self._write_fd
        self._read_fd = self._write_fd = -1
        os.close(read_fd)
        if write_fd != read_fd:
            os.close(write_fd)


class Reactor:
    """A Twisted-compatible reactor on the ``selectors`` module (epoll on Linux).

    Tests make their own (``Reactor()``); applications use the default
    instance ``reactor.reactor``.  A stopped reactor cannot run again
    (ReactorNotRestartable); one stopped by ``crash()`` can.
    """

    def __init__(self) -> None:
        if type(self).seconds is Reactor.seconds:
            self.seconds = _monotonic  # type: ignore[method-assign]  # faster; see seconds()
        self.running = False
        self._started = False
        self._stopped = True
        self._just_stopped = False
        self._started_before = False
        self._install_signals = False
        self._old_signals: dict[int, Any] = {}
        self._thread_ident: int | None = None

        self._ready: deque[DelayedCall] = deque()
        self._heap: list[tuple[float, int, DelayedCall]] = []
        self._next_seq = 0
        self._stale = 0  # heap entries whose call was cancelled or moved
        self._thread_calls: deque[tuple[Callable[..., Any], tuple, dict]] = deque()

        self._selector = selectors.DefaultSelector()
        self._slots: dict[int, list[Any]] = {}   # fd -> [reader, writer]
        self._readers: dict[Any, int] = {}       # descriptor -> fd it was added with
        self._writers: dict[Any, int] = {}
        self._waker = _Waker()
        self._internal = {self._waker}
        waker_fd = self._waker.fileno()
        self._readers[self._waker] = waker_fd
        self._slots[waker_fd] = [self._waker, None]
        self._selector.register(waker_fd, _READ, self._slots[waker_fd])

        self._events: dict[str, _SystemEvent] = {}
        self._threadpool: ThreadPool | None = None
        self.addSystemEventTrigger("during", "startup", self._really_start_running)
        self.addSystemEventTrigger("during", "shutdown", self.crash)
        self.addSystemEventTrigger("during", "shutdown", self._disconnect_all)

    # -- running and stopping ------------------------------------------------
    def seconds(self) -> float:
        """The reactor's clock: ``time.monotonic()``.

        Timers are scheduled and run by whatever ``seconds`` is, so a test
        may replace it (``reactor.seconds = fake``) or a subclass override it,
        as Twisted allows.  The plain clock is bound as an instance attribute
        in ``__init__``, which makes each read as cheap as a global."""
        return _monotonic()

    def run(self, installSignalHandlers: bool = True) -> None:
        """Fire startup, run the loop until ``stop()`` or ``crash()``.

        Exceptions in callbacks are logged and the loop goes on, but
        KeyboardInterrupt and SystemExit (``sys.exit()`` in a callback) leave
        ``run()`` as they would any Python function; the reactor is then
        crashed, so it may be run again.
        """
        self.startRunning(installSignalHandlers=installSignalHandlers)
        try:
            self.mainLoop()
        except BaseException:
            self.crash()
            raise
        finally:
            self._restore_signal_handlers()

    def startRunning(self, installSignalHandlers: bool = True) -> None:
        """Check the reactor may start, then fire the "startup" event."""
        if self._started:
            raise error.ReactorAlreadyRunning()
        if self._started_before:
            raise error.ReactorNotRestartable()
        self._started = True
        self._stopped = False
        self._install_signals = installSignalHandlers
        self._thread_ident = threading.get_ident()
        probe = _instrument.probe
        if probe is not None:
            probe.loop_started(self)
        self.fireSystemEvent("startup")

    def _really_start_running(self) -> None:
        """The "during startup" trigger: from here on ``running`` is True."""
        self.running = True
        if self._install_signals:
            self._install_signal_handlers()

    def mainLoop(self) -> None:
        """Iterate until the reactor stops; errors in the loop itself are logged."""
        try:
            while self._started:
                try:
                    while self._started:
                        self.runUntilCurrent()
                        if self._started:
                            self.doIteration(self.timeout())
                except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
                    log.err(None, "Unexpected error in main loop.")
        finally:
            probe = _instrument.probe
            if probe is not None:
                probe.loop_stopped(self)

    def stop(self) -> None:
        """Shut down at the end of this iteration: shutdown triggers, then exit.

        ReactorNotRunning if it is not running or is already stopping.
        """
        if self._stopped:
            raise error.ReactorNotRunning("Can't stop reactor that isn't running.")
        self._stopped = True
        self._just_stopped = True
        self._started_before = True

    def crash(self) -> None:
        """Leave the loop now, without shutdown triggers; ``run()`` may be called again."""
        self._started = False
        self.running = False
        self.addSystemEventTrigger("during", "startup", self._really_start_running)

    def callWhenRunning(self, f: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Call ``f`` now if running, else once startup completes (returns the trigger id)."""
        if self.running:
            f(*args, **kw)
            return None
        return self.addSystemEventTrigger("after", "startup", f, *args, **kw)

    def iterate(self, delay: float = 0.0) -> None:
        """Run one iteration, waiting at most ``delay`` seconds for I/O."""
        self.runUntilCurrent()
        self.doIteration(delay)

    # -- one iteration -----------------------------------------------------------
    def runUntilCurrent(self) -> None:
        """Run thread hand-backs, then timers due now, then a requested shutdown."""
        if self._thread_calls:
            self._run_thread_calls()
        if self._ready or self._heap:
            self._run_timers()
        if self._just_stopped:
            self._just_stopped = False
            self.fireSystemEvent("shutdown")

    def timeout(self) -> float | None:
        """Seconds the next wait may last: 0 with work ready, None with nothing scheduled."""
        if self._ready or self._thread_calls or self._just_stopped:
            return 0.0
        heap = self._heap
        while heap and heap[0][2]._seq != heap[0][1]:
            _heappop(heap)
            self._stale -= 1
        if heap:
            return max(0.0, heap[0][0] - self.seconds())
        return None

    def doIteration(self, timeout: float | None) -> None:
        """Wait for I/O (at most ``timeout`` s) and dispatch it."""
        probe = _instrument.probe
        if probe is not None:
            probe.poll_begin(timeout)
        events = self._selector.select(timeout)
        if probe is not None:
            probe.poll_end(events)
        for key, mask in events:
            slot = key.data
            reader = slot[0]
            if mask & _READ and reader is not None:
                self._dispatch(reader, True, probe)
            writer = slot[1]  # read again: doRead may have ended or removed it
            if mask & _WRITE and writer is not None:
                self._dispatch(writer, False, probe)

    def _dispatch(self, d: Any, is_read: bool, probe: Any) -> bool:
        """Run ``d.doRead()``/``doWrite()``; end ``d`` on a truthy return or an
        exception.  Returns True if ``d`` ended."""
        try:
            if d.fileno() == -1:
                why: Any = _NO_FILEDESC
            elif probe is None or getattr(d, "_reports_own_calls", False):
                why = d.doRead() if is_read else d.doWrite()
            elif is_read:
                why = self._call_user("read", d, d.doRead)
            else:
                why = self._call_user("write", d, d.doWrite)
        except Exception as exc:  # noqa: BLE001 - user code's error is logged; the loop goes on
            log.err(None, f"Unhandled error in {'doRead' if is_read else 'doWrite'} of {_prefix(d)}")
            why = exc
        if why:
            self._end_descriptor(d, why, "read" if is_read else "write")
            return True
        return False

    def _end_descriptor(self, d: Any, why: Any, kind: str) -> None:
        """Remove ``d`` from both sets and tell it why, via connectionLost(Failure)."""
        from reactor.failure import Failure

        self.removeReader(d)
        self.removeWriter(d)
        if not _is_failure(why):
            if not isinstance(why, BaseException):
                why = error.ConnectionLost(repr(why))
            why = Failure(why)
        try:
            probe = _instrument.probe
            if probe is None or getattr(d, "_reports_own_calls", False):
                d.connectionLost(why)
            else:
                self._call_user(kind, d, d.connectionLost, why)
        except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
            log.err(None, f"Unhandled error in connectionLost of {_prefix(d)}")

    # -- running user code ------------------------------------------------------
    def _call_user(self, kind: str, source: Any, f: Callable[..., Any],
                   *args: Any, **kwargs: Any) -> Any:
        """Run user code ``f``, reported to the probe as one call of ``kind``.

        With the timer and thread hand-back loops, the only places where the
        tracer sees what the loop runs.  An exception propagates to the caller
        (after the probe saw it).
        """
        probe = _instrument.probe
        if probe is None:
            return f(*args, **kwargs)
        return probe.run_call(kind, source, f, args, kwargs)

    # -- time -------------------------------------------------------------------
    def callLater(self, delay: float, f: Callable[..., Any], *args: Any, **kw: Any) -> DelayedCall:
        """Call ``f(*args, **kw)`` ``delay`` seconds from now (not before the next iteration).

        A negative (or NaN) delay raises ValueError; Twisted asserts instead,
        which ``python -O`` would silently skip.
        """
        if delay == 0:
            call = DelayedCall(self, self.seconds(), f, args, kw, -1, True)
            self._ready.append(call)
        elif delay > 0:
            seq = self._next_seq
            self._next_seq = seq + 1
            call = DelayedCall(self, self.seconds() + delay, f, args, kw, seq)
            _heappush(self._heap, (call.time, seq, call))
        else:
            raise ValueError(f"{delay} is not greater than or equal to 0 seconds")
        probe = _instrument.probe
        if probe is not None:
            probe.timer_scheduled(call)
        return call

    def getDelayedCalls(self) -> list[DelayedCall]:
        """Every call scheduled and not yet run or cancelled."""
        return ([c for c in self._ready if c._in_ready]
                + [c for _, seq, c in self._heap if c._seq == seq])

    def _call_cancelled(self, call: DelayedCall) -> None:
        self._forget_entry(call)
        probe = _instrument.probe
        if probe is not None:
            probe.timer_cancelled(call)

    def _call_moved(self, call: DelayedCall) -> None:
        self._forget_entry(call)
        seq = self._next_seq
        self._next_seq = seq + 1
        call._seq = seq
        _heappush(self._heap, (call.time, seq, call))

    def _forget_entry(self, call: DelayedCall) -> None:
        """Make the queue entry of ``call`` stale; compact the heap when mostly stale."""
        if call._in_ready:
            call._in_ready = False
            return
        call._seq = -1
        self._stale += 1
        heap = self._heap
        if self._stale > 64 and self._stale * 2 > len(heap):
            heap[:] = [entry for entry in heap if entry[2]._seq == entry[1]]
            heapq.heapify(heap)
            self._stale = 0

    def _run_timers(self) -> None:
        """Run the calls due now, in time order; later ones wait."""
        ready = self._ready
        heap = self._heap
        n = len(ready)
        probe = _instrument.probe
        if heap and heap[0][0] <= self.seconds():
            n = self._run_due_heap_calls(n, probe)
        # The common case: only callLater(0) calls are due.
        while n:
            n -= 1
            call = ready.popleft()
            if not call._in_ready:
                continue
            call._in_ready = False
            call.called = True
            try:
                if probe is None:
                    call.func(*call.args, **call.kw)
                else:
                    probe.run_call("timer", call, call.func, call.args, call.kw)
            except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
                log.err(None, f"Unhandled error in timed call {call!r}")

    def _run_due_heap_calls(self, n: int, probe: Any) -> int:
        """Run due heap calls merged by time with the first ``n`` ready ones.

        Only entries that existed when this started (seq below the limit) run.
        Returns how many ready calls are left for the plain FIFO pass.
        """
        ready = self._ready
        heap = self._heap
        now = self.seconds()
        limit = self._next_seq
        while heap:
            when, seq, call = heap[0]
            if when > now or seq >= limit:
                break
            if n and ready[0].time < when:
                n -= 1
                call = ready.popleft()
                if not call._in_ready:
                    continue
                call._in_ready = False
            else:
                _heappop(heap)
                if call._seq != seq:
                    self._stale -= 1
                    continue
                call._seq = -1
            call.called = True
            try:
                if probe is None:
                    call.func(*call.args, **call.kw)
                else:
                    probe.run_call("timer", call, call.func, call.args, call.kw)
            except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
                log.err(None, f"Unhandled error in timed call {call!r}")
        return n

    # -- descriptors ---------------------------------------------------------------
    def addReader(self, reader: Any) -> None:
        """Watch ``reader`` for reading (adding it twice is harmless)."""
        if reader not in self._readers:
            self._add(reader, 0, self._readers)

    def addWriter(self, writer: Any) -> None:
        """Watch ``writer`` for writing (adding it twice is harmless)."""
        if writer not in self._writers:
            self._add(writer, 1, self._writers)

    def removeReader(self, reader: Any) -> None:
        """Stop watching ``reader`` for reading (if it was)."""
        if reader in self._readers:
            self._remove(reader, 0, self._readers)

    def removeWriter(self, writer: Any) -> None:
        """Stop watching ``writer`` for writing (if it was)."""
        if writer in self._writers:
            self._remove(writer, 1, self._writers)

    def removeAll(self) -> list[Any]:
        """Stop watching every descriptor (not the reactor's own); returns them."""
        removed = [d for d in self._readers if d not in self._internal]
        removed += [d for d in self._writers if d not in self._internal and d not in self._readers]
        for d in removed:
            self.removeReader(d)
            self.removeWriter(d)
        return removed

    def getReaders(self) -> list[Any]:
        """The descriptors watched for reading.

        Unlike Twisted, the reactor's own waker is not listed: callers want
        their descriptors, and Twisted's own tests filter it out anyway.
        """
        return [d for d in self._readers if d not in self._internal]

    def getWriters(self) -> list[Any]:
        """The descriptors watched for writing."""
        return [d for d in self._writers if d not in self._internal]

    def _add(self, d: Any, index: int, table: dict[Any, int]) -> None:
        fd = d.fileno()
        table[d] = fd
        if fd == -1:
            # Nothing to watch: drop it on the next iteration, as a select()
            # based reactor does with a descriptor whose fd went away.
            self.callLater(0, self._drop_if_still_watched, d, fd)
        else:
            slot = self._slots.get(fd)
            if slot is None:
                slot = self._slots[fd] = [None, None]
            for stale in slot:
                # One descriptor per fd: another one here had its fd closed
                # (and the number reused); forget it as Twisted does, and
                # register the fd afresh since the kernel dropped it.
                if stale is not None and stale is not d:
                    self._readers.pop(stale, None)
                    self._writers.pop(stale, None)
                    slot[0 if slot[0] is stale else 1] = None
                    self._unregister(fd)
            slot[index] = d
            self._update_registration(fd, slot, adding=True)
        probe = _instrument.probe
        if probe is not None:
            probe.descriptor_added(d, fd, "rw"[index])

    def _remove(self, d: Any, index: int, table: dict[Any, int]) -> None:
        fd = table.pop(d)
        slot = self._slots.get(fd)
        if slot is not None and slot[index] is d:
            slot[index] = None
            self._update_registration(fd, slot, adding=False)
        probe = _instrument.probe
        if probe is not None:
            probe.descriptor_removed(d, fd, "rw"[index])

    def _update_registration(self, fd: int, slot: list[Any], adding: bool) -> None:
        """Make the selector's interest in ``fd`` match ``slot``."""
        events = (_READ if slot[0] is not None else 0) | (_WRITE if slot[1] is not None else 0)
        selector = self._selector
        if not events:
            del self._slots[fd]
            self._unregister(fd)
            return
        try:
            key = selector.get_key(fd)
        except KeyError:
            selector.register(fd, events, slot)
            return
        if key.events == events and key.data is slot:
            return
        try:
            selector.modify(fd, events, slot)
        except OSError:
            # The fd was closed (the kernel forgot it) and maybe reused.
            self._unregister(fd)
            try:
                selector.register(fd, events, slot)
            except OSError:
                if adding:
                    raise

    def _unregister(self, fd: int) -> None:
        """Forget ``fd`` in the selector, if the selector still knows it (a
        failed ``modify`` of a closed fd already made it forget)."""
        try:
            self._selector.unregister(fd)
        except KeyError:
            pass

    def _drop_if_still_watched(self, d: Any, fd: int) -> None:
        if self._readers.get(d) == fd or self._writers.get(d) == fd:
            self._end_descriptor(d, _NO_FILEDESC, "read")

    def _disconnect_all(self) -> None:
        """The "during shutdown" trigger: every descriptor left gets connectionLost."""
        from reactor.failure import Failure

        for d in self.removeAll():
            try:
                probe = _instrument.probe
                if probe is None or getattr(d, "_reports_own_calls", False):
                    d.connectionLost(Failure(error.CONNECTION_LOST))
                else:
                    self._call_user("read", d, d.connectionLost, Failure(error.CONNECTION_LOST))
            except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
                log.err(None, f"Unhandled error in connectionLost of {_prefix(d)}")

    # -- system events -------------------------------------------------------------
    def addSystemEventTrigger(self, phase: str, eventType: str, callable: Callable[..., Any],
                              *args: Any, **kw: Any) -> tuple[str, _Trigger]:
        """Call ``callable`` in ``phase`` ("before", "during", "after") of ``eventType``.

        Returns an id for ``removeSystemEventTrigger``.  A "before" trigger may
        return a Deferred: the later phases wait for it.
        """
        if phase not in _PHASES:
            raise KeyError(f"invalid phase {phase!r}")
        if not builtins.callable(callable):
            raise TypeError(f"{callable!r} is not callable")
        event = self._events.get(eventType)
        if event is None:
            event = self._events[eventType] = _SystemEvent(eventType)
        trigger = _Trigger(phase, callable, args, kw)
        event.phases[phase].append(trigger)
        return (eventType, trigger)

    def removeSystemEventTrigger(self, triggerID: tuple[str, _Trigger]) -> None:
        """Remove a trigger: ValueError if it already ran or was removed,
        KeyError for an unknown event or phase, TypeError for something that
        is not a trigger id at all (as Twisted)."""
        event_type, trigger = triggerID
        self._events[event_type].remove(trigger)

    def fireSystemEvent(self, eventType: str) -> None:
        """Run the triggers of ``eventType`` (before, then during and after)."""
        event = self._events.get(eventType)
        if event is not None:
            event.fire(self)

    def _run_trigger(self, event_name: str, trigger: _Trigger) -> Any:
        """Run one trigger as user code; its exception is logged."""
        try:
            return self._call_user("trigger", (trigger.phase, event_name), trigger.func,
                                   *trigger.args, **trigger.kw)
        except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
            log.err(None, f"Unhandled error in '{trigger.phase} {event_name}' trigger "
                          f"{trigger.func!r}")
            return None

    # -- signals -------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM stop the reactor (main thread only; a SIGINT
        handler the application installed itself is left alone)."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._old_signals[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_signal)
        self._old_signals[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_signal)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._old_signals.items():
            signal.signal(signum, handler)
        self._old_signals.clear()

    def _on_signal(self, signum: int, frame: Any) -> None:
        _log.info("Received %s, shutting down.", signal.Signals(signum).name)
        self.callFromThread(self._stop_unless_stopping)

    def _stop_unless_stopping(self) -> None:
        if not self._stopped:
            self.stop()

    # -- threads -------------------------------------------------------------------
    def callFromThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Run ``f`` on the reactor thread, soon; safe from any thread, FIFO."""
        self._thread_calls.append((f, args, kw))
        self._waker.wakeUp()

    def wakeUp(self) -> None:
        """End the current wait in the selector (from any thread)."""
        self._waker.wakeUp()

    def _run_thread_calls(self) -> None:
        """Run the hand-backs queued when this started; later ones wait."""
        queue = self._thread_calls
        probe = _instrument.probe
        for _ in range(len(queue)):
            f, args, kw = queue.popleft()
            try:
                if probe is None:
                    f(*args, **kw)
                else:
                    probe.run_call("thread", None, f, args, kw)
            except Exception:  # noqa: BLE001 - user code's error is logged; the loop goes on
                log.err(None, f"Unhandled error in call from thread {f!r}")

    def getThreadPool(self) -> ThreadPool:
        """The reactor's pool (0-10 threads), created on first use, started
        with the reactor and stopped during shutdown."""
        if self._threadpool is None:
            self._threadpool = ThreadPool(0, 10, "reactor")
            # A trigger of the reactor's, not the pool's bound method: a pool
            # stopped before the reactor ran must not be kept alive by it.
            self.callWhenRunning(self._start_thread_pool)
            self.addSystemEventTrigger("during", "shutdown", self._stop_thread_pool)
        return self._threadpool

    @property
    def threadpool(self) -> ThreadPool | None:
        """The pool if one was made (``getThreadPool`` makes it), else None;
        Twisted code and its tests read this attribute."""
        return self._threadpool

    def _start_thread_pool(self) -> None:
        if self._threadpool is not None:
            self._threadpool.start()

    def _stop_thread_pool(self) -> None:
        if self._threadpool is not None:
            self._threadpool.stop()
            self._threadpool = None

    def callInThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Run ``f`` in the reactor's thread pool."""
        self.getThreadPool().callInThread(f, *args, **kw)

    def suggestThreadPoolSize(self, size: int) -> None:
        """Let the pool grow to ``size`` threads (0: work waits until it is
        raised again, as in Twisted)."""
        self.getThreadPool().adjustPoolsize(maxthreads=size)

    # -- networking (implemented in reactor.tcp / reactor.unix) ---------------------
    resolver: Any = None
    """What resolve() asks (``getHostByName(name, timeout)``): the installed
    resolver, else the threaded one of ``reactor.resolve``."""

    def resolve(self, name: str, timeout: Any = (1, 3, 11, 45)) -> Any:
        """A Deferred of ``name``'s address (IPv4, from the default resolver),
        looked up in the thread pool; DNSLookupError after ``sum(timeout)``
        seconds.  connectTCP to a host name asks this too."""
        from reactor import resolve

        if self.resolver is None:
            self.resolver = resolve.ThreadedResolver(self)
        return resolve.resolve_with(self.resolver, name, timeout)

    def installResolver(self, resolver: Any) -> Any:
        """Answer resolve() and connectTCP's lookups with ``resolver`` (an
        object with ``getHostByName(name, timeout)`` returning a Deferred, as
        Twisted's IResolverSimple); returns the one it replaces."""
        previous, self.resolver = self.resolver, resolver
        return previous

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        """Listen on TCP ``port``; returns the listening port (getHost, stopListening)."""
        from reactor import tcp

        return tcp.listen_tcp(self, port, factory, backlog, interface)

    def connectTCP(self, host: str, port: int | str, factory: Any, timeout: float = 30,
                   bindAddress: Any = None) -> Any:
        """Connect to ``host:port`` with protocols from ``factory``; returns a
        connector.  ``port`` may be a service name (``"http"``); ``host`` a
        scoped IPv6 address (``"fe80::1%eth0"``)."""
        from reactor import tcp

        return tcp.connect_tcp(self, host, port, factory, timeout, bindAddress)

    def listenUNIX(self, address: str, factory: Any, backlog: int = 50, mode: int = 0o666,
                   wantPID: bool = False) -> Any:
        """Listen on the Unix socket path ``address`` (file mode ``mode``);
        ``wantPID`` holds the lock file ``address + ".lock"`` meanwhile."""
        from reactor import unix

        return unix.listen_unix(self, address, factory, backlog, mode, wantPID)

    def connectUNIX(self, address: str, factory: Any, timeout: float = 30,
                    checkPID: bool = False) -> Any:
        """Connect to the Unix socket path ``address``; ``checkPID`` fails
        the attempt (BadFileError) unless a live server holds its lock file."""
        from reactor import unix

        return unix.connect_unix(self, address, factory, timeout, checkPID)

    def listenSSL(self, port: int, factory: Any, contextFactory: Any, backlog: int = 50,
                  interface: str = "") -> Any:
        """listenTCP whose connections speak TLS (``contextFactory``: an
        ``ssl.SSLContext`` or an object with ``getContext()``; see ``reactor.tls``)."""
        from reactor import tls

        return tls.listen_ssl(self, port, factory, contextFactory, backlog, interface)

    def connectSSL(self, host: str, port: int, factory: Any, contextFactory: Any,
                   timeout: float = 30, bindAddress: Any = None) -> Any:
        """connectTCP, then TLS as a client (see ``reactor.tls``)."""
        from reactor import tls

        return tls.connect_ssl(self, host, port, factory, contextFactory, timeout, bindAddress)

    def listenUDP(self, port: int, protocol: Any, interface: str = "",
                  maxPacketSize: int = 8192) -> Any:
        """Bind UDP ``port`` for the DatagramProtocol ``protocol``; returns the port."""
        from reactor import udp

        return udp.listen_udp(self, port, protocol, interface, maxPacketSize)

    def spawnProcess(self, processProtocol: Any, executable: str, args: Any = (),
                     env: Any = {},  # noqa: B006 (Twisted's default; never mutated)
                     path: str | None = None, usePTY: bool = False,
                     childFDs: dict | None = None) -> Any:
        """Start ``executable`` with ``args`` (``args[0]`` is its argv[0]) for
        the ProcessProtocol ``processProtocol``; returns the process transport.
        As in Twisted, the child gets an empty environment unless ``env`` is
        given, and this process's with ``env=None``.  See ``reactor.process``."""
        from reactor import process

        return process.spawn_process(self, processProtocol, executable, args, env, path,
                                     usePTY, childFDs)

    # -- teardown ----------------------------------------------------------------------
    def _close(self) -> None:
        """Release the selector and the waker (for tests that make many reactors)."""
        self._selector.close()
        self._waker.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Reactor 0x{id(self):x} {state}>"


def _prefix(d: Any) -> str:
    """A descriptor's name for log lines (its logPrefix, else its repr)."""
    try:
        return d.logPrefix()
    except Exception:  # noqa: BLE001 - a broken logPrefix must not break a log line
        return repr(d)


def install() -> Reactor:
    """Make loopscope's default reactor Twisted's global one, as Twisted's
    ``epollreactor.install()`` does for its own: code that still says
    ``from twisted.internet import reactor`` (a library not ported yet, a
    helper script) then runs on this loop.  Call it before anything imports
    Twisted's reactor; needs Twisted installed.  Returns the reactor."""
    from twisted.internet.main import installReactor

    from reactor import reactor

    installReactor(reactor)
    return reactor
