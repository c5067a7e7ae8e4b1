"""Deferred callbacks on the real Twisted, timed by the probe's DeferredTimer: every path a
callback can take (a result, extra arguments, raising, returning a Failure, an errback that
recovers, addBoth, returning a Deferred not fired yet, one Twisted made), the program seeing
what it sees untraced, and both probes writing the same trace."""

import importlib.util
import os
import subprocess
import sys
import threading
import time

import pytest
from probe_support import Sites
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted_support import ENV, app, events, line_of

import tracer
from tracer.reader import read_trace

PROGRAM = app("deferred_paths.py")
TRACER_DIR = os.path.dirname(tracer.__file__) + os.sep
#: The probes this machine has (the C one is not built without a compiler: the suite passes
#: without it); the C probe's trace is the one read where either would do.
PROBES = ["c", "python"] if importlib.util.find_spec("tracer._native") else ["python"]
MAIN = f"{PROBES[0]}-trace"
#: What varies between two runs of the same program.
VARYING = {"t", "dur", "lag", "wait", "since", "blocked", "due", "tid", "peer", "host"}


def seen(output: str) -> list[str]:
    return [line.split(" seen ", 1)[1] for line in output.splitlines() if " seen " in line]


def timeless(trace) -> list[dict]:
    _header, all_events = read_trace(str(trace))
    return [{k: v for k, v in e.items() if k not in VARYING} for e in all_events
            if e["ev"] not in ("loop", "stall", "end", "trace", "runtime")]


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """The program untraced (its output), and traced under each probe."""
    tmp = tmp_path_factory.mktemp("deferred-paths")
    untraced = subprocess.run([sys.executable, str(PROGRAM)], check=False, capture_output=True, text=True,
                              env=ENV, timeout=60)
    assert untraced.returncode == 0, untraced.stderr
    out = {"untraced": untraced.stdout}
    for probe in PROBES:
        trace = tmp / f"{probe}.jsonl"
        done = subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(trace),
                               str(PROGRAM)], check=False, capture_output=True, text=True,
                              env={**ENV, "LOOPSCOPE_PROBE": probe}, timeout=120)
        assert done.returncode == 0, done.stderr
        out[probe] = done.stdout
        out[f"{probe}-trace"] = trace
    return out


@pytest.mark.timeout(300)
def test_the_program_sees_what_it_sees_untraced(traces):
    expected = seen(traces["untraced"])
    assert expected == [
        "('recovered', 'ValueError', 'exploded on 31', 'explode')",
        "('recovered', 'KeyError', \"'recovered'\", None)",
        "('both', 'recovered')", "recovered",
        "('recovered', 'KeyError', \"'as a result'\", None)", "already called", "42"]
    assert all(seen(traces[probe]) == expected for probe in PROBES)


@pytest.mark.timeout(300)
def test_both_probes_write_the_same_trace(traces):
    if len(PROBES) == 1:
        pytest.skip("comparing needs the C extension too")
    assert timeless(traces["c-trace"]) == timeless(traces["python-trace"])


@pytest.mark.timeout(300)
def test_each_callback_is_timed_with_the_path_it_took(traces):
    found = events(traces[MAIN])
    [main] = [e["d"] for e in found
              if e["ev"] == "dnew" and site_line(found, e) == line_of(PROGRAM, "# down every path")]
    calls = [(e["name"].rsplit(".", 1)[-1], e["eb"], e["fail"])
             for e in found if e["ev"] == "dcall" and e["d"] == main]
    succeed = calls.pop(7)  # defer.succeed, named after the adapter's wrapper of it
    assert succeed[1:] == (False, False)
    assert calls == [
        ("double", False, False), ("scaled", False, False), ("explode", False, True),
        ("recover", True, False), ("as_failure", False, True), ("recover", True, False),
        ("both", False, False), ("append", False, False)]


def site_line(found: list[dict], e: dict) -> int:
    return next(s["line"] for s in found if s["ev"] == "site" and s["id"] == e["site"])


@pytest.mark.timeout(300)
def test_a_callback_returning_a_deferred_not_fired_is_a_chain(traces):
    found = events(traces[MAIN])
    sites = {e["id"]: e for e in found if e["ev"] == "site"}
    made_in = {e["d"]: sites[e["site"]] for e in found if e["ev"] == "dnew"}
    [chain] = [e for e in found if e["ev"] == "dchain"]
    assert made_in[chain["d"]]["line"] == line_of(PROGRAM, "chained = defer.Deferred()")
    assert made_in[chain["inner"]]["line"] == line_of(PROGRAM, "inner = defer.Deferred()")
    outer = [e["name"].rsplit(".", 1)[-1] for e in found if e["ev"] == "dcall" and e["d"] == chain["d"]]
    assert outer == ["later", "double", "append"]
    # the timer that fires the chain is named by its first callback, the program's
    [fired] = [e for e in found if e["ev"] == "call" and e["name"] == "__main__.later"]
    assert fired["kind"] == "timer"


@pytest.mark.timeout(300)
def test_a_deferred_twisted_makes_in_a_callback_is_sited_in_twisted(traces):
    """``succeed`` run as a callback: its Deferred is made in Twisted, and the site is not
    looked for past the function that runs the callbacks (the line that fired the outer
    Deferred did not make it)."""
    found = events(traces[MAIN])
    sites = {e["id"]: e for e in found if e["ev"] == "site"}
    made = [sites[e["site"]]["fn"] for e in found if e["ev"] == "dnew"]
    assert "twisted.internet.defer.succeed" in made


@pytest.mark.timeout(300)
def test_the_unhandled_failure_names_its_deferred_and_the_raising_line(traces):
    for probe in PROBES:
        found = events(traces[f"{probe}-trace"])
        [unhandled] = [e for e in found if e["ev"] == "unhandled"]
        assert (unhandled["exc"], unhandled["msg"]) == ("ValueError", "exploded on nobody-handles-this")
        assert site_line(found, unhandled) == line_of(PROGRAM, "# left failing")
        made = next(e for e in found if e["ev"] == "dnew" and e["d"] == unhandled["d"])
        assert made["site"] == unhandled["site"]
        assert unhandled["stack"][-1] == [str(PROGRAM), line_of(PROGRAM, "# raised in a callback"), "explode"]
        assert not any(frame[0].startswith(TRACER_DIR) for frame in unhandled["stack"])
        assert "Unhandled error in Deferred" in traces[probe]  # Twisted's own report


# -- the DeferredTimer itself, under each probe ----------------------------------------------

class Traced:
    """A Deferred as the probe sees one (Twisted's gets ``_trace_id`` from the adapter)."""

    __slots__ = ("_trace_id",)

    def __init__(self):
        self._trace_id = None


class Told:
    """The adapter's side of a DeferredTimer: what it was told, and each callback ended."""

    def __init__(self, probe):
        self.probe = probe
        self.calls: list[tuple] = []

    def settled(self, d, r):
        self.calls.append(("settled", d, r))
        self.probe.deferred_callback_end(d, isinstance(r, Failure))
        return r

    def failed(self, d, exc):
        self.calls.append(("failed", d, exc))
        self.probe.deferred_callback_end(d, True)


@pytest.fixture
def timer_parts(probes):
    buffer = probes.Buffer(100)
    probe = probes.Probe(buffer, time.monotonic_ns(), Sites())
    told = Told(probe)
    return probe, told, probe.deferred_timer(Failure, defer.Deferred, told.settled, told.failed)


def test_a_timed_callback_passes_arguments_and_its_result(timer_parts):
    probe, told, timer = timer_parts
    d = Traced()
    timed = timer(d, lambda result, *args, **kw: (result, args, kw), False)
    assert timed(1, 2, k=3) == (1, (2,), {"k": 3})
    assert timed(4) == (4, (), {})
    assert told.calls == [] and probe.top() is None  # each one ended


def test_a_timed_callback_names_the_programs_callback(timer_parts):
    _probe, _told, timer = timer_parts

    def program_callback(result):
        return result

    assert timer.callback_of(timer(Traced(), program_callback, True)) is program_callback
    assert timer.callback_of(program_callback) is None


def test_a_callback_that_raises_raises_the_same_exception_and_the_adapter_is_told(timer_parts):
    probe, told, timer = timer_parts
    d = Traced()
    error = ValueError("boom")

    def raising(result):
        raise error

    with pytest.raises(ValueError) as caught:
        timer(d, raising, False)(None)
    assert caught.value is error and caught.traceback[-1].name == "raising"
    assert told.calls == [("failed", d, error)] and probe.top() is None


def test_an_error_of_the_adapter_goes_first_with_the_callbacks_as_its_context(timer_parts):
    probe, _told, _timer = timer_parts

    def failed(d, exc):
        probe.deferred_callback_end(d, True)
        raise RuntimeError("adapter")

    timer = probe.deferred_timer(Failure, defer.Deferred, lambda d, r: r, failed)
    error = KeyError("callback")
    with pytest.raises(RuntimeError) as caught:
        timer(Traced(), lambda _: (_ for _ in ()).throw(error), False)(None)
    assert caught.value.__context__ is error


def test_a_failure_or_a_deferred_returned_goes_to_settled_anything_else_does_not(timer_parts):
    _probe, told, timer = timer_parts
    d, inner, failure = Traced(), defer.Deferred(), Failure(KeyError("k"))
    assert timer(d, lambda _: inner, False)(None) is inner
    assert timer(d, lambda _: failure, True)(None) is failure
    assert timer(d, lambda _: "plain", False)(None) == "plain"
    assert told.calls == [("settled", d, inner), ("settled", d, failure)]


def test_callbacks_run_in_another_thread_are_not_on_the_loops_stack(timer_parts):
    probe, _told, timer = timer_parts
    d, tops = Traced(), []
    timed = timer(d, lambda _: tops.append(probe.top()), False)
    worker = threading.Thread(target=timed, args=(None,))
    worker.start()
    worker.join()
    timed(None)
    assert tops[0] is None and tops[1][2] == "deferred"
