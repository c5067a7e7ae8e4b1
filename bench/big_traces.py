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
when the first events are on screen, when the trace is fully loaded, and the slowest of the
seeks and next/previous-stall keys pressed while it loads and after, and of the view changes
(each timed from the press until the App has handled it and painted).  The live step does the
same while another process appends the trace's lines to a new file at ``--live-rate`` events
a second: the first screen, the slowest keys, how far behind the writer the dashboard fell and
how long it took to catch up once the writer stopped.
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
from textual import events
from textual.screen import Screen
from tui.app import LoopscopeApp
from tui.feed import Feed

#: Keys that move the cursor far (seek) or to the next/previous stall, or change the tab,
#: pressed while the trace loads and again once it is loaded; the slowest seek or n/N and the
#: slowest view change (a digit) are reported.
WHILE_LOADING = ["end", "home", "n", "end", "N", "shift+right", "3", "1"]
AFTER = ["home", "n", "n", "right", "shift+right", "end", "N", "left", "3", "2", "1", "end"]

# A key's latency: from the key sent, as the terminal driver sends it, until the action it is
# bound to has run and the screen has been painted after it.  (Pilot.press also waits for
# the process to be idle, which it never is while a trace loads: it measures that wait.)
painted, acted = [0.0], [0.0]
_paint, _act = Screen._compositor_refresh, LoopscopeApp.run_action

def paint(self):
    _paint(self)
    painted[0] = time.monotonic()

async def act(self, *args, **kwargs):
    result = await _act(self, *args, **kwargs)
    acted[0] = time.monotonic()
    return result

Screen._compositor_refresh, LoopscopeApp.run_action = paint, act

async def press(pilot, keys, slowest):
    app = pilot.app
    for key in keys:
        sent = time.monotonic()
        app._driver.send_message(events.Key(key, key if len(key) == 1 else None))
        while not sent < acted[0] < painted[0]:
            if time.monotonic() - sent > 5:
                raise SystemExit(f"the key {key} ran no action within 5 s")
            await asyncio.sleep(0.002)
        group = slowest["view" if key.isdigit() else "seek"]
        group[:] = max(group, [painted[0] - sent, key])

# The slowest seek or n/N key (issue 15's 0.2 s), and the slowest view change.
def worst(slowest):
    (seek, key), (view, tab) = slowest["seek"], slowest["view"]
    return f"seek/n/N {seek:.2f} ({key}), view {view:.2f} ({tab})"

async def main():
    app = LoopscopeApp(Feed(sys.argv[1], follow=False))
    app.animation_level = "none"
    start = time.monotonic()
    first = None
    loading = {"seek": [0.0, ""], "view": [0.0, ""]}
    after = {"seek": [0.0, ""], "view": [0.0, ""]}
    async with app.run_test(size=(160, 48)) as pilot:
        while not app.feed.loaded:
            if first is None and app.feed.model is not None and len(app.feed.model):
                first = time.monotonic() - start
                await press(pilot, WHILE_LOADING, loading)
            if app.feed.error:
                raise SystemExit(app.feed.error)
            await pilot.pause(0.05)
        loaded = time.monotonic() - start
        await press(pilot, AFTER, after)
    print(f"first={first if first is not None else loaded:.2f} loaded={loaded:.2f} "
          f"keys while loading: {worst(loading)}; after: {worst(after)}")

asyncio.run(main())
"""

#: The live step's writer: the trace's lines appended to a new file at ``rate`` events a
#: second, for ``seconds`` at most.
WRITER = """
import itertools, sys, time
src, dest, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
with open(src, "rb") as f, open(dest, "ab", buffering=0) as out:
    out.write(f.readline())
    start, written = time.monotonic(), 0
    while (now := time.monotonic() - start) < seconds:
        lines = list(itertools.islice(f, int(now * rate) - written))
        out.write(b"".join(lines))
        written += len(lines)
        if written < int(now * rate):
            break   # the trace ran out
        time.sleep(0.01)
"""

#: The live step: the App follows the file the writer grows, a key pressed every 0.2 s.  It
#: reports the first screen, the slowest key, how far behind the writer the model fell (the
#: bytes not yet read, in seconds of writing) and how long it took to catch up once the
#: writer stopped.
LIVE = DASHBOARD.split("async def main():")[0] + """
import os, subprocess

async def main():
    src, dest, rate, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    open(dest, "wb").close()
    writer = subprocess.Popen([sys.executable, "-c", sys.argv[5], src, dest, rate, seconds])
    app = LoopscopeApp(Feed(dest, follow=True))
    app.animation_level = "none"
    start = time.monotonic()
    first, behind, keys, pressed = None, 0.0, {"seek": [0.0, ""], "view": [0.0, ""]}, 0
    async with app.run_test(size=(160, 48)) as pilot:
        while writer.poll() is None:
            model = app.feed.model
            if first is None and model is not None and len(model):
                first = time.monotonic() - start
            size = os.path.getsize(dest)
            if first is not None and size:
                per_s = size / (time.monotonic() - start)
                behind = max(behind, (size - app.feed.bytes_done) / per_s)
                await press(pilot, [WHILE_LOADING[pressed % len(WHILE_LOADING)]], keys)
                pressed += 1
            await pilot.pause(0.2)
        stopped, size = time.monotonic(), os.path.getsize(dest)
        while app.feed.bytes_done < size:
            await pilot.pause(0.05)
        caught_up = time.monotonic() - stopped
        events = len(app.feed.model)
    os.remove(dest)
    print(f"first={first:.2f} events={events:,}, slowest keys: {worst(keys)}, "
          f"behind by {behind:.2f} s at most, caught up {caught_up:.2f} s after the writer")

asyncio.run(main())
"""


def steps(trace: Path, out_dir: Path, live_rate: int, live_seconds: float) -> dict[str, list[str]]:
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
        "live": [py, "-c", LIVE, str(trace), str(out_dir / f"{trace.stem}.live.jsonl"),
                 str(live_rate), str(live_seconds), WRITER],
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
    parser.add_argument("--steps", default="wc -l,orjson,summary,reopen,export,dashboard,live",
                        help="comma-separated steps to run")
    parser.add_argument("--dir", default="/var/tmp/loopscope-big-traces", type=Path,
                        help="where traces are recorded and kept")
    parser.add_argument("--live-rate", default=100_000, type=int,
                        help="events a second the live step's writer appends (default 100000)")
    parser.add_argument("--live-seconds", default=float("inf"), type=float,
                        help="how long the live step writes at most (default: the whole trace)")
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
        for name, argv in steps(trace, args.dir, args.live_rate, args.live_seconds).items():
            if name not in chosen:
                continue
            seconds, cpu, peak, out = measure(argv)
            detail = out.strip().splitlines()[-1] if name in ("dashboard", "live") else ""
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
