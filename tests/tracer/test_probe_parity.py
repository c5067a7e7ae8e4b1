"""The two probes record the same trace: the same bytes for the same hooks, and example apps
run under each, compared.

Times differ from run to run; everything else must not.  Deterministic apps are compared line
by line (less their times, thread idents and ports); the blocking server, whose periodic timer
runs as often as the clock allows, by its summary: the same blocking callbacks, the same
callbacks run, the same Deferreds.
"""

import importlib.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from probe_support import Sites

from reactor import _instrument, defer
from tracer import backend
from loopscope.cli import main
from tracer.reader import read_trace

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: Fields that depend on the clock, the machine or the kernel's choice of port.
VARYING = {"t", "dur", "lag", "wait", "since", "blocked", "due", "tid", "host", "peer"}

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tracer._native") is None,
                                reason="comparing needs the C extension too")


def run_traced(tmp_path: Path, probe: str, script: str, *args: str) -> Path:
    trace = tmp_path / f"{Path(script).stem}-{probe}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), backend.ENV: probe}
    proc = subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(trace),
                           str(EXAMPLES / script), *args],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return trace


def timeless(path: Path) -> list[dict]:
    """The trace's events without what varies between two runs of the same app."""
    _header, events = read_trace(str(path), warn=pytest.fail)
    kept = []
    for event in events:
        if event["ev"] in ("loop", "stall", "drop"):  # sampled on the clock
            continue
        if event["ev"] == "end":
            event = {"ev": "end", "dropped": event["dropped"], "hook_errors": event["hook_errors"]}
        kept.append({k: v for k, v in event.items() if k not in VARYING})
    return kept


def summary(path: Path, capsys: pytest.CaptureFixture, *options: str) -> dict:
    capsys.readouterr()
    assert main(["summary", "--json", str(path), *options]) == 0
    return orjson.loads(capsys.readouterr().out)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script, args", [("deferreds.py", ()), ("blocking_busy.py", ("50000",))],
                         ids=["deferreds", "blocking_busy"])
def test_a_deterministic_app_gives_the_same_trace_under_both_probes(tmp_path, capsys, script, args):
    c = run_traced(tmp_path, "c", script, *args)
    python = run_traced(tmp_path, "python", script, *args)
    assert timeless(c) == timeless(python)
    by_c, by_python = summary(c, capsys), summary(python, capsys)
    assert callback_counts(by_c) == callback_counts(by_python)
    assert by_c["deferreds"] == by_python["deferreds"] and by_c["errors"] == by_python["errors"]


def callback_counts(summary: dict) -> set:
    return {(r["fn"], r["kind"], r["line"], r["count"]) for r in summary["callbacks"]}


#: The blocking server's callback whose time is the machine's: its gc.collect() walks every
#: object of the process, and under callgrind next door it crossed even 100 ms.
GC_BOUND = "__main__.leave_failure_unhandled"


def blocking_sites(summary: dict) -> set:
    return {(r["fn"], r["kind"], r["line"], r["depth"]) for r in summary["blocking"]
            if r["fn"] != GC_BOUND}


@pytest.mark.timeout(120)
def test_the_blocking_server_gives_the_same_summary_under_both_probes(tmp_path, capsys):
    # Blocking at 100 ms: the app's blockers take 120 ms and more, and nothing else comes near
    # (at 50 ms its gc.collect() can cross the line on a loaded machine, under either probe).
    by_c = summary(run_traced(tmp_path, "c", "blocking_server.py"), capsys, "--threshold", "100")
    by_python = summary(run_traced(tmp_path, "python", "blocking_server.py"), capsys,
                        "--threshold", "100")
    assert blocking_sites(by_c) == blocking_sites(by_python)
    assert {(fn, kind, depth) for fn, kind, _line, depth in blocking_sites(by_c)} == {
        ("__main__.SlowEcho.dataReceived", "read", 0),
        ("__main__.Requester.dataReceived", "read", 0),  # it fired parse_reply's Deferred
        ("__main__.parse_reply", "deferred", 1),
        ("__main__.crunch", "timer", 0)}
    for s in (by_c, by_python):  # the watchdog saw the innermost ones, under both probes
        assert all(r["stack"] for r in s["blocking"]
                   if r["fn"] not in ("__main__.Requester.dataReceived", GC_BOUND))
    ran = [{(r["fn"], r["kind"], r["line"]) for r in s["callbacks"]} for s in (by_c, by_python)]
    assert ran[0] == ran[1]
    once = [{(r["fn"], r["count"]) for r in s["callbacks"] if r["fn"] != "__main__.tick"}
            for s in (by_c, by_python)]
    assert once[0] == once[1]  # tick reschedules itself every 50 ms: its count is the clock's
    assert by_c["deferreds"] == by_python["deferreds"]
    assert by_c["dropped"] == by_python["dropped"] == 0


def rows_written(module, tmp_path):
    """Every hot hook once, through ``module``'s Buffer and Probe: the lines written."""
    from reactor.base import DelayedCall

    buffer = module.Buffer(100)
    descriptor = type("Descriptor", (), {})()
    probe = module.Probe(buffer, time.monotonic_ns(), Sites())
    probe.watch_fd(descriptor, 9)
    d = defer.Deferred()
    call = DelayedCall(None, time.monotonic() + 5, print, (), {})  # due: no lag
    probe.timer_scheduled(call)
    probe.deferred_created(d)
    probe.deferred_callbacks_added(d, print, None)
    probe.deferred_fired(d, True)
    probe.poll_begin(0.1)
    probe.poll_end([((None, 5, 1, None), 1), ((None, 2**40, 3, None), 3)])
    probe.run_call("read", descriptor, print, ("",), None)
    probe.call_begin("timer", print, call)
    probe.deferred_callback_begin(d, print, True)
    probe.deferred_callback_begin(d, print, False)
    probe.deferred_callback_end(d, False)
    probe.call_end(None)
    buffer.line(b'{"ev":"x"}')
    return drained(buffer, tmp_path / module.__name__, (10, 2))


def firings_written(module, tmp_path):
    """Deferreds fired each way the firing reaches ``module``'s probe, installed: with a
    callback (the first callback's hook says it), with none (the end of the pass), on the
    failure path, while paused (deferred_fired), and in another thread (its callback is not
    the loop's, the firing is recorded all the same).  The lines written."""
    buffer = module.Buffer(100)
    probe = module.Probe(buffer, time.monotonic_ns(), Sites())
    _instrument.install(probe)
    try:
        defer.Deferred().addCallback(str).callback(1)
        defer.Deferred().callback(2)
        defer.Deferred().addErrback(lambda f: None).errback(ValueError())
        paused = defer.Deferred()
        paused.pause()
        paused.callback(3)
        paused.addCallback(str)
        paused.unpause()
        elsewhere = defer.Deferred().addCallback(str)
        worker = threading.Thread(target=elsewhere.callback, args=(4,))
        worker.start()
        worker.join()
    finally:
        _instrument.uninstall()
    return drained(buffer, tmp_path / f"fired-{module.__name__}", (17, 0))


def test_each_way_a_firing_is_told_writes_the_same_rows(tmp_path):
    from tracer import _native, pyprobe

    c, python = firings_written(_native, tmp_path), firings_written(pyprobe, tmp_path)
    assert c == python
    assert c == [
        '["dnew",T,1,7]', '["dadd",T,1,7,0]', '["dfire",T,1,false]',
        '["dcall",T,1,7,T,0,false,false]',
        '["dnew",T,2,7]', '["dfire",T,2,false]',
        '["dnew",T,3,7]', '["dadd",T,3,0,7]', '["dfire",T,3,true]',
        '["dcall",T,3,7,T,0,true,false]',
        '["dnew",T,4,7]', '["dfire",T,4,false]', '["dadd",T,4,7,0]',
        '["dcall",T,4,7,T,0,false,false]',
        '["dnew",T,5,7]', '["dadd",T,5,7,0]', '["dfire",T,5,false]']


def drained(buffer, out: Path, counts: tuple[int, int]) -> list[str]:
    """What ``buffer`` holds, written to ``out`` (``counts``: lines and calls of the drain)."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    try:
        assert buffer.drain(fd) == counts
    finally:
        os.close(fd)
    return [timeless_row(line) for line in out.read_text().splitlines()]


def timed_rows(module, tmp_path):
    """Deferred callbacks timed by ``module``'s DeferredTimer down each path (a result, an
    exception, a Deferred returned): the lines written, and what the adapter's side was told."""
    buffer = module.Buffer(100)
    probe = module.Probe(buffer, time.monotonic_ns(), Sites())
    told = []

    def settled(d, r):
        told.append("settled")
        probe.deferred_callback_end(d, False)
        return r

    def failed(d, exc):
        told.append(type(exc).__name__)
        probe.deferred_callback_end(d, True)

    timer = probe.deferred_timer(KeyError, defer.Deferred, settled, failed)
    d, inner = defer.Deferred(), defer.Deferred()
    timer(d, str, False)(1)
    with pytest.raises(ValueError):
        timer(d, int, True)("x")
    assert timer(d, lambda _: inner, False)(None) is inner
    return drained(buffer, tmp_path / f"timed-{module.__name__}", (3, 0)), told


#: Where each row holds a time or a duration (they vary between runs): its t, and more.
ROW_TIMES = {"call": (1, 4), "dcall": (1, 4), "timer": (1, 5), "poll": (1, 2)}


def timeless_row(line: str) -> str:
    """A compact row as written, its times replaced by T (objects as they are)."""
    if not line.startswith("["):
        return line
    fields = line[1:-1].split(",")  # rows hold no text but their kind names
    for i in ROW_TIMES.get(fields[0].strip('"'), (1,)):
        fields[i] = "T"
    return "[" + ",".join(fields) + "]"


def test_both_writers_write_the_same_bytes(tmp_path):
    from tracer import _native, pyprobe  # here: _native may not be built

    c, python = rows_written(_native, tmp_path), rows_written(pyprobe, tmp_path)
    assert c == python
    assert c == [
        '["timer",T,1,7,7,T]', '["dnew",T,1,7]', '["dadd",T,1,7,0]', '["dfire",T,1,true]',
        '["poll",T,T,5,1,1099511627776,3]', '["call",T,"read",7,T,0,9,null,null]',
        '["dcall",T,1,7,T,1,true,false]', '["dcall",T,1,7,T,1,false,false]',
        '["call",T,"timer",7,T,0,1,0,null]', '{"ev":"x"}']


@pytest.mark.parametrize("module_name", ["_native", "pyprobe"])
def test_a_probe_times_on_the_monotonic_clock_between_sparse_drains(tmp_path, module_name):
    """Times stay on time.monotonic_ns() however long it is between two drains.

    The C probe once scaled the processor's counter and corrected the rate only at a drain;
    with drains seconds apart the rate overshot and a call's lag came out as 72 s."""
    import importlib

    module = importlib.import_module(f"tracer.{module_name}")
    from reactor.base import DelayedCall

    buffer = module.Buffer(100)
    t0 = time.monotonic_ns()
    probe = module.Probe(buffer, t0, Sites())
    out = os.open(tmp_path / "t", os.O_WRONLY | os.O_CREAT)
    try:
        for pause in (0.0, 0.3, 1.0):
            time.sleep(pause)
            due = time.monotonic()
            call = DelayedCall(None, due, print, (), {})
            before = time.monotonic_ns() - t0
            probe.call_begin("timer", print, call)
            time.sleep(0.05)
            probe.call_end(None)
            after = time.monotonic_ns() - t0
            buffer.drain(out)
    finally:
        os.close(out)
    rows = [orjson.loads(line) for line in (tmp_path / "t").read_text().splitlines()]
    assert len(rows) == 3
    t, dur, lag = rows[-1][1], rows[-1][4], rows[-1][7]
    assert before <= t - dur and t <= after  # the call's start and end, by both clocks
    assert 50_000_000 <= dur <= after - before
    assert 0 <= lag <= before - (int(due * 1e9) - t0) + 1_000_000


class Counting:
    """A delegate that names each function by a new site and counts how often it is asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def _fn_site(self, f):
        self.asked.append(f.__name__)
        return len(self.asked), f.__code__

    def _hook_failed(self, hook, exc):
        pytest.fail(f"{hook} failed: {exc!r}")


def made(name: str):
    namespace: dict = {}
    exec(f"def {name}(): pass", namespace)  # noqa: S102 - a new code object each time
    return namespace[name]


@pytest.mark.parametrize("module_name", ["_native", "pyprobe"])
def test_a_full_site_cache_forgets_and_keeps_nothing_alive(module_name):
    import gc
    import weakref

    from tracer import _native, pyprobe

    module = {"_native": _native, "pyprobe": pyprobe}[module_name]
    assert _native.SITES_CACHED == pyprobe.SITES_CACHED  # the probes look up alike
    delegate = Counting()
    probe = module.Probe(module.Buffer(1 << 16), time.monotonic_ns(), delegate)
    first = made("first")
    code = weakref.ref(first.__code__)
    probe.run_call("other", None, first, (), None)
    probe.run_call("other", None, first, (), None)  # cached: not asked again
    del first
    gc.collect()
    assert code() is not None  # the cache holds it
    for i in range(module.SITES_CACHED):  # as many others: the full cache forgets them all
        probe.run_call("other", None, made(f"f{i}"), (), None)
    gc.collect()
    assert code() is None  # nothing the program dropped is kept
    again = made("first")
    probe.run_call("other", None, again, (), None)
    probe.run_call("other", None, again, (), None)
    assert delegate.asked.count("first") == 2 and len(delegate.asked) == module.SITES_CACHED + 2


def test_both_probes_time_a_deferred_callback_the_same(tmp_path):
    from tracer import _native, pyprobe

    c, python = timed_rows(_native, tmp_path), timed_rows(pyprobe, tmp_path)
    assert c == python
    assert c == (['["dcall",T,1,7,T,0,false,false]', '["dcall",T,1,7,T,0,true,true]',
                  '["dcall",T,1,7,T,0,false,false]'], ["ValueError", "settled"])


def test_a_timer_without_a_function_is_written_alike(tmp_path):
    """An asyncio task step's handle has ``time`` but no ``func`` (it is named when it runs):
    both probes write a timer with no function and no hook error."""
    from tracer import _native, pyprobe

    class Step:
        __slots__ = ("func", "time", "_trace_id")

    written = []
    for module in (_native, pyprobe):
        buffer = module.Buffer(16)
        probe = module.Probe(buffer, time.monotonic_ns(), Sites())
        step = Step()
        step.time = time.monotonic()
        probe.timer_scheduled(step)
        out = tmp_path / module.__name__
        fd = os.open(out, os.O_WRONLY | os.O_CREAT)
        try:
            buffer.drain(fd)
        finally:
            os.close(fd)
        written.append([timeless_row(line) for line in out.read_text().splitlines()])
        assert step._trace_id == 1
    assert written[0] == written[1] == ['["timer",T,1,7,0,T]']


@pytest.mark.parametrize("module_name", ["_native", "pyprobe"])
def test_the_fd_table_follows_watch_and_unwatch_and_keeps_nothing_alive(module_name):
    """Thousands of objects watched and unwatched in a random order (the C table grows and
    closes the gaps removals leave): each read call names the fd watched last, or none."""
    import gc
    import random
    import weakref

    module = importlib.import_module(f"tracer.{module_name}")
    probe = module.Probe(module.Buffer(1 << 10), time.monotonic_ns(), Sites())
    objects = [type("Descriptor", (), {})() for _ in range(3000)]
    model: dict[int, int] = {}
    rng = random.Random(7)
    for step in range(30_000):
        i = rng.randrange(len(objects))
        if rng.random() < 0.6:
            probe.watch_fd(objects[i], step)
            model[i] = step
        else:
            probe.unwatch_fd(objects[i])
            model.pop(i, None)
        if step % 97 == 0:
            assert [probe.fd_of(o) for o in objects] == [model.get(i) for i in range(len(objects))]
    assert probe.fds_watched == len(model)
    assert [probe.fd_of(o) for o in objects] == [model.get(i) for i in range(len(objects))]
    kept = weakref.ref(objects[0])
    probe.watch_fd(objects[0], 1)
    objects.clear()
    gc.collect()
    assert kept() is None
