"""callFromThread, the reactor's thread pool, deferToThreadPool, blockingCallFromThread."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from reactor import Reactor
from reactor.defer import Deferred
from reactor.threadpool import ThreadPool
from reactor.threads import blockingCallFromThread, deferToThreadPool


def run(r: Reactor) -> None:
    r.run(installSignalHandlers=False)


def test_call_from_thread_is_fifo_and_wakes_an_idle_loop(loop: Reactor) -> None:
    seen = []
    started = threading.Event()
    loop.callWhenRunning(started.set)

    def producer() -> None:
        started.wait(5)
        time.sleep(0.05)  # the loop is idle in the selector with no timer at all
        for i in range(200):
            loop.callFromThread(seen.append, i)
        loop.callFromThread(loop.stop)

    t = threading.Thread(target=producer)
    t.start()
    run(loop)
    t.join()
    assert seen == list(range(200))


def test_call_from_thread_from_many_threads_loses_nothing(loop: Reactor) -> None:
    seen = []
    done = []

    def producer(n: int) -> None:
        for i in range(100):
            loop.callFromThread(seen.append, (n, i))
        loop.callFromThread(finished)

    def finished() -> None:
        done.append(1)
        if len(done) == 4:
            loop.stop()

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    loop.callWhenRunning(lambda: [t.start() for t in threads])
    run(loop)
    for t in threads:
        t.join()
    assert len(seen) == 400
    for n in range(4):
        assert [i for m, i in seen if m == n] == list(range(100))  # FIFO per thread


def test_calls_queued_by_a_hand_back_wait_for_the_next_iteration(loop: Reactor) -> None:
    seen = []
    loop.callFromThread(lambda: loop.callFromThread(seen.append, "second"))
    loop.runUntilCurrent()
    assert seen == []
    loop.runUntilCurrent()
    assert seen == ["second"]


def test_exception_in_hand_back_is_logged(loop: Reactor, caplog) -> None:
    def boom() -> None:
        raise ValueError("hand-back failed")

    loop.callFromThread(boom)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        loop.runUntilCurrent()
    assert "hand-back failed" in caplog.text


def test_call_in_thread_runs_in_a_pool_thread_started_with_the_reactor(loop: Reactor) -> None:
    where = []
    loop.callInThread(lambda: where.append(threading.current_thread().name) or loop.callFromThread(loop.stop))
    assert not loop.getThreadPool().started  # work waits for the reactor to run
    run(loop)
    assert where and where[0].startswith("PoolThread-reactor")


def test_pool_is_bounded_by_suggested_size(loop: Reactor) -> None:
    lock = threading.Lock()
    active = [0]
    peak = [0]
    finished = []

    def job() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        loop.callFromThread(finished.append, 1)

    def check() -> None:
        if len(finished) == 8:
            loop.stop()
        else:
            loop.callLater(0.01, check)

    loop.suggestThreadPoolSize(2)
    for _ in range(8):
        loop.callInThread(job)
    loop.callLater(0, check)
    run(loop)
    assert peak[0] == 2
    assert len(finished) == 8


def test_pool_stops_at_shutdown_after_queued_work(loop: Reactor) -> None:
    ran = []
    pool = loop.getThreadPool()

    workers = []

    def slow() -> None:
        workers.append(threading.current_thread())
        time.sleep(0.05)
        ran.append("slow")

    loop.callWhenRunning(loop.callInThread, slow)
    loop.callWhenRunning(loop.stop)
    run(loop)
    assert ran == ["slow"]  # shutdown waited for the queued job
    assert not pool.started and pool.threads == []
    assert workers and not workers[0].is_alive()


def test_exception_in_pool_job_is_logged(caplog) -> None:
    pool = ThreadPool(1, 1, "test")
    pool.start()

    def boom() -> None:
        raise OSError("job failed")

    with caplog.at_level(logging.ERROR, logger="reactor"):
        pool.callInThread(boom)
        pool.stop()
    assert "job failed" in caplog.text


def test_thread_pool_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        ThreadPool(3, 2)
    pool = ThreadPool(0, 2)
    with pytest.raises(ValueError):
        pool.adjustPoolsize(minthreads=5)


def test_work_submitted_after_stop_is_dropped() -> None:
    pool = ThreadPool(0, 2)
    pool.start()
    pool.stop()
    ran = []
    pool.callInThread(ran.append, 1)
    time.sleep(0.01)
    assert ran == [] and pool.threads == []


def test_adjust_poolsize_shrinks_a_running_pool() -> None:
    pool = ThreadPool(3, 3)
    pool.start()
    assert len(pool.threads) == 3
    pool.adjustPoolsize(0, 1)
    for _ in range(200):
        if len(pool.threads) == 1:
            break
        time.sleep(0.01)
    assert len(pool.threads) == 1
    pool.stop()


def test_defer_to_thread_pool_result_arrives_on_reactor_thread(loop: Reactor, run_until) -> None:
    reactor_thread = threading.get_ident()
    seen = []

    def blocking(x: int) -> int:
        seen.append(threading.get_ident())
        return x * 2

    d = deferToThreadPool(loop, loop.getThreadPool(), blocking, 21)
    d.addCallback(lambda r: (r, threading.get_ident()))
    result, where = run_until(d)
    assert result == 42 and where == reactor_thread and seen[0] != reactor_thread


def test_defer_to_thread_pool_failure_keeps_the_exception(loop: Reactor, run_until) -> None:
    def blocking() -> None:
        raise LookupError("not found in thread")

    d = deferToThreadPool(loop, loop.getThreadPool(), blocking)
    with pytest.raises(LookupError, match="not found in thread"):
        run_until(d)


def test_blocking_call_from_thread_waits_for_a_deferred(loop: Reactor, run_until) -> None:
    def in_reactor(x: int) -> Deferred:
        d = Deferred()
        loop.callLater(0.01, d.callback, x + 1)
        return d

    def in_thread() -> int:
        return blockingCallFromThread(loop, in_reactor, 41)

    assert run_until(deferToThreadPool(loop, loop.getThreadPool(), in_thread)) == 42


def test_blocking_call_from_thread_raises_the_error(loop: Reactor, run_until) -> None:
    def in_reactor() -> None:
        raise KeyError("raised in reactor")

    def in_thread() -> str:
        try:
            blockingCallFromThread(loop, in_reactor)
        except KeyError as exc:
            return f"caught {exc}"
        return "not raised"

    assert run_until(deferToThreadPool(loop, loop.getThreadPool(), in_thread)) == "caught 'raised in reactor'"


def test_blocking_call_from_the_reactor_thread_is_refused(loop: Reactor, run_until) -> None:
    d = Deferred()

    def in_loop() -> None:
        try:
            blockingCallFromThread(loop, lambda: 1)
        except RuntimeError as exc:
            d.callback(str(exc))

    loop.callLater(0, in_loop)
    assert "reactor thread" in run_until(d)


def test_suggest_thread_pool_size_zero_holds_work_until_raised(loop: Reactor, run_until) -> None:
    loop.suggestThreadPoolSize(0)
    done = Deferred()
    loop.callInThread(lambda: loop.callFromThread(done.callback, "ran"))
    loop.callWhenRunning(lambda: loop.callLater(0.05, loop.suggestThreadPoolSize, 2))
    assert run_until(done) == "ran"
    assert loop.getThreadPool().max == 2


def test_a_pool_job_releases_what_it_was_given_before_its_result_handler_runs() -> None:
    import gc
    import weakref

    class Given:
        pass

    pool = ThreadPool(0, 1)
    pool.start()
    seen: dict[str, object] = {}
    handled = threading.Event()
    given = Given()
    given_ref = weakref.ref(given)

    def on_result(success: bool, result: object) -> None:
        gc.collect()
        seen["given"] = given_ref()
        handled.set()

    pool.callInThreadWithCallback(on_result, lambda g: None, given)
    del given
    try:
        assert handled.wait(60)  # a bound, not a timing: the job is instant
    finally:
        pool.stop()
    assert seen["given"] is None


def test_a_thread_pool_shut_down_before_the_reactor_ran_is_freed() -> None:
    import gc
    import weakref

    r = Reactor()
    try:
        pool = weakref.ref(r.getThreadPool())
        r.fireSystemEvent("shutdown")
        gc.collect()
        assert pool() is None and r.threadpool is None
    finally:
        r._close()


def test_call_multiple_in_thread_runs_them_in_order_in_one_thread() -> None:
    import reactor as default
    from reactor.threads import callMultipleInThread

    seen: list[tuple[str, int]] = []
    done = threading.Event()
    record = lambda name: seen.append((name, threading.get_ident()))  # noqa: E731
    default.reactor.getThreadPool().start()
    try:
        callMultipleInThread([(record, ("a",), {}), (record, (), {"name": "b"}),
                              (done.set, (), {})])
        assert done.wait(5)
    finally:
        default.reactor._stop_thread_pool()
    assert [name for name, _ in seen] == ["a", "b"]
    assert seen[0][1] == seen[1][1] != threading.get_ident()
