"""task.Cooperator / cooperate / coiterate, task.react and defer.race (Twisted's semantics)."""

from __future__ import annotations

import logging
from typing import Any
from collections.abc import Callable

import pytest
from twisted.internet import defer as tdefer
from twisted.internet import task as ttask

from reactor import Reactor, task
from reactor.defer import CancelledError, Deferred, FailureGroup, race, succeed
from reactor.failure import Failure


class ManualScheduler:
    """A Cooperator scheduler that runs the pending tick only when told."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def __call__(self, f: Callable[[], None]) -> Any:
        self.pending.append(f)
        scheduler = self

        class Call:
            def cancel(self) -> None:
                scheduler.pending.remove(f)

        return Call()

    def tick(self) -> None:
        f = self.pending.pop(0)
        f()


def steps_per_slice(n: int) -> Callable[[], Callable[[], bool]]:
    """A termination predicate factory: a slice is ``n`` steps."""

    def factory() -> Callable[[], bool]:
        left = [n]

        def over() -> bool:
            left[0] -= 1
            return left[0] <= 0

        return over

    return factory


def counting(log: list, name: str, n: int):
    for i in range(n):
        log.append((name, i))
        yield None


def run_round_robin(module: Any) -> list:
    sched = ManualScheduler()
    coop = module.Cooperator(terminationPredicateFactory=steps_per_slice(3), scheduler=sched)
    log: list = []
    done: list = []
    coop.coiterate(counting(log, "a", 4)).addCallback(lambda _: done.append("a"))
    coop.coiterate(counting(log, "b", 2)).addCallback(lambda _: done.append("b"))
    slices = []
    while sched.pending:
        sched.tick()
        slices.append(list(log))
    return [slices, done]


def test_round_robin_slices_match_twisted() -> None:
    ours = run_round_robin(task)
    theirs = run_round_robin(ttask)
    assert ours == theirs
    assert ours[0][0] == [("a", 0), ("b", 0), ("a", 1)]  # one slice is 3 steps


def test_a_yielded_deferred_pauses_the_task_until_it_fires() -> None:
    sched = ManualScheduler()
    coop = task.Cooperator(scheduler=sched, terminationPredicateFactory=steps_per_slice(10))
    gate = Deferred()
    log = []

    def work():
        log.append(1)
        yield gate
        log.append(2)

    t = coop.cooperate(work())
    finished = []
    t.whenDone().addCallback(finished.append)
    sched.tick()
    assert log == [1] and sched.pending == []  # paused: nothing scheduled
    gate.callback(None)
    sched.tick()
    assert log == [1, 2] and len(finished) == 1


def test_task_failure_reaches_when_done_and_state_errors() -> None:
    sched = ManualScheduler()
    coop = task.Cooperator(scheduler=sched)

    def bad():
        yield None
        raise ZeroDivisionError()

    t = coop.cooperate(bad())
    outcome = []
    t.whenDone().addErrback(outcome.append)
    while sched.pending:
        sched.tick()
    assert outcome[0].check(ZeroDivisionError)
    with pytest.raises(task.TaskFailed):
        t.pause()
    with pytest.raises(task.NotPaused):
        t.resume()
    late = []
    t.whenDone().addErrback(late.append)  # already done: fires at once
    assert late[0] is outcome[0]


def test_pause_resume_and_stop() -> None:
    sched = ManualScheduler()
    coop = task.Cooperator(scheduler=sched, terminationPredicateFactory=steps_per_slice(1))
    log: list = []
    t = coop.cooperate(counting(log, "x", 5))
    t.pause()
    t.pause()
    assert sched.pending == []  # the only task is paused: the tick was cancelled
    t.resume()
    assert sched.pending == []
    t.resume()
    sched.tick()
    assert log == [("x", 0)]
    stopped = []
    t.whenDone().addErrback(stopped.append)
    t.stop()
    assert stopped[0].check(task.TaskStopped)
    with pytest.raises(task.TaskStopped):
        t.stop()


def test_stopped_cooperator_fails_its_tasks_and_new_ones() -> None:
    sched = ManualScheduler()
    coop = task.Cooperator(scheduler=sched)
    outcomes = []
    coop.coiterate(iter([1, 2])).addErrback(outcomes.append)
    coop.stop()
    coop.coiterate(iter([1])).addErrback(outcomes.append)
    assert [f.check(task.SchedulerStopped) for f in outcomes] == [task.SchedulerStopped] * 2
    assert not coop.running
    coop.start()
    assert coop.running


def test_not_started_cooperator_waits_for_start() -> None:
    sched = ManualScheduler()
    coop = task.Cooperator(scheduler=sched, started=False)
    coop.coiterate(iter([1]))
    assert sched.pending == []
    coop.start()
    assert len(sched.pending) == 1


def test_global_coiterate_runs_on_the_default_reactor_between_io() -> None:
    from reactor import reactor as default

    # The default reactor must stay usable for other tests: only iterate it.
    log: list = []
    d = task.coiterate(counting(log, "g", 3))
    done = []
    d.addCallback(done.append)
    t = task.cooperate(counting(log, "h", 1))
    for _ in range(20):
        if done and t._completionState is not None:
            break
        default.iterate(0)
    assert sorted(log) == [("g", 0), ("g", 1), ("g", 2), ("h", 0)]
    assert done and isinstance(t._completionState, task.TaskDone)


# -- react ----------------------------------------------------------------------------------

def test_react_runs_until_the_deferred_fires_and_exits_0(loop: Reactor) -> None:
    seen = []

    def main(reactor: Reactor, word: str) -> Deferred:
        d = Deferred()
        reactor.callLater(0.01, seen.append, word)
        reactor.callLater(0.02, d.callback, None)
        return d

    with pytest.raises(SystemExit) as exit_info:
        task.react(main, ["hi"], _reactor=loop)
    assert exit_info.value.code == 0 and seen == ["hi"]
    assert not loop.running


def test_react_with_a_coroutine_and_a_failure_logs_and_exits_1(loop: Reactor, caplog) -> None:
    async def main(reactor: Reactor) -> None:
        await task.deferLater(reactor, 0.01)
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="reactor"):
        with pytest.raises(SystemExit) as exit_info:
            task.react(main, _reactor=loop)
    assert exit_info.value.code == 1
    assert "main function encountered error" in caplog.text and "ValueError: boom" in caplog.text


def test_react_exits_with_the_code_of_a_system_exit(loop: Reactor) -> None:
    def main(reactor: Reactor) -> Deferred:
        return task.deferLater(reactor, 0, lambda: (_ for _ in ()).throw(SystemExit(7)))

    with pytest.raises(SystemExit) as exit_info:
        task.react(main, _reactor=loop)
    assert exit_info.value.code == 7


def test_react_when_the_reactor_is_stopped_first(loop: Reactor) -> None:
    never = Deferred(lambda d: d.callback("cancelled at shutdown"))

    def main(reactor: Reactor) -> Deferred:
        reactor.callLater(0, reactor.stop)
        reactor.addSystemEventTrigger("before", "shutdown", never.cancel)
        return never

    with pytest.raises(SystemExit) as exit_info:
        task.react(main, _reactor=loop)
    assert exit_info.value.code == 0


def test_react_synchronous_result(loop: Reactor) -> None:
    with pytest.raises(SystemExit) as exit_info:
        task.react(lambda reactor: succeed(1), _reactor=loop)
    assert exit_info.value.code == 0


# -- race -------------------------------------------------------------------------------------

def test_race_first_success_wins_and_cancels_the_rest() -> None:
    a, b, c = Deferred(), Deferred(), Deferred()
    result = []
    race([a, b, c]).addCallback(result.append)
    b.callback("B")
    assert result == [(1, "B")]
    for loser in (a, c):
        loser.addErrback(lambda f: f.trap(CancelledError))
        assert loser.called
    assert b.result is None  # the winner's result went to race


def test_race_all_failing_gives_a_failure_group_in_order() -> None:
    a, b = Deferred(), Deferred()
    outcome = []
    race([a, b]).addErrback(outcome.append)
    b.errback(KeyError("b"))
    assert outcome == []
    a.errback(ValueError("a"))
    group = outcome[0].value
    assert isinstance(group, FailureGroup)
    assert [f.type for f in group.failures] == [ValueError, KeyError]


def test_cancelling_race_cancels_every_racer() -> None:
    a, b = Deferred(), Deferred()
    outcome = []
    r = race([a, b])
    r.addErrback(outcome.append)
    r.cancel()
    assert a.called and b.called
    assert isinstance(outcome[0].value, FailureGroup)
    assert all(f.check(CancelledError) for f in outcome[0].value.failures)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
def test_race_matches_twisted(order: tuple[int, ...]) -> None:
    def play(defer_module: Any, deferred_class: Any, failure_class: Any) -> list:
        ds = [deferred_class() for _ in range(3)]
        out: list = []
        defer_module.race(ds).addBoth(
            lambda r: out.append(("fail", [f.type.__name__ for f in r.value.failures])
                                 if isinstance(r, failure_class) else ("ok", r)))
        for i in order:
            if not ds[i].called:
                if i == 1:
                    ds[i].callback("win")
                else:
                    ds[i].errback(ValueError(i))
        for d in ds:
            d.addErrback(lambda f: None)
        return out

    from twisted.python.failure import Failure as TFailure

    from reactor import defer

    assert play(defer, Deferred, Failure) == play(tdefer, tdefer.Deferred, TFailure)
