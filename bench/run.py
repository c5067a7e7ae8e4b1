"""Benchmarks: loopscope's reactor against Twisted and asyncio, one run, ratios.

    python bench/run.py [--quick] [--only WORKLOAD] [--repeat K]

Workloads, the same for every runtime: timers (200k callLater(0) at once),
chain (200k self-rescheduling callLater(0)), deferred (100k Deferreds x 10
callbacks, fired), echo (50 TCP clients ping-ponging 64 bytes, 50k round trips
on 127.0.0.1); and mixed, on loopscope and Twisted only (asyncio_workloads.py
has no version of it, so the asyncio runtimes skip it): a line-protocol server
for 100 TCP clients kept open, 40k requests, each parsed and answered through a
Deferred with 3 callbacks, every other one fired via callLater(0).
Runtimes: loopscope untraced and traced (tracer.start) with the C probe
(``loopscope-traced``) and with the pure-Python one (``loopscope-traced-py``,
LOOPSCOPE_PROBE=python), Twisted's default reactor untraced and traced (tracer.start and the
Twisted adapter, as ``loopscope run`` does), asyncio, asyncio debug mode and uvloop, where
installed; ``asyncio-traced`` is asyncio under the asyncio adapter (what ``loopscope run``
does to an asyncio app), ``asyncio-imported`` is untraced asyncio in a process that imported
loopscope's tracer and adapters (which must cost nothing).

``loopscope-probe-free`` is the same reactor with every instrumentation point
compiled out (a copy of ``reactor/`` in a temporary directory where
``_instrument.probe`` reads as ``None``): comparing its CPU time with the
untraced run measures what the idle instrumentation costs (the budget: under 3%).

Every (workload, runtime) runs in its own child process (a reactor cannot
restart), ``--repeat`` rounds over all runtimes, keeping each one's fastest
run (and least CPU time).  Output: one JSON line per
workload x runtime (wall ``seconds`` of the workload, ``cpu_seconds`` of the
child), then the throughput ratios and the issue's targets.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"timers": 200_000, "chain": 200_000, "deferred": 100_000, "echo": 50_000,
         "mixed": 40_000}
RUNTIMES = ["loopscope", "loopscope-probe-free", "loopscope-traced", "loopscope-traced-py",
            "twisted", "twisted-traced", "asyncio", "asyncio-traced", "asyncio-imported",
            "asyncio-debug", "uvloop"]
#: The probe a traced runtime forces (LOOPSCOPE_PROBE); the others leave it to tracer.backend.
FORCED_PROBE = {"loopscope-traced": "c", "loopscope-traced-py": "python"}
# (workload, numerator runtime, denominator runtime, target or None): throughput ratios
#: Most traced/untraced time per workload (issue 4 for loopscope, issue 11 for Twisted).
TRACING_TARGETS = {"timers": 1.5, "chain": 1.5, "deferred": 1.5, "echo": 1.15, "mixed": 1.15}
#: The same for asyncio under the adapter (issue 10; its deferred workload has no target).
ASYNCIO_TRACING_TARGETS = {"timers": 1.5, "chain": 1.5, "echo": 1.15}
#: Runtimes compared round by round with another one (numerator: denominator).
PAIRS = {"loopscope-traced": "loopscope", "loopscope-traced-py": "loopscope",
         "twisted-traced": "twisted", "asyncio-traced": "asyncio", "asyncio-imported": "asyncio"}
RATIOS = [
    ("timers", "loopscope", "twisted", 1.5),
    ("echo", "loopscope", "twisted", 1.2),
    ("chain", "loopscope", "asyncio", 1.0),
]


def unavailable(runtime: str) -> str | None:
    """Why ``runtime`` cannot run here, or None if it can."""
    if runtime.startswith("twisted") and importlib.util.find_spec("twisted") is None:
        return "Twisted is not installed"
    if runtime == "uvloop" and importlib.util.find_spec("uvloop") is None:
        return "uvloop is not installed"
    if runtime in PAIRS:
        try:
            from tracer import start, stop  # noqa: F401
        except ImportError:
            return "tracer.start/tracer.stop are not importable yet"
    return None


def lacks_workload(runtime: str, workload: str) -> bool:
    """Whether ``runtime`` has no version of ``workload``: the asyncio runtimes run
    bench/asyncio_workloads.py, which lacks some of bench/workloads.py's (``mixed``)."""
    if runtime.startswith(("loopscope", "twisted")):
        return False
    if str(ROOT / "bench") not in sys.path:
        sys.path.insert(0, str(ROOT / "bench"))
    import asyncio_workloads

    return workload not in asyncio_workloads.WORKLOADS


def timed_traced(workload: Any, *args: Any) -> tuple[float, float, dict[str, Any]]:
    """:func:`timed` while recording a trace into a temporary file (removed after); also
    returns the trace's size and dropped events."""
    import tracer
    from tracer import adapters

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.jsonl")
        session = tracer.start(path)
        adapters.install(session)
        seconds, cpu = timed(workload, *args)
        adapters.uninstall()
        tracer.stop()
        extra = trace_facts(path)
    return seconds, cpu, extra


# -- child side: run one workload on one runtime --------------------------------------
def timed(workload: Any, *args: Any) -> tuple[float, float]:
    """The workload's own wall-clock measure, and the CPU time of the whole call."""
    cpu0 = time.process_time()
    seconds = workload(*args)
    return seconds, time.process_time() - cpu0


def trace_facts(path: str) -> dict[str, Any]:
    """The size of a finished trace and the events it dropped (its last line, ``end``)."""
    size = os.path.getsize(path)
    with open(path, "rb") as trace:
        trace.seek(max(0, size - 4096))
        return {"trace_bytes": size, "dropped": json.loads(trace.read().splitlines()[-1])["dropped"]}


def run_child(runtime: str, workload: str, n: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    extra: dict[str, Any] = {}
    if runtime.startswith("loopscope"):
        import workloads

        import reactor as package
        from reactor import defer, protocol

        if runtime in ("loopscope-traced", "loopscope-traced-py"):
            seconds, cpu, extra = timed_traced(workloads.WORKLOADS[workload], package.reactor,
                                               defer, protocol, n)
        else:
            seconds, cpu = timed(workloads.WORKLOADS[workload], package.reactor, defer, protocol, n)
    elif runtime == "twisted":
        import workloads
        from twisted.internet import defer, protocol, reactor

        seconds, cpu = timed(workloads.WORKLOADS[workload], reactor, defer, protocol, n)
    elif runtime == "twisted-traced":
        import workloads

        def on_twisted(*args: Any) -> float:
            """The workload on Twisted imported after tracing started, as ``loopscope run``
            does (the adapter instruments Twisted as it is imported)."""
            from twisted.internet import defer, protocol, reactor

            return workloads.WORKLOADS[workload](reactor, defer, protocol, *args)

        seconds, cpu, extra = timed_traced(on_twisted, n)
    else:
        import asyncio

        import asyncio_workloads

        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # debug mode's slow-callback chatter
        if runtime == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
            loop.set_debug(runtime == "asyncio-debug")
        asyncio.set_event_loop(loop)
        if runtime == "asyncio-imported":
            import tracer.adapters.asyncio_loop  # noqa: F401 - imported, never installed
        if runtime == "asyncio-traced":
            seconds, cpu, facts = timed_traced(asyncio_workloads.WORKLOADS[workload], loop, n)
            extra.update(facts)
        else:
            seconds, cpu = timed(asyncio_workloads.WORKLOADS[workload], loop, n)
        loop.close()
    return {"workload": workload, "runtime": runtime, "n": n, "seconds": round(seconds, 4),
            "per_sec": round(n / seconds), "cpu_seconds": round(cpu, 4), **extra}


# -- parent side -------------------------------------------------------------------------
def snapshot_reactor(dest: Path, probe_free: bool) -> Path:
    """Copy ``reactor/`` under ``dest`` (returned, to put first on PYTHONPATH).

    Every loopscope runtime imports such a copy taken once at the start, so
    all of them run the same code even while ``reactor/`` is being edited.
    With ``probe_free`` every probe read is replaced by None, so the
    instrumentation points fold away.
    """
    target = dest / "reactor"
    shutil.copytree(ROOT / "reactor", target, ignore=shutil.ignore_patterns("__pycache__"))
    if probe_free:
        for source in target.glob("*.py"):
            if source.name != "_instrument.py":
                text = source.read_text(encoding="utf-8")
                source.write_text(text.replace("_instrument.probe", "None"), encoding="utf-8")
    return dest


#: glibc malloc thresholds fixed for every child.  asyncio reads into a fresh 256 KiB buffer
#: each time; with malloc's adaptive thresholds, whether that costs an mmap, mremap and munmap
#: per read depends on the heap's history (a process that imported a few more modules has a
#: hole that size and does none): it moved plain asyncio's echo by 3x between two processes
#: that differed only in their imports.  Fixed, every runtime's reads stay in the heap.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": str(16 << 20)}


def run_once(runtime: str, workload: str, n: int, import_path: Path) -> dict[str, Any]:
    """One child run: its JSON record, or an error record."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(import_path), str(ROOT)]), **MALLOC_ENV)
    if runtime in FORCED_PROBE:
        env["LOOPSCOPE_PROBE"] = FORCED_PROBE[runtime]
    child = subprocess.run([sys.executable, __file__, "--child", runtime, workload, str(n)],
                           capture_output=True, text=True, env=env, timeout=600)
    if child.returncode != 0:
        lines = child.stderr.strip().splitlines() or ["no output"]
        return {"workload": workload, "runtime": runtime, "n": n, "error": lines[-1]}
    return json.loads(child.stdout.strip().splitlines()[-1])


def measure(runtimes: list[str], workload: str, n: int, repeat: int,
            paths: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Each runtime's fastest run (and least CPU time) out of ``repeat``.

    Rounds go through every runtime in turn, so a change in machine load
    during the measurement hits them all alike.  Each traced run's record
    also carries ``slowdown_rounds``: traced over untraced seconds in each
    round (the two runs of a round are seconds apart, so the machine's
    drift affects them alike; on a noisy machine their median is steadier
    than the ratio of two minimums); so does every runtime of :data:`PAIRS`,
    over its pair, and ``cpu_rounds``: the same for CPU time (the writer thread's included).
    """
    best: dict[str, dict[str, Any]] = {}
    slowdowns: dict[str, list[tuple[float, float]]] = {}  # (seconds, CPU seconds) ratios
    for round_number in range(repeat):
        this_round: dict[str, tuple[float, float]] = {}  # seconds, CPU seconds
        # Every other round runs the runtimes in reverse order, so that running first or
        # second in a pair (a warmer page cache, the machine's load changing in one
        # direction) favours neither side of a ratio.
        for runtime in runtimes if round_number % 2 == 0 else runtimes[::-1]:
            result = run_once(runtime, workload, n, paths.get(runtime, ROOT))
            if "error" not in result:
                this_round[runtime] = (result["seconds"], result["cpu_seconds"])
            previous = best.get(runtime)
            if previous is None or "error" in previous or "error" in result:
                best[runtime] = previous if previous and "error" in previous else result
                continue
            cpu = min(result["cpu_seconds"], previous["cpu_seconds"])
            if result["seconds"] < previous["seconds"]:
                best[runtime] = result
            best[runtime]["cpu_seconds"] = cpu
        for runtime, base in PAIRS.items():
            if runtime in this_round and base in this_round:
                (seconds, cpu), (base_seconds, base_cpu) = this_round[runtime], this_round[base]
                slowdowns.setdefault(runtime, []).append((seconds / base_seconds, cpu / base_cpu))
    for runtime, rounds in slowdowns.items():
        if "error" not in best.get(runtime, {"error": ""}):
            best[runtime]["slowdown_rounds"] = [round(wall, 3) for wall, _ in rounds]
            best[runtime]["cpu_rounds"] = [round(cpu, 3) for _, cpu in rounds]
    return best


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def print_ratios(results: dict[tuple[str, str], dict[str, Any]], workloads: list[str]) -> None:
    def per_sec(workload: str, runtime: str) -> float | None:
        r = results.get((workload, runtime))
        return r.get("per_sec") if r else None

    print("\nthroughput ratios (higher = first one faster):")
    for workload in workloads:
        ours = per_sec(workload, "loopscope")
        if ours is None:
            continue
        parts = []
        for peer in ("twisted", "asyncio", "asyncio-debug", "uvloop"):
            theirs = per_sec(workload, peer)
            if theirs:
                parts.append(f"ours/{peer} {ours / theirs:.2f}x")
        traced = per_sec(workload, "loopscope-traced")
        if traced:
            parts.append(f"traced/untraced {traced / ours:.2f}x")
        traced_py = per_sec(workload, "loopscope-traced-py")
        if traced_py:
            parts.append(f"traced-py/untraced {traced_py / ours:.2f}x")
        if parts:
            print(f"  {workload:9} " + ", ".join(parts))
    for runtime, title, targets in (
            ("loopscope-traced", "tracing slowdown, traced over untraced time (issue 4)",
             TRACING_TARGETS),
            ("loopscope-traced-py", "the pure-Python probe, traced over untraced time", {}),
            ("twisted-traced", "Twisted tracing slowdown, traced over untraced Twisted (issue 11)",
             TRACING_TARGETS),
            ("asyncio-traced", "asyncio tracing slowdown, traced over untraced asyncio (issue 10)",
             ASYNCIO_TRACING_TARGETS),
            ("asyncio-imported", "untraced asyncio with loopscope imported, over plain asyncio "
             "(issue 10: unchanged within noise)", {})):
        lines = []
        for workload in workloads:
            base = results.get((workload, PAIRS[runtime]), {}).get("seconds")
            this = results.get((workload, runtime), {})
            rounds = this.get("slowdown_rounds")
            if not base or not this.get("seconds") or not rounds:
                continue
            ratio = median(rounds)
            target = targets.get(workload)
            verdict = "" if target is None else \
                f", target <= {target}x: {'met' if ratio <= target else 'NOT met'}"
            lines.append(f"  {workload:9} {ratio:.2f}x median of {len(rounds)} rounds "
                         f"(CPU time {median(this['cpu_rounds']):.2f}x; "
                         f"fastest runs: {this['seconds'] / base:.2f}x; rounds "
                         f"{min(rounds):.2f}-{max(rounds):.2f}){verdict}")
        if lines:
            print(f"\n{title}:")
            print("\n".join(lines))
    print("\nidle instrumentation cost (CPU time, untraced vs probe-free):")
    for workload in workloads:
        with_points = results.get((workload, "loopscope"), {}).get("cpu_seconds")
        without = results.get((workload, "loopscope-probe-free"), {}).get("cpu_seconds")
        if with_points and without:
            print(f"  {workload:9} {100 * (with_points / without - 1):+.1f}%")
    print("\ntargets (issue 2):")
    for workload, ours, peer, target in RATIOS:
        a, b = per_sec(workload, ours), per_sec(workload, peer)
        if workload in workloads and a and b:
            verdict = "met" if a / b >= target else "NOT met"
            print(f"  {workload:9} {ours}/{peer} {a / b:.2f}x (target >= {target}x): {verdict}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """Bad arguments: one line on stderr, exit 2 (no usage dump)."""
        print(f"bench/run.py: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one tenth of the sizes")
    parser.add_argument("--only", choices=sorted(SIZES), action="append",
                        help="run only this workload (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement, fastest kept")
    parser.add_argument("--runtime", choices=RUNTIMES, action="append",
                        help="run only this runtime (repeatable)")
    parser.add_argument("--child", nargs=3, metavar=("RUNTIME", "WORKLOAD", "N"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        runtime, workload, n = args.child
        print(json.dumps(run_child(runtime, workload, int(n))))
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    workloads = args.only or list(SIZES)
    runtimes = args.runtime or RUNTIMES
    for runtime in runtimes:
        reason = unavailable(runtime)
        if reason:
            print(f"# skipping {runtime}: {reason}", flush=True)
    runtimes = [r for r in runtimes if not unavailable(r)]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        plain = snapshot_reactor(Path(tmp) / "plain", probe_free=False)
        paths = {"loopscope": plain, "loopscope-traced": plain, "loopscope-traced-py": plain,
                 "loopscope-probe-free": snapshot_reactor(Path(tmp) / "probe-free", probe_free=True)}
        for workload in workloads:
            n = SIZES[workload] // (10 if args.quick else 1)
            lacking = [r for r in runtimes if lacks_workload(r, workload)]
            if lacking:
                print(f"# skipping {workload} on {', '.join(lacking)}: no asyncio version",
                      flush=True)
            these = [r for r in runtimes if r not in lacking]
            for runtime, result in measure(these, workload, n, args.repeat, paths).items():
                results[(workload, runtime)] = result
                print(json.dumps(result), flush=True)
    print_ratios(results, workloads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
