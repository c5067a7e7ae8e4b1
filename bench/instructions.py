"""Instructions per unit of work, counted by callgrind: a measure that machine noise cannot move.

    python bench/instructions.py [--only WORKLOAD] [--runtime RUNTIME] [--n N]

On a shared machine one workload's run time varies by up to 2x from run to run, so small
differences (the idle cost of the instrumentation points, a change to a hook) drown in it.
valgrind's callgrind counts the instructions a run executes instead, the same every time.
Each (workload, runtime) runs twice, with N and 2N units, under callgrind (about 50 times
slower than normal), and the difference divided by N is the cost of one unit (one timer,
chain step, Deferred, echo round trip or mixed request) without the start-up.  Only the main
thread is counted: the tracer's writer runs beside it on another core.  Instructions are not time
(cache misses, the clock, the writer's share of the machine are not in them), so
bench/run.py remains the measure of speed; this one compares code.  One thing does leak in
for the traced runtimes: the writer wakes on the wall clock (every 100 ms), and each batch it
writes makes the main thread hand the GIL over, so a machine busy with other work (slower
wall-clock progress under callgrind, more batches per unit) adds main-thread instructions:
echo traced read 1.103x on a loaded machine and 1.054x idle.  Count on an idle machine.

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


def main_thread_instructions(runtime: str, workload: str, n: int, import_path: Path) -> int:
    """Instructions the child's main thread executed (callgrind), start-up included."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        # A fixed hash seed: dict layouts, and so instruction counts, repeat from run to run.
        # No bytecode written: the reactor's copy (run.snapshot_reactor) has none, and the first
        # of the two runs would compile it and leave it for the second, whose count then lacks
        # the compiling (on a machine without PYTHONDONTWRITEBYTECODE set the difference of the
        # two counts came out negative).
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(import_path), str(run.ROOT)]),
                   PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", **run.MALLOC_ENV)
        subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                        f"--callgrind-out-file={out}", sys.executable, run.__file__,
                        "--child", runtime, workload, str(n)],
                       env=env, check=True, capture_output=True, timeout=3600)
        main = Path(out + "-01").read_text(errors="replace")
    found = re.search(r"^summary: (\d+)", main, re.MULTILINE)
    if found is None:
        raise RuntimeError("callgrind wrote no summary")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = run._Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SIZES), action="append",
                        help="this workload only (repeatable)")
    parser.add_argument("--runtime", choices=RUNTIMES, action="append",
                        help="this runtime only (repeatable)")
    parser.add_argument("--n", type=int, help="units per run (default: per workload)")
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
            counts = {}
            for runtime in runtimes:
                if run.lacks_workload(runtime, workload):
                    continue
                print(f"# {workload} on {runtime}: runs of {n} and {2 * n} under callgrind",
                      file=sys.stderr, flush=True)
                path = paths.get(runtime, run.ROOT)
                one = main_thread_instructions(runtime, workload, n, path)
                two = main_thread_instructions(runtime, workload, 2 * n, path)
                counts[runtime] = (two - one) / n
            line = ", ".join(f"{r} {c:,.0f}" for r, c in counts.items())
            base = counts.get("loopscope-probe-free")
            if base and "loopscope" in counts:
                line += f"; idle points {100 * (counts['loopscope'] / base - 1):+.1f}%"
            for top, bottom, label in RATIOS:
                if counts.get(top) and counts.get(bottom):
                    line += f"; {label} {counts[top] / counts[bottom]:.3f}x"
            print(f"{workload:9} instructions per unit: {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
