"""Moving work between the reactor thread and pool threads, as Twisted's
``twisted.internet.threads``: results come back to the reactor thread as
Deferreds (``deferToThread``), and pool threads can wait for reactor-side
work (``blockingCallFromThread``)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from reactor.defer import Deferred, maybeDeferred
from reactor.failure import Failure
from reactor.threadpool import ThreadPool


def deferToThreadPool(reactor: Any, threadpool: ThreadPool, f: Callable[..., Any],
                      *args: Any, **kwargs: Any) -> Deferred:
    """Run ``f`` in ``threadpool``; the Deferred fires on ``reactor``'s thread
    with its result (or a Failure of what it raised)."""
    d = Deferred()

    def on_result(success: bool, result: Any) -> None:
        if success:
            reactor.callFromThread(d.callback, result)
        else:
            reactor.callFromThread(d.errback, result)

    threadpool.callInThreadWithCallback(on_result, f, *args, **kwargs)
    return d


def deferToThread(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
    """Run blocking ``f`` in the default reactor's pool; a Deferred of its result."""
    from reactor import reactor

    return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args, **kwargs)


def callMultipleInThread(tupleList: list[tuple[Callable[..., Any], tuple, dict]]) -> None:
    """Run ``[(f, args, kwargs), ...]`` one after another in one pool thread
    of the default reactor."""
    from reactor import reactor

    def run_all() -> None:
        for f, args, kwargs in tupleList:
            f(*args, **kwargs)

    reactor.callInThread(run_all)


def blockingCallFromThread(reactor: Any, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """From a non-reactor thread: run ``f`` on the reactor thread, wait for it
    (and for the Deferred it may return), return its result or raise its error.

    Calling it on the running reactor's own thread would wait forever, so that
    raises RuntimeError instead (as in Twisted).
    """
    if reactor.running and threading.get_ident() == reactor._thread_ident:
        raise RuntimeError("blockingCallFromThread cannot be called from the reactor thread")
    outcome: queue.SimpleQueue = queue.SimpleQueue()

    def in_reactor() -> None:
        maybeDeferred(f, *args, **kwargs).addBoth(outcome.put)

    reactor.callFromThread(in_reactor)
    result = outcome.get()
    if isinstance(result, Failure):
        result.raiseException()
    return result
