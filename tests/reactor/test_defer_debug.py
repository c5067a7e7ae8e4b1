"""defer.setDebugging / getDebugging: creation and invocation stacks, in
AlreadyCalledError, in the unhandled-error report, and for a probe."""

from __future__ import annotations

import gc
import logging
from typing import Any
from collections.abc import Iterator

import pytest
from twisted.internet import defer as tdefer

from reactor import _instrument, defer


@pytest.fixture
def debugging() -> Iterator[None]:
    before = defer.getDebugging()
    defer.setDebugging(True)
    yield
    defer.setDebugging(before)


def make(module: Any) -> Any:
    return module.Deferred()


def fire(d: Any) -> None:
    d.callback("first")


def fail(d: Any) -> None:
    d.errback(ValueError("first"))


def again(d: Any) -> None:
    d.callback("second")


def sections(message: str) -> dict[str, list[str]]:
    """The function names of the " C:" and " I:" lines of a debug message."""
    found: dict[str, list[str]] = {"C": [], "I": []}
    for line in message.split("\n"):
        for kind in found:
            if line.startswith(f" {kind}:") and ", in " in line:
                found[kind].append(line.rsplit(", in ", 1)[1])
    return found


def test_off_by_default_and_nothing_recorded() -> None:
    assert defer.getDebugging() is False and defer.Deferred.debug is False
    d = defer.Deferred()
    fire(d)
    assert d._debugInfo is None
    with pytest.raises(defer.AlreadyCalledError) as info:
        again(d)
    assert info.value.args == ()  # as Twisted: no message without debugging


def test_stacks_end_at_the_creating_and_firing_frames(debugging: None) -> None:
    assert defer.getDebugging() is True and defer.Deferred.debug is True
    d = make(defer)
    info = d._debugInfo
    assert info.creator_stack[-1].name == "make" and info.invoker_stack is None
    fire(d)
    assert info.invoker_stack[-1].name == "fire"
    assert info.creator[-1].startswith('  File "') and "in make" in info.creator[-1]
    e = make(defer)
    fail(e)  # errback's own frame is skipped: the invoker is its caller
    assert e._debugInfo.invoker_stack[-1].name == "fail"
    e.addErrback(lambda f: None)


@pytest.mark.parametrize("first", [fire, fail])
def test_already_called_error_names_creator_and_first_invoker_as_twisted(
        debugging: None, first: Any) -> None:
    messages = []
    for module in (defer, tdefer):
        previous = module.getDebugging()
        module.setDebugging(True)
        try:
            d = make(module)
            first(d)
            with pytest.raises(module.AlreadyCalledError) as info:
                again(d)
            d.addErrback(lambda f: None)
        finally:
            module.setDebugging(previous)
        messages.append(sections(info.value.args[0]))
    ours, theirs = messages
    assert ours == theirs
    assert ours["C"][-1] == "make" and ours["I"][-1] == first.__name__
    assert "again" not in ours["I"]


def test_the_unhandled_error_report_carries_both_stacks(debugging: None, caplog: Any) -> None:
    def lose_a_failure() -> None:
        d = make(defer)
        d.addCallback(lambda _: 1 / 0)
        fire(d)

    with caplog.at_level(logging.ERROR, logger="reactor.defer"):
        lose_a_failure()
        gc.collect()
    [report] = [r.getMessage() for r in caplog.records if "Unhandled error" in r.getMessage()]
    assert "(debug:  C: Deferred was created:" in report
    found = sections(report)
    assert found["C"][-2:] == ["lose_a_failure", "make"]
    assert found["I"][-2:] == ["lose_a_failure", "fire"]
    assert report.rstrip().endswith("ZeroDivisionError: division by zero")


def test_a_probe_can_read_the_stacks_when_told(debugging: None) -> None:
    seen: dict[str, Any] = {}

    class Watching(_instrument.Probe):
        def deferred_created(self, d: Any) -> None:
            seen["created"] = d._debugInfo.creator_stack[-1].name

        def deferred_fired(self, d: Any, is_failure: bool) -> None:
            seen["fired"] = d._debugInfo.invoker_stack[-1].name

    _instrument.install(Watching())
    try:
        fire(make(defer))
    finally:
        _instrument.uninstall()
    assert seen == {"created": "make", "fired": "fire"}


def test_switching_debugging_on_and_off_midway() -> None:
    d = defer.Deferred()  # made with debugging off: no creator
    defer.setDebugging(True)
    try:
        fire(d)
        assert d._debugInfo.creator is None and d._debugInfo.invoker_stack[-1].name == "fire"
        with pytest.raises(defer.AlreadyCalledError) as info:
            again(d)
        found = sections(info.value.args[0])
        assert found["C"] == [] and found["I"][-1] == "fire"
        e = defer.Deferred()
    finally:
        defer.setDebugging(False)
    fire(e)  # fired with debugging off: the creator stays, no invoker
    assert e._debugInfo.creator_stack is not None and e._debugInfo.invoker_stack is None


def test_debug_on_one_deferred_records_nothing_kept_on_purpose() -> None:
    """Twisted's ``d.debug = True`` records that Deferred's invoker; here the
    flag is read from a global only (free when off), so setDebugging is the
    one switch (Twisted's LogTests.test_errorLogDebugInfo)."""
    d = defer.Deferred()
    d.debug = True
    fire(d)
    assert d._debugInfo is None
    t = tdefer.Deferred()
    t.debug = True
    fire(t)
    assert t._debugInfo.invoker is not None  # what Twisted does instead
