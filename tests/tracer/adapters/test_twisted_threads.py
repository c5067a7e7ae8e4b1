"""deferToThread and callInThread, a LoopingCall, and a Deferred that fails with nobody
handling it, on Twisted's own reactor."""

import pytest
from twisted_support import app, callbacks, events, line_of, run_traced, summary

PROGRAM = app("threads_loop.py")


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    trace = tmp_path_factory.mktemp("threads") / "threads.jsonl"
    done = run_traced(trace, PROGRAM)
    return done.stdout, summary(trace), events(trace)


@pytest.mark.timeout(120)
def test_thread_work_is_recorded_as_thread_jobs_and_never_blocks(traced):
    _, found, trace = traced
    jobs = [e for e in trace if e["ev"] == "tsub"]
    assert [e["name"] for e in jobs] == ["__main__.blocking_io"] * 2
    for job in jobs:
        started = [e for e in trace if e["ev"] == "tstart" and e["job"] == job["job"]]
        finished = [e for e in trace if e["ev"] == "tdone" and e["job"] == job["job"]]
        assert len(started) == len(finished) == 1 and "exc" not in finished[0]
        assert started[0]["tid"] != 0
    assert not [b for b in found["blocking"] if "blocking_io" in b["fn"]]
    assert not callbacks(found, "__main__.blocking_io")  # it never ran on the loop
    # the result came back to the loop through callFromThread, named by its callback
    assert [e for e in trace if e["ev"] == "call" and e["kind"] == "thread" and e["name"] == "builtins.print"]


@pytest.mark.timeout(120)
def test_the_looping_call_is_named_by_the_users_function(traced):
    _, found, _ = traced
    [heartbeat] = callbacks(found, "__main__.heartbeat")
    assert heartbeat["kind"] == "timer" and heartbeat["count"] >= 5
    assert (heartbeat["file"], heartbeat["line"]) == (str(PROGRAM), line_of(PROGRAM, "def heartbeat"))
    assert not [c for c in found["callbacks"] if c["fn"].endswith("LoopingCall.__call__")]


@pytest.mark.timeout(120)
def test_the_unhandled_failure_is_listed_and_twisted_still_reports_it(traced):
    stdout, found, _ = traced
    [unhandled] = found["deferreds"]["unhandled"]
    assert unhandled["exc"] == "KeyError" and "nobody-handles-this" in unhandled["msg"]
    assert (unhandled["fn"], unhandled["file"], unhandled["line"]) == (
        "__main__.lookup", str(PROGRAM), line_of(PROGRAM, "d = defer.Deferred()"))
    assert "Unhandled error in Deferred" in stdout and "nobody-handles-this" in stdout
