"""Real asyncio programs traced with ``loopscope run``: the docs' stream echo server and
client, structured concurrency with a thread and a forgotten task, every way to start a
loop, and uvloop."""

from __future__ import annotations

import pytest

import importlib.util

from asyncio_support import (PROGRAMS, def_line, events, loopscope_run, marked_lines, summary,
                             summary_text)


#: The probes this machine has: the C one is not built without a compiler.
PROBES = ["c", "python"] if importlib.util.find_spec("tracer._native") else ["python"]


def traced(tmp_path, program: str, *args: str, threshold_ms: int = 50) -> tuple[dict, list[dict]]:
    """The summary (blocking judged against ``threshold_ms``) and events of ``program``
    traced.  A program that never blocks on purpose is judged against a threshold no
    scheduler hiccup reaches: on a loaded machine an accept can take 50 ms of wall time."""
    trace = tmp_path / "trace.jsonl"
    proc = loopscope_run(trace, program, *args)
    assert proc.returncode == 0, proc.stderr
    return summary(trace, "--threshold", str(threshold_ms)), events(trace)


def test_text_summary_speaks_asyncio(tmp_path):
    trace = tmp_path / "trace.jsonl"
    assert loopscope_run(trace, "structured.py").returncode == 0
    text = summary_text(trace)
    assert ", on asyncio" in text.splitlines()[0]
    assert "Tasks and Futures: " in text and "1 exceptions never retrieved" in text
    assert "never retrieved KeyError: 'nobody asked'  (created in __main__.main" in text
    assert "Deferred" not in text


def test_stream_echo_server_and_client(tmp_path):
    clients = 4
    s, evs = traced(tmp_path, "echo_streams.py", str(clients), threshold_ms=1000)
    assert s["blocking"] == [] and s["errors"] == []
    tasks = {c["fn"]: c for c in s["callbacks"] if c["kind"] == "task"}
    for name in ("handle_echo", "tcp_echo_client"):
        step = tasks[f"__main__.{name}"]
        assert step["line"] == def_line("echo_streams.py", name) and step["count"] >= clients
    conns = [e for e in evs if e["ev"] == "conn"]
    assert sorted(e["role"] for e in conns) == ["client"] * clients + ["server"] * clients
    servers = {e["host"] for e in conns if e["role"] == "server"}
    assert len(servers) == 1 and all(e["peer"] in servers for e in conns if e["role"] == "client")
    closes = [e for e in evs if e["ev"] == "close"]
    # each side received and sent its message, "Hello World N!", and nothing else
    assert sorted((e["in"], e["out"]) for e in closes) == [(14, 14)] * (2 * clients)
    modes = {(e["fd"], e["mode"]) for e in evs if e["ev"] == "fdadd"}
    removed = {(e["fd"], e["mode"]) for e in evs if e["ev"] == "fdrm"}
    assert modes and modes == removed  # every reader and writer was removed again
    reads = [c for c in s["callbacks"] if c["fn"] == "asyncio.streams.StreamReaderProtocol.data_received"]
    assert reads and reads[0]["kind"] == "read"
    poll = [e for e in evs if e["ev"] == "poll"]
    assert poll and s["loop"]["iterations"] >= len(poll)


def test_taskgroup_timeout_to_thread_and_an_exception_never_retrieved(tmp_path):
    s, evs = traced(tmp_path, "structured.py", threshold_ms=250)
    assert s["blocking"] == []  # the 300 ms sleep ran in a pool thread
    [job] = [e for e in evs if e["ev"] == "tsub"]
    sites = {e["id"]: e for e in evs if e["ev"] == "site"}
    assert sites[job["fn"]]["fn"] == "__main__.blocking_io"
    started = [e for e in evs if e["ev"] == "tstart" and e["job"] == job["job"]]
    done = [e for e in evs if e["ev"] == "tdone" and e["job"] == job["job"]]
    assert started and done and done[0]["t"] - started[0]["t"] >= 300_000_000
    [unhandled] = s["deferreds"]["unhandled"]
    assert unhandled["exc"] == "KeyError" and unhandled["msg"] == "'nobody asked'"
    assert unhandled["fn"] == "__main__.main" and unhandled["file"] == str(PROGRAMS / "structured.py")
    assert "its exception is never retrieved" in \
        (PROGRAMS / "structured.py").read_text().splitlines()[unhandled["line"] - 1]
    d = s["deferreds"]
    assert d["created"] == d["fired"] and d["pending"] == 0
    cancelled = [e for e in evs if e["ev"] == "dfire" and e.get("cancelled")]
    assert len(cancelled) >= 2 and all(e["fail"] for e in cancelled)  # slow_forever, the timeout
    assert any(e["ev"] == "tcancel" for e in evs)  # asyncio.timeout's timer, not needed
    steps = {c["fn"] for c in s["callbacks"] if c["kind"] == "task"}
    assert {"__main__.fetch", "__main__.slow_forever", "__main__.broken", "__main__.forgotten"} <= steps
    chains = [e for e in evs if e["ev"] == "dchain"]
    assert chains  # tasks awaited futures and tasks


@pytest.mark.parametrize("how", ["run", "runner", "factory", "own-clock", "manual", "thread"])
def test_every_way_to_start_a_loop(tmp_path, how):
    s, evs = traced(tmp_path, "loops.py", how)
    found = {r["fn"]: r for r in s["blocking"]}
    assert set(found) == {"__main__.stuck_in_main", "__main__.late_callback"}
    step, timer = found["__main__.stuck_in_main"], found["__main__.late_callback"]
    assert step["kind"] == "task" and timer["kind"] == "timer"
    assert step["stack"][-1]["line"] in marked_lines("loops.py", "stuck_in_main")
    assert timer["stack"][-1]["line"] in marked_lines("loops.py", "late_callback")
    assert step["dur_ms"] >= 150 and timer["dur_ms"] >= 100   # at least their sleeps
    assert [e["name"] for e in evs if e["ev"] == "runtime"] == ["asyncio"]
    # timers' lag is measured on the monotonic clock, whatever the loop's clock
    assert s["loop"]["lag_max_ms"] < 1000


def test_loops_in_two_threads_at_once(tmp_path):
    """Both loops are traced and sampled (their stalls do not overlap: the model pairs a
    stall with its call by depth and start, one thread's at a time)."""
    s, _ = traced(tmp_path, "loops.py", "two-threads")
    found = {r["fn"]: r for r in s["blocking"]}
    assert set(found) == {"__main__.stuck_in_main", "__main__.stuck_in_thread",
                          "__main__.late_callback"}
    for name, row in found.items():
        assert row["stack"], f"{name} was not sampled"
        assert row["stack"][-1]["line"] in marked_lines("loops.py", name.split(".")[-1])


def test_uvloop_stall_is_found_by_the_heartbeat(tmp_path):
    pytest.importorskip("uvloop")
    s, evs = traced(tmp_path, "on_uvloop.py")
    [runtime] = [e for e in evs if e["ev"] == "runtime"]
    assert runtime["name"] == "uvloop" and "heartbeat" in runtime["unseen"]
    [row] = s["blocking"]
    assert row["fn"] == "__main__.stuck" and row["line"] == def_line("on_uvloop.py", "stuck")
    assert row["stack"][-1]["line"] in marked_lines("on_uvloop.py", "stuck")
    assert row["dur_ms"] >= 250      # the sleep, and at most a beat's period more
    assert "not seen on uvloop: uvloop runs its callbacks" in summary_text(tmp_path / "trace.jsonl")


@pytest.mark.parametrize("program, args", [("structured.py", ()), ("echo_streams.py", ("2",)),
                                           ("loops.py", ("run",))])
def test_the_pure_python_probe_traces_asyncio_programs_as_the_c_probe_does(tmp_path, program,
                                                                           args):
    """Without the C extension (a machine with no compiler) the adapter runs on the Python
    probe; a task step's handle has no ``func``, which that probe once took for a hook error,
    leaving the step's handle without its id: the program never ended."""
    found = {}
    for probe in PROBES:
        trace = tmp_path / f"{probe}.jsonl"
        proc = loopscope_run(trace, program, *args, probe=probe, timeout=60)
        assert proc.returncode == 0, proc.stderr
        evs = events(trace)
        assert evs[-1]["ev"] == "end" and evs[-1]["hook_errors"] == 0
        s = summary(trace, "--threshold", "90")   # the programs' own stalls, not hiccups
        found[probe] = ({r["fn"] for r in s["blocking"]},
                        {(c["fn"], c["kind"]) for c in s["callbacks"]})
    assert found["python"] == found.get("c", found["python"])  # alike, where both are built
