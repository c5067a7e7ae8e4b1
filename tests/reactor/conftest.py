"""Fixtures for reactor tests (shared by every owner of tests/reactor).

``loop``       a fresh ``reactor.Reactor()`` for one test; afterwards every
               descriptor still watched gets connectionLost (as at shutdown,
               so sockets a test left open are closed), its thread pool (if
               any) is stopped and its selector and waker are closed.
``run_until``  ``run_until(d, timeout=5.0)`` runs ``loop`` until the Deferred
               ``d`` fires and returns its result (raises its failure, fails
               the test if ``timeout`` seconds pass first).  It leaves the
               loop with ``crash()``, so it may be called several times in one
               test; a test that needs shutdown triggers calls ``loop.stop()``
               and ``loop.run()`` itself.

Both run the loop without installing signal handlers.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable, Iterator

import pytest

from reactor import Reactor


@pytest.fixture
def loop() -> Iterator[Reactor]:
    """A fresh reactor, released after the test."""
    r = Reactor()
    yield r
    r._disconnect_all()
    r._stop_thread_pool()
    r._close()


def run_loop_until(r: Reactor, d: Any, timeout: float = 5.0) -> Any:
    """Run ``r`` until Deferred ``d`` fires; return its result or raise its failure."""
    outcome: list[Any] = []

    def done(result: Any) -> None:
        outcome.append(result)
        r.crash()

    d.addBoth(done)
    if not outcome:
        timer = r.callLater(timeout, r.crash)
        r.run(installSignalHandlers=False)
        if timer.active():
            timer.cancel()
    if not outcome:
        raise AssertionError(f"the Deferred did not fire within {timeout} s")
    result = outcome[0]
    from reactor.failure import Failure

    if isinstance(result, Failure):
        result.raiseException()
    return result


@pytest.fixture
def run_until(loop: Reactor) -> Callable[..., Any]:
    """``run_until(d, timeout=5.0)`` on the test's ``loop`` (see the module docstring)."""

    def run(d: Any, timeout: float = 5.0) -> Any:
        return run_loop_until(loop, d, timeout)

    return run
