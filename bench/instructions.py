"""Instructions per unit of work, counted by callgrind: a measure that machine noise cannot move.

    python bench/instructions.py [--only WORKLOAD] [--runtime RUNTIME] [--n N] [--cache]

On a shared machine one workload's run time varies by up to 2x from run to run, so small
differences (the idle cost of the instrumentation points, a change to a hook) drown in it.
valgrind's callgrind counts the instructions a run executes instead, the same every time.
Each (workload, runtime) runs twice, with N and 2N units, under callgrind (about 50 times
slower than normal), and the difference divided by N is the cost of one unit (one timer,
chain step, Deferred, echo round trip or mixed request) without the start-up.  Only the main
thread is counted: the tracer's writer runs beside it on another core.  Instructions are not time
(cache misses, the clock, the writer's share of the machine are not in them), so
bench/run.py remains the measure of speed; this one compares code.  The one place where the
wall clock leaks into a traced count, the drain when the trace stops, is left out of it
(:data:`STOP_DRAIN` says why): three runs then read within 4 instructions of each other, and
echo with both cores busy within 0.1% of echo idle.

Instructions are not the whole cost of tracing.  The mixed server traced ran 1.086x the
instructions of the untraced one but 1.09-1.16x its time: the probe's code and the events it
writes take room in the caches that the application's code and data had.  ``--cache`` runs
callgrind's cache simulation as well, with this machine's caches per core (L1 32 KB each for
code and data, L2 512 KB, as :data:`CACHES`), and prints the misses per unit and an estimate of
cycles, ``Ir + 10 x L1 misses + 40 x L2 misses`` (:data:`MISS_CYCLES`: about what a miss costs
when the next level has it).  On the mixed server it reads 1.142x (instructions:
1.086x) while bench/run.py measures 1.09-1.13x on a quiet machine.  It is a
model with two known errors: callgrind runs the threads in turn on one simulated cache (the
writer's work evicts the loop's lines, which on the machine happens only in the shared L3),
and at its 50x slowdown the writer wakes 50 times as often per unit of work (smaller batches,
more GIL hand-overs).  The first one is most of the gap: in a trial build where the writer
wrote nothing during the run and the events went round a 16 KB ring (the same hook work, none
of the writer's), the traced request's L2 misses fell from 83-93 to 35 and the estimate to
1.115x; the ring alone, with the writer writing, changed nothing.  Use it to compare two
versions of the code, not as a time.

Runtimes are bench/run.py's: ``loopscope`` (instrumentation points, no probe),
``loopscope-probe-free`` (points compiled out), ``loopscope-traced``; Twisted's reactor
untraced and traced (``twisted``, ``twisted-traced``: the Twisted adapter's cost); and the
asyncio ones: ``asyncio``, ``asyncio-imported`` (loopscope imported, not installed) and
``asyncio-traced`` (the asyncio adapter installed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import run

RUNTIMES = ["loopscope-probe-free", "loopscope", "loopscope-traced", "twisted", "twisted-traced",
            "asyncio", "asyncio-imported", "asyncio-traced"]
#: What runs without --runtime (the asyncio ones are asked for by name).
DEFAULT_RUNTIMES = RUNTIMES[:5]
#: Ratios printed per workload: (numerator, denominator, label).
RATIOS = [("loopscope-traced", "loopscope", "traced"),
          ("twisted-traced", "twisted", "twisted traced"),
          ("asyncio-imported", "asyncio", "asyncio imported"),
          ("asyncio-traced", "asyncio", "asyncio traced")]
#: Default units per run: small, as callgrind is slow (twice this many also run).
#: (mixed: requests, over 100 connections; the asyncio runtimes have no mixed workload.)
SIZES = {"timers": 20_000, "chain": 20_000, "deferred": 5_000, "echo": 5_000, "mixed": 4_000}
#: The caches simulated with --cache (size, ways, line), as this machine's (AMD EPYC, lscpu):
#: per core 32 KB L1 for instructions and for data, and 512 KB of L2, which callgrind takes as
#: its last level (the 32 MB L3 is shared by the cores, and not simulated).
CACHES = {"I1": "32768,8,64", "D1": "32768,8,64", "LL": "524288,8,64"}
#: Left out of the main thread's count: the drain at tracer.stop, which formats on the main
#: thread whatever the writer had not drained yet.  How much that is depends on when the
#: writer last woke (every 100 ms of wall clock), so counting it made the deferred workload
#: traced read anywhere from 39,000 to 66,000 instructions a Deferred from run to run, and
#: echo traced 1.10x on a loaded machine and 1.05x idle; it is a cost of stopping, once per
#: trace, not of a unit of work.
STOP_DRAIN = "Buffer_drain"
#: Cycles the estimate charges per miss: an L1 miss found in L2 (about 12 cycles on this
#: core), an L2 miss found in L3 (about 40).
MISS_CYCLES = {"L1": 10, "LL": 40}


def main_thread_counts(runtime: str, workload: str, n: int, import_path: Path,
                       cache: bool = False) -> dict[str, int]:
    """What callgrind counted in the child's main thread, start-up included: ``Ir``
    (instructions) and, with ``cache``, the simulated misses (``I1mr``, ``D1mr``, ...)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        # A fixed hash seed: dict layouts, and so instruction counts, repeat from run to run.
        # No bytecode written: the reactor's copy (run.snapshot_reactor) has none, and the first
        # of the two runs would compile it and leave it for the second, whose count then lacks
        # the compiling (on a machine without PYTHONDONTWRITEBYTECODE set the difference of the
        # two counts came out negative).
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(import_path), str(run.ROOT)]),
                   PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", **run.MALLOC_ENV)
        simulate = ["--cache-sim=yes", *(f"--{level}={c}" for level, c in CACHES.items())] \
            if cache else []
        subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes", *simulate,
                        f"--callgrind-out-file={out}", sys.executable, run.__file__,
                        "--child", runtime, workload, str(n)],
                       env=env, check=True, capture_output=True, timeout=3600)
        main = Path(out + "-01").read_text(errors="replace")
    events = re.search(r"^events: (.+)$", main, re.MULTILINE)
    found = re.search(r"^summary: (.+)$", main, re.MULTILINE)
    if events is None or found is None:
        raise RuntimeError("callgrind wrote no summary")
    names = events.group(1).split()
    drained = calls_cost(main, STOP_DRAIN, len(names))
    return {name: int(total) - left_out
            for name, total, left_out in zip(names, found.group(1).split(), drained)}


def calls_cost(profile: str, function: str, n_events: int) -> list[int]:
    """What the calls to ``function`` cost in all (inclusive of what it called), per event,
    read off a callgrind profile: the cost line after each ``calls=`` line whose ``cfn`` is
    ``function`` (names are written once, then referred to by their number)."""
    names: dict[str, str] = {}
    cost = [0] * n_events
    target = False
    lines = iter(profile.splitlines())
    for line in lines:
        named = re.match(r"c?fn=\((\d+)\)(?: (.*))?$", line)
        if named:
            number, name = named.groups()
            if name is not None:
                names[number] = name
            target = line.startswith("cfn=") and names.get(number) == function
        elif line.startswith("calls=") and target:
            fields = next(lines).split()[1:]  # the position, then the costs (trailing 0s left out)
            for i, value in enumerate(fields):
                cost[i] += int(value)
    return cost


def misses(counts: dict[str, float]) -> tuple[float, float, float]:
    """The simulated misses: of L1 for code, of L1 for data, of the last level (L2)."""
    return (counts["I1mr"], counts["D1mr"] + counts["D1mw"],
            counts["ILmr"] + counts["DLmr"] + counts["DLmw"])


def cycle_estimate(counts: dict[str, float]) -> float:
    """Instructions plus the misses charged at :data:`MISS_CYCLES`."""
    code, data, last = misses(counts)
    return counts["Ir"] + MISS_CYCLES["L1"] * (code + data) + MISS_CYCLES["LL"] * last


def ratio_texts(values: dict[str, float]) -> list[str]:
    """``label 1.091x`` for each of :data:`RATIOS` whose two runtimes both have a value."""
    return [f"{label} {values[top] / values[bottom]:.3f}x" for top, bottom, label in RATIOS
            if values.get(top) and values.get(bottom)]


def main(argv: list[str] | None = None) -> int:
    parser = run._Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SIZES), action="append",
                        help="this workload only (repeatable)")
    parser.add_argument("--runtime", choices=RUNTIMES, action="append",
                        help="this runtime only (repeatable)")
    parser.add_argument("--n", type=int, help="units per run (default: per workload)")
    parser.add_argument("--cache", action="store_true",
                        help="simulate the caches too: misses per unit and a cycle estimate")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt install valgrind)")
    if args.n is not None and args.n < 1:
        parser.error("--n must be at least 1")
    runtimes = args.runtime or DEFAULT_RUNTIMES
    with tempfile.TemporaryDirectory() as tmp:
        plain = run.snapshot_reactor(Path(tmp) / "plain", probe_free=False)
        free = run.snapshot_reactor(Path(tmp) / "probe-free", probe_free=True)
        paths = {"loopscope": plain, "loopscope-traced": plain, "loopscope-probe-free": free}
        for workload in args.only or list(SIZES):
            n = args.n or SIZES[workload]
            counts: dict[str, float] = {}
            estimates: dict[str, float] = {}
            for runtime in runtimes:
                if run.lacks_workload(runtime, workload):
                    continue
                print(f"# {workload} on {runtime}: runs of {n} and {2 * n} under callgrind",
                      file=sys.stderr, flush=True)
                path = paths.get(runtime, run.ROOT)
                one = main_thread_counts(runtime, workload, n, path, args.cache)
                two = main_thread_counts(runtime, workload, 2 * n, path, args.cache)
                unit = {event: (two[event] - one[event]) / n for event in one}
                counts[runtime] = unit["Ir"]
                if args.cache:
                    estimates[runtime] = cycle_estimate(unit)
                    code, data, last = misses(unit)
                    print(f"{workload:9} {runtime}: per unit, L1 misses {code:,.0f} code + "
                          f"{data:,.0f} data, L2 misses {last:,.0f}, "
                          f"cycle estimate {estimates[runtime]:,.0f}", flush=True)
            line = ", ".join(f"{r} {c:,.0f}" for r, c in counts.items())
            base = counts.get("loopscope-probe-free")
            if base and "loopscope" in counts:
                line += f"; idle points {100 * (counts['loopscope'] / base - 1):+.1f}%"
            line += "".join(f"; {text}" for text in ratio_texts(counts))
            print(f"{workload:9} instructions per unit: {line}", flush=True)
            estimated = ratio_texts(estimates)
            if estimated:
                print(f"{workload:9} cycle estimate: {'; '.join(estimated)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
