"""The pytest plugin, on real pytest runs (pytester, each in its own process)."""

from __future__ import annotations

import re

import pytest

BLOCKING_SUITE = """
import time
import pytest
from reactor import Reactor


def run_loop(block_s):
    reactor = Reactor()

    def handler():
        time.sleep(block_s)  # the stuck line

    reactor.callLater(0, handler)
    reactor.callLater(0.01, reactor.stop)
    reactor.run(installSignalHandlers=False)


def test_quick():
    run_loop(0.001)


def test_blocks():
    run_loop(0.25)


@pytest.mark.loopscope(fail_over=100)
def test_marked_blocks():
    run_loop(0.2)


@pytest.mark.loopscope(fail_over=500)
def test_marked_within_its_limit():
    run_loop(0.2)
"""


#: pytest-twisted runs every test inside its Twisted reactor, and pytest-asyncio changes how
#: async tests run: each suite here loads only the plugins it is written for.
NOT_TWISTED = ("-p", "no:twisted", "-p", "no:asyncio")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def failure_sections(result: pytest.RunResult) -> str:
    """Each failure's own section, not the short summary (whose lines are cut to the
    terminal's width, so how often a message shows there depends on the terminal)."""
    return "\n".join(line for line in result.stdout.lines if not line.startswith("FAILED "))


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_app=BLOCKING_SUITE)
    return pytester


def test_a_blocking_test_fails_naming_the_stall(suite: pytest.Pytester) -> None:
    result = run(suite, *NOT_TWISTED, "--loopscope", "--loopscope-fail-over", "100")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    blocked = [float(ms) for ms in re.findall(r"blocked for ([0-9.]+) ms",
                                              failure_sections(result))]
    assert len(blocked) == 2 and min(blocked) >= 195  # the 250 ms and the 200 ms sleeps
    assert "over the 100 ms limit" in out
    # Named by the user's line it was stuck on; the timer ran that same function, so the
    # callback is not named a second time.
    assert "in run_loop.<locals>.handler (test_app.py:10), a timer (callLater)" in out
    assert "the loop ran" not in out
    assert "stuck at test_app.py:10 in run_loop.<locals>.handler" in out
    kept = sorted((suite.path / ".loopscope-traces").iterdir())
    assert [p.name for p in kept] == ["test_app.py_test_blocks.jsonl",
                                      "test_app.py_test_marked_blocks.jsonl"]
    assert "2 traces kept in" in out and "loopscope replay" in out


def test_the_kept_trace_opens_in_loopscope(suite: pytest.Pytester) -> None:
    run(suite, *NOT_TWISTED, "--loopscope-fail-over", "100", "-k", "marked_blocks")
    [trace] = (suite.path / ".loopscope-traces").iterdir()
    from tracer.summary import summarize
    summary = summarize(str(trace))
    assert summary["blocking"][0]["fn"] == "test_app.run_loop.<locals>.handler"
    assert summary["blocking"][0]["stack"][-1]["line"] == 10


def test_without_the_flag_only_marked_tests_are_traced(suite: pytest.Pytester) -> None:
    result = run(suite, *NOT_TWISTED)
    result.assert_outcomes(passed=3, failed=1)  # only the marked test over its limit fails
    assert "test_marked_blocks" in result.stdout.str()


def test_the_plugin_costs_nothing_when_not_enabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="""
import sys

def test_nothing_of_the_tracer_is_loaded():
    assert "loopscope.pytest_plugin" in sys.modules  # registered through pytest11
    loaded = [m for m in sys.modules if m.startswith(("tracer", "reactor"))]
    assert loaded == []
""")
    result = run(pytester)  # every installed plugin loaded, pytest-twisted's too
    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".loopscope-traces").exists()


DEFERRED_SUITE = """
import time
from reactor import Reactor, task


def handler():
    time.sleep(0.2)  # the stuck line


def test_deferred_callback_blocks():
    reactor = Reactor()
    d = task.deferLater(reactor, 0, handler)
    d.addCallback(lambda _: reactor.stop())
    reactor.run(installSignalHandlers=False)
"""


def test_a_deferred_callback_is_named_by_the_users_code(pytester: pytest.Pytester) -> None:
    """A ``deferLater`` timer runs ``Deferred.callback``, which runs the user's function: the
    failure names the user's function and line first, then the callback the loop ran."""
    pytester.makepyfile(test_later=DEFERRED_SUITE)
    result = run(pytester, *NOT_TWISTED, "--loopscope-fail-over", "100", "--loopscope")
    result.assert_outcomes(failed=1)
    out = failure_sections(result)
    assert "(over the 100 ms limit) in handler (test_later.py:6)\n" in out
    assert "  the loop ran reactor.defer.Deferred.callback (" in out
    assert ", a timer (callLater)" in out
    assert "  stuck at test_later.py:6 in handler" in out
    stack = out.split("stack, innermost last:\n", 1)[1].splitlines()
    assert re.fullmatch(r"    reactor/task\.py:\d+ in deferLater\.<locals>\.run", stack[0])  # its package
    assert stack[1] == "    test_later.py:6 in handler"


ASYNC_SUITE = """
import asyncio
import time

import pytest


def handler():
    time.sleep(0.2)  # the stuck line


@pytest.mark.asyncio
async def test_callback_blocks():
    asyncio.get_running_loop().call_soon(handler)
    await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_coroutine_blocks():
    await asyncio.sleep(0)
    time.sleep(0.15)  # blocks the task's step


@pytest.mark.asyncio
async def test_quick():
    await asyncio.sleep(0.01)
"""


def test_pytest_asyncio_tests_are_traced(pytester: pytest.Pytester) -> None:
    """pytest-asyncio gives each test a loop of its own: the asyncio adapter traces it."""
    pytester.makepyfile(test_async_app=ASYNC_SUITE)
    result = run(pytester, "-p", "no:twisted", "--loopscope", "--loopscope-fail-over", "100")
    result.assert_outcomes(passed=1, failed=2)
    out = failure_sections(result)
    # In asyncio's words: call_soon's handle is not a "timer", a task's step is a step.
    assert "in handler (test_async_app.py:8), a callback (call_soon or call_later)" in out
    assert "stuck at test_async_app.py:8 in handler" in out
    assert "in test_coroutine_blocks (test_async_app.py:20), a step of an asyncio Task" in out
    kept = sorted(p.name for p in (pytester.path / ".loopscope-traces").iterdir())
    assert kept == ["test_async_app.py_test_callback_blocks.jsonl",
                    "test_async_app.py_test_coroutine_blocks.jsonl"]
    from tracer.summary import summarize
    summary = summarize(str(pytester.path / ".loopscope-traces" / kept[0]))
    assert summary.runtime == "asyncio"


TWISTED_SUITE = """
import time

import pytest_twisted
from twisted.internet import reactor, task


def handler():
    time.sleep(0.2)  # the stuck line


def test_quick_first():
    return task.deferLater(reactor, 0.01, lambda: None)


@pytest_twisted.inlineCallbacks
def test_deferlater_blocks():
    yield task.deferLater(reactor, 0, handler)


@pytest_twisted.ensureDeferred
async def test_coroutine_blocks():
    await task.deferLater(reactor, 0, lambda: None)
    time.sleep(0.15)  # blocks the coroutine's step


def test_quick_last():
    return task.deferLater(reactor, 0.01, lambda: None)
"""


def test_pytest_twisted_tests_are_traced(pytester: pytest.Pytester) -> None:
    """pytest-twisted runs one Twisted reactor for the whole session and each test inside a
    call of it: tracing starts on a reactor already running, and stops while the test's call
    still runs (the trace closes it, so its stall is kept)."""
    pytester.makepyfile(test_twisted_app=TWISTED_SUITE)
    result = run(pytester, "-p", "no:asyncio", "--loopscope", "--loopscope-fail-over", "100",
                 "--loopscope-keep-all")
    result.assert_outcomes(passed=2, failed=2)
    out = failure_sections(result)
    assert "in handler (test_twisted_app.py:8), a timer (callLater)" in out
    assert "stuck at test_twisted_app.py:8 in handler" in out
    assert "in test_coroutine_blocks (test_twisted_app.py:23)" in out
    blocked = [float(ms) for ms in re.findall(r"blocked for ([0-9.]+) ms", out)]
    assert len(blocked) == 2 and min(blocked) >= 145
    from tracer.summary import summarize
    folder = pytester.path / ".loopscope-traces"
    for name in ("test_quick_first", "test_deferlater_blocks", "test_coroutine_blocks",
                 "test_quick_last"):
        summary = summarize(str(folder / f"test_twisted_app.py_{name}.jsonl"))
        assert summary.runtime == "twisted", name  # the reactor running before the test, too
        assert len(summary["stalls"]) == (1 if "blocks" in name else 0), name
