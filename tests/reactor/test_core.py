"""Running, stopping, restarting, system event triggers and error handling."""

from __future__ import annotations

import logging
import os
import selectors
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from reactor import Reactor, error
from reactor.defer import Deferred


def run(r: Reactor) -> None:
    r.run(installSignalHandlers=False)


def test_package_exports_class_and_default_instance() -> None:
    import reactor as package

    assert isinstance(package.reactor, package.Reactor)
    from reactor import main

    assert main.CONNECTION_LOST is error.CONNECTION_LOST
    assert main.CONNECTION_DONE is error.CONNECTION_DONE
    assert isinstance(error.CONNECTION_DONE, error.ConnectionDone)
    assert isinstance(error.CONNECTION_LOST, error.ConnectionLost)


def test_run_until_stop_fires_startup_and_shutdown_in_order(loop: Reactor) -> None:
    seen = []
    for phase in ("after", "during", "before"):
        loop.addSystemEventTrigger(phase, "startup", seen.append, f"{phase} startup")
        loop.addSystemEventTrigger(phase, "shutdown", seen.append, f"{phase} shutdown")
    loop.callWhenRunning(seen.append, "running")
    loop.callLater(0, loop.stop)
    run(loop)
    assert seen == ["before startup", "during startup", "after startup", "running",
                    "before shutdown", "during shutdown", "after shutdown"]
    assert not loop.running


def test_running_is_true_only_inside_run(loop: Reactor) -> None:
    states = []
    loop.callWhenRunning(lambda: states.append(loop.running))
    loop.callLater(0, loop.stop)
    assert not loop.running
    run(loop)
    assert states == [True] and not loop.running


def test_call_when_running_while_running_calls_at_once(loop: Reactor) -> None:
    seen = []

    def started() -> None:
        assert loop.callWhenRunning(seen.append, "now") is None
        assert seen == ["now"]
        loop.stop()

    loop.callWhenRunning(started)
    run(loop)
    assert seen == ["now"]


def test_stop_when_not_running_raises(loop: Reactor) -> None:
    with pytest.raises(error.ReactorNotRunning):
        loop.stop()


def test_stop_twice_raises(loop: Reactor) -> None:
    errors = []

    def stop_twice() -> None:
        loop.stop()
        try:
            loop.stop()
        except error.ReactorNotRunning as exc:
            errors.append(exc)

    loop.callWhenRunning(stop_twice)
    run(loop)
    assert len(errors) == 1


def test_run_while_running_raises(loop: Reactor) -> None:
    errors = []

    def nested() -> None:
        try:
            loop.run()
        except error.ReactorAlreadyRunning as exc:
            errors.append(exc)
        loop.stop()

    loop.callWhenRunning(nested)
    run(loop)
    assert len(errors) == 1


def test_run_after_stop_is_not_restartable(loop: Reactor) -> None:
    loop.callWhenRunning(loop.stop)
    run(loop)
    with pytest.raises(error.ReactorNotRestartable):
        run(loop)


def test_crash_leaves_without_shutdown_and_can_run_again(loop: Reactor) -> None:
    seen = []
    loop.addSystemEventTrigger("before", "shutdown", seen.append, "shutdown")
    loop.callWhenRunning(loop.crash)
    run(loop)
    assert seen == [] and not loop.running
    loop.callWhenRunning(lambda: seen.append(loop.running))
    loop.callLater(0, loop.stop)
    run(loop)
    assert seen == [True, "shutdown"]


def test_before_shutdown_deferred_delays_shutdown_while_io_goes_on(loop: Reactor) -> None:
    seen = []
    pending = Deferred()

    def before() -> Deferred:
        seen.append("before")
        # The loop keeps running timers while shutdown waits for this Deferred.
        loop.callLater(0.01, seen.append, "timer during wait")
        loop.callLater(0.02, pending.callback, None)
        return pending

    loop.addSystemEventTrigger("before", "shutdown", before)
    loop.addSystemEventTrigger("during", "shutdown", seen.append, "during")
    loop.addSystemEventTrigger("after", "shutdown", seen.append, "after")
    loop.callWhenRunning(loop.stop)
    run(loop)
    assert seen == ["before", "timer during wait", "during", "after"]


def test_descriptors_are_served_while_shutdown_waits(loop: Reactor) -> None:
    import socket

    a, b = socket.socketpair()
    pending = Deferred()
    got = []

    class Reader:
        def fileno(self) -> int:
            return a.fileno()

        def doRead(self) -> None:
            got.append(a.recv(100))
            pending.callback(None)  # shutdown may go on once the data arrived

        def connectionLost(self, reason) -> None:
            got.append("lost")

    loop.addReader(Reader())
    loop.addSystemEventTrigger("before", "shutdown", lambda: pending)
    loop.callWhenRunning(loop.stop)
    loop.callLater(0.01, b.send, b"late data")
    run(loop)
    assert got == [b"late data", "lost"]
    a.close()
    b.close()


def test_failing_before_trigger_deferred_does_not_block_shutdown(loop: Reactor, caplog) -> None:
    seen = []
    d = Deferred()
    loop.addSystemEventTrigger("before", "shutdown", lambda: d)
    loop.addSystemEventTrigger("after", "shutdown", seen.append, "after")
    loop.callWhenRunning(loop.stop)
    loop.callLater(0.01, d.errback, ValueError("nope"))
    with caplog.at_level(logging.ERROR, logger="reactor"):
        run(loop)
    assert seen == ["after"]
    assert "nope" in caplog.text


def test_remove_system_event_trigger(loop: Reactor) -> None:
    seen = []
    trigger = loop.addSystemEventTrigger("during", "shutdown", seen.append, "removed")
    loop.addSystemEventTrigger("during", "shutdown", seen.append, "kept")
    loop.removeSystemEventTrigger(trigger)
    with pytest.raises(ValueError):
        loop.removeSystemEventTrigger(trigger)
    # As Twisted: an unknown event is a KeyError, a non-id a TypeError.
    with pytest.raises(KeyError):
        loop.removeSystemEventTrigger(("nonsense", None))
    with pytest.raises(TypeError):
        loop.removeSystemEventTrigger(None)
    loop.callWhenRunning(loop.stop)
    run(loop)
    assert seen == ["kept"]


def test_trigger_added_while_its_phase_fires_runs_in_the_same_firing(loop: Reactor) -> None:
    seen = []

    def first() -> None:
        seen.append("first")
        loop.addSystemEventTrigger("before", "persist", seen.append, "added while firing")

    loop.addSystemEventTrigger("before", "persist", first)
    loop.fireSystemEvent("persist")
    assert seen == ["first", "added while firing"]


def test_removing_a_before_trigger_that_ran_while_shutdown_waits_is_harmless(loop: Reactor) -> None:
    pending = Deferred()
    seen = []
    ids = []

    def remove() -> None:
        loop.removeSystemEventTrigger(ids[0])  # an exception here would be logged only
        seen.append("removed")

    def waiter() -> Deferred:
        loop.callLater(0, remove)
        loop.callLater(0.01, pending.callback, None)
        return pending

    ids.append(loop.addSystemEventTrigger("before", "shutdown", waiter))
    loop.addSystemEventTrigger("after", "shutdown", seen.append, "after")
    loop.callWhenRunning(loop.stop)
    run(loop)
    assert seen == ["removed", "after"]


def test_bad_phase_and_non_callable_are_refused(loop: Reactor) -> None:
    with pytest.raises(KeyError):
        loop.addSystemEventTrigger("sometime", "shutdown", print)
    with pytest.raises(TypeError):
        loop.addSystemEventTrigger("before", "shutdown", 42)


def test_custom_event_fires_on_demand(loop: Reactor) -> None:
    seen = []
    loop.addSystemEventTrigger("after", "persist", seen.append, 2)
    loop.addSystemEventTrigger("before", "persist", seen.append, 1)
    loop.fireSystemEvent("persist")
    assert seen == [1, 2]
    loop.fireSystemEvent("persist")  # triggers are consumed as they run
    assert seen == [1, 2]


def test_exception_in_trigger_is_logged_and_the_rest_run(loop: Reactor, caplog) -> None:
    seen = []

    def boom() -> None:
        raise RuntimeError("trigger failed")

    loop.addSystemEventTrigger("before", "shutdown", boom)
    loop.addSystemEventTrigger("before", "shutdown", seen.append, "next")
    loop.callWhenRunning(loop.stop)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        run(loop)
    assert seen == ["next"]
    assert "trigger failed" in caplog.text and "Traceback" in caplog.text


def test_exception_in_timer_is_logged_with_traceback_and_loop_goes_on(loop: Reactor, caplog) -> None:
    seen = []

    def boom() -> None:
        raise ZeroDivisionError("timer failed")

    loop.callLater(0, boom)
    loop.callLater(0.01, seen.append, "later")
    loop.callLater(0.02, loop.stop)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        run(loop)
    assert seen == ["later"]
    record = next(r for r in caplog.records if r.exc_info)
    assert record.exc_info[0] is ZeroDivisionError
    assert "Traceback" in caplog.text and "boom" in caplog.text


def test_iterate_runs_due_calls_without_run(loop: Reactor) -> None:
    seen = []
    loop.callLater(0, seen.append, 1)
    loop.iterate()
    assert seen == [1]


def test_iterate_waits_for_io_up_to_delay(loop: Reactor) -> None:
    seen = []
    loop.callLater(0.01, seen.append, 1)
    for _ in range(100):
        loop.iterate(0.05)
        if seen:
            break
    assert seen == [1]


def test_seconds_is_monotonic_clock(loop: Reactor) -> None:
    import time

    before = time.monotonic()
    now = loop.seconds()
    assert before <= now <= time.monotonic()


def test_stop_from_another_thread_via_call_from_thread(loop: Reactor) -> None:
    started = threading.Event()
    loop.callWhenRunning(started.set)

    def other() -> None:
        started.wait(5)
        loop.callFromThread(loop.stop)

    t = threading.Thread(target=other)
    t.start()
    run(loop)
    t.join()
    assert not loop.running


# -- instrumentation: what a probe sees --------------------------------------------

@pytest.fixture
def probe():
    """A probe that records every hook call as a tuple, installed for one test."""
    from reactor import _instrument

    class Recorder(_instrument.Probe):
        def __init__(self) -> None:
            self.events: list[tuple] = []

        def __getattribute__(self, name: str):
            attr = object.__getattribute__(self, name)
            if name.startswith("_") or name in ("events", "run_call") or not callable(attr):
                return attr  # run_call: the base class's, which reports call_begin/call_end
            events = object.__getattribute__(self, "events")
            return lambda *args: events.append((name, *args))

    recorder = Recorder()
    _instrument.install(recorder)
    try:
        yield recorder
    finally:
        _instrument.uninstall()


def names(events: list[tuple], *wanted: str) -> list[tuple]:
    return [e for e in events if e[0] in wanted]


def test_probe_sees_loop_start_stop_and_balanced_polls(loop: Reactor, probe) -> None:
    seen_running: list[int] = []
    loop.callWhenRunning(seen_running.append, 1)
    loop.callLater(0.01, loop.stop)
    run(loop)
    kinds = [e[0] for e in probe.events]
    assert kinds[:2] == ["timer_scheduled", "loop_started"]  # before startup triggers run
    assert ("call_begin", "trigger") in [e[:2] for e in probe.events] and seen_running
    assert kinds[-1] == "loop_stopped"
    assert kinds.count("poll_begin") == kinds.count("poll_end") >= 1


def test_probe_sees_every_kind_of_user_call(loop: Reactor, probe) -> None:
    import socket

    a, b = socket.socketpair()

    class Raw:
        def fileno(self):
            return a.fileno()

        def doRead(self):
            a.recv(10)
            loop.removeReader(self)
            loop.callFromThread(stop_soon)

        def connectionLost(self, reason):
            pass

    def stop_soon() -> None:
        loop.stop()

    def boom() -> None:
        raise ValueError("seen by probe")

    raw = Raw()
    loop.addSystemEventTrigger("before", "shutdown", lambda: None)
    loop.addReader(raw)
    timer = loop.callLater(0, boom)
    cancelled = loop.callLater(5, print)
    cancelled.cancel()
    b.send(b"x")
    run(loop)
    a.close()
    b.close()
    begins = names(probe.events, "call_begin")
    kinds = {e[1] for e in begins}
    assert {"timer", "read", "thread", "trigger"} <= kinds
    assert ("call_begin", "timer", boom, timer) in begins
    assert ("call_begin", "read", raw.doRead, raw) in begins
    ends = names(probe.events, "call_end")
    assert len(ends) == len(begins)
    assert any(isinstance(e[1], ValueError) for e in ends)
    assert ("timer_scheduled", timer) in probe.events
    assert ("timer_cancelled", cancelled) in probe.events
    added = [e for e in names(probe.events, "descriptor_added") if e[1] is raw]
    removed = [e for e in names(probe.events, "descriptor_removed") if e[1] is raw]
    assert [e[3] for e in added] == ["r"] and [e[3] for e in removed] == ["r"]


def test_descriptor_reporting_its_own_calls_is_dispatched_directly(loop: Reactor, probe) -> None:
    import socket

    a, b = socket.socketpair()
    reads = []

    class Transport:
        _reports_own_calls = True

        def fileno(self):
            return a.fileno()

        def doRead(self):
            reads.append(a.recv(10))
            loop._call_user("read", self, handler, reads[-1])

        def connectionLost(self, reason):
            pass

    def handler(data: bytes) -> None:
        pass

    t = Transport()
    loop.addReader(t)
    b.send(b"x")
    loop.iterate(1)
    loop.removeReader(t)
    fd = a.fileno()
    a.close()
    b.close()
    begins = names(probe.events, "call_begin")
    assert begins == [("call_begin", "read", handler, t)]
    [(_, ready)] = names(probe.events, "poll_end")
    assert [(key.fd, mask) for key, mask in ready] == [(fd, selectors.EVENT_READ)]


def test_probe_sees_thread_pool_jobs(loop: Reactor, probe) -> None:
    def job() -> None:
        loop.callFromThread(loop.stop)

    loop.callInThread(job)
    run(loop)
    submitted = names(probe.events, "thread_submitted")
    assert submitted and submitted[0][2] is job
    number = submitted[0][1]
    assert ("thread_started", number) in probe.events
    assert ("thread_done", number, None) in probe.events


def test_call_user_reports_and_propagates(loop: Reactor, probe) -> None:
    def f(x: int) -> int:
        return x + 1

    assert loop._call_user("timer", None, f, 1) == 2
    with pytest.raises(ZeroDivisionError):
        loop._call_user("timer", None, lambda: 1 / 0)
    ends = names(probe.events, "call_end")
    assert ends[0] == ("call_end", None) and isinstance(ends[1][1], ZeroDivisionError)


def test_system_exit_in_a_callback_leaves_run_and_the_reactor_can_run_again(loop: Reactor) -> None:
    loop.callLater(0, sys.exit, 3)
    with pytest.raises(SystemExit):
        run(loop)
    assert not loop.running
    seen = []
    loop.callWhenRunning(seen.append, "again")
    loop.callLater(0, loop.stop)
    run(loop)
    assert seen == ["again"]


def test_call_from_thread_after_close_never_writes_to_a_reused_fd() -> None:
    r = Reactor()
    old_fd = r._waker._write_fd
    r._close()
    read_end, write_end = os.pipe()
    os.dup2(write_end, old_fd)  # the OS hands the number to someone else
    try:
        r.callFromThread(print)
        os.set_blocking(read_end, False)
        with pytest.raises(BlockingIOError):
            os.read(read_end, 100)
    finally:
        for fd in {read_end, write_end, old_fd}:
            os.close(fd)


# -- the same scenario on Twisted and on this reactor ------------------------------------

SCENARIO = """
import sys

if sys.argv[1] == "twisted":
    from twisted.internet import defer, error, reactor, task
else:
    from reactor import defer, error, reactor, task

seen = []
log = seen.append
reactor.addSystemEventTrigger("after", "startup", log, "after startup")
reactor.addSystemEventTrigger("during", "startup", log, "during startup")
reactor.addSystemEventTrigger("before", "startup", log, "before startup")
reactor.callWhenRunning(log, "when running")


def first():
    log("first")
    reactor.callLater(0, log, "scheduled by first")
    reactor.stop()
    try:
        reactor.stop()
    except error.ReactorNotRunning:
        log("ReactorNotRunning on second stop")


reactor.callLater(0, first)
reactor.callLater(0, log, "second, same pass as stop")
d = defer.Deferred()


def before_shutdown():
    log("before shutdown")
    reactor.callLater(0.02, d.callback, None)
    return d


reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
reactor.addSystemEventTrigger("during", "shutdown", log, "during shutdown")
reactor.addSystemEventTrigger("after", "shutdown", log, "after shutdown")
c = reactor.callLater(5, log, "cancelled")
c.cancel()
for op in (c.cancel, lambda: c.reset(1)):
    try:
        op()
    except error.AlreadyCancelled:
        log("AlreadyCancelled")
lc = task.LoopingCall(log, "loop")
lc.start(10).addCallback(lambda _: log("loop stopped"))
reactor.callWhenRunning(lc.stop)
reactor.run(installSignalHandlers=False)
log(f"running={reactor.running}")
try:
    reactor.run()
except error.ReactorNotRestartable:
    log("ReactorNotRestartable")
try:
    reactor.stop()
except error.ReactorNotRunning:
    log("ReactorNotRunning")
print("\\n".join(seen))
"""


@pytest.mark.timeout(60)
def test_lifecycle_scenario_matches_twisted(tmp_path) -> None:
    """Triggers, callWhenRunning, stop inside a pass, a Deferred-delayed shutdown,
    cancel errors, LoopingCall stop and restart errors: same sequence as Twisted."""
    script = tmp_path / "scenario.py"
    script.write_text(SCENARIO)
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    outputs = {}
    for which in ("twisted", "ours"):
        done = subprocess.run([sys.executable, str(script), which], capture_output=True, text=True,
                              env=env, timeout=30)
        assert done.returncode == 0, done.stderr
        outputs[which] = done.stdout.splitlines()
    assert outputs["ours"] == outputs["twisted"]
    assert "scheduled by first" in outputs["ours"]
