"""Twisted's timed calls are recorded alike by the C probe's callLater (a TimedCall given to
Twisted) and by the Python wrapper the pure-Python probe uses: each way a call is scheduled
(functions with arguments and keywords, a bound method, a Deferred's callback, a LoopingCall,
a partial, a builtin), a call that raises, and calls cancelled, reset and delayed."""

import collections
import importlib.util
import subprocess
import sys

import pytest
from twisted_support import ENV, app, events, line_of

PROGRAM = app("timer_paths.py")
PROBES = ["c", "python"] if importlib.util.find_spec("tracer._native") else ["python"]


def _run(probe: str, trace) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(trace),
                           str(PROGRAM)], capture_output=True, text=True,
                          env={**ENV, "LOOPSCOPE_PROBE": probe}, timeout=120)


@pytest.fixture(scope="module")
def timers(tmp_path_factory):
    """Per probe: what the program printed, and the timers, cancellations and timer calls in
    the order written (each a tuple of what does not depend on the clock)."""
    tmp = tmp_path_factory.mktemp("timer-paths")
    found = {}
    for probe in PROBES:
        trace = tmp / f"{probe}.jsonl"
        done = _run(probe, trace)
        assert done.returncode == 0, done.stderr
        assert "ValueError: a timer that raises" in done.stderr  # Twisted's own log of it
        evs = events(trace)
        assert evs[-1]["ev"] == "end" and evs[-1]["hook_errors"] == 0
        sites = {e["id"]: (e["fn"], e["line"]) for e in evs if e["ev"] == "site"}
        seen = []
        for e in evs:
            if e["ev"] == "timer":
                seen.append(("timer", sites[e["site"]], sites[e["fn"]][0], e["due"] is not None))
            elif e["ev"] == "tcancel":
                seen.append(("cancel",))
            elif e["ev"] == "call" and e["kind"] == "timer":
                seen.append(("call", e["name"], e["lag"] is not None and e["lag"] < 5e7,
                             e.get("exc")))
        found[probe] = done.stdout, seen
    return found


def test_every_timed_call_runs_with_what_it_was_given(timers):
    stdout, _seen = timers[PROBES[0]]
    assert "builtin ran" in stdout and "counter: 3" in stdout
    assert ("ran: [\"('deferred', 'fired')\", \"('with_arguments', 1, 2, 3)\", 'delayed', "
            "'lambda', 'partial', 'refused', 'reset']") in stdout


def test_each_timer_is_sited_where_it_was_scheduled_and_named_by_what_it_runs(timers):
    _stdout, seen = timers[PROBES[0]]
    scheduled = {s[2]: s[1] for s in seen if s[0] == "timer"}
    for fn, text in (("__main__.with_arguments", "with_arguments, 1, 2"),
                     ("__main__.Counter.tick", "counter.tick)"),
                     ("twisted.internet.defer.Deferred.callback", "d.callback"),
                     ("builtins.print", "print,"), ("__main__.never", "(10, never)")):
        assert scheduled[fn] == ("__main__.start", line_of(PROGRAM, text)), fn
    ran = collections.Counter(s[1] for s in seen if s[0] == "call")
    # the LoopingCall, named by the user's function: its first run is start()'s, then the
    # counter's own timer and one timed run make 3
    assert ran["__main__.loop_body"] == 1 and ran["__main__.Counter.tick"] == 1
    assert ran["__main__.start.<locals>.<lambda>"] == 2  # the lambda, and the Deferred's callback
    assert "__main__.never" not in ran and ran["__main__.reset_ran"] == 1
    assert ("call", "__main__.boom", True, "ValueError") in seen
    assert seen.count(("cancel",)) == 1
    # reset and delayed calls ran on time by their new due time: their lag is small
    assert all(s[2] for s in seen if s[0] == "call")


def test_both_probes_record_them_alike(timers):
    if len(PROBES) == 1:
        pytest.skip("comparing needs the C extension too")
    assert timers["c"] == timers["python"]


GC_COUNT = """
import gc, sys
from twisted.internet import reactor
def tick(): pass
gc.collect()
before = len(gc.get_objects())
calls = [reactor.callLater(5, tick) for _ in range(1000)]
gc.collect()
print((len(gc.get_objects()) - before) / 1000)
for call in calls:
    call.cancel()
"""


@pytest.mark.skipif("c" not in PROBES, reason="the TimedCall is the C probe's")
def test_a_traced_pending_call_adds_at_most_one_object_for_the_collector(tmp_path):
    """Tracing a pending call costs the garbage collector at most one tracked object (the
    TimedCall), not the three of a Python source, partial and arguments tuple: with 200k calls
    pending, the collector's passes over them were most of what tracing timers cost."""
    program = tmp_path / "count.py"
    program.write_text(GC_COUNT)
    untraced = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                              env=ENV, timeout=60)
    traced = subprocess.run([sys.executable, "-m", "loopscope", "run", "-o",
                             str(tmp_path / "t.jsonl"), str(program)], capture_output=True,
                            text=True, env={**ENV, "LOOPSCOPE_PROBE": "c"}, timeout=60)
    assert untraced.returncode == 0 and traced.returncode == 0, traced.stderr
    extra = float(traced.stdout.split()[-1]) - float(untraced.stdout.split()[-1])
    assert extra < 1.05, (untraced.stdout, traced.stdout)
