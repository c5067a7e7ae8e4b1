"""The recorder: bounded buffer with drop counting, private files, bounded user text, sites."""

import gc
import os
import stat
import sys
import time

import orjson
import pytest

import tracer
from reactor import defer
from tracer.reader import read_trace

pytestmark = pytest.mark.usefixtures("probe_impl")


def events_of(path):
    header, events = read_trace(str(path), warn=pytest.fail)
    return header, list(events)


def test_overflow_drops_and_counts_without_blocking(trace_path):
    tracer.start(str(trace_path), capacity=50)
    for i in range(5000):
        tracer.mark(f"m{i}")
    tracer.stop()
    _, events = events_of(trace_path)
    end = events[-1]
    drops = sum(e["n"] for e in events if e["ev"] == "drop")
    marks = [e for e in events if e["ev"] == "mark"]
    assert end["ev"] == "end" and end["dropped"] == drops > 0
    assert len(marks) + drops == 5000
    assert end["events"] == len(events) - 1


def test_trace_file_is_private_even_with_a_permissive_umask(trace_path):
    old = os.umask(0)
    try:
        tracer.start(str(trace_path))
    finally:
        os.umask(old)
    tracer.stop()
    assert stat.S_IMODE(os.stat(trace_path).st_mode) == 0o600


def test_application_text_is_cut(trace_path):
    tracer.start(str(trace_path))
    tracer.mark("x" * 5000)
    d = defer.Deferred()
    d.errback(ValueError("y" * 5000))
    del d
    gc.collect()
    time.sleep(0.25)  # the writer drops its reference, the Deferred is collected, reported
    gc.collect()
    tracer.stop()
    _, events = events_of(trace_path)
    [mark] = [e for e in events if e["ev"] == "mark"]
    [unhandled] = [e for e in events if e["ev"] == "unhandled"]
    assert len(mark["label"]) == 200 and mark["label"].endswith("…")
    assert len(unhandled["msg"]) == 200 and unhandled["exc"] == "ValueError"


def created_here():
    return defer.Deferred()  # the creation site


def a_callback(result):
    return result


def test_sites_are_interned_once_and_name_the_creator(trace_path):
    tracer.start(str(trace_path))
    for _ in range(3):
        d = created_here()
        d.addCallback(a_callback)
        d.callback(1)
    tracer.stop()
    _, events = events_of(trace_path)
    sites = {e["id"]: e for e in events if e["ev"] == "site"}
    fns = [s["fn"] for s in sites.values()]
    assert len(fns) == len(set((s["fn"], s["line"]) for s in sites.values()))
    dnew = [e for e in events if e["ev"] == "dnew"]
    dcalls = [e for e in events if e["ev"] == "dcall"]
    assert len(dnew) == 3 and len({e["d"] for e in dnew}) == 3
    creator = sites[dnew[0]["site"]]
    assert creator["fn"].endswith("created_here") and creator["file"] == __file__
    assert creator["line"] == created_here.__code__.co_firstlineno + 1
    callback = sites[dcalls[0]["site"]]
    assert callback["fn"].endswith("a_callback") and callback["line"] == a_callback.__code__.co_firstlineno
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)


def made_at_run_time(name: str):
    """A new function (and code object) from the same source each time."""
    made: dict = {}
    exec(compile(f"def {name}(d):\n    return d\n", "<made at run time>", "exec"), made)  # noqa: S102
    return made[name]


def test_functions_made_from_one_source_share_a_site_and_a_forgotten_place_is_named_again(
        trace_path):
    from tracer.recorder import PLACES_KEPT
    session = tracer.start(str(trace_path))
    ran = []
    for _ in range(3):  # three code objects, one place
        d = defer.Deferred()
        d.addCallback(made_at_run_time("handler"))
        d.addCallback(ran.append)
        d.callback(1)
    first = session.recorder.fn_site(made_at_run_time("handler"))
    for i in range(PLACES_KEPT):  # as many other places: the table forgets them all
        session.recorder.fn_site(made_at_run_time(f"other{i}"))
    again = session.recorder.fn_site(made_at_run_time("handler"))
    tracer.stop()
    assert ran == [1, 1, 1]
    _, events = events_of(trace_path)
    sites = {e["id"]: e for e in events if e["ev"] == "site"}
    handlers = [e for e in sites.values() if e["fn"] == "handler"]
    assert [e["id"] for e in handlers] == [first, again] and again != first  # named again
    assert {(e["file"], e["line"]) for e in handlers} == {("<made at run time>", 1)}
    # the three callbacks were one site, the one named before the table forgot it
    assert {e["site"] for e in events
            if e["ev"] == "dcall" and sites[e["site"]]["fn"] == "handler"} == {first}
    assert len(session.recorder.sites) <= PLACES_KEPT


def test_start_twice_is_refused_and_stop_is_idempotent(trace_path, tmp_path):
    tracer.start(str(trace_path))
    with pytest.raises(RuntimeError, match="already recording"):
        tracer.start(str(tmp_path / "other.jsonl"))
    tracer.stop()
    tracer.stop()
    _, events = events_of(trace_path)
    assert [e["ev"] for e in events] == ["end"]
    assert orjson.loads(trace_path.read_bytes().splitlines()[0])["threshold_ms"] == 50.0


def sleepy(result):
    time.sleep(0.35)
    return result


def test_watchdog_samples_a_stuck_callback_at_the_threshold_then_periodically(trace_path):
    tracer.start(str(trace_path), threshold_ms=50)
    d = defer.Deferred()
    d.addCallback(sleepy)
    d.callback(None)
    tracer.stop()
    _, events = events_of(trace_path)
    stalls = [e for e in events if e["ev"] == "stall"]
    [dcall] = [e for e in events if e["ev"] == "dcall"]
    assert len(stalls) >= 2
    assert all(s["since"] == dcall["t"] - dcall["dur"] and s["kind"] == "deferred" for s in stalls)
    blocked = [s["blocked"] for s in stalls]
    assert blocked == sorted(blocked) and blocked[0] >= 50_000_000
    assert all(b - a >= 90_000_000 for a, b in zip(blocked, blocked[1:]))
    assert stalls[0]["stack"][0][2] == "sleepy"  # from the callback's own frame inward
    assert stalls[0]["stack"][-1][1] == sleepy.__code__.co_firstlineno + 1


def test_deferred_callbacks_run_in_another_thread_are_not_loop_calls(trace_path):
    import threading
    tracer.start(str(trace_path), threshold_ms=20)

    def fire_in_thread():
        d = defer.Deferred()
        d.addCallback(sleepy)
        d.callback(None)

    worker = threading.Thread(target=fire_in_thread)
    worker.start()
    worker.join()
    tracer.stop()
    _, events = events_of(trace_path)
    kinds = {e["ev"] for e in events}
    assert "dfire" in kinds and "dcall" not in kinds and "stall" not in kinds


def test_site_lines_survive_an_overflow(trace_path):
    recording = tracer.start(str(trace_path), capacity=50)
    # 300 callbacks in 300 places (one file each): 300 sites
    callbacks = [eval(compile(f"lambda r: r + {i}", f"<callback {i}>", "eval"))  # noqa: S307
                 for i in range(300)]
    with recording.recorder._lock:  # the writer cannot drain meanwhile: the buffer overflows
        for f in callbacks:
            defer.Deferred().addCallback(f)
    tracer.stop()
    _, events = events_of(trace_path)
    assert events[-1]["dropped"] > 0
    defined = {e["id"] for e in events if e["ev"] == "site"}
    used = {e[key] for e in events if e["ev"] in ("dnew", "dadd") for key in ("site", "cb") if key in e}
    assert len(defined) >= 301 and used <= defined


def test_a_raising_loop_callback_gives_its_call_an_error_and_a_loop_count(trace_path):
    from reactor.base import Reactor

    def boom():
        raise KeyError("k")

    loop = Reactor()
    tracer.start(str(trace_path))
    loop.callLater(0, boom)
    loop.callLater(0.01, loop.stop)
    loop.run(installSignalHandlers=False)
    tracer.stop()
    _, events = events_of(trace_path)
    sites = {e["id"]: e["fn"] for e in events if e["ev"] == "site"}
    [call] = [e for e in events if e["ev"] == "call" and "exc" in e]
    [error] = [e for e in events if e["ev"] == "error"]
    assert call["exc"] == "KeyError" and call["kind"] == "timer" and sites[call["site"]].endswith("boom")
    assert error["site"] == call["site"] and error["stack"][-1][2].endswith("boom")
    calls = [e for e in events if e["ev"] == "call"]
    assert sum(e["calls"] for e in events if e["ev"] == "loop") == len(calls)


def test_the_writer_leaves_the_programs_switch_interval_as_the_program_set_it(trace_path):
    """The writer shortens the switch interval while it writes a batch (Recorder's
    _flush_promptly), and puts the program's back: the one it had, or one it set meanwhile."""
    own = sys.getswitchinterval()

    def seen_between_batches(interval: float) -> bool:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:      # batches are written every 100 ms
            tracer.mark("m")
            time.sleep(0.01)
            if sys.getswitchinterval() == pytest.approx(interval):
                return True
        return False

    try:
        sys.setswitchinterval(0.002)
        tracer.start(str(trace_path))
        time.sleep(0.35)                        # three batches or more
        assert seen_between_batches(0.002)
        sys.setswitchinterval(0.003)
        time.sleep(0.35)
        assert seen_between_batches(0.003)
        tracer.stop()
        assert sys.getswitchinterval() == pytest.approx(0.003)
    finally:
        sys.setswitchinterval(own)
