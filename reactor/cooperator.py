"""Cooperative multitasking over iterators, as Twisted's ``task.Cooperator``.

A long computation split into steps (an iterator: each ``next()`` is one
step) can run without blocking the loop: the Cooperator runs steps of all its
tasks round-robin for a short slice, then gives the loop back until the next
iteration.  A step that yields a Deferred pauses its task until the Deferred
fires.  ``cooperate``/``coiterate`` use one process-wide Cooperator on the
default reactor.

These names are re-exported by ``reactor.task``, where Twisted has them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from reactor.defer import Deferred
from reactor.failure import Failure


class SchedulerError(Exception):
    """The scheduler or one of its tasks was in the wrong state for this."""


class SchedulerStopped(SchedulerError):
    """The Cooperator was stopped (before or while the task ran)."""


class TaskFinished(SchedulerError):
    """The task can do nothing more: it completed, was stopped or failed."""


class TaskDone(TaskFinished):
    """The task's iterator was exhausted."""


class TaskStopped(TaskFinished):
    """The task was stopped with ``stop()``."""


class TaskFailed(TaskFinished):
    """The task's iterator raised (or a Deferred it yielded failed)."""


class NotPaused(SchedulerError):
    """``resume()`` was called on a task that was not paused."""


class _Timer:
    """The default termination predicate: true once a slice of time is used."""

    MAX_SLICE = 0.01
    """Seconds of steps per loop iteration: short enough that I/O waits at
    most ~10 ms behind a busy Cooperator, long enough that stepping is not
    dominated by the trip through the loop."""

    def __init__(self) -> None:
        self.end = time.monotonic() + self.MAX_SLICE

    def __call__(self) -> bool:
        return time.monotonic() >= self.end


def _default_scheduler(f: Callable[[], None]) -> Any:
    """Run ``f`` on the default reactor's next iteration (after its I/O)."""
    from reactor import reactor

    return reactor.callLater(0, f)


class CooperativeTask:
    """One iterator run by a Cooperator; it can be paused, resumed, stopped
    and waited on (``whenDone``).  Made by :meth:`Cooperator.cooperate`."""

    def __init__(self, iterator: Iterator[Any], cooperator: Cooperator) -> None:
        self._iterator = iterator
        self._cooperator = cooperator
        self._deferreds: list[Deferred] = []
        self._pauseCount = 0
        self._completionState: SchedulerError | None = None
        self._completionResult: Any = None
        cooperator._addTask(self)

    def whenDone(self) -> Deferred:
        """A Deferred fired with the iterator once it is exhausted, or failed
        with what ended the task (its exception, TaskStopped, SchedulerStopped)."""
        d = Deferred()
        if self._completionState is None:
            self._deferreds.append(d)
        else:
            d.callback(self._completionResult)
        return d

    def pause(self) -> None:
        """Do no more steps until as many ``resume()`` calls as pauses;
        TaskFinished (a subclass) if the task is over."""
        self._checkFinish()
        self._pauseCount += 1
        if self._pauseCount == 1:
            self._cooperator._removeTask(self)

    def resume(self) -> None:
        """Undo one ``pause()``; NotPaused if the task is not paused."""
        if self._pauseCount == 0:
            raise NotPaused()
        self._pauseCount -= 1
        if self._pauseCount == 0 and self._completionState is None:
            self._cooperator._addTask(self)

    def stop(self) -> None:
        """End the task now: ``whenDone`` Deferreds fail with TaskStopped."""
        self._checkFinish()
        self._completeWith(TaskStopped(), Failure(TaskStopped()))

    def _checkFinish(self) -> None:
        if self._completionState is not None:
            raise self._completionState

    def _completeWith(self, state: SchedulerError, result: Any) -> None:
        """Record how the task ended, leave the Cooperator, then fire the
        ``whenDone`` Deferreds (last, so that their callbacks may use the
        Cooperator: add tasks, stop it)."""
        self._completionState = state
        self._completionResult = result
        if not self._pauseCount:
            self._cooperator._removeTask(self)
        for d in self._deferreds:
            d.callback(result)

    def _oneWorkUnit(self) -> None:
        """One step: ``next()`` on the iterator; a yielded Deferred pauses
        the task until it fires (its failure ends the task)."""
        try:
            result = next(self._iterator)
        except StopIteration:
            self._completeWith(TaskDone(), self._iterator)
        except BaseException:  # noqa: BLE001 - any exception becomes the Failure, as in Twisted
            self._completeWith(TaskFailed(), Failure())
        else:
            if isinstance(result, Deferred):
                self.pause()

                def failed(failure: Failure) -> None:
                    self._completeWith(TaskFailed(), failure)

                result.addCallbacks(lambda _: self.resume(), failed)


class Cooperator:
    """Runs the steps of its tasks, round-robin, a slice at a time.

    ``terminationPredicateFactory`` makes, at the start of each slice, a
    callable that says when the slice is over (default: 10 ms of steps);
    ``scheduler(f)`` arranges for ``f`` to run later (default: the default
    reactor's next iteration).  With ``started=False`` no step runs before
    ``start()``.
    """

    def __init__(self, terminationPredicateFactory: Callable[[], Callable[[], bool]] = _Timer,
                 scheduler: Callable[[Callable[[], None]], Any] = _default_scheduler,
                 started: bool = True) -> None:
        self._tasks: list[CooperativeTask] = []
        # Where the round-robin stopped: the next slice resumes from there.
        self._metarator: Iterator[CooperativeTask] = iter(())
        self._terminationPredicateFactory = terminationPredicateFactory
        self._scheduler = scheduler
        self._delayedCall: Any = None
        self._stopped = False
        self._started = started
        self._mustScheduleOnStart = False

    def coiterate(self, iterator: Iterator[Any], doneDeferred: Deferred | None = None) -> Deferred:
        """Run ``iterator`` as a task; the Deferred (``doneDeferred`` if
        given) fires as its ``whenDone`` would."""
        if doneDeferred is None:
            doneDeferred = Deferred()
        CooperativeTask(iterator, self).whenDone().chainDeferred(doneDeferred)
        return doneDeferred

    def cooperate(self, iterator: Iterator[Any]) -> CooperativeTask:
        """Run ``iterator`` as a task and return the task."""
        return CooperativeTask(iterator, self)

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._started and not self._stopped

    def start(self) -> None:
        """Begin (or, after ``stop``, resume accepting and) running steps."""
        self._stopped = False
        self._started = True
        if self._mustScheduleOnStart:
            self._mustScheduleOnStart = False
            self._reschedule()

    def stop(self) -> None:
        """Stop: every task's ``whenDone`` fails with SchedulerStopped, and
        tasks added later fail at once, until ``start()``."""
        self._stopped = True
        for t in self._tasks:
            t._completeWith(SchedulerStopped(), Failure(SchedulerStopped()))
        self._tasks = []
        if self._delayedCall is not None:
            self._delayedCall.cancel()
            self._delayedCall = None

    def _addTask(self, t: CooperativeTask) -> None:
        self._tasks.append(t)
        if self._stopped:
            t._completeWith(SchedulerStopped(), Failure(SchedulerStopped()))
        else:
            self._reschedule()

    def _removeTask(self, t: CooperativeTask) -> None:
        self._tasks.remove(t)
        if not self._tasks and self._delayedCall is not None:
            self._delayedCall.cancel()
            self._delayedCall = None

    def _tasks_this_slice(self) -> Iterator[CooperativeTask]:
        """The tasks to step, round-robin, until the slice is over."""
        slice_over = self._terminationPredicateFactory()
        while self._tasks:
            for t in self._metarator:
                yield t
                if slice_over():
                    return
            self._metarator = iter(self._tasks)

    def _tick(self) -> None:
        self._delayedCall = None
        for t in self._tasks_this_slice():
            t._oneWorkUnit()
        self._reschedule()

    def _reschedule(self) -> None:
        if not self._started:
            self._mustScheduleOnStart = True
            return
        if self._delayedCall is None and self._tasks:
            self._delayedCall = self._scheduler(self._tick)


_theCooperator = Cooperator()  # Twisted's name: its tests read it


def coiterate(iterator: Iterator[Any]) -> Deferred:
    """Run ``iterator`` on the process-wide Cooperator; a Deferred of its end."""
    return _theCooperator.coiterate(iterator)


def cooperate(iterator: Iterator[Any]) -> CooperativeTask:
    """Run ``iterator`` on the process-wide Cooperator; returns the task."""
    return _theCooperator.cooperate(iterator)
