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


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_app=BLOCKING_SUITE)
    return pytester


def test_a_blocking_test_fails_naming_the_stall(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("--loopscope", "--loopscope-fail-over", "100", "-p",
                                        "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    # Each failure's own section, not the short summary (whose lines are cut to the terminal's
    # width, so how often a message shows there depends on the terminal).
    sections = "\n".join(line for line in result.stdout.lines if not line.startswith("FAILED "))
    blocked = [float(ms) for ms in re.findall(r"blocked for ([0-9.]+) ms", sections)]
    assert len(blocked) == 2 and min(blocked) >= 195  # the 250 ms and the 200 ms sleeps
    assert "over the 100 ms limit" in out
    assert "by test_app.run_loop.<locals>.handler (test_app.py:9), a timer callback" in out
    assert "stuck at test_app.py:10 in run_loop.<locals>.handler" in out
    kept = sorted((suite.path / ".loopscope-traces").iterdir())
    assert [p.name for p in kept] == ["test_app.py_test_blocks.jsonl",
                                      "test_app.py_test_marked_blocks.jsonl"]
    assert "2 traces kept in" in out and "loopscope replay" in out


def test_the_kept_trace_opens_in_loopscope(suite: pytest.Pytester) -> None:
    suite.runpytest_subprocess("--loopscope-fail-over", "100", "-p", "no:cacheprovider",
                               "-k", "marked_blocks")
    [trace] = (suite.path / ".loopscope-traces").iterdir()
    from tracer.summary import summarize
    summary = summarize(str(trace))
    assert summary["blocking"][0]["fn"] == "test_app.run_loop.<locals>.handler"
    assert summary["blocking"][0]["stack"][-1]["line"] == 10


def test_without_the_flag_only_marked_tests_are_traced(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
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
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".loopscope-traces").exists()
