"""Random Deferred programs run on Twisted's Deferred and on ours must be
indistinguishable: the same callbacks see the same inputs, in the same order,
the same operations raise, and the chain ends on the same result.

A program is a list of operations on one Deferred: add a callback, errback,
both or a pair whose functions return a value, raise, return a Failure, return
an already fired / failed / paused / still pending Deferred (maybe with its own
callbacks), or, from inside, add another callback, pause, fire again or cancel
the Deferred running them; fire it (once, maybe again); pause, unpause,
cancel; chainDeferred to another Deferred; settle the oldest pending inner
Deferred.  Twisted is a test-only dependency.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer as twisted_defer
from twisted.python.failure import Failure as TwistedFailure

from reactor import defer as our_defer
from reactor.failure import Failure as OurFailure

ACTIONS = ["value", "raise", "failure", "fired", "failed", "pending_ok", "pending_err",
           "paused", "nest", "pending_chain", "pause_self", "refire", "cancel_self"]
ADD = st.tuples(st.just("add"), st.sampled_from(["cb", "eb", "both", "pair"]),
                st.sampled_from(ACTIONS), st.sampled_from(ACTIONS))
OTHER = st.sampled_from([("fire",), ("pause",), ("unpause",), ("settle",), ("settle",),
                         ("cancel",)])
# chainDeferred to a Deferred that is fresh, already fired, paused, or
# cancelled (so the one result handed to it later is swallowed).
CHAIN = st.tuples(st.just("chain"), st.sampled_from(["fresh", "fired", "paused", "cancelled"]),
                  st.sampled_from(ACTIONS))  # what the chained Deferred's callback does
PROGRAM = st.tuples(
    st.lists(st.one_of(ADD, ADD, ADD, OTHER, CHAIN), max_size=14),
    st.integers(min_value=0, max_value=14),     # where the first fire goes
    st.sampled_from(["callback", "errback"]),   # how it fires
)


class Boom(Exception):
    pass


def run(program: tuple[list, int, str], defer: Any, failure_class: type) -> tuple[list, list]:
    """Run ``program`` with one Deferred implementation; return what was
    observed along the way and the final result."""
    ops, fire_at, how = program
    ops = list(ops)
    ops.insert(min(fire_at, len(ops)), ("fire",))
    log: list = []
    pending: list = []      # inner Deferreds still to fire or unpause, oldest first
    d = defer.Deferred()
    pauses = 0

    def describe(x: Any) -> tuple:
        if isinstance(x, failure_class):
            return ("F", x.type.__name__, str(x.value))
        return ("V", x)

    def act(idx: int, action: str) -> Any:
        if action == "value":
            return idx
        if action == "raise":
            raise Boom(idx)
        if action == "failure":
            return failure_class(Boom(idx))
        if action == "fired":
            return defer.succeed(idx)
        if action == "failed":
            return defer.fail(Boom(idx))
        if action == "nest":
            d.addCallback(function(idx + 100, "nested", "value"))
            return idx
        if action == "pause_self":
            nonlocal pauses
            d.pause()
            pauses += 1
            return idx
        if action == "refire":
            d.callback(idx)  # AlreadyCalledError, raised inside the callback
        if action == "cancel_self":
            d.cancel()
            return idx
        inner = defer.succeed(idx) if action == "paused" else defer.Deferred()
        if action == "paused":
            inner.pause()
        if action == "pending_chain":
            inner.addCallback(function(idx + 200, "inner", "value"))
        pending.append((inner, action, idx))
        return inner

    def function(idx: int, which: str, action: str) -> Any:
        def f(x: Any) -> Any:
            log.append((idx, which, describe(x)))
            return act(idx, action)
        return f

    def settle() -> None:
        inner, action, idx = pending.pop(0)
        if action == "paused":
            inner.unpause()
        elif action in ("pending_ok", "pending_chain"):
            inner.callback(idx * 7)
        else:
            inner.errback(Boom(idx * 7))

    for idx, op in enumerate(ops):
        try:
            if op[0] == "add":
                _, kind, action, other = op
                cb, eb = function(idx, "cb", action), function(idx, "eb", other)
                if kind == "cb":
                    d.addCallback(cb)
                elif kind == "eb":
                    d.addErrback(eb)
                elif kind == "both":
                    d.addBoth(cb)
                else:
                    d.addCallbacks(cb, eb)
            elif op[0] == "fire":
                if how == "callback":
                    d.callback(-1)
                else:
                    d.errback(Boom(-1))
            elif op[0] == "pause":
                d.pause()
                pauses += 1
            elif op[0] == "unpause" and pauses:
                pauses -= 1
                d.unpause()
            elif op[0] == "settle" and pending:
                settle()
            elif op[0] == "cancel":
                d.cancel()
            elif op[0] == "chain":
                target = defer.succeed(idx) if op[1] == "fired" else defer.Deferred()
                if op[1] == "paused":
                    target.pause()
                    pending.append((target, "paused", idx))
                elif op[1] == "cancelled":
                    target.cancel()
                target.addBoth(function(idx, "chained", op[2]))
                d.chainDeferred(target)
        except Exception as e:  # noqa: BLE001 - what raised is part of the observation
            log.append(("raised", op[0], type(e).__name__))
    while pending:
        try:
            settle()
        except Exception as e:  # noqa: BLE001
            log.append(("raised", "settle", type(e).__name__))
    while pauses:
        pauses -= 1
        d.unpause()
    final: list = []
    d.addBoth(lambda x: final.append(describe(x)))
    return log, final


@settings(max_examples=1200, deadline=None)
@given(PROGRAM)
def test_same_observations_as_twisted(program: tuple[list, int, str]) -> None:
    theirs = run(program, twisted_defer, TwistedFailure)
    ours = run(program, our_defer, OurFailure)
    assert ours == theirs


def test_the_harness_observes_callbacks_errbacks_inner_and_nested_calls() -> None:
    """A sanity check of the harness itself: a hand-written program gives a
    non-trivial trace, identical on both implementations."""
    ops = [("add", "cb", "pending_chain", "value"), ("add", "pair", "raise", "value"),
           ("add", "eb", "value", "failure"), ("add", "both", "nest", "value"),
           ("add", "cb", "paused", "value"), ("settle",), ("settle",)]
    program = (ops, 0, "callback")
    theirs = run(program, twisted_defer, TwistedFailure)
    assert theirs == run(program, our_defer, OurFailure)
    assert {entry[1] for entry in theirs[0]} == {"cb", "eb", "inner", "nested"}
    assert theirs[1] == [("V", 104)]  # the nested callback ran last


# -- inlineCallbacks and coroutines ---------------------------------------------------

GEN_STEPS = st.lists(st.tuples(st.sampled_from(["fired", "failed", "pending_ok", "pending_err",
                                                "return", "raise"]),
                               st.booleans()),  # does the code catch an exception here?
                     max_size=8)
GEN_PROGRAM = st.tuples(GEN_STEPS, st.one_of(st.none(), st.integers(0, 8)),
                        st.sampled_from(["inlineCallbacks", "coroutine"]))


def run_generator(program: tuple[list, int | None, str], defer: Any,
                  failure_class: type) -> tuple[list, list]:
    """Drive a generator (inlineCallbacks) or coroutine (ensureDeferred) that
    waits on the program's Deferreds; settle the pending ones in order,
    cancelling the outer Deferred before the ``cancel_at``-th settle."""
    steps, cancel_at, style = program
    log: list = []
    pending: list = []

    def awaitable(i: int, kind: str) -> Any:
        if kind == "fired":
            return defer.succeed(i)
        if kind == "failed":
            return defer.fail(Boom(i))
        d = defer.Deferred()
        pending.append((d, kind, i))
        return d

    def step(i: int, kind: str) -> Any:
        if kind == "return":
            return ("returned", i)
        raise Boom(i)

    def body_generator() -> Any:
        for i, (kind, guarded) in enumerate(steps):
            if kind in ("return", "raise"):
                return step(i, kind)
            try:
                log.append((i, "got", (yield awaitable(i, kind))))
            except Exception as e:  # noqa: BLE001 - what arrived is the observation
                log.append((i, "caught", type(e).__name__))
                if not guarded:
                    raise
        return "end"

    async def body_coroutine() -> Any:
        for i, (kind, guarded) in enumerate(steps):
            if kind in ("return", "raise"):
                return step(i, kind)
            try:
                log.append((i, "got", await awaitable(i, kind)))
            except Exception as e:  # noqa: BLE001
                log.append((i, "caught", type(e).__name__))
                if not guarded:
                    raise
        return "end"

    if style == "inlineCallbacks":
        outer = defer.inlineCallbacks(body_generator)()
    else:
        outer = defer.ensureDeferred(body_coroutine())
    settled = 0
    while pending:
        if settled == cancel_at:
            outer.cancel()
        inner, kind, i = pending.pop(0)
        settled += 1
        try:
            if kind == "pending_ok":
                inner.callback(i * 7)
            else:
                inner.errback(Boom(i * 7))
        except Exception as e:  # noqa: BLE001
            log.append(("raised", "settle", type(e).__name__))
    final: list = []

    def record(x: Any) -> None:
        final.append(("F", x.type.__name__) if isinstance(x, failure_class) else ("V", x))

    outer.addBoth(record)
    return log, final


@settings(max_examples=400, deadline=None)
@given(GEN_PROGRAM)
def test_generators_and_coroutines_see_what_they_see_on_twisted(
        program: tuple[list, int | None, str]) -> None:
    theirs = run_generator(program, twisted_defer, TwistedFailure)
    ours = run_generator(program, our_defer, OurFailure)
    assert ours == theirs
