"""How the analysis side scales: summary, export and the dashboard on 1M, 5M and 10M events.

    python bench/big_traces.py                       # 1M, 5M and 10M events
    python bench/big_traces.py --sizes 1 --steps summary,orjson
    python bench/big_traces.py --dir /var/tmp/big    # where the traces are kept (reused)

Each trace is recorded for real (``loopscope run examples/blocking_busy.py ROUNDS``, about six
events a round) and kept in ``--dir`` so a second run measures without recording again.  Every
step runs in a fresh process; the table gives its wall time, its CPU time and its peak memory
(the child's own, from ``wait4``), next to the floors: ``wc -l`` and parsing every line with
orjson and nothing else.  ``reopen`` is ``summary`` again, answered from the index the first
one made (tracer/index.py).  The last lines give the growth from the smallest trace to the
largest per step, which should be linear (10x the events, about 10x the time).

The dashboard step opens the real App headless at 160x48 (Textual's test driver) and reports
when the first events are on screen and when the trace is fully loaded.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "blocking_busy.py"
#: Events the busy example writes per round (measured: 1,020,035 events for 170,000 rounds).
EVENTS_PER_ROUND = 6

ORJSON_FLOOR = """
import sys, orjson
with open(sys.argv[1], 'rb') as f:
    for line in f:
        orjson.loads(line)
"""

DASHBOARD = """
import asyncio, sys, time
from tui.app import LoopscopeApp
from tui.feed import Feed

async def main():
    app = LoopscopeApp(Feed(sys.argv[1], follow=False))
    start = time.monotonic()
    first = None
    async with app.run_test(size=(160, 48)) as pilot:
        while not app.feed.loaded:
            if first is None and app.feed.model is not None and len(app.feed.model):
                first = time.monotonic() - start
            if app.feed.error:
                raise SystemExit(app.feed.error)
            await pilot.pause(0.05)
        loaded = time.monotonic() - start
    print(f"first={first if first is not None else loaded:.2f} loaded={loaded:.2f}")

asyncio.run(main())
"""


def steps(trace: Path, out_dir: Path) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "wc -l": ["wc", "-l", str(trace)],
        "orjson": [py, "-c", ORJSON_FLOOR, str(trace)],
        "summary": [py, "-m", "loopscope", "summary", "--json", str(trace)],
        # the same again: the trace is indexed now (tracer/index.py)
        "reopen": [py, "-m", "loopscope", "summary", "--json", str(trace)],
        "export": [py, "-m", "loopscope", "export", str(trace), "-o",
                   str(out_dir / f"{trace.stem}.chrome.json")],
        "dashboard": [py, "-c", DASHBOARD, str(trace)],
    }


def measure(argv: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak RSS in MB and the output of one step run in its own
    process (on a shared machine the CPU time varies less than the wall time)."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - start
        out.seek(0)
        text = out.read()[-2000:].decode("utf-8", "replace")
        err.seek(0)
        last = (err.read()[-2000:].decode("utf-8", "replace").strip().splitlines() or [""])[-1]
    if proc.returncode != 0:
        raise SystemExit(f"big_traces: {argv[:2]} failed with status {proc.returncode}: {last}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def record(millions: int, directory: Path) -> Path:
    """The trace of about ``millions`` million events (recorded once, then reused)."""
    path = directory / f"busy-{millions}m.jsonl"
    if path.exists() and path.stat().st_size > 0:
        return path
    rounds = millions * 1_000_000 // EVENTS_PER_ROUND
    print(f"recording {millions}M events into {path} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "loopscope", "run", "-o", str(path), str(APP),
                    str(rounds)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,5,10", help="trace sizes in millions of events")
    parser.add_argument("--steps", default="wc -l,orjson,summary,reopen,export,dashboard",
                        help="comma-separated steps to run")
    parser.add_argument("--dir", default="/var/tmp/loopscope-big-traces", type=Path,
                        help="where traces are recorded and kept")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    chosen = args.steps.split(",")
    results: dict[str, dict[int, float]] = {}
    # The summaries this run keeps go to a directory of its own, empty at first: "summary"
    # folds each trace, "reopen" reads what it kept.
    cache = tempfile.TemporaryDirectory(prefix="big-traces-index-")
    os.environ["LOOPSCOPE_CACHE"] = cache.name
    print(f"{'trace':>7} {'MB':>6}  {'step':<10} {'seconds':>8} {'CPU s':>7} {'peak MB':>8}  detail")
    for millions in sizes:
        trace = record(millions, args.dir)
        size_mb = trace.stat().st_size / 1e6
        for name, argv in steps(trace, args.dir).items():
            if name not in chosen:
                continue
            seconds, cpu, peak, out = measure(argv)
            detail = out.strip().splitlines()[-1] if name == "dashboard" else ""
            results.setdefault(name, {})[millions] = seconds
            print(f"{millions:>6}M {size_mb:6.0f}  {name:<10} {seconds:8.2f} {cpu:7.2f} {peak:8.0f}"
                  f"  {detail}", flush=True)
    cache.cleanup()
    if len(sizes) > 1:
        low, high = min(sizes), max(sizes)
        for name, by_size in results.items():
            if by_size.get(low):
                print(f"growth {low}M -> {high}M, {name}: {by_size[high] / by_size[low]:.1f}x "
                      f"for {high / low:.0f}x the events")
    print(f"(CPU count {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; "
          f"this process's peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)")


if __name__ == "__main__":
    main()
