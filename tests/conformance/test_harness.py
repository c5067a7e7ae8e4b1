"""bench/conformance.py counts right: one small Twisted module (test_error)
run on Twisted itself must all pass, and run rewritten on loopscope must
count the same tests, with the names loopscope lacks as missing-api.

The full run stays in bench/ (``python bench/conformance.py``, docs/conformance.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import conformance  # noqa: E402  (bench/ is not a package)


def run(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(BENCH / "conformance.py"), *args],
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def both() -> tuple[dict, dict]:
    return run("test_error", "--against-twisted"), run("test_error")


def test_against_twisted_every_test_of_the_module_passes(both: tuple[dict, dict]) -> None:
    twisted, _ = both
    counts = twisted["modules"]["test_error"]
    assert counts["passed"] >= 8
    assert counts["passed"] == sum(counts.values())
    assert twisted["pass_rate"] == 1.0


def test_rewritten_counts_the_same_tests_and_names_what_is_missing(
        both: tuple[dict, dict]) -> None:
    twisted, ours = both
    counts = ours["modules"]["test_error"]
    assert sum(counts.values()) == sum(twisted["modules"]["test_error"].values())
    # test_error's table names ProcessDone, which belongs to spawnProcess.
    import reactor.error

    expected_missing = 0 if hasattr(reactor.error, "ProcessDone") else 1
    assert counts["missing-api"] == expected_missing
    assert counts["failed"] == 0
    assert counts["passed"] == sum(counts.values()) - expected_missing


def test_rewrite_points_twisted_imports_at_loopscope_and_keeps_line_numbers() -> None:
    source = (
        "from twisted.internet import reactor, defer, interfaces\n"
        "from twisted.internet.defer import (\n    Deferred,\n    race,\n)\n"
        "from twisted.trial import unittest\n"
        "import twisted.python.failure as failure\n"
        "x = 1\n"
    )
    rewritten = conformance.rewrite(source)
    lines = rewritten.splitlines()
    assert len(lines) == len(source.splitlines()) and lines[-1] == "x = 1"
    assert "reactor = _lsconf.the_reactor()" in lines[0]
    assert "defer = _lsconf.module('reactor.defer')" in lines[0]
    assert "from twisted.internet import interfaces" in lines[0]  # stays Twisted's
    assert "race = _lsconf.attr('reactor.defer', 'race')" in lines[1]
    assert lines[5] == "from twisted.trial import unittest"
    assert "failure = _lsconf.module('reactor.failure')" in lines[6]


def test_a_placeholder_raises_missing_api_when_used_not_when_imported() -> None:
    import conformance_shim as shim

    missing = shim.attr("reactor.defer", "no_such_name_here")
    subclass = type("Sub", (missing,), {})  # defining a subclass still works
    with pytest.raises(shim.MissingAPI, match="reactor.defer.no_such_name_here"):
        subclass()
    with pytest.raises(shim.MissingAPI):
        _ = missing.anything
    assert shim.attr("reactor.defer", "Deferred").__name__ == "Deferred"


def test_classify_sorts_runner_records() -> None:
    record = {"outcome": "error", "reason": None,
              "errors": [{"type": "AttributeError", "message": "", "missing": "Reactor.x"}]}
    assert conformance.classify(record) == ("missing-api", "Reactor.x")
    record = {"outcome": "skip", "reason": "not-applicable: Windows only", "errors": []}
    assert conformance.classify(record) == ("not-applicable", "Windows only")
    record = {"outcome": "skip", "errors": [],
              "reason": "reactor.Reactor does not provide twisted.internet.interfaces.IReactorSocket"}
    assert conformance.classify(record)[0] == "not-applicable"
    record = {"outcome": "fail", "reason": None,
              "errors": [{"type": "FailTest", "message": "1 != 2", "missing": None}]}
    assert conformance.classify(record) == ("failed", "FailTest: 1 != 2")
